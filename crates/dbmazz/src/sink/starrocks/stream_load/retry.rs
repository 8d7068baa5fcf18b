//! Retrying: first classify a failure, then back off.
//!
//! A `Fail` from StarRocks is either *retryable* (the cluster is busy, restarting, timing out,
//! or compaction is behind: "too many versions") or *permanent* (the data or the schema is
//! wrong: no retry can make it pass, and retrying a filtered row forever would hide data loss).
//! The classification reads the message, because StarRocks answers both kinds with the same
//! HTTP 200 and `Status: Fail` (spec §1.4, §1.6, §10.1). Unknown messages are retryable: they
//! are bounded by the policy's attempts / elapsed time, after which the pipeline stops with the
//! last message.
//!
//! Every retry of a batch reuses its label (DESIGN §3), so a retry of a load that did land
//! is answered `Label Already Exists` instead of loading twice.

use std::time::Duration;

/// How long and how often to retry one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Cap of one delay.
    pub max_backoff: Duration,
    /// Growth factor between delays.
    pub multiplier: f64,
    /// Fraction of each delay that is random (0 = none, 1 = "full jitter").
    pub jitter: f64,
    /// Give up after this many sends (`None` = no limit).
    pub max_attempts: Option<u32>,
    /// Give up once this much time has passed since the first send (`None` = no limit).
    pub max_elapsed: Option<Duration>,
    /// How often to ask the label state while an earlier attempt is still RUNNING.
    pub label_poll_interval: Duration,
}

/// Defaults: 200 ms doubling up to 30 s, half of it random, for up to 10 minutes.
impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: None,
            max_elapsed: Some(Duration::from_secs(600)),
            label_poll_interval: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 = first retry), jitter included.
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(64) as i32;
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        // Keep (1 - jitter) of the delay, randomise the rest: retries of many tables spread out.
        let delay = capped * (1.0 - jitter) + capped * jitter * fastrand::f64();
        Duration::from_secs_f64(delay.max(0.0))
    }

    /// May another send happen after `attempts` sends and `elapsed` time?
    pub fn allows(&self, attempts: u32, elapsed: Duration) -> bool {
        self.max_attempts.is_none_or(|max| attempts < max)
            && self.max_elapsed.is_none_or(|max| elapsed < max)
    }
}

/// What a `Fail` message means for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureClass {
    /// Transient: back off and resend with the same label.
    Retryable,
    /// "too many versions": retryable, and the table loads too often (grow its batch interval).
    TooManyVersions,
    /// The label is taken (newer releases report it as a plain `Fail`, spec §10.5): ask its state.
    LabelInUse,
    /// No retry can help; the hint says what the operator should do.
    Permanent { hint: &'static str },
}

/// Message fragments (lower case) of permanent failures, with what to do about them.
const PERMANENT: &[(&str, &str)] = &[
    (
        "too many filtered rows",
        "StarRocks rejected rows of this batch; read the ErrorURL for the rows and reasons, then \
         fix the table's column types or the type-mapping policy",
    ),
    (
        "access denied",
        "check sink.starrocks.user / password and that the user has INSERT on the table",
    ),
    (
        "no valid basic authorization",
        "check sink.starrocks.user / password",
    ),
    (
        "need auth information",
        "check sink.starrocks.user / password",
    ),
    (
        "unknown database",
        "the StarRocks database is missing (dropped, or StarRocks lost it?): restart dbmazz, \
         which creates it (create_tables = true) and copies the tables again; or fix \
         sink.starrocks.database",
    ),
    (
        "unknown table",
        "the StarRocks table is missing (dropped while dbmazz ran?): restart dbmazz, which \
         creates it (create_tables = true) and copies the table again",
    ),
    (
        "mapping column is not in table",
        "the StarRocks table lacks a column dbmazz sends; compare its schema with PostgreSQL's",
    ),
    (
        "column has no default value",
        "the StarRocks table has a NOT NULL column without default that PostgreSQL does not fill",
    ),
    (
        "duplicate column",
        "a column is listed twice; this is a dbmazz bug, please report it",
    ),
    (
        "partial update",
        "partial updates need a Primary Key table with every key column in the load",
    ),
    (
        "label format error",
        "the label is invalid; this is a dbmazz bug, please report it",
    ),
    (
        "load op type",
        "the __op column is invalid; this is a dbmazz bug, please report it",
    ),
    (
        "exceed the max size",
        "the batch is larger than StarRocks accepts; lower batch.max_bytes",
    ),
    (
        // `body size <n> exceed limit: <max>` (not "Memory of process exceed limit", which
        // is a BE under memory pressure: retried).
        "body size",
        "the batch is larger than streaming_load_max_mb; lower batch.max_bytes",
    ),
    (
        "there is no 100-continue header",
        "the request lacked Expect: 100-continue; this is a dbmazz bug, please report it",
    ),
    (
        "unknown data format",
        "the load headers are invalid; this is a dbmazz bug, please report it",
    ),
    (
        "must be bool type",
        "a load header has an invalid value; check the extra Stream Load headers",
    ),
    (
        "compressed payloads are not supported",
        "this StarRocks does not take compressed bodies; turn gzip off",
    ),
    (
        // Retried, the same rows fail the same way (spec §3.7).
        "primary key size exceed the limit",
        "a primary key value of this table is longer than StarRocks's 128-byte limit (its \
         encoded size): shorten it in PostgreSQL, or key the table by shorter columns \
         (source.key_columns with REPLICA IDENTITY FULL); dbmazz stops rather than skip the change",
    ),
    (
        // The FE parses the columns header as SQL.
        "getting syntax error",
        "StarRocks could not parse the load's columns header; this is a dbmazz bug, please \
         report it",
    ),
    (
        "is not primary key table",
        "dbmazz writes Primary Key tables only; recreate the table with PRIMARY KEY",
    ),
    (
        "only primary key table",
        "dbmazz writes Primary Key tables only; recreate the table with PRIMARY KEY",
    ),
];

/// Classify the `Message` of a `Fail`.
pub fn classify_fail(message: &str) -> FailureClass {
    let lower = message.to_ascii_lowercase();
    if lower.contains("too many versions") {
        return FailureClass::TooManyVersions;
    }
    if lower.contains("has already been used") && lower.contains("label") {
        return FailureClass::LabelInUse;
    }
    // Malformed JSON is our encoder's fault, never the cluster's.
    if lower.contains("json") && (lower.contains("parse") || lower.contains("malformed")) {
        return FailureClass::Permanent {
            hint: "StarRocks could not read the JSON body; this is a dbmazz bug, please report it",
        };
    }
    for (fragment, hint) in PERMANENT {
        if lower.contains(fragment) {
            return FailureClass::Permanent { hint };
        }
    }
    FailureClass::Retryable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay(1), Duration::from_millis(200));
        assert_eq!(policy.delay(2), Duration::from_millis(400));
        assert_eq!(policy.delay(4), Duration::from_millis(1600));
        assert_eq!(policy.delay(30), Duration::from_secs(30));
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let policy = RetryPolicy::default();
        for _ in 0..200 {
            let d = policy.delay(3);
            assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(800));
        }
    }

    #[test]
    fn limits_by_attempts_and_elapsed() {
        let policy = RetryPolicy {
            max_attempts: Some(3),
            max_elapsed: Some(Duration::from_secs(5)),
            ..RetryPolicy::default()
        };
        assert!(policy.allows(2, Duration::from_secs(1)));
        assert!(!policy.allows(3, Duration::from_secs(1)));
        assert!(!policy.allows(1, Duration::from_secs(5)));
        let unbounded = RetryPolicy {
            max_attempts: None,
            max_elapsed: None,
            ..RetryPolicy::default()
        };
        assert!(unbounded.allows(u32::MAX - 1, Duration::from_secs(1 << 40)));
    }

    #[test]
    fn classifies_real_starrocks_messages() {
        // Texts from docs/starrocks-spec.md §1.6, §1.4, §10.1, §10.5.
        let too_many_versions = "Failed to load data into tablet 21635, because of too many \
            versions, current/limit: 1001/1000. You can reduce the loading job concurrency, or \
            increase loading data batch size. If you are loading data with Routine Load, you can \
            increase FE configs routine_load_task_consume_second and max_routine_load_batch_size,";
        assert_eq!(
            classify_fail(too_many_versions),
            FailureClass::TooManyVersions
        );
        assert_eq!(
            classify_fail("Too many versions. tablet_id: 1, version_count: 1001, limit: 1000"),
            FailureClass::TooManyVersions
        );
        assert_eq!(
            classify_fail("Label [dbmazz_t_1] has already been used."),
            FailureClass::LabelInUse
        );
        for retryable in [
            "Stream Load exceed http cuncurrent limit 100, please try again later",
            "Service is shutting down, please retry later!",
            "No backend alive.",
            "BE busy, try later",
            "timeout by txn manager",
            "[E1008]Reached timeout=300000ms @10.0.0.5:8060",
            "Memory of process exceed limit. Used: 20GB, Limit: 19GB. Mem usage has exceed the limit of BE",
        ] {
            assert_eq!(
                classify_fail(retryable),
                FailureClass::Retryable,
                "{retryable}"
            );
        }
        for permanent in [
            "too many filtered rows",
            "Access denied for root@127.0.0.1",
            "Access denied; you need (at least one of) the INSERT privilege(s) for this operation",
            "no valid Basic authorization",
            "unknown database, database=nope",
            "unknown table \"d.nope\"",
            "Mapping column is not in table. column: x",
            "Column has no default value. column: x",
            "Label format error. regex: ^[-\\w]{1,128}$, label: a.b",
            "There is no 100-continue header",
            "Invalid strict mode format. Must be bool type",
            "body size 10485760000 exceed limit: 10737418240, ...",
            "primary key size exceed the limit.",
            "Getting syntax error at line 1, column 12. Detail message: Unexpected input 'order', the most similar input is {a legal identifier}.",
            "The size of this batch exceed the max size [104857600]  of json type data  data [ 2 ]. Set ignore_json_size to skip the check, although it may lead huge memory consuming.",
        ] {
            assert!(
                matches!(classify_fail(permanent), FailureClass::Permanent { .. }),
                "{permanent}"
            );
        }
    }
}
