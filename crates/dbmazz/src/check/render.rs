//! The text form of a [`CheckReport`]: one line per check, `ok|warn|fail  <subject>: <message>`,
//! the fix indented under warn and fail lines, then a summary line.

use std::fmt::Write;

use super::{CheckReport, CheckStatus};

/// Renders `report` as plain text (no colours: it goes to logs and CI output as often as to a
/// terminal).
pub fn render(report: &CheckReport) -> String {
    let mut out = String::new();
    for line in &report.lines {
        // `fail` is the longest status word; pad so subjects line up.
        let _ = writeln!(
            out,
            "{:<4}  {}: {}",
            line.status.as_str(),
            line.subject,
            line.message
        );
        if let Some(fix) = &line.fix {
            let _ = writeln!(out, "      fix: {fix}");
        }
    }
    let _ = writeln!(
        out,
        "{} ok, {} warn, {} fail",
        report.count(CheckStatus::Ok),
        report.count(CheckStatus::Warn),
        report.count(CheckStatus::Fail)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckLine;

    #[test]
    fn each_check_is_one_line_with_its_fix_below() {
        let mut report = CheckReport::default();
        report.push(CheckLine::ok("PostgreSQL", "15.8"));
        report.push(CheckLine::fail(
            "wal_level",
            "replica",
            "ALTER SYSTEM SET wal_level = logical",
        ));
        assert_eq!(
            render(&report),
            "ok    PostgreSQL: 15.8\n\
             fail  wal_level: replica\n      fix: ALTER SYSTEM SET wal_level = logical\n\
             1 ok, 0 warn, 1 fail\n"
        );
    }
}
