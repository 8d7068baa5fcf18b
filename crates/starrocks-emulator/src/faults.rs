//! Fault injection (issue item 4).
//!
//! Faults are queued rules. Each Stream Load (or transaction `load`/`commit`) on the BE takes the
//! first rule whose filter matches and whose count is not used up. ALTER rules are taken by the
//! next ALTER jobs. Rules come from the control endpoint (`POST /_emulator/faults`), from flags of
//! the binary, or from [`crate::EmulatorHandle::inject`].

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Reply with HTTP `status` (default 500) and a plain-text body; nothing is loaded.
    Http5xx,
    /// Reply `Status: Fail` with `message`; the txn is aborted (label reusable).
    Fail,
    /// Wait `delay_ms` before committing, then proceed normally.
    Delay,
    /// Read part of the body, then close the connection without an answer; nothing is loaded.
    CloseMidBody,
    /// Commit the load, answer `Status: Publish Timeout`.
    PublishTimeout,
    /// Commit the load, then close the connection without an answer.
    DropResponse,
    /// Fail with StarRocks's "too many versions" message; label reusable.
    TooManyVersions,
    /// The next ALTER job takes `delay_ms` to finish.
    AlterSlow,
    /// The next ALTER job ends CANCELLED with `message`.
    AlterFail,
}

impl FaultKind {
    /// True for faults consumed by ALTER jobs rather than loads.
    pub fn is_alter(self) -> bool {
        matches!(self, FaultKind::AlterSlow | FaultKind::AlterFail)
    }
}

fn one() -> u32 {
    1
}

/// One queued fault rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// What to do.
    pub kind: FaultKind,
    /// How many loads (or jobs) it applies to. Default 1.
    #[serde(default = "one")]
    pub count: u32,
    /// Only loads into this table (`table` or `db.table`). Default: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// HTTP status for `http5xx` (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Message for `fail` / `alter_fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Delay for `delay` / `alter_slow`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl FaultRule {
    /// A rule of `kind` applying once.
    pub fn new(kind: FaultKind) -> FaultRule {
        FaultRule {
            kind,
            count: 1,
            table: None,
            status: None,
            message: None,
            delay_ms: None,
        }
    }

    /// Apply to `count` loads.
    pub fn times(mut self, count: u32) -> FaultRule {
        self.count = count;
        self
    }

    /// Set the message.
    pub fn message(mut self, message: impl Into<String>) -> FaultRule {
        self.message = Some(message.into());
        self
    }

    /// Set the delay.
    pub fn delay_ms(mut self, delay_ms: u64) -> FaultRule {
        self.delay_ms = Some(delay_ms);
        self
    }

    /// Restrict to one table (`table` or `db.table`).
    pub fn table(mut self, table: impl Into<String>) -> FaultRule {
        self.table = Some(table.into());
        self
    }

    /// Set the HTTP status.
    pub fn status(mut self, status: u16) -> FaultRule {
        self.status = Some(status);
        self
    }

    fn matches(&self, db: &str, table: &str) -> bool {
        match &self.table {
            None => true,
            Some(t) => t == table || *t == format!("{db}.{table}"),
        }
    }
}

/// The fault queue.
#[derive(Debug, Default)]
pub struct Faults {
    rules: VecDeque<FaultRule>,
}

impl Faults {
    /// Queue a rule.
    pub fn push(&mut self, rule: FaultRule) {
        if rule.count > 0 {
            self.rules.push_back(rule);
        }
    }

    /// Drop every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The queued rules.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.iter().cloned().collect()
    }

    /// Take one use of the first load rule matching `db.table`.
    pub fn take_load(&mut self, db: &str, table: &str) -> Option<FaultRule> {
        self.take(|r| !r.kind.is_alter() && r.matches(db, table))
    }

    /// Take one use of the first ALTER rule matching the table.
    pub fn take_alter(&mut self, db: &str, table: &str) -> Option<FaultRule> {
        self.take(|r| r.kind.is_alter() && r.matches(db, table))
    }

    fn take(&mut self, pred: impl Fn(&FaultRule) -> bool) -> Option<FaultRule> {
        let index = self.rules.iter().position(pred)?;
        let rule = &mut self.rules[index];
        rule.count -= 1;
        let taken = rule.clone();
        if rule.count == 0 {
            self.rules.remove(index);
        }
        Some(taken)
    }
}

/// The "too many versions" text of 3.3–3.5 (spec §10.1).
pub fn too_many_versions_message(tablet_id: i64, current: u64, limit: u64) -> String {
    format!(
        "Failed to load data into tablet {tablet_id}, because of too many versions, current/limit: {current}/{limit}. You can reduce the loading job concurrency, or increase loading data batch size. If you are loading data with Routine Load, you can increase FE configs routine_load_task_consume_second and max_routine_load_batch_size,"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_in_order_and_by_table() {
        let mut faults = Faults::default();
        faults.push(FaultRule::new(FaultKind::Fail).times(2).table("t1"));
        faults.push(FaultRule::new(FaultKind::Delay));
        assert_eq!(faults.take_load("d", "t2").unwrap().kind, FaultKind::Delay);
        assert_eq!(faults.take_load("d", "t1").unwrap().kind, FaultKind::Fail);
        assert_eq!(faults.take_load("d", "t1").unwrap().kind, FaultKind::Fail);
        assert!(faults.take_load("d", "t1").is_none());
    }

    #[test]
    fn rule_json_shape() {
        let rule: FaultRule =
            serde_json::from_str(r#"{"kind":"http5xx","count":3,"status":503}"#).unwrap();
        assert_eq!(rule.kind, FaultKind::Http5xx);
        assert_eq!(rule.count, 3);
        assert!(serde_json::from_str::<FaultRule>(r#"{"kind":"nope"}"#).is_err());
    }
}
