//! Human-readable durations (`"10s"`, `"250ms"`, `"1m"`) and byte sizes (`"64KiB"`, `"1MiB"`,
//! plain integers), parsed for validation and formatted back for the effective-config view.

use std::fmt;
use std::time::Duration;

/// Why a duration or size string was rejected. The caller adds the key it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    /// Nothing but whitespace.
    Empty,
    /// No leading digits.
    NoNumber,
    /// A duration without a unit (`"10"`): seconds or milliseconds would be a guess.
    MissingUnit,
    /// A unit this parser does not know.
    UnknownUnit(String),
    /// The value does not fit.
    Overflow,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty value"),
            Self::NoNumber => f.write_str("must start with a number"),
            Self::MissingUnit => f.write_str("missing unit (use ms, s, m or h, e.g. \"10s\")"),
            Self::UnknownUnit(u) => write!(f, "unknown unit '{u}'"),
            Self::Overflow => f.write_str("value too large"),
        }
    }
}

impl std::error::Error for UnitError {}

/// Split `"64KiB"` into `(64, "KiB")`, trimming spaces around and between.
fn split_number(s: &str) -> Result<(u64, &str), UnitError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(UnitError::NoNumber);
    }
    let n = s[..digits]
        .parse::<u64>()
        .map_err(|_| UnitError::Overflow)?;
    Ok((n, s[digits..].trim_start()))
}

/// Parse a duration: an integer followed by `ms`, `s`, `m` or `h` (`"250ms"`, `"10s"`, `"1m"`).
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let (n, unit) = split_number(s)?;
    let millis_per_unit: u64 = match unit {
        "" => return Err(UnitError::MissingUnit),
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        other => return Err(UnitError::UnknownUnit(other.to_owned())),
    };
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or(UnitError::Overflow)
}

/// Format a duration in whole seconds when exact (`"60s"`, `"90s"`), else milliseconds
/// (`"250ms"`). Sub-millisecond parts are dropped; the parser never produces them.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

/// Parse a byte size: a plain integer (bytes) or an integer followed by `B`, `KiB`, `MiB`,
/// `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000). Units are case-insensitive.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let (n, unit) = split_number(s)?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(UnitError::UnknownUnit(unit.to_owned())),
    };
    n.checked_mul(multiplier).ok_or(UnitError::Overflow)
}

/// Format a byte size in the largest binary unit that represents it exactly (`"64KiB"`).
pub fn format_size(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n != 0 && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 5 s "), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_reject_garbage() {
        assert_eq!(parse_duration(""), Err(UnitError::Empty));
        assert_eq!(parse_duration("10"), Err(UnitError::MissingUnit));
        assert_eq!(parse_duration("s"), Err(UnitError::NoNumber));
        assert_eq!(parse_duration("-1s"), Err(UnitError::NoNumber));
        assert_eq!(
            parse_duration("10days"),
            Err(UnitError::UnknownUnit("days".into()))
        );
        assert_eq!(
            parse_duration("1.5s"),
            Err(UnitError::UnknownUnit(".5s".into()))
        );
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(UnitError::Overflow)
        );
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err(UnitError::Overflow)
        );
    }

    #[test]
    fn durations_round_trip_through_format() {
        for s in ["250ms", "10s", "90s", "0s", "1500ms"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
        assert_eq!(format_duration(parse_duration("1m").unwrap()), "60s");
        assert_eq!(format_duration(parse_duration("1h").unwrap()), "3600s");
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1mib"), Ok(1 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("3 MB"), Ok(3_000_000));
        assert_eq!(parse_size("512B"), Ok(512));
    }

    #[test]
    fn sizes_reject_garbage() {
        assert_eq!(parse_size("lots"), Err(UnitError::NoNumber));
        assert_eq!(
            parse_size("1TiB"),
            Err(UnitError::UnknownUnit("TiB".into()))
        );
        assert_eq!(parse_size("99999999999GiB"), Err(UnitError::Overflow));
    }

    #[test]
    fn sizes_round_trip_through_format() {
        for s in ["64KiB", "1MiB", "3GiB", "1000", "0"] {
            assert_eq!(format_size(parse_size(s).unwrap()), s);
        }
    }
}
