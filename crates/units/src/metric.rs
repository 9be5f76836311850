//! A measured value with its unit: what a check observed (`connect` 12.4ms, `status` 200,
//! `cert_days` 41.5), carried from the probe through the alert document to every renderer.
//! A leaf type, so probes, conditions and channels share it without depending on each other.

use crate::{format_bytes, format_ms};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// What a metric's number means, which decides how it is shown and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds (timings): `12.4ms`, `1.43s`.
    Ms,
    /// Bytes: `10.0KB`.
    Bytes,
    /// Bytes per second: `1.2MB/s`.
    BytesPerSec,
    /// A plain count or code: `200`, `3`.
    Count,
    /// Days (certificate lifetime): `41.5d`.
    Days,
}

/// One named measurement of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// `dns`, `connect`, `tls`, `wait`, `download`, `total`, `status`, `cert_days`, `query`...
    /// A probe's names are static (no allocation per measurement: `once` keeps a row per
    /// monitor); a name read back from a stored document is owned.
    pub name: Cow<'static, str>,
    pub value: f64,
    pub unit: Unit,
}

impl Metric {
    pub fn new(name: impl Into<Cow<'static, str>>, value: f64, unit: Unit) -> Metric {
        Metric {
            name: name.into(),
            value,
            unit,
        }
    }

    /// The value as people read it: `12.4ms`, `10.0KB`, `1.2MB/s`, `200`, `41.5d`.
    pub fn display(&self) -> String {
        format_value(self.value, self.unit)
    }

    /// The name with its unit, as stored and in JSON beside other units: `total_ms`,
    /// `size_bytes`, `speed_bytes_per_sec`, `cert_days`, and a count as its bare name
    /// (`status`, `group_lag`).
    pub fn key(&self) -> String {
        let suffix = match self.unit {
            Unit::Ms => "_ms",
            Unit::Bytes => "_bytes",
            Unit::BytesPerSec => "_bytes_per_sec",
            Unit::Days => "_days",
            Unit::Count => "",
        };
        let mut key = String::with_capacity(self.name.len() + suffix.len());
        key.push_str(&self.name);
        if !self.name.ends_with(suffix) {
            key.push_str(suffix);
        }
        key
    }
}

/// `value` in `unit`, as people read it.
pub fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms => format_ms(value),
        Unit::Bytes => format_bytes(value),
        Unit::BytesPerSec => format!("{}/s", format_bytes(value)),
        Unit::Count => format_count(value),
        Unit::Days => format!("{value:.1}d"),
    }
}

/// `200`, `3`, `0.5`: whole numbers without a fraction.
pub fn format_count(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_read_as_people_write_them() {
        assert_eq!(Metric::new("connect", 12.44, Unit::Ms).display(), "12.4ms");
        assert_eq!(Metric::new("status", 200.0, Unit::Count).display(), "200");
        assert_eq!(
            Metric::new("size", 10_240.0, Unit::Bytes).display(),
            "10.2KB"
        );
        assert_eq!(
            Metric::new("speed", 1_500_000.0, Unit::BytesPerSec).display(),
            "1.5MB/s"
        );
        assert_eq!(
            Metric::new("cert_days", 41.46, Unit::Days).display(),
            "41.5d"
        );
        assert_eq!(Metric::new("total", 1.0, Unit::Ms).key(), "total_ms");
        assert_eq!(Metric::new("cert_days", 1.0, Unit::Days).key(), "cert_days");
        assert_eq!(
            Metric::new("speed", 1.0, Unit::BytesPerSec).key(),
            "speed_bytes_per_sec"
        );
        assert_eq!(Metric::new("status", 1.0, Unit::Count).key(), "status");
        let json = serde_json::to_string(&Metric::new("tls", 3.5, Unit::Ms)).unwrap();
        assert_eq!(json, r#"{"name":"tls","value":3.5,"unit":"ms"}"#);
    }
}
