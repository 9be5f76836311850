//! The alert as a stored document (the outbox keeps it between commit and delivery).
//!
//! Version 1 — what [`Alert::to_json`] writes:
//!
//! ```json
//! {"v":1,"kind":"down","monitor":"homepage","incident_id":"homepage:1767322800000",
//!  "at":"2026-01-02T03:00:00Z","since":"2026-01-02T02:55:00Z","check":"http",
//!  "url":"https://www.example.com/","timezone":"Asia/Shanghai","message":null,
//!  "failures":[{"location":"local","operand":"total","op":">","expected":"1000ms",
//!               "actual":"1430ms","text":"total 1430ms > 1000ms"}],
//!  "columns":["status","dns","connect","tls","wait","download","total"],
//!  "locations":[{"location":"local","ok":false,"error":null,
//!                "metrics":[{"name":"status","value":200.0,"unit":"count"},
//!                           {"name":"total","value":1430.0,"unit":"ms"}]}],
//!  "notes":[]}
//! ```
//!
//! [`Alert::from_json`] reads version 1 and the document of the release before versioning
//! (no `"v"`), converting it explicitly:
//!
//! - each failure string becomes a [`FailedCondition`] whose `text` and `actual` are the
//!   string (`location`, `operand`, `op` and `expected` empty: the string is not parsed);
//! - a test alert's failures (where that release kept the test message) become its `message`;
//! - each location row `{status, total_ms, connect_ms, download_ms, error}` becomes metrics
//!   `status` (count), `total`, `connect` and `download` (ms), those that were set, and the
//!   alert's `columns` are `status, total, connect, download`; `check` is `http` (the only kind
//!   that release had).
//!
//! A document with a newer `"v"` is an error that says so (a downgrade after newer alerts
//! were queued), not a guess.

use super::{Alert, AlertKind, FailedCondition, LocationRow};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use watchpost_units::{Metric, Unit};

/// The version [`Alert::to_json`] writes.
pub const VERSION: u64 = 1;

/// A stored alert document that can't be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON, or not the shape of its version.
    #[error("alert document (version {version}): {reason}")]
    Invalid { version: String, reason: String },
    /// Written by a newer watchpost.
    #[error(
        "alert document version {0} is newer than this watchpost reads (up to {VERSION}); \
         upgrade watchpost to deliver it"
    )]
    Newer(u64),
}

/// Version 1, as written.
#[derive(Serialize)]
struct V1Out<'a> {
    v: u64,
    kind: AlertKind,
    monitor: &'a str,
    incident_id: &'a str,
    at: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    check: Option<&'a str>,
    url: Option<&'a str>,
    timezone: Option<&'a str>,
    message: Option<&'a str>,
    failures: &'a [FailedCondition],
    columns: &'a [String],
    locations: &'a [LocationRow],
    notes: &'a [String],
}

/// Version 1, as read (`v` already checked).
#[derive(Deserialize)]
struct V1In {
    #[allow(dead_code)]
    v: u64,
    kind: AlertKind,
    monitor: String,
    incident_id: String,
    at: DateTime<Utc>,
    #[serde(default)]
    since: Option<DateTime<Utc>>,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    failures: Vec<FailedCondition>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    locations: Vec<LocationRow>,
    #[serde(default)]
    notes: Vec<String>,
}

/// The document of the release before versioning.
#[derive(Deserialize)]
struct Legacy {
    kind: AlertKind,
    monitor: String,
    incident_id: String,
    at: DateTime<Utc>,
    #[serde(default)]
    since: Option<DateTime<Utc>>,
    #[serde(default)]
    failures: Vec<String>,
    #[serde(default)]
    locations: Vec<LegacyRow>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Deserialize)]
struct LegacyRow {
    location: String,
    ok: bool,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    total_ms: Option<f64>,
    #[serde(default)]
    connect_ms: Option<f64>,
    #[serde(default)]
    download_ms: Option<f64>,
    #[serde(default)]
    error: Option<String>,
}

/// The columns of a converted legacy alert: what its rows had.
const LEGACY_COLUMNS: [&str; 4] = ["status", "total", "connect", "download"];

fn v1(alert: &Alert) -> V1Out<'_> {
    V1Out {
        v: VERSION,
        kind: alert.kind,
        monitor: &alert.monitor,
        incident_id: &alert.incident_id,
        at: alert.at,
        since: alert.since,
        check: alert.check.as_deref(),
        url: alert.url.as_deref(),
        timezone: alert.timezone.as_deref(),
        message: alert.message.as_deref(),
        failures: &alert.failures,
        columns: &alert.columns,
        locations: &alert.locations,
        notes: &alert.notes,
    }
}

pub(super) fn to_json(alert: &Alert) -> String {
    serde_json::to_string(&v1(alert)).expect("an alert document serializes")
}

pub(super) fn from_json(text: &str) -> Result<Alert, DocumentError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DocumentError::Invalid {
            version: "unknown".into(),
            reason: e.to_string(),
        })?;
    from_value(value)
}

fn from_value(value: serde_json::Value) -> Result<Alert, DocumentError> {
    let invalid = |version: &str, e: serde_json::Error| DocumentError::Invalid {
        version: version.into(),
        reason: e.to_string(),
    };
    match value.get("v") {
        None => {
            let legacy: Legacy =
                serde_json::from_value(value).map_err(|e| invalid("unversioned", e))?;
            Ok(from_legacy(legacy))
        }
        Some(v) => match v.as_u64() {
            Some(VERSION) => {
                let d: V1In = serde_json::from_value(value).map_err(|e| invalid("1", e))?;
                Ok(Alert {
                    kind: d.kind,
                    monitor: d.monitor,
                    incident_id: d.incident_id,
                    at: d.at,
                    since: d.since,
                    check: d.check,
                    failures: d.failures,
                    message: d.message,
                    columns: d.columns,
                    locations: d.locations,
                    url: d.url,
                    timezone: d.timezone,
                    notes: d.notes,
                })
            }
            Some(n) if n > VERSION => Err(DocumentError::Newer(n)),
            _ => Err(DocumentError::Invalid {
                version: v.to_string(),
                reason: format!("\"v\" must be a version number up to {VERSION}"),
            }),
        },
    }
}

/// One failure line of the previous release, `LOCATION: TEXT`, as data.
fn legacy_failure(line: &str, locations: &[&str]) -> FailedCondition {
    let split = locations
        .iter()
        .filter_map(|l| Some((*l, line.strip_prefix(l)?.strip_prefix(": ")?)))
        .max_by_key(|(l, _)| l.len());
    match split {
        Some((location, text)) => FailedCondition {
            location: location.to_string(),
            ..FailedCondition::from_text(text)
        },
        None => FailedCondition::from_text(line),
    }
}

fn from_legacy(d: Legacy) -> Alert {
    let (failures, message) = if d.kind == AlertKind::Test {
        let message = (!d.failures.is_empty()).then(|| d.failures.join("\n"));
        (Vec::new(), message)
    } else {
        // The previous release wrote each failure as `LOCATION: TEXT`; the location is one
        // of the alert's rows (the longest that matches, as names may hold `: `).
        let names: Vec<&str> = d.locations.iter().map(|r| r.location.as_str()).collect();
        let failures = d
            .failures
            .iter()
            .map(|line| legacy_failure(line, &names))
            .collect();
        (failures, None)
    };
    let locations: Vec<LocationRow> = d
        .locations
        .into_iter()
        .map(|r| {
            let mut metrics = Vec::new();
            if let Some(s) = r.status {
                metrics.push(Metric::new("status", f64::from(s), Unit::Count));
            }
            for (name, v) in [
                ("total", r.total_ms),
                ("connect", r.connect_ms),
                ("download", r.download_ms),
            ] {
                if let Some(v) = v {
                    metrics.push(Metric::new(name, v, Unit::Ms));
                }
            }
            LocationRow {
                location: r.location,
                ok: r.ok,
                metrics,
                error: r.error,
                ..LocationRow::default()
            }
        })
        .collect();
    let test = d.kind == AlertKind::Test;
    Alert {
        kind: d.kind,
        monitor: d.monitor,
        incident_id: d.incident_id,
        at: d.at,
        since: d.since,
        check: (!test).then(|| "http".to_string()),
        failures,
        message,
        columns: if test {
            Vec::new()
        } else {
            LEGACY_COLUMNS.iter().map(|s| s.to_string()).collect()
        },
        locations,
        url: d.url,
        timezone: d.timezone,
        notes: d.notes,
    }
}

/// Serialized as the version 1 document ([`Alert::to_json`]).
impl Serialize for Alert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        v1(self).serialize(s)
    }
}

/// Read like [`Alert::from_json`]: version 1 or the unversioned document.
impl<'de> Deserialize<'de> for Alert {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Alert, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        from_value(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::*;
    use super::super::{Alert, AlertKind, Locale};
    use super::*;

    #[test]
    fn version_1_round_trips() {
        for a in [
            down(),
            tls_down(),
            Alert::test("ops", Some("hi".into()), at(1, 2, 3)),
        ] {
            let json = a.to_json();
            assert!(json.starts_with("{\"v\":1,\"kind\":"), "{json}");
            assert_eq!(Alert::from_json(&json).unwrap(), a);
            // Through serde as well (what the outbox does).
            let back: Alert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
            assert_eq!(back, a);
        }
        let json = down().to_json();
        assert!(
            json.contains(
                "{\"location\":\"广东佛山[电信]\",\"operand\":\"total\",\"op\":\">\",\
                 \"expected\":\"1000ms\",\"actual\":\"1430ms\",\"text\":\"total 1430ms > 1000ms\"}"
            ),
            "{json}"
        );
        assert!(
            json.contains("{\"name\":\"wait\",\"value\":1310.0,\"unit\":\"ms\"}"),
            "{json}"
        );
    }

    #[test]
    fn the_unversioned_document_is_converted() {
        let old = r#"{"kind":"down","monitor":"m","incident_id":"m:1","at":"2026-01-02T03:00:00Z",
            "since":null,"failures":["local: status 503 != 200"],
            "locations":[{"location":"local","ok":false,"status":503,"total_ms":12.5,
                          "connect_ms":null,"download_ms":1.0,"error":null}],
            "url":"https://x.example/"}"#;
        let a = Alert::from_json(old).unwrap();
        assert_eq!(a.kind, AlertKind::Down);
        assert_eq!(a.check.as_deref(), Some("http"));
        assert_eq!(a.failures[0].location, "local");
        assert_eq!(a.failures[0].text, "status 503 != 200");
        assert_eq!(a.failures[0].actual, "status 503 != 200");
        assert_eq!(a.failures[0].operand, "");
        // A line whose prefix is no location of the alert is kept whole.
        let odd = old.replace("local: status", "elsewhere: status");
        let b = Alert::from_json(&odd).unwrap();
        assert_eq!(b.failures[0].location, "");
        assert_eq!(b.failures[0].text, "elsewhere: status 503 != 200");
        assert_eq!(a.columns, ["status", "total", "connect", "download"]);
        let names: Vec<&str> = a.locations[0]
            .metrics
            .iter()
            .map(|m| m.name.as_ref())
            .collect();
        assert_eq!(names, ["status", "total", "download"]);
        assert_eq!(a.locations[0].metric("status").unwrap().unit, Unit::Count);
        assert!(
            a.plain(Locale::En)
                .contains("  - local: status 503 != 200\n")
        );

        let test = r#"{"kind":"test","monitor":"ops","incident_id":"test:1",
            "at":"2026-01-02T03:00:00Z","failures":["hello"],"locations":[],"url":null}"#;
        let t = Alert::from_json(test).unwrap();
        assert_eq!(t.message.as_deref(), Some("hello"));
        assert!(t.failures.is_empty() && t.columns.is_empty() && t.check.is_none());
        // The minimal document of that release.
        let minimal = Alert::from_json(
            r#"{"kind":"resolved","monitor":"m","incident_id":"i","at":"2026-01-02T03:00:00Z"}"#,
        )
        .unwrap();
        assert!(minimal.failures.is_empty() && minimal.locations.is_empty());
    }

    #[test]
    fn newer_and_broken_documents_are_clear_errors() {
        let e = Alert::from_json(r#"{"v":2,"kind":"down"}"#).unwrap_err();
        assert_eq!(e, DocumentError::Newer(2));
        assert!(e.to_string().contains("version 2 is newer"), "{e}");
        let e = Alert::from_json(r#"{"v":"1"}"#).unwrap_err();
        assert!(
            e.to_string().contains("\"v\" must be a version number"),
            "{e}"
        );
        let e = Alert::from_json(r#"{"v":1,"kind":"down"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `monitor`"), "{e}");
        let e = Alert::from_json("not json").unwrap_err();
        assert!(matches!(e, DocumentError::Invalid { .. }), "{e}");
        let e = serde_json::from_str::<Alert>(r#"{"v":7}"#).unwrap_err();
        assert!(e.to_string().contains("version 7 is newer"), "{e}");
    }

    #[test]
    fn idempotency_key_survives_storage() {
        let a = down();
        assert_eq!(
            a.idempotency_key(),
            "homepage:1767322800000:down:1767322800000"
        );
        let mut b = a.clone();
        b.kind = AlertKind::Resolved;
        assert_ne!(a.idempotency_key(), b.idempotency_key());
        let stored = Alert::from_json(&a.to_json()).unwrap();
        assert_eq!(stored.idempotency_key(), a.idempotency_key());
    }

    #[test]
    fn a_version_1_document_without_region_isp_or_missing_loads_and_renders_as_before() {
        // As the release before these fields wrote it.
        let old = concat!(
            r#"{"v":1,"kind":"down","monitor":"smtps","incident_id":"smtps:1767322800000","#,
            r#""at":"2026-01-02T03:00:00Z","since":"2026-01-02T03:00:00Z","check":"tls","#,
            r#""url":"tls://mail.example.com:465","timezone":null,"message":null,"#,
            r#""failures":[{"location":"local","operand":"cert_days","op":">","expected":"14","#,
            r#""actual":"9.5d","text":"cert_days 9.5d > 14"}],"#,
            r#""columns":["connect","tls","total","cert_days"],"#,
            r#""locations":[{"location":"local","ok":false,"#,
            r#""metrics":[{"name":"dns","value":0.9,"unit":"ms"},"#,
            r#"{"name":"connect","value":11.0,"unit":"ms"},"#,
            r#"{"name":"tls","value":35.2,"unit":"ms"},"#,
            r#"{"name":"total","value":47.1,"unit":"ms"},"#,
            r#"{"name":"cert_days","value":9.5,"unit":"days"}],"#,
            r#""error":null}],"notes":[]}"#
        );
        let a = Alert::from_json(old).unwrap();
        assert_eq!(a, tls_down());
        let row = &a.locations[0];
        assert_eq!((&row.region, &row.isp, row.missing), (&None, &None, false));
        for locale in [Locale::En, Locale::ZhCn] {
            assert_eq!(a.plain(locale), tls_down().plain(locale));
            assert_eq!(a.markdown(locale), tls_down().markdown(locale));
        }
        assert!(a.plain(Locale::En).contains(
            "Location  Result  Connect     TLS   Total  Cert days\n\
                 local     FAIL     11.0ms  35.2ms  47.1ms       9.5d\n"
        ));
        // And it is written as it was: no new field when unset.
        assert_eq!(a.to_json(), old);
    }

    #[test]
    fn region_isp_and_missing_are_stored_when_set() {
        let a = multi_location();
        let json = a.to_json();
        assert!(
            json.contains(
                "{\"location\":\"gz-telecom\",\"ok\":true,\"metrics\":[{\"name\":\"status\""
            ),
            "{json}"
        );
        assert!(
            json.contains("\"error\":null,\"region\":\"广东佛山\",\"isp\":\"电信\"}"),
            "{json}"
        );
        assert!(
            json.contains("\"error\":null,\"region\":\"黑龙江哈尔滨\"}"),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"location\":\"sh-mobile\",\"ok\":false,\"metrics\":[],\"error\":null,\
                 \"region\":\"上海\",\"isp\":\"移动\",\"missing\":true}"
            ),
            "{json}"
        );
        assert_eq!(Alert::from_json(&json).unwrap(), a);
        assert!(!down().to_json().contains("\"missing\""));
    }
}
