//! Durations and sizes as people write them: `250ms`, `1.5s`, `2m`, `10KB`, `1MiB`. Shared by
//! conditions, cron (`@every 30s`), config and the CLI so every place reads them the same way.
//!
//! Both parsers have a documented maximum ([`MAX_DURATION`], 3650 days; [`MAX_SIZE`], 1 TiB)
//! and return an error, never panic, for anything larger or malformed.

mod metric;
pub use metric::{Metric, Unit, format_count, format_value};

use std::time::Duration;

/// The longest duration watchpost accepts anywhere (periods, timeouts, retention, windows):
/// 3650 days, about 10 years. Longer ones are errors, so every instant computed from a
/// duration stays far inside the range that dates and timers can represent.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// `MAX_DURATION` as people write it, for messages.
pub const MAX_DURATION_TEXT: &str = "3650d (10 years)";

/// The largest size watchpost accepts (`max_body` and the like): 1 TiB.
pub const MAX_SIZE: u64 = 1 << 40;

/// `MAX_SIZE` as people write it, for messages.
pub const MAX_SIZE_TEXT: &str = "1TiB";

/// Parse a duration: a number followed by `us`, `ms`, `s`, `m`, `h` or `d` (`1.5s`, `250ms`).
/// Anything longer than [`MAX_DURATION`] is an error. Never panics, whatever the text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (num, unit) = split_number(text)
        .ok_or_else(|| format!("{text:?} is not a duration (write it like 250ms, 1.5s, 2m)"))?;
    let factor = duration_unit_ms(unit).ok_or_else(|| {
        if unit.is_empty() {
            format!("{text:?} needs a unit (ms, s, m, h): e.g. {text}ms")
        } else {
            format!("{text:?}: unknown duration unit {unit:?} (use us, ms, s, m, h, d)")
        }
    })?;
    let ms = num * factor;
    if ms.is_nan() || ms < 0.0 {
        return Err(format!("{text:?} is not a valid duration"));
    }
    if ms > MAX_DURATION.as_millis() as f64 {
        return Err(format!(
            "{text:?} is longer than the maximum, {MAX_DURATION_TEXT}"
        ));
    }
    Duration::try_from_secs_f64(ms / 1000.0)
        .map_err(|_| format!("{text:?} is not a valid duration"))
}

/// Milliseconds per unit.
pub fn duration_unit_ms(unit: &str) -> Option<f64> {
    Some(match unit {
        "us" | "µs" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    })
}

/// Bytes per unit: SI (`KB` = 1000) and IEC (`KiB` = 1024); case-insensitive.
pub fn bytes_unit(unit: &str) -> Option<f64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tb" => 1e12,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    })
}

/// Split `12.5ms` into (12.5, "ms").
pub fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))))
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let num: f64 = text[..end].parse().ok()?;
    Some((num, text[end..].trim()))
}

/// `0ms`, `0.081ms`, `12.4ms`, `1430ms`, `12.50s`; from a minute up as a duration is
/// written in the config: `2m5s`, `1h30m`, `3d4h` (a Kafka time lag, a long timeout).
pub fn format_ms(ms: f64) -> String {
    if ms >= 60_000.0 {
        let secs = (ms / 1000.0).round() as u64;
        let (big, small, units) = if secs >= 86_400 {
            (secs / 86_400, secs % 86_400 / 3600, ("d", "h"))
        } else if secs >= 3600 {
            (secs / 3600, secs % 3600 / 60, ("h", "m"))
        } else {
            (secs / 60, secs % 60, ("m", "s"))
        };
        if small == 0 {
            format!("{big}{}", units.0)
        } else {
            format!("{big}{}{small}{}", units.0, units.1)
        }
    } else if ms >= 10_000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 1.0 {
        format!("{ms:.1}ms")
    } else if ms == 0.0 {
        "0ms".to_string()
    } else {
        format!("{ms:.3}ms")
    }
}

/// `512B`, `10.0KB`, `1.5MB` (SI, like the units accepted).
pub fn format_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1}GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1}MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1}KB", b / 1e3)
    } else {
        format!("{b:.0}B")
    }
}

/// Parse a size: `10MiB`, `512KB`, `1000` (bytes). Anything larger than [`MAX_SIZE`] is an
/// error. Never panics, whatever the text.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (num, unit) = split_number(text)
        .ok_or_else(|| format!("{text:?} is not a size (write it like 512KB, 10MiB)"))?;
    let factor = bytes_unit(unit).ok_or_else(|| {
        format!("{text:?}: unknown size unit {unit:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    })?;
    let bytes = num * factor;
    if bytes.is_nan() || bytes < 0.0 {
        return Err(format!("{text:?} is not a valid size"));
    }
    if bytes > MAX_SIZE as f64 {
        return Err(format!(
            "{text:?} is larger than the maximum, {MAX_SIZE_TEXT}"
        ));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert!(
            parse_duration("10 parsecs")
                .unwrap_err()
                .contains("unknown duration unit")
        );
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_duration("3650d").unwrap(), MAX_DURATION);
        assert_eq!(
            parse_duration("99999999999999999999999d").unwrap_err(),
            "\"99999999999999999999999d\" is longer than the maximum, 3650d (10 years)"
        );
        assert!(parse_duration("3650.01d").unwrap_err().contains("maximum"));
        let huge = format!("1{}s", "0".repeat(400));
        assert!(parse_duration(&huge).unwrap_err().contains("maximum"));
        assert!(parse_duration("1e400s").is_err());
        assert_eq!(parse_duration("-0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn sizes_have_a_maximum() {
        assert_eq!(parse_size("1TiB").unwrap(), MAX_SIZE);
        assert_eq!(parse_size("1TB").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_size("1024GiB").unwrap(), MAX_SIZE);
        assert!(
            parse_size("1025GiB")
                .unwrap_err()
                .contains("larger than the maximum, 1TiB")
        );
        assert!(
            parse_size("99999999999999999999999999GB")
                .unwrap_err()
                .contains("maximum")
        );
        assert!(parse_size("-1KB").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_ms(1430.2), "1430ms");
        assert_eq!(format_ms(12.44), "12.4ms");
        assert_eq!(format_ms(0.0812), "0.081ms");
        assert_eq!(format_ms(0.0), "0ms");
        assert_eq!(format_ms(12_345.0), "12.35s");
        assert_eq!(format_ms(60_000.0), "1m");
        assert_eq!(format_ms(125_400.0), "2m5s");
        assert_eq!(format_ms(5_400_000.0), "1h30m");
        assert_eq!(
            format_ms(3.0 * 86_400_000.0 + 4.0 * 3_600_000.0 + 59_000.0),
            "3d4h"
        );
        assert_eq!(format_bytes(10240.0), "10.2KB");
        assert_eq!(bytes_unit("KiB"), Some(1024.0));
        assert_eq!(bytes_unit("kb"), Some(1000.0));
        assert_eq!(parse_size("10MiB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_size("512KB").unwrap(), 512_000);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
    }
}
