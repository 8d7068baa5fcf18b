//! `dbmazz check`: a preflight of both sides before anything streams.
//!
//! Each check produces one [`CheckLine`] (`ok`, `warn` or `fail`, what was checked, what was
//! found and, on warn/fail, the fix). Checking ([`run_checks`]) is separate from rendering
//! ([`render`]): the report is data, so tests assert on statuses and the CLI prints text.
//!
//! ```text
//! Config ─▶ postgres::check ─▶ lines + the tables' shapes (as pgoutput will describe them)
//!                                   │
//!                                   ▼
//!           starrocks::check ─▶ lines (FE HTTP, the BE it redirects to, MySQL auth/version,
//!                               database, each table)
//! ```
//!
//! The checks reuse what `dbmazz run` does (the source's connect errors and publication
//! lookup, the type map, the sink's required-columns check), so a clean report predicts a
//! clean start. A check never changes anything: no publication, slot, database or table is
//! created here.

mod be_probe;
mod postgres;
mod publication;
mod render;
mod row_filter;
mod slot;
mod starrocks;
mod tables;

pub use render::render;

use crate::config::{Config, SinkKind};
use crate::schema::TableSchema;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    Ok,
    /// dbmazz can run, but something deserves attention (or dbmazz will change something).
    Warn,
    /// dbmazz cannot run (or would lose data) until this is fixed.
    Fail,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub status: CheckStatus,
    /// What was checked, e.g. `wal_level` or `table public.orders`.
    pub subject: String,
    /// What was found.
    pub message: String,
    /// What to do about it (warn and fail lines).
    pub fix: Option<String>,
}

impl CheckLine {
    pub fn ok(subject: impl Into<String>, message: impl Into<String>) -> Self {
        CheckLine {
            status: CheckStatus::Ok,
            subject: subject.into(),
            message: message.into(),
            fix: None,
        }
    }

    pub fn warn(
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        CheckLine {
            status: CheckStatus::Warn,
            subject: subject.into(),
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        CheckLine {
            status: CheckStatus::Fail,
            subject: subject.into(),
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check's line, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub lines: Vec<CheckLine>,
}

impl CheckReport {
    pub fn push(&mut self, line: CheckLine) {
        self.lines.push(line);
    }

    /// The worst status of any line (`Ok` for an empty report).
    pub fn worst(&self) -> CheckStatus {
        self.lines
            .iter()
            .map(|line| line.status)
            .max()
            .unwrap_or(CheckStatus::Ok)
    }

    /// Whether any check failed (`dbmazz check` then exits with 1).
    pub fn has_failures(&self) -> bool {
        self.worst() == CheckStatus::Fail
    }

    pub fn count(&self, status: CheckStatus) -> usize {
        self.lines
            .iter()
            .filter(|line| line.status == status)
            .count()
    }

    /// The lines whose subject contains `text` (tests, scripts).
    pub fn about<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a CheckLine> + 'a {
        self.lines
            .iter()
            .filter(move |line| line.subject.contains(text))
    }
}

/// Runs every check of both sides for `config`. Never fails: a problem is a line.
pub async fn run_checks(config: &Config) -> CheckReport {
    let mut report = CheckReport::default();
    let tables: Vec<TableSchema> = postgres::check(config, &mut report).await;
    match config.sink.kind {
        SinkKind::Starrocks => starrocks::check(config, &tables, &mut report).await,
        other => report.push(CheckLine::ok(
            "StarRocks",
            format!(
                "skipped: sink.type = {}",
                match other {
                    SinkKind::Noop => "noop",
                    SinkKind::File => "file",
                    SinkKind::Starrocks => "starrocks",
                }
            ),
        )),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_line_decides() {
        let mut report = CheckReport::default();
        assert_eq!(report.worst(), CheckStatus::Ok);
        report.push(CheckLine::ok("a", "fine"));
        report.push(CheckLine::warn("b", "hmm", "look"));
        assert_eq!(report.worst(), CheckStatus::Warn);
        assert!(!report.has_failures());
        report.push(CheckLine::fail("c", "broken", "fix it"));
        assert!(report.has_failures());
        assert_eq!(report.count(CheckStatus::Ok), 1);
        assert_eq!(report.about("b").count(), 1);
    }
}
