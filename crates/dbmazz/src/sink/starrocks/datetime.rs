//! `date`, `timestamp` and `timestamptz` text (DateStyle=ISO) → StarRocks DATE / DATETIME.
//!
//! StarRocks ignores UTC offsets (spec §4.4), so a `timestamptz` is converted to its UTC wall
//! time here. The session runs with TimeZone=UTC, so values arrive as `…+00` and take the fast
//! path (a copy); any other offset (`+05:30`, LMT offsets like `+00:09:21`) is still converted.
//!
//! Both systems use the proleptic Gregorian calendar. PostgreSQL has no year 0 and writes BC
//! years with a ` BC` suffix; StarRocks's range is 0000-01-01..9999-12-31 in astronomical years,
//! so `0001-xx-xx BC` (= astronomical year 0) is stored as year `0000`, and earlier BC dates,
//! years past 9999 and `±infinity` are lossy.

use super::values::{EncodeResult, Encoded, LossyReason};

const MAX_YEAR: i64 = 9999;
const SECONDS_PER_DAY: i64 = 86_400;

/// A calendar date in astronomical years (1 BC = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CivilDate {
    year: i64,
    month: u32,
    day: u32,
}

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(date: CivilDate) -> i64 {
    let year = if date.month <= 2 {
        date.year - 1
    } else {
        date.year
    };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(date.month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> CivilDate {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    CivilDate { year, month, day }
}

/// Parses exactly `width` ASCII digits.
fn digits(text: &[u8], width: usize) -> Option<u32> {
    let field = text.get(..width)?;
    field.iter().try_fold(0u32, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    })
}

/// Splits a trailing ` BC`.
fn strip_era(text: &[u8]) -> (&[u8], bool) {
    match text.strip_suffix(b" BC") {
        Some(rest) => (rest, true),
        None => (text, false),
    }
}

/// `YYYY-MM-DD` (4 or more year digits) at the start of `text`; returns the rest.
fn parse_date(text: &[u8], before_christ: bool) -> Result<(CivilDate, &[u8]), LossyReason> {
    let year_len = text.iter().take_while(|byte| byte.is_ascii_digit()).count();
    if !(4..=9).contains(&year_len) {
        return Err(LossyReason::Invalid);
    }
    let year = i64::from(digits(text, year_len).ok_or(LossyReason::Invalid)?);
    let rest = &text[year_len..];
    if rest.first() != Some(&b'-') || rest.get(3) != Some(&b'-') {
        return Err(LossyReason::Invalid);
    }
    let month = digits(&rest[1..], 2).ok_or(LossyReason::Invalid)?;
    let day = digits(&rest[4..], 2).ok_or(LossyReason::Invalid)?;
    if year == 0 {
        return Err(LossyReason::Invalid);
    }
    let year = if before_christ { 1 - year } else { year };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(LossyReason::Invalid);
    }
    Ok((CivilDate { year, month, day }, &rest[6..]))
}

fn check_range(date: CivilDate) -> Result<(), LossyReason> {
    if (0..=MAX_YEAR).contains(&date.year) {
        Ok(())
    } else {
        Err(LossyReason::OutOfRange)
    }
}

fn push_two(out: &mut Vec<u8>, value: u32) {
    out.push(b'0' + (value / 10 % 10) as u8);
    out.push(b'0' + (value % 10) as u8);
}

/// `YYYY-MM-DD`; the year must already be in 0..=9999.
fn push_date(out: &mut Vec<u8>, date: CivilDate) {
    let year = date.year as u32;
    push_two(out, year / 100);
    push_two(out, year % 100);
    out.push(b'-');
    push_two(out, date.month);
    out.push(b'-');
    push_two(out, date.day);
}

pub(crate) fn encode_date(text: &[u8], out: &mut Vec<u8>) -> EncodeResult {
    if matches!(text, b"infinity" | b"-infinity") {
        return Err(LossyReason::Infinity);
    }
    let (text, before_christ) = strip_era(text);
    let (date, rest) = parse_date(text, before_christ)?;
    if !rest.is_empty() {
        return Err(LossyReason::Invalid);
    }
    check_range(date)?;
    out.push(b'"');
    push_date(out, date);
    out.push(b'"');
    Ok(Encoded::Exact)
}

/// `HH:MM:SS`, then the fraction digits (`.ffffff`, up to 6) and the rest.
fn parse_time(text: &[u8]) -> Result<(u32, &[u8], &[u8]), LossyReason> {
    let hour = digits(text, 2).ok_or(LossyReason::Invalid)?;
    let minute = digits(text.get(3..).unwrap_or_default(), 2).ok_or(LossyReason::Invalid)?;
    let second = digits(text.get(6..).unwrap_or_default(), 2).ok_or(LossyReason::Invalid)?;
    if text[2] != b':' || text[5] != b':' || hour > 23 || minute > 59 || second > 59 {
        return Err(LossyReason::Invalid);
    }
    let rest = &text[8..];
    let (fraction, rest) = match rest.strip_prefix(b".") {
        Some(after_point) => {
            let len = after_point
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if !(1..=6).contains(&len) {
                return Err(LossyReason::Invalid);
            }
            after_point.split_at(len)
        }
        None => (&[][..], rest),
    };
    Ok((hour * 3600 + minute * 60 + second, fraction, rest))
}

/// `+HH`, `-HH:MM`, `+HH:MM:SS` → seconds east of UTC.
fn parse_offset(text: &[u8]) -> Result<i64, LossyReason> {
    let sign = match text.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(LossyReason::Invalid),
    };
    let mut seconds = 0i64;
    let mut rest = &text[1..];
    for (index, unit) in [3600, 60, 1].into_iter().enumerate() {
        if index > 0 {
            match rest.strip_prefix(b":") {
                Some(after) => rest = after,
                None => break,
            }
        }
        let value = digits(rest, 2).ok_or(LossyReason::Invalid)?;
        seconds += i64::from(value) * unit;
        rest = &rest[2..];
    }
    if !rest.is_empty() {
        return Err(LossyReason::Invalid);
    }
    Ok(sign * seconds)
}

/// `timestamp` / `timestamptz` → `"YYYY-MM-DD HH:MM:SS[.ffffff]"` in UTC.
pub(crate) fn encode_timestamp(text: &[u8], with_offset: bool, out: &mut Vec<u8>) -> EncodeResult {
    if matches!(text, b"infinity" | b"-infinity") {
        return Err(LossyReason::Infinity);
    }
    let (text, before_christ) = strip_era(text);
    let (date, rest) = parse_date(text, before_christ)?;
    let rest = rest.strip_prefix(b" ").ok_or(LossyReason::Invalid)?;
    let (mut second_of_day, fraction, rest) = parse_time(rest)?;
    let offset = match (rest.is_empty(), with_offset) {
        (true, _) => 0,
        (false, true) => parse_offset(rest)?,
        (false, false) => return Err(LossyReason::Invalid),
    };
    let mut date = date;
    if offset != 0 {
        let local = days_from_civil(date) * SECONDS_PER_DAY + i64::from(second_of_day);
        let utc = local - offset;
        date = civil_from_days(utc.div_euclid(SECONDS_PER_DAY));
        second_of_day = utc.rem_euclid(SECONDS_PER_DAY) as u32;
    }
    check_range(date)?;
    out.push(b'"');
    push_date(out, date);
    out.push(b' ');
    push_two(out, second_of_day / 3600);
    out.push(b':');
    push_two(out, second_of_day / 60 % 60);
    out.push(b':');
    push_two(out, second_of_day % 60);
    if !fraction.is_empty() {
        out.push(b'.');
        out.extend_from_slice(fraction);
    }
    out.push(b'"');
    Ok(Encoded::Exact)
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` for microseconds since the Unix epoch (UTC); for
/// `dbmazz_synced_at`.
pub fn format_utc_micros(unix_micros: i64) -> String {
    let seconds = unix_micros.div_euclid(1_000_000);
    let micros = unix_micros.rem_euclid(1_000_000);
    let date = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{micros:06}",
        date.year,
        date.month,
        date.day,
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The current time as `dbmazz_synced_at` text (once per load).
pub fn synced_at_now() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros());
    format_utc_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_day_conversions_round_trip() {
        for days in (-800_000..3_000_000).step_by(997) {
            assert_eq!(days_from_civil(civil_from_days(days)), days);
        }
        let epoch = CivilDate {
            year: 1970,
            month: 1,
            day: 1,
        };
        assert_eq!(days_from_civil(epoch), 0);
        assert_eq!(
            civil_from_days(-1),
            CivilDate {
                year: 1969,
                month: 12,
                day: 31
            }
        );
    }

    #[test]
    fn offsets_parse_in_every_form() {
        assert_eq!(parse_offset(b"+00"), Ok(0));
        assert_eq!(parse_offset(b"+05:30"), Ok(19_800));
        assert_eq!(parse_offset(b"-03"), Ok(-10_800));
        assert_eq!(parse_offset(b"+00:09:21"), Ok(561));
        assert!(parse_offset(b"05").is_err());
        assert!(parse_offset(b"+5").is_err());
        assert!(parse_offset(b"+05:3").is_err());
    }

    #[test]
    fn synced_at_is_formatted_in_utc() {
        assert_eq!(format_utc_micros(0), "1970-01-01 00:00:00.000000");
        assert!(synced_at_now().starts_with("20"));
        assert_eq!(
            format_utc_micros(1_710_055_800_123_456),
            "2024-03-10 07:30:00.123456"
        );
    }
}
