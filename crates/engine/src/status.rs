//! What people read about their monitors: per monitor its state, open incident, uptime over
//! 24 h, 7 d and 30 d and the 24 h percentiles of its main metrics (from the store's rollups),
//! and each location's latest result. One document for `watchpost status --json` and
//! `GET /api/v1/status` (docs/contracts.md, "Status").

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use watchpost_config::{Config, Monitor};
use watchpost_store::{Rollup, Step, Store, StoreError, Summary};

/// `{"monitors": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub monitors: Vec<MonitorStatus>,
}

/// One monitor.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorStatus {
    pub name: String,
    /// `up`, `down`, `pending` (no verdict yet) or `maintenance` (a window is active now).
    pub state: &'static str,
    /// Since when: the open incident's start when down, the last incident's end when up
    /// after one; `null` when not known.
    pub since: Option<DateTime<Utc>>,
    /// The open incident's id.
    pub incident: Option<String>,
    pub uptime_pct: Uptime,
    /// p50 and p95 over the last 24 h of the kind's main metrics, by name with unit
    /// (`total_ms`, `group_lag`).
    pub metrics_24h: BTreeMap<String, Percentiles>,
    pub locations: Vec<LocationStatus>,
}

/// The share of passing checks, in percent; `null` where there is no data.
#[derive(Debug, Clone, Serialize)]
pub struct Uptime {
    #[serde(rename = "24h")]
    pub day: Option<f64>,
    #[serde(rename = "7d")]
    pub week: Option<f64>,
    #[serde(rename = "30d")]
    pub month: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// A location's latest result, one per location the monitor lists (in its order).
#[derive(Debug, Clone, Serialize)]
pub struct LocationStatus {
    pub location: String,
    /// The declared location's `region:` and `isp:` (`null` for `local` and when not given).
    pub region: Option<String>,
    pub isp: Option<String>,
    /// The location has no result for the monitor's latest judged tick (its agent did not
    /// report it); `ok`, `at`, `metrics` and `error` are then of its last result, if any.
    pub missing: bool,
    pub ok: bool,
    /// When its last result was taken (`null` when it never reported).
    pub at: Option<DateTime<Utc>>,
    pub metrics: BTreeMap<String, f64>,
    /// The check's error message, when it failed on the network.
    pub error: Option<String>,
}

/// Unit suffixes a metric's stored name may carry (`watchpost_units::Metric::key`).
const UNIT_SUFFIXES: [&str; 4] = ["_ms", "_bytes", "_bytes_per_sec", "_days"];

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The uptime of `rollups` in percent: passing checks over all checks.
fn uptime<'a>(rollups: impl Iterator<Item = &'a Rollup> + Clone) -> Option<f64> {
    let checks: u64 = rollups.clone().map(|r| r.checks).sum();
    let failures: u64 = rollups.map(|r| r.failures).sum();
    (checks > 0).then(|| round3((checks - failures.min(checks)) as f64 * 100.0 / checks as f64))
}

/// The stored name of column `column` among `keys` (`total` → `total_ms`).
fn key_of<'a>(column: &str, keys: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    keys.into_iter().find(|k| {
        k.as_str() == column
            || UNIT_SUFFIXES
                .iter()
                .any(|s| k.strip_prefix(column) == Some(s))
    })
}

/// The status of `config`'s monitors (only `only`, when given) as of `now`. Blocking: it
/// reads the store.
pub fn status(
    store: &dyn Store,
    config: &Config,
    now: DateTime<Utc>,
    only: Option<&str>,
) -> Result<StatusReport, StoreError> {
    let monitors = config
        .monitors
        .iter()
        .filter(|m| only.is_none_or(|n| n == m.name))
        .map(|m| monitor_status(store, config, m, now))
        .collect::<Result<_, _>>()?;
    Ok(StatusReport { monitors })
}

fn monitor_status(
    store: &dyn Store,
    config: &Config,
    monitor: &Monitor,
    now: DateTime<Utc>,
) -> Result<MonitorStatus, StoreError> {
    let state = store
        .state(&monitor.name)?
        .and_then(|json| watchpost_alerting::state_from_json(&json).ok());
    let incidents = store.incidents(&monitor.name)?;
    let open = incidents.iter().rev().find(|i| i.is_open());
    let status = state.as_ref().map(|s| s.status).unwrap_or_default();
    let label = if monitor.maintenance.iter().any(|w| w.active_at(now)) {
        "maintenance"
    } else {
        match status {
            watchpost_alerting::Status::Pending => "pending",
            watchpost_alerting::Status::Up => "up",
            watchpost_alerting::Status::Down => "down",
        }
    };
    let since = match (status, open) {
        (watchpost_alerting::Status::Down, Some(i)) => Some(i.opened_at),
        (watchpost_alerting::Status::Up, _) => incidents.last().and_then(|i| i.closed_at),
        _ => None,
    };

    let ago = |days: i64| now - TimeDelta::days(days);
    let minutes = store.rollups(&monitor.name, Step::Minute, ago(1))?;
    // One read for both hour windows: the last 7 days are the hours (from their start) of
    // the last 30 that end after it.
    let hours = store.rollups(&monitor.name, Step::Hour, ago(30))?;
    let week = hours
        .iter()
        .filter(|r| r.bucket + TimeDelta::hours(1) > ago(7));

    let mut merged: BTreeMap<String, Summary> = BTreeMap::new();
    for r in &minutes {
        for (name, s) in &r.metrics {
            match merged.get_mut(name) {
                Some(m) => m.merge(s),
                None => {
                    merged.insert(name.clone(), s.clone());
                }
            }
        }
    }
    let metrics_24h = monitor
        .check
        .kind()
        .columns()
        .iter()
        .filter(|c| **c != "status")
        .filter_map(|c| key_of(c, merged.keys()))
        .map(|k| {
            let s = &merged[k];
            (
                k.clone(),
                Percentiles {
                    p50: s.quantile(0.5).map(round3),
                    p95: s.quantile(0.95).map(round3),
                },
            )
        })
        .collect();

    let mut latest = store.latest_results(&monitor.name)?;
    let newest = latest.iter().map(|r| r.at).max();
    let locations = monitor
        .locations
        .iter()
        .map(|name| {
            let spec = config.locations.get(name);
            let mut row = LocationStatus {
                location: name.clone(),
                region: spec.and_then(|s| s.region.clone()),
                isp: spec.and_then(|s| s.isp.clone()),
                missing: true,
                ok: false,
                at: None,
                metrics: BTreeMap::new(),
                error: None,
            };
            if let Some(i) = latest.iter().position(|r| &r.location == name) {
                let r = latest.swap_remove(i);
                row.missing = Some(r.at) != newest;
                row.error = serde_json::from_str::<serde_json::Value>(&r.data)
                    .ok()
                    .and_then(|d| d["error"]["message"].as_str().map(str::to_string));
                row.ok = r.ok;
                row.at = Some(r.at);
                row.metrics = r.metrics.into_iter().collect();
            }
            row
        })
        .collect();

    Ok(MonitorStatus {
        name: monitor.name.clone(),
        state: label,
        since,
        incident: open.map(|i| i.id.clone()),
        uptime_pct: Uptime {
            day: uptime(minutes.iter()),
            week: uptime(week),
            month: uptime(hours.iter()),
        },
        metrics_24h,
        locations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_find_their_stored_names() {
        let keys = [
            "total_ms".to_string(),
            "status".to_string(),
            "cert_days".to_string(),
            "group_lag".to_string(),
            "tls_ms".to_string(),
        ];
        assert_eq!(key_of("total", keys.iter()).unwrap(), "total_ms");
        assert_eq!(key_of("cert_days", keys.iter()).unwrap(), "cert_days");
        assert_eq!(key_of("group_lag", keys.iter()).unwrap(), "group_lag");
        assert_eq!(key_of("tls", keys.iter()).unwrap(), "tls_ms");
        assert_eq!(key_of("wait", keys.iter()), None);
    }
}

/// `GET /api/v1/monitors/NAME/history?since=24h&step=1m`: one point per minute (`1m`) or
/// hour (`1h`) since then, every location merged.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub monitor: String,
    /// `1m` or `1h`.
    pub step: &'static str,
    pub since: DateTime<Utc>,
    pub points: Vec<Point>,
}

/// One minute or hour of a monitor.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The start of the minute or hour.
    pub at: DateTime<Utc>,
    pub checks: u64,
    pub failures: u64,
    pub uptime_pct: Option<f64>,
    /// Per summarized metric: p50, p95, min, max and mean.
    pub metrics: BTreeMap<String, PointMetric>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PointMetric {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub min: f64,
    pub max: f64,
    pub mean: Option<f64>,
}

/// The history of `monitor` at `step` since `since`, every location merged per bucket.
/// Blocking: it reads the store.
pub fn history(
    store: &dyn Store,
    monitor: &str,
    step: Step,
    since: DateTime<Utc>,
) -> Result<History, StoreError> {
    let mut buckets: BTreeMap<DateTime<Utc>, (u64, u64, BTreeMap<String, Summary>)> =
        BTreeMap::new();
    for r in store.rollups(monitor, step, since)? {
        let (checks, failures, metrics) = buckets.entry(r.bucket).or_default();
        *checks += r.checks;
        *failures += r.failures;
        for (name, s) in r.metrics {
            match metrics.get_mut(&name) {
                Some(m) => m.merge(&s),
                None => {
                    metrics.insert(name, s);
                }
            }
        }
    }
    let points = buckets
        .into_iter()
        .map(|(at, (checks, failures, metrics))| Point {
            at,
            checks,
            failures,
            uptime_pct: (checks > 0)
                .then(|| round3((checks - failures.min(checks)) as f64 * 100.0 / checks as f64)),
            metrics: metrics
                .into_iter()
                .map(|(k, s)| {
                    (
                        k,
                        PointMetric {
                            p50: s.quantile(0.5).map(round3),
                            p95: s.quantile(0.95).map(round3),
                            min: round3(s.min),
                            max: round3(s.max),
                            mean: s.mean().map(round3),
                        },
                    )
                })
                .collect(),
        })
        .collect();
    Ok(History {
        monitor: monitor.to_string(),
        step: match step {
            Step::Minute => "1m",
            Step::Hour => "1h",
        },
        since,
        points,
    })
}
