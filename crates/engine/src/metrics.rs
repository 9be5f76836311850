//! `GET /metrics` on `watchpost run`: the Prometheus text format (version 0.0.4).
//!
//! Probe results under blackbox_exporter's names, so its Grafana dashboards work —
//! `probe_success`, `probe_duration_seconds`, `probe_http_duration_seconds{phase}` (`resolve`,
//! `connect`, `tls`, `processing`, `transfer`), `probe_http_status_code`,
//! `probe_ssl_earliest_cert_expiry` — labelled `monitor` and `location`, from each location's
//! latest result; and watchpost's own: scheduler lateness (a histogram), runs, overruns and
//! missed ticks, outbox pending and the oldest's age, notifications by channel and result,
//! and how long store commits take (a histogram).
//!
//! The counters and histograms are process-wide ([`TELEMETRY`]): the daemon records into them
//! as it works, and they start at zero with the process, as Prometheus expects.

use crate::Generation;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use watchpost_scheduler::Stats;
use watchpost_store::{ResultRow, Store};

/// Seconds: the upper bounds of the histograms' buckets.
const BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A histogram of durations with fixed buckets ([`BOUNDS`]).
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BOUNDS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// What the daemon records as it works.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// A run's start − its tick.
    pub lateness: Histogram,
    /// One tick's store commit (results, rollups, state and notifications).
    pub commit: Histogram,
    /// (channel, `sent` | `retry` | `gave_up`) → count.
    notifications: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Telemetry {
    pub fn count_notification(&self, channel: &str, result: &'static str) {
        let mut m = self.notifications.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((channel.to_string(), result)).or_default() += 1;
    }
}

/// The process's telemetry.
pub static TELEMETRY: std::sync::LazyLock<Telemetry> = std::sync::LazyLock::new(Telemetry::default);

/// Milliseconds as seconds, to the microsecond (no binary noise in the text).
fn seconds(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1e6
}

/// A label value escaped for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// blackbox_exporter's name for an HTTP phase.
const PHASES: [(&str, &str); 5] = [
    ("dns_ms", "resolve"),
    ("connect_ms", "connect"),
    ("tls_ms", "tls"),
    ("wait_ms", "processing"),
    ("download_ms", "transfer"),
];

/// The whole `/metrics` page for `generation`'s monitors. Blocking: it reads the store.
pub fn render(
    store: &dyn Store,
    generation: &Generation,
    scheduler: Option<&Stats>,
    hub: &crate::locations::Hub,
    now: DateTime<Utc>,
) -> String {
    let mut success = String::new();
    let mut duration = String::new();
    let mut phases = String::new();
    let mut status = String::new();
    let mut expiry = String::new();
    // One read for every monitor: a page scraped every few seconds must not cost a query per
    // monitor. Rows of monitors no longer configured are left out.
    let all = store.all_latest_results().unwrap_or_default();
    let mut by_monitor: HashMap<&str, Vec<&ResultRow>> = HashMap::new();
    for r in &all {
        by_monitor.entry(r.monitor.as_str()).or_default().push(r);
    }
    for m in &generation.config.monitors {
        let Some(rows) = by_monitor.get(m.name.as_str()) else {
            continue;
        };
        for r in rows {
            let l = format!(
                "monitor=\"{}\",location=\"{}\"",
                label(&m.name),
                label(&r.location)
            );
            let value = |k: &str| r.metrics.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
            let _ = writeln!(success, "probe_success{{{l}}} {}", u8::from(r.ok));
            if let Some(total) = value("total_ms") {
                let _ = writeln!(duration, "probe_duration_seconds{{{l}}} {}", seconds(total));
            }
            if m.check.kind() == watchpost_probes::CheckKind::Http {
                for (key, phase) in PHASES {
                    if let Some(v) = value(key) {
                        let _ = writeln!(
                            phases,
                            "probe_http_duration_seconds{{{l},phase=\"{phase}\"}} {}",
                            seconds(v)
                        );
                    }
                }
                if let Some(code) = value("status") {
                    let _ = writeln!(status, "probe_http_status_code{{{l}}} {code}");
                }
            }
            let data: serde_json::Value = serde_json::from_str(&r.data).unwrap_or_default();
            let not_after = data["tls"]["cert_not_after"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok().map(|t| t.timestamp()));
            if let Some(t) = not_after {
                let _ = writeln!(expiry, "probe_ssl_earliest_cert_expiry{{{l}}} {t}");
            }
        }
    }
    let mut out = String::new();
    for (name, kind, help, body) in [
        (
            "probe_success",
            "gauge",
            "Whether the latest check passed (1) or failed (0).",
            &success,
        ),
        (
            "probe_duration_seconds",
            "gauge",
            "How long the latest check took, in seconds.",
            &duration,
        ),
        (
            "probe_http_duration_seconds",
            "gauge",
            "The latest HTTP check's time per phase, in seconds.",
            &phases,
        ),
        (
            "probe_http_status_code",
            "gauge",
            "The latest HTTP check's response status.",
            &status,
        ),
        (
            "probe_ssl_earliest_cert_expiry",
            "gauge",
            "When the server's certificate expires, in Unix seconds.",
            &expiry,
        ),
    ] {
        family(&mut out, name, kind, help);
        out.push_str(body);
    }

    let t = &*TELEMETRY;
    t.lateness.write(
        &mut out,
        "watchpost_scheduler_lateness_seconds",
        "How late runs started after their tick.",
    );
    if let Some(s) = scheduler {
        for (name, help, v) in [
            ("watchpost_scheduler_runs_total", "Checks started.", &s.runs),
            (
                "watchpost_scheduler_overruns_total",
                "Ticks skipped because the previous run of the monitor was still going.",
                &s.overruns,
            ),
            (
                "watchpost_scheduler_missed_total",
                "Ticks that passed without a run.",
                &s.missed,
            ),
        ] {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
    }
    t.commit.write(
        &mut out,
        "watchpost_store_commit_seconds",
        "How long committing a tick to the store took.",
    );
    family(
        &mut out,
        "watchpost_notifications_total",
        "counter",
        "Notifications handled, by channel and result (sent, retry, gave_up).",
    );
    for ((channel, result), n) in t
        .notifications
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "watchpost_notifications_total{{channel=\"{}\",result=\"{result}\"}} {n}",
            label(channel)
        );
    }
    if let Ok(pending) = store.pending_count() {
        family(
            &mut out,
            "watchpost_outbox_pending",
            "gauge",
            "Notifications not yet delivered or given up.",
        );
        let _ = writeln!(out, "watchpost_outbox_pending {pending}");
    }
    if let Ok(oldest) = store.oldest_undelivered() {
        family(
            &mut out,
            "watchpost_outbox_oldest_age_seconds",
            "gauge",
            "Age of the oldest notification not yet delivered (0 when there is none).",
        );
        let age = oldest.map_or(0.0, |p| {
            (now - p.created_at).num_milliseconds().max(0) as f64 / 1000.0
        });
        let _ = writeln!(out, "watchpost_outbox_oldest_age_seconds {age}");
    }
    locations(&mut out, store, generation, hub, now);
    out
}

/// Probe locations: how long since each declared location last reported (from the store, so
/// every replica shows the same), and what this process took in from each and what their
/// agents dropped from full buffers.
fn locations(
    out: &mut String,
    store: &dyn Store,
    generation: &Generation,
    hub: &crate::locations::Hub,
    now: DateTime<Utc>,
) {
    let declared = &generation.config.locations;
    if declared.is_empty() {
        return;
    }
    if let Ok(reports) = store.location_reports() {
        family(
            out,
            "watchpost_location_last_report_age_seconds",
            "gauge",
            "Seconds since the location's agent last pushed (absent: never).",
        );
        for (name, at) in reports.iter().filter(|(n, _)| declared.contains_key(n)) {
            let age = (now - *at).num_milliseconds().max(0) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "watchpost_location_last_report_age_seconds{{location=\"{}\"}} {age}",
                label(name)
            );
        }
    }
    for (name, help, counts) in [
        (
            "watchpost_location_observations_total",
            "Observations stored from the location's agent by this process.",
            hub.ingested(),
        ),
        (
            "watchpost_location_dropped_total",
            "Observations the location's agent reported dropped (its buffer was full).",
            hub.dropped(),
        ),
    ] {
        family(out, name, "counter", help);
        for location in declared.keys() {
            let n = counts.get(location).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}{{location=\"{}\"}} {n}", label(location));
        }
    }
}
