//! `dbmazz cleanup`: remove what dbmazz leaves in PostgreSQL — the replication slot (which
//! otherwise holds WAL forever) and the publication — and, when asked, the local state file.
//!
//! Two steps so the CLI can show what will go and ask first: [`plan`] looks (and refuses a slot
//! that a process is streaming from), [`CleanupPlan::execute`] drops. StarRocks tables are
//! never touched.

use std::path::PathBuf;

use crate::checkpoint::StateFile;
use crate::config::Config;
use crate::source::{connect_sql, quote_ident, SourceError};

/// Why cleanup stopped; nothing after the failing step was dropped.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(
        "replication slot {slot:?} is in use (server process {pid}; pg_stat_replication names \
         its client): stop the dbmazz (or other client) streaming from it first, then run \
         cleanup again"
    )]
    SlotActive { slot: String, pid: i32 },
    #[error("cannot remove {path}: {source}")]
    StateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The slot as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotFound {
    pub name: String,
    pub database: Option<String>,
    pub confirmed_flush_lsn: Option<String>,
}

/// What cleanup will remove (`None`: not there, nothing to do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupPlan {
    pub slot: Option<SlotFound>,
    /// The publication's name and how many tables it publishes.
    pub publication: Option<(String, i64)>,
    /// `state_dir/state.json`, when `--state` was given and the file exists.
    pub state_file: Option<PathBuf>,
    /// A publication this role may not drop (it is not its owner): kept, with a note.
    pub kept_publication: Option<KeptPublication>,
}

/// A publication cleanup leaves in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPublication {
    pub name: String,
    pub why: KeptBecause,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptBecause {
    /// Owned by another role (typically created by the tables' owner).
    Owner(String),
    /// Other logical slots of this database may stream through it (PostgreSQL does not
    /// record which publications a slot's consumer asks for).
    OtherSlots(Vec<String>),
}

impl KeptPublication {
    /// What to tell the operator.
    pub fn note(&self) -> String {
        let drop = format!("DROP PUBLICATION {};", quote_ident(&self.name));
        match &self.why {
            KeptBecause::Owner(owner) => format!(
                "publication {:?} is kept: it belongs to {owner:?}, which may drop it ({drop})",
                self.name
            ),
            KeptBecause::OtherSlots(slots) => format!(
                "publication {:?} is kept: other pgoutput slots of this database ({}) may \
                 stream through it; once none does, drop it ({drop})",
                self.name,
                slots.join(", ")
            ),
        }
    }
}

impl CleanupPlan {
    pub fn is_empty(&self) -> bool {
        self.slot.is_none() && self.publication.is_none() && self.state_file.is_none()
    }

    /// One line per thing to remove, for the confirmation prompt.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(slot) = &self.slot {
            lines.push(format!(
                "replication slot {:?} (database {}, confirmed up to {}): the stream position; \
                 after this, a new start needs a fresh snapshot",
                slot.name,
                slot.database.as_deref().unwrap_or("?"),
                slot.confirmed_flush_lsn.as_deref().unwrap_or("?")
            ));
        }
        if let Some((name, tables)) = &self.publication {
            lines.push(format!("publication {name:?} ({tables} table(s))"));
        }
        if let Some(path) = &self.state_file {
            lines.push(format!("state file {}", path.display()));
        }
        lines
    }

    /// Drops the slot, then the publication, then removes the state file. Returns what was
    /// removed, as [`CleanupPlan::describe`] lines.
    pub async fn execute(&self, config: &Config) -> Result<Vec<String>, CleanupError> {
        let connect = config
            .source_connect()
            .map_err(|error| SourceError::InvalidUrl {
                reason: error.problem,
            })?;
        let client = connect_sql(&connect).await?;
        let mut done = Vec::new();
        if let Some(slot) = &self.slot {
            let dropped = client
                .execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = $1",
                    &[&slot.name],
                )
                .await;
            match dropped {
                Ok(_) => done.push(format!("dropped replication slot {:?}", slot.name)),
                Err(error) => {
                    // Became active between plan and execute.
                    if let Some(pid) = active_pid(&client, &slot.name).await {
                        return Err(CleanupError::SlotActive {
                            slot: slot.name.clone(),
                            pid,
                        });
                    }
                    return Err(SourceError::from(error).into());
                }
            }
        }
        if let Some((name, _)) = &self.publication {
            client
                .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", quote_ident(name)))
                .await
                .map_err(SourceError::from)?;
            done.push(format!("dropped publication {name:?}"));
        }
        if let Some(path) = &self.state_file {
            std::fs::remove_file(path).map_err(|source| CleanupError::StateFile {
                path: path.clone(),
                source,
            })?;
            done.push(format!("removed {}", path.display()));
        }
        Ok(done)
    }
}

/// Looks at what is there. Refuses an active slot: dropping it would cut off a running
/// pipeline (PostgreSQL would refuse too, but later and less clearly).
pub async fn plan(config: &Config, include_state: bool) -> Result<CleanupPlan, CleanupError> {
    let connect = config
        .source_connect()
        .map_err(|error| SourceError::InvalidUrl {
            reason: error.problem,
        })?;
    let client = connect_sql(&connect).await?;
    let slot_name = &config.source.slot;
    if let Some(pid) = active_pid(&client, slot_name).await {
        return Err(CleanupError::SlotActive {
            slot: slot_name.clone(),
            pid,
        });
    }
    let slot = client
        .query_opt(
            "SELECT database::text, confirmed_flush_lsn::text FROM pg_replication_slots \
             WHERE slot_name = $1",
            &[slot_name],
        )
        .await
        .map_err(SourceError::from)?
        .map(|row| SlotFound {
            name: slot_name.clone(),
            database: row.get(0),
            confirmed_flush_lsn: row.get(1),
        });
    let name = &config.source.publication;
    let row = client
        .query_opt(
            "SELECT (SELECT count(*) FROM pg_publication_tables t WHERE t.pubname = p.pubname), \
                    pg_has_role(p.pubowner, 'USAGE'), pg_get_userbyid(p.pubowner)::text \
             FROM pg_publication p WHERE p.pubname = $1",
            &[name],
        )
        .await
        .map_err(SourceError::from)?;
    let other_slots: Vec<String> = client
        .query(
            "SELECT slot_name::text FROM pg_replication_slots \
             WHERE slot_type = 'logical' AND plugin = 'pgoutput' \
             AND database = current_database() AND slot_name <> $1 ORDER BY 1",
            &[slot_name],
        )
        .await
        .map_err(SourceError::from)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let kept = |why| {
        Some(KeptPublication {
            name: name.clone(),
            why,
        })
    };
    let (publication, kept_publication) = match row {
        Some(row) if !row.get::<_, bool>(1) => (None, kept(KeptBecause::Owner(row.get(2)))),
        Some(_) if !other_slots.is_empty() => (None, kept(KeptBecause::OtherSlots(other_slots))),
        Some(row) => (Some((name.clone(), row.get::<_, i64>(0))), None),
        None => (None, None),
    };
    let state_path = StateFile::path(&config.state_dir);
    let state_file = (include_state && state_path.exists()).then_some(state_path);
    Ok(CleanupPlan {
        slot,
        publication,
        state_file,
        kept_publication,
    })
}

/// The PID streaming from `slot`, if one is.
async fn active_pid(client: &tokio_postgres::Client, slot: &str) -> Option<i32> {
    client
        .query_opt(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND active",
            &[&slot],
        )
        .await
        .ok()
        .flatten()
        .and_then(|row| row.get::<_, Option<i32>>(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_everything_it_removes() {
        let plan = CleanupPlan {
            slot: Some(SlotFound {
                name: "s".into(),
                database: Some("d".into()),
                confirmed_flush_lsn: Some("0/16B3748".into()),
            }),
            publication: Some(("p".into(), 2)),
            state_file: Some(PathBuf::from("/x/state.json")),
            kept_publication: None,
        };
        let lines = plan.describe();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("\"s\"") && lines[0].contains("0/16B3748"));
        assert!(lines[1].contains("2 table(s)"));
        assert!(lines[2].contains("/x/state.json"));
        assert!(!plan.is_empty());
        let kept = KeptPublication {
            name: "p".into(),
            why: KeptBecause::Owner("app_owner".into()),
        };
        assert!(kept.note().contains("DROP PUBLICATION \"p\""));
        let shared = KeptPublication {
            name: "p".into(),
            why: KeptBecause::OtherSlots(vec!["other_slot".into()]),
        };
        assert!(shared.note().contains("other_slot"), "{}", shared.note());
    }
}
