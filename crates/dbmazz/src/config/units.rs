//! Human-friendly config values: byte sizes (`"64MiB"`) and durations (`"1s"`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A size in bytes, written `65536`, `"64KiB"`, `"64MiB"`, `"1GiB"` (also `KB`/`MB`/`GB` = 1000ⁿ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * 1024 * 1024)
    }

    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().map_err(|_| {
            format!("{text:?} is not a size: write e.g. 65536, \"64KiB\" or \"64MiB\"")
        })?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {text:?}: use B, KiB, MiB or GiB (or KB, MB, GB: powers of 1000)"
                ))
            }
        };
        let bytes = number * multiplier as f64;
        // 2^53: every size below is exact in an f64, and far beyond any memory (8 PiB).
        if !bytes.is_finite() || bytes >= (1u64 << 53) as f64 {
            return Err(format!("{text:?} is too large: sizes go up to a few TiB"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        if value >= 1 << 30 && value % (1 << 30) == 0 {
            write!(f, "{}GiB", value >> 30)
        } else if value >= 1 << 20 && value % (1 << 20) == 0 {
            write!(f, "{}MiB", value >> 20)
        } else if value >= 1 << 10 && value % (1 << 10) == 0 {
            write!(f, "{}KiB", value >> 10)
        } else {
            write!(f, "{value}B")
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 65536 or \"64MiB\"")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<ByteSize, E> {
                u64::try_from(value)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<ByteSize, E> {
                ByteSize::parse(value).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A duration written `"1s"`, `"250ms"`, `"2m"` (humantime syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"1s\" or \"250ms\"")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(value.trim())
                    .map(HumanDuration)
                    .map_err(|error| {
                        E::custom(format!(
                            "{value:?} is not a duration ({error}): write e.g. \"1s\" or \"250ms\""
                        ))
                    })
            }
            fn visit_u64<E: de::Error>(self, _value: u64) -> Result<HumanDuration, E> {
                Err(E::custom(
                    "a duration needs a unit: write e.g. \"1s\" or \"250ms\"",
                ))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<HumanDuration, E> {
                self.visit_u64(value.unsigned_abs())
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(ByteSize::parse("64MiB"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("64 mib"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("1.5KiB"), Ok(ByteSize(1536)));
        assert_eq!(ByteSize::parse("10MB"), Ok(ByteSize(10_000_000)));
        assert_eq!(ByteSize::parse("123"), Ok(ByteSize(123)));
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("MiB").is_err());
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
    }
}
