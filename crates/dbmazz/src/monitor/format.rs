//! Short, fixed-width-friendly renderings of numbers shared by the screen, the text mode
//! and `dbmazz status`.

use super::model::CountCell;

/// `1234567` → `1,234,567`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Binary units with one decimal: `968 B`, `1.2 KiB`, `32.0 MiB`.
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if value < 1024 {
        return format!("{value} B");
    }
    let mut scaled = value as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}

/// Seconds as `0.3s`, `42s`, `5m02s`, `3h07m`, `2d04h`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    if seconds < 10.0 {
        return format!("{seconds:.1}s");
    }
    let whole = seconds.round() as u64;
    match whole {
        0..=59 => format!("{whole}s"),
        60..=3599 => format!("{}m{:02}s", whole / 60, whole % 60),
        3600..=86_399 => format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60),
        _ => format!("{}d{:02}h", whole / 86_400, (whole % 86_400) / 3600),
    }
}

/// A rate with a unit suffix: `0`, `12.5`, `350`, `12.3k`, `4.1M`.
pub fn rate(per_second: f64) -> String {
    if !per_second.is_finite() || per_second <= 0.0 {
        return "0".into();
    }
    if per_second < 100.0 {
        let text = format!("{per_second:.1}");
        return text.strip_suffix(".0").map(str::to_string).unwrap_or(text);
    }
    if per_second < 10_000.0 {
        return format!("{per_second:.0}");
    }
    if per_second < 10_000_000.0 {
        return format!("{:.1}k", per_second / 1000.0);
    }
    format!("{:.1}M", per_second / 1_000_000.0)
}

/// A table's row count in at most 9 characters: `1,234`, `9,999,999`, `12.35M`, `~2.00M`
/// (estimate), `-` (not configured), `?` (source down), `err`.
pub fn count_cell(cell: &CountCell) -> String {
    match cell {
        CountCell::NotConfigured => "-".into(),
        CountCell::Unavailable => "?".into(),
        CountCell::Error(_) => "err".into(),
        CountCell::Count(value) => {
            let prefix = if value.estimated { "~" } else { "" };
            let exact = count(value.rows);
            if prefix.len() + exact.len() <= 9 {
                return format!("{prefix}{exact}");
            }
            let rows = value.rows as f64;
            if rows < 1e9 {
                format!("{prefix}{:.2}M", rows / 1e6)
            } else {
                format!("{prefix}{:.2}G", rows / 1e9)
            }
        }
    }
}

/// `StarRocks / PostgreSQL` as a percentage: `99.9%`, `100%`, `>100%`, `-`.
pub fn percent(progress: Option<f64>) -> String {
    match progress {
        None => "-".into(),
        Some(ratio) if ratio > 1.0 => ">100%".into(),
        Some(ratio) if ratio >= 1.0 => "100%".into(),
        // Never round an incomplete copy up to 100%.
        Some(ratio) => format!("{:.1}%", (ratio * 1000.0).floor() / 10.0),
    }
}

/// An ASCII bar of `width` cells: `#####.....`.
pub fn bar(progress: Option<f64>, width: usize) -> String {
    let filled = match progress {
        Some(ratio) if ratio.is_finite() => (ratio.clamp(0.0, 1.0) * width as f64).floor(),
        Some(_) => width as f64,
        None => 0.0,
    } as usize;
    format!("{}{}", "#".repeat(filled), ".".repeat(width - filled))
}

/// Cuts `text` to `width` characters, ending with `~` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('~');
    cut
}

/// The first of `variants` (longest first) that fits `width`, else the last one cut to it.
pub fn first_fitting(variants: &[String], width: usize) -> String {
    variants
        .iter()
        .find(|text| text.chars().count() <= width)
        .cloned()
        .unwrap_or_else(|| fit(variants.last().map_or("", String::as_str), width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(bytes(968), "968 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(33_554_432), "32.0 MiB");
        assert_eq!(duration(0.25), "0.2s");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(302.0), "5m02s");
        assert_eq!(duration(3.0 * 3600.0 + 420.0), "3h07m");
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(2.0), "2");
        assert_eq!(rate(12.5), "12.5");
        assert_eq!(rate(350.4), "350");
        assert_eq!(rate(12_345.0), "12.3k");
        assert_eq!(percent(Some(0.9996)), "99.9%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(Some(1.2)), ">100%");
        assert_eq!(bar(Some(0.5), 10), "#####.....");
        assert_eq!(bar(Some(f64::INFINITY), 4), "####");
        assert_eq!(bar(None, 3), "...");
        assert_eq!(fit("public.order_items", 10), "public.or~");
        let variants = ["long text".to_string(), "short".to_string()];
        assert_eq!(first_fitting(&variants, 9), "long text");
        assert_eq!(first_fitting(&variants, 8), "short");
        assert_eq!(first_fitting(&variants, 4), "sho~");
        let cell = |rows, estimated| {
            count_cell(&CountCell::Count(crate::monitor::TableCount {
                rows,
                estimated,
                soft_deleted: None,
            }))
        };
        assert_eq!(cell(9_999_999, false), "9,999,999");
        assert_eq!(cell(12_345_678, false), "12.35M");
        assert_eq!(cell(999_999, true), "~999,999");
        assert_eq!(cell(2_000_000, true), "~2.00M");
        assert_eq!(cell(3_100_000_000, true), "~3.10G");
        assert_eq!(count_cell(&CountCell::Unavailable), "?");
    }
}
