//! Command-line units: byte sizes ("64KiB", "8MB"), durations ("20ms", "1.5s") and rates
//! ("80MB/s"). Binary suffixes (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (KB, MB,
//! GB, TB) powers of 1000, as `rangecache`'s own config reads them.

use std::time::Duration;

/// Parse a byte size: a plain integer (bytes) or a number with a unit, e.g. "64KiB", "1.5MiB",
/// "8MB", "512B". Fractions are allowed with a unit and rounded down to whole bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" | "ki" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" | "mi" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" | "gi" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" | "ti" => 1 << 40,
        other => {
            return Err(format!(
                "{s:?}: unknown size unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    if num.is_empty() {
        return Err(format!("{s:?}: expected a number, e.g. 64KiB"));
    }
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(mult)
            .ok_or_else(|| format!("{s:?}: too large"));
    }
    let f: f64 = num.parse().map_err(|_| format!("{s:?}: not a number"))?;
    let v = f * mult as f64;
    if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(v as u64)
}

/// Parse a duration: a number with a unit "ns", "us", "ms", "s", "m" or "h" ("20ms", "1.5s",
/// "2m"); a bare "0" is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{s:?}: duration needs a unit, e.g. 20ms or 10s"))?;
    let (num, unit) = t.split_at(split);
    let f: f64 = num.parse().map_err(|_| format!("{s:?}: not a number"))?;
    let secs = match unit.trim() {
        "ns" => f / 1e9,
        "us" | "µs" => f / 1e6,
        "ms" => f / 1e3,
        "s" => f,
        "m" | "min" => f * 60.0,
        "h" => f * 3600.0,
        other => return Err(format!("{s:?}: unknown duration unit {other:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Parse a rate in bytes per second: a size with an optional "/s" ("80MB/s", "1GiB/s",
/// "100MB"); "0" or "unlimited" mean no limit (returned as 0).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    parse_size(t.strip_suffix("/s").unwrap_or(t))
}

/// Parse a probability in [0, 1]: "0.01" or "1%".
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?}: not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{s:?}: must be between 0 and 1 (or 0% and 100%)"));
    }
    Ok(v)
}

/// Format a size as a label without spaces, exact: "4KiB", "1MiB", "1500B".
pub fn size_label(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n != 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

/// Format a byte count for people: "64.0 KiB", "1.50 GiB".
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// ISO 8601 in UTC with milliseconds, as S3 lists `LastModified`.
pub fn iso8601(t: std::time::SystemTime) -> String {
    let d = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let s = iso8601_secs(d.as_secs());
    format!("{}.{:03}Z", s.trim_end_matches('Z'), d.subsec_millis())
}

/// ISO 8601 in UTC to the second ("2023-11-14T22:13:20Z") of seconds since the Unix epoch
/// (years up to 9999).
pub fn iso8601_secs(secs: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    rangecache_dataplane::auth::AmzDate::from_system_time(time)
        .map_or_else(|| "9999-12-31T23:59:59Z".to_owned(), |d| d.rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("8MB"), Ok(8_000_000));
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("0.5MiB"), Ok(1 << 19));
        assert_eq!(parse_size(" 2 GiB "), Ok(2 << 30));
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("KiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("20").is_err());
        assert!(parse_duration("20 parsecs").is_err());
    }

    #[test]
    fn rates_and_fractions() {
        assert_eq!(parse_rate("80MB/s"), Ok(80_000_000));
        assert_eq!(parse_rate("1GiB/s"), Ok(1 << 30));
        assert_eq!(parse_rate("unlimited"), Ok(0));
        assert_eq!(parse_fraction("1%"), Ok(0.01));
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert!(parse_fraction("2").is_err());
    }

    #[test]
    fn iso_dates() {
        let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(iso8601(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_secs(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn formats_bytes() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(65536), "64.0 KiB");
        assert_eq!(fmt_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn size_labels_are_exact() {
        assert_eq!(size_label(4096), "4KiB");
        assert_eq!(size_label(1 << 20), "1MiB");
        assert_eq!(size_label(3 << 30), "3GiB");
        assert_eq!(size_label(1500), "1500B");
        assert_eq!(size_label(0), "0B");
    }
}
