//! FLOAT/DOUBLE as StarRocks writes them in a result set: shortest round-trip digits (Ryu) in
//! the layout of StarRocks's patched Ryu (`thirdparty/patches/ryu.patch`, used by
//! `be/src/util/mysql_row_buffer.cpp` through `f2s_buffered_n` / `d2s_buffered_n`):
//! plain decimals when the decimal exponent is in −4..=7 (FLOAT) or −4..=15 (DOUBLE), else
//! `d[.ddd]e±XX` with at least two exponent digits; `0`/`-0`, `nan`, `inf`/`-inf`.

/// Shortest digits and decimal exponent of a finite non-zero value's Ryu text (`1.5e300`,
/// `0.001`, `12.0`): (`"15"`, 300), (`"1"`, -3), (`"12"`, 1).
fn digits_and_exponent(ryu_text: &str) -> (String, i32) {
    let text = ryu_text.trim_start_matches('-');
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int_part}{frac_part}");
    let mut point = int_part.len() as i32;
    let leading = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..leading);
    point -= leading as i32;
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed);
    (digits, point - 1 + exponent)
}

fn layout(negative: bool, digits: &str, exp: i32, max_plain_exp: i32) -> String {
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    let olength = digits.len() as i32;
    if (-4..=max_plain_exp).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(digits);
        } else if exp + 1 >= olength {
            out.push_str(digits);
            for _ in 0..(exp + 1 - olength) {
                out.push('0');
            }
        } else {
            let split = (exp + 1) as usize;
            out.push_str(&digits[..split]);
            out.push('.');
            out.push_str(&digits[split..]);
        }
        return out;
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.unsigned_abs()));
    out
}

fn special(negative: bool, is_nan: bool, is_infinite: bool) -> Option<String> {
    if is_nan {
        return Some("nan".into());
    }
    let sign = if negative { "-" } else { "" };
    if is_infinite {
        return Some(format!("{sign}inf"));
    }
    None
}

/// A DOUBLE as StarRocks prints it.
pub fn format_f64(f: f64) -> String {
    if let Some(s) = special(f.is_sign_negative(), f.is_nan(), f.is_infinite()) {
        return s;
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let mut buffer = ryu::Buffer::new();
    let (digits, exp) = digits_and_exponent(buffer.format_finite(f));
    layout(f < 0.0, &digits, exp, 15)
}

/// A FLOAT as StarRocks prints it (shortest digits of the f32 itself).
pub fn format_f32(f: f32) -> String {
    if let Some(s) = special(f.is_sign_negative(), f.is_nan(), f.is_infinite()) {
        return s;
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let mut buffer = ryu::Buffer::new();
    let (digits, exp) = digits_and_exponent(buffer.format_finite(f));
    layout(f < 0.0, &digits, exp, 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles() {
        for (f, text) in [
            (0.1, "0.1"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (100.0, "100"),
            (1e15, "1000000000000000"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (1e-4, "0.0001"),
            (1.5e-5, "1.5e-05"),
            (1e-5, "1e-05"),
            (1e10, "10000000000"),
            (123456.789, "123456.789"),
            (-0.0, "-0"),
            (0.0, "0"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(format_f64(f), text, "{f:e}");
        }
    }

    #[test]
    fn floats() {
        for (f, text) in [
            (0.1f32, "0.1"),
            (1e7, "10000000"),
            (1e8, "1e+08"),
            (1e10, "1e+10"),
            (123456790.0, "1.2345679e+08"),
            (1e-5, "1e-05"),
            (3.4028235e38, "3.4028235e+38"),
            (-0.0, "-0"),
            (f32::NAN, "nan"),
        ] {
            assert_eq!(format_f32(f), text, "{f:e}");
        }
    }
}
