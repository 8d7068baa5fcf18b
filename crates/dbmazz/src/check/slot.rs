//! The replication slot and the local state file: missing (will be created), wrong kind,
//! invalidated, in use by another process, or holding WAL close to `max_slot_wal_keep_size`;
//! and a state.json that names another pipeline or a slot that is gone.

use crate::checkpoint::{StateFile, StateFileError};
use crate::config::{Config, SnapshotMode};
use crate::source::SourceError;

use super::CheckLine;

/// Retained WAL above this share of `max_slot_wal_keep_size` is a warning.
const RETAINED_WAL_WARN_RATIO: f64 = 0.8;

/// The slot's row, with how much WAL it holds back.
pub(super) struct SlotRow {
    plugin: Option<String>,
    slot_type: String,
    database: Option<String>,
    active_pid: Option<i32>,
    /// `application_name` of the process streaming from it.
    holder: Option<String>,
    wal_status: Option<String>,
    invalidation_reason: Option<String>,
    confirmed_flush: Option<String>,
    retained_bytes: Option<i64>,
}

impl SlotRow {
    pub(super) async fn read(
        client: &tokio_postgres::Client,
        slot: &str,
        version_num: u32,
    ) -> Result<Option<Self>, SourceError> {
        let wal_status = if version_num >= 130_000 {
            "wal_status::text"
        } else {
            "NULL::text"
        };
        let invalidation_reason = if version_num >= 170_000 {
            "invalidation_reason::text"
        } else {
            "NULL::text"
        };
        let sql = format!(
            "SELECT plugin::text, slot_type::text, database::text, \
                    CASE WHEN active THEN active_pid END, {wal_status}, {invalidation_reason}, \
                    confirmed_flush_lsn::text, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8, \
                    (SELECT application_name FROM pg_stat_activity a WHERE a.pid = active_pid) \
             FROM pg_replication_slots WHERE slot_name = $1"
        );
        let row = client.query_opt(&sql, &[&slot]).await?;
        Ok(row.map(|row| SlotRow {
            plugin: row.get(0),
            slot_type: row.get(1),
            database: row.get(2),
            active_pid: row.get(3),
            wal_status: row.get(4),
            invalidation_reason: row.get(5),
            confirmed_flush: row.get(6),
            retained_bytes: row.get(7),
            holder: row.get(8),
        }))
    }
}

pub(super) fn slot_line(
    config: &Config,
    slot: Option<&SlotRow>,
    max_slot_wal_keep_mb: Option<i64>,
) -> CheckLine {
    let name = &config.source.slot;
    let subject = format!("replication slot {name}");
    let Some(slot) = slot else {
        return CheckLine::ok(
            subject,
            "does not exist yet: dbmazz creates it at the first start",
        );
    };
    let database = config
        .source_connect()
        .map(|connect| connect.dbname)
        .unwrap_or_default();
    let drop = format!("SELECT pg_drop_replication_slot('{name}');");
    if slot.slot_type != "logical" || slot.plugin.as_deref() != Some("pgoutput") {
        return CheckLine::fail(
            subject,
            match slot.plugin.as_deref() {
                Some(plugin) if slot.slot_type == "logical" => {
                    format!("is a logical slot of plugin {plugin:?}, not of pgoutput")
                }
                _ => format!("is a {} slot, not a pgoutput logical slot", slot.slot_type),
            },
            format!("choose another source.slot, or drop it if nothing uses it: {drop}"),
        );
    }
    if slot.database.as_deref() != Some(database.as_str()) {
        return CheckLine::fail(
            subject,
            format!(
                "belongs to database {:?}, not {database:?}",
                slot.database.as_deref().unwrap_or("")
            ),
            "choose another source.slot (a slot serves one database)",
        );
    }
    if slot.wal_status.as_deref() == Some("lost") || slot.invalidation_reason.is_some() {
        return CheckLine::fail(
            subject,
            format!(
                "was invalidated by PostgreSQL ({}): the changes it held are lost",
                slot.invalidation_reason
                    .as_deref()
                    .unwrap_or("wal_status = lost")
            ),
            "re-snapshot: `dbmazz cleanup --state` (drops slot, publication and state.json), then \
             start dbmazz again (docs/operations.md, \"Recovering from a lost slot\")",
        );
    }
    if let Some(pid) = slot.active_pid {
        let holder = slot.holder.as_deref().unwrap_or("");
        let ours = config
            .source_connect()
            .map(|connect| connect.application_name)
            .unwrap_or_default();
        if holder == ours {
            return CheckLine::warn(
                subject,
                format!("is in use by a running dbmazz (PID {pid}, application_name {holder:?})"),
                "nothing to do while it runs: a second dbmazz on this slot would be refused; \
                 stop the running one first to start another",
            );
        }
        return CheckLine::fail(
            subject,
            format!("is in use by another process (PID {pid}, application_name {holder:?})"),
            "one process per slot: stop the other dbmazz (SELECT application_name, client_addr \
             FROM pg_stat_replication WHERE pid = ...; shows who it is), or choose another source.slot",
        );
    }
    let retained = slot.retained_bytes.unwrap_or(0).max(0);
    let position = format!(
        "confirmed up to {}, holds {} of WAL",
        slot.confirmed_flush.as_deref().unwrap_or("?"),
        human_bytes(retained)
    );
    if let Some(limit_mb) = max_slot_wal_keep_mb {
        let limit = limit_mb.saturating_mul(1024 * 1024);
        if limit > 0 && retained as f64 > limit as f64 * RETAINED_WAL_WARN_RATIO {
            return CheckLine::warn(
                subject,
                format!(
                    "{position}, over {:.0}% of max_slot_wal_keep_size = {}: PostgreSQL \
                     invalidates the slot at the limit",
                    RETAINED_WAL_WARN_RATIO * 100.0,
                    human_bytes(limit)
                ),
                "start dbmazz so it catches up, or raise max_slot_wal_keep_size",
            );
        }
    }
    if slot.wal_status.as_deref() == Some("unreserved") {
        return CheckLine::warn(
            subject,
            format!("{position}; wal_status = unreserved: it is about to be invalidated"),
            "start dbmazz now so it catches up, or raise max_slot_wal_keep_size",
        );
    }
    CheckLine::ok(subject, format!("exists, inactive, {position}"))
}

/// The local state file against the slot: a state without its slot means lost changes.
pub(super) fn state_line(config: &Config, database: &str, slot_exists: bool) -> Option<CheckLine> {
    let path = StateFile::path(&config.state_dir);
    let subject = format!("state file {}", path.display());
    let state = match StateFile::load(&config.state_dir) {
        Ok(Some(state)) => state,
        Ok(None) if slot_exists && config.snapshot.mode == SnapshotMode::Initial => {
            return Some(CheckLine::warn(
                subject,
                format!(
                    "does not exist, but slot {:?} does: nothing says the tables were copied, so \
                     the next start copies every table again, then streams from the slot",
                    config.source.slot
                ),
                "restore state_dir if it was lost (keep it on persistent storage); \
                 snapshot.mode = \"never\" streams without copying",
            ))
        }
        // A directory that exists must take the state file; one still to be made is made by
        // `run` (check changes nothing).
        Ok(None) if config.state_dir.is_dir() => {
            return crate::checkpoint::check_writable(&config.state_dir)
                .err()
                .map(|error| {
                    CheckLine::fail(
                        subject,
                        error.to_string(),
                        "point state_dir at a directory dbmazz can write",
                    )
                })
        }
        Ok(None) => return None,
        Err(error @ StateFileError::Invalid { .. }) => {
            return Some(CheckLine::fail(
                subject,
                error.to_string(),
                "fix or move the file aside (dbmazz then starts from the slot)",
            ))
        }
        Err(error) => {
            return Some(CheckLine::fail(
                subject,
                error.to_string(),
                "check state_dir: it must be a directory dbmazz can read and write",
            ))
        }
    };
    if state.slot != config.source.slot || state.database != database {
        return Some(CheckLine::fail(
            subject,
            format!(
                "belongs to slot {:?} on database {:?}, but the config says slot {:?} on {database:?}",
                state.slot, state.database, config.source.slot
            ),
            "point state_dir at this pipeline's own directory",
        ));
    }
    if !slot_exists {
        return Some(CheckLine::fail(
            subject,
            format!(
                "says this pipeline streamed from slot {:?} up to {}, but the slot is gone: the \
                 changes since are lost",
                state.slot, state.last_durable_lsn
            ),
            format!(
                "re-snapshot: move {} aside (or `dbmazz cleanup --state`) and start dbmazz again",
                path.display()
            ),
        ));
    }
    Some(CheckLine::ok(
        subject,
        format!(
            "matches the slot (durable up to {})",
            state.last_durable_lsn
        ),
    ))
}

/// `1.5 GiB`-style sizes for messages.
fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }

    fn config() -> Config {
        Config::from_toml(
            "[source]\nurl = \"postgres://u@h/shop\"\nslot = \"s\"\n[sink]\ntype = \"noop\"\n",
        )
        .unwrap()
    }

    #[test]
    fn a_slot_without_a_state_file_warns_that_the_tables_are_copied_again() {
        use crate::check::CheckStatus::Warn;
        let mut config = config();
        config.state_dir =
            std::env::temp_dir().join(format!("dbmazz-check-state-{}", std::process::id()));
        let line = state_line(&config, "shop", true).expect("a line");
        assert_eq!(line.status, Warn);
        assert!(
            line.message.contains("copies every table again"),
            "{}",
            line.message
        );
        assert!(
            state_line(&config, "shop", false).is_none(),
            "nothing yet: a first start"
        );
        config.snapshot.mode = SnapshotMode::Never;
        assert!(state_line(&config, "shop", true).is_none(), "never copies");
    }

    fn slot(retained_mib: i64) -> SlotRow {
        SlotRow {
            plugin: Some("pgoutput".into()),
            slot_type: "logical".into(),
            database: Some("shop".into()),
            active_pid: None,
            wal_status: Some("reserved".into()),
            invalidation_reason: None,
            confirmed_flush: Some("0/1000".into()),
            retained_bytes: Some(retained_mib * 1024 * 1024),
            holder: None,
        }
    }

    #[test]
    fn slot_states_each_get_their_verdict() {
        use crate::check::CheckStatus::{Fail, Ok, Warn};
        let config = config();
        let status =
            |row: Option<&SlotRow>, keep: Option<i64>| slot_line(&config, row, keep).status;
        assert_eq!(status(None, None), Ok, "a missing slot will be created");
        assert_eq!(status(Some(&slot(100)), Some(1024)), Ok);
        assert_eq!(status(Some(&slot(900)), None), Ok, "no limit set");
        let near_limit = slot_line(&config, Some(&slot(900)), Some(1024));
        assert_eq!(near_limit.status, Warn);
        assert!(
            near_limit.message.contains("900.0 MiB"),
            "{}",
            near_limit.message
        );
        let lost = SlotRow {
            wal_status: Some("lost".into()),
            retained_bytes: None,
            ..slot(0)
        };
        let line = slot_line(&config, Some(&lost), Some(1024));
        assert_eq!(line.status, Fail);
        assert!(line.fix.unwrap().contains("dbmazz cleanup --state"));
        let active = SlotRow {
            active_pid: Some(4242),
            ..slot(1)
        };
        let line = slot_line(&config, Some(&active), None);
        assert_eq!(line.status, Fail);
        assert!(line.message.contains("PID 4242"), "{}", line.message);
        let running = SlotRow {
            active_pid: Some(4242),
            holder: Some("dbmazz".into()),
            ..slot(1)
        };
        let line = slot_line(&config, Some(&running), None);
        assert_eq!(line.status, Warn, "{}", line.message);
        assert!(line.message.contains("running dbmazz"), "{}", line.message);
        let elsewhere = SlotRow {
            database: Some("other".into()),
            ..slot(1)
        };
        assert_eq!(status(Some(&elsewhere), None), Fail);
        let unreserved = SlotRow {
            wal_status: Some("unreserved".into()),
            ..slot(1)
        };
        assert_eq!(status(Some(&unreserved), None), Warn);
    }
}
