//! The pipeline shared by `once` and (later) `run`: check a monitor, judge it, commit the
//! alert engine's decision and its notifications in one store transaction; and deliver the
//! outbox. Probes never touch the store; only [`outbox::deliver_due`] sends.

pub mod outbox;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use watchpost_alerting::{EventKind, IncidentChange as EngineIncident, MonitorState, Tick, decide};
use watchpost_channels::{Alert, AlertKind, Channel, ChannelConfig, Locale, LocationRow};
use watchpost_conditions::evaluate_http;
use watchpost_config::{ChannelSpec, Check, Config, Monitor};
use watchpost_probes::http::{CheckReport, HttpProber, HttpResult, ProberOptions, timing::ms};
use watchpost_store::{IncidentChange, NewNotification, ResultRow, Store, Transition};

/// Build every configured channel; an error names the channel.
/// Load the config at `path`, or print every problem (FILE:LINE:COL: ...) and say which exit
/// code that is.
pub fn load_config(path: &std::path::Path) -> Result<Config, std::process::ExitCode> {
    watchpost_config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        std::process::ExitCode::from(crate::EXIT_USAGE)
    })
}

/// Build one configured channel; an error names the channel and where it is in the file.
pub fn build_channel(config: &Config, name: &str, spec: &ChannelSpec) -> Result<Channel, String> {
    ChannelConfig::from_value(spec.settings.clone())
        .and_then(|c| c.build())
        .map_err(|e| {
            format!(
                "{}:{}:{}: channel {name:?}: {}",
                config.file, spec.line, spec.column, e.0
            )
        })
}

/// Build every configured channel, reporting all that fail (one line each).
pub fn build_channels(config: &Config) -> Result<BTreeMap<String, Arc<Channel>>, String> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, spec) in &config.channels {
        match build_channel(config, name, spec) {
            Ok(channel) => {
                out.insert(name.clone(), Arc::new(channel));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

pub fn locale(config: &Config) -> Locale {
    match config.locale {
        watchpost_config::Locale::ZhCn => Locale::ZhCn,
        watchpost_config::Locale::En => Locale::En,
    }
}

/// One location's observation of one tick.
#[derive(Debug, Serialize)]
pub struct Observation {
    pub location: String,
    pub ok: bool,
    pub failures: Vec<String>,
    pub check: serde_json::Value,
}

/// What one tick of one monitor came to.
#[derive(Debug, Serialize)]
pub struct MonitorOutcome {
    pub name: String,
    pub ok: bool,
    pub at: DateTime<Utc>,
    pub state: watchpost_alerting::Status,
    pub notifications: usize,
    pub observations: Vec<Observation>,
    #[serde(skip)]
    pub rows: Vec<LocationRow>,
}

/// Run the monitor's check from every location this process serves (today: `local`).
pub async fn observe(
    prober: &HttpProber,
    monitor: &Monitor,
) -> (Vec<Observation>, Vec<LocationRow>) {
    let Check::Http(request) = &monitor.check;
    let mut request = (**request).clone();
    request.timeouts.total = request.timeouts.total.min(monitor.timeout);
    let result: HttpResult = prober.check(&request).await;
    let failures = evaluate_http(&result, &monitor.conditions);
    let ok = failures.is_empty();
    let t = &result.timings;
    let row = LocationRow {
        location: "local".into(),
        ok,
        status: result.status,
        total_ms: Some(ms(t.total)),
        connect_ms: t.connect.map(ms),
        download_ms: t.download.map(ms),
        error: result
            .error
            .as_ref()
            .map(|e| format!("{} {}", e.phase, e.kind)),
    };
    let check = serde_json::to_value(CheckReport::new(&result, ok)).unwrap_or_default();
    (
        vec![Observation {
            location: "local".into(),
            ok,
            failures,
            check,
        }],
        vec![row],
    )
}

/// Record the tick, run the alert engine on it and write its notifications, atomically.
pub fn commit(
    store: &dyn Store,
    monitor: &Monitor,
    at: DateTime<Utc>,
    observations: Vec<Observation>,
    rows: Vec<LocationRow>,
) -> Result<MonitorOutcome, String> {
    let results: Vec<ResultRow> = observations
        .iter()
        .map(|o| ResultRow {
            monitor: monitor.name.clone(),
            location: o.location.clone(),
            at,
            ok: o.ok,
            data: o.check.to_string(),
        })
        .collect();
    store.record_results(&results).map_err(|e| e.to_string())?;
    let failing = observations.iter().filter(|o| !o.ok).count() as u32;
    let tick = Tick {
        at,
        locations: observations.len() as u32,
        failing,
        reasons: observations
            .iter()
            .flat_map(|o| o.failures.iter().map(|f| format!("{}: {f}", o.location)))
            .collect(),
    };
    let muted = monitor.maintenance.iter().any(|w| w.active_at(at));
    let url = match &monitor.check {
        Check::Http(r) => Some(r.url.to_string()),
    };
    let mut status = watchpost_alerting::Status::Pending;
    let mut decide_fn = |previous: Option<String>| -> Result<Transition, String> {
        let previous: Option<MonitorState> = match previous {
            Some(json) => Some(serde_json::from_str(&json).map_err(|e| e.to_string())?),
            None => None,
        };
        let d = decide(&monitor.name, previous, &tick, &monitor.alert, muted);
        status = d.state.status;
        let mut notifications = Vec::new();
        for event in &d.events {
            let alert = Alert {
                kind: match event.kind {
                    EventKind::Down => AlertKind::Down,
                    EventKind::Reminder => AlertKind::Reminder,
                    EventKind::Resolved => AlertKind::Resolved,
                },
                monitor: monitor.name.clone(),
                incident_id: event.incident_id.clone(),
                at,
                since: Some(event.incident_opened_at),
                failures: tick.reasons.clone(),
                locations: rows.clone(),
                url: url.clone(),
            };
            let payload = serde_json::to_string(&alert).map_err(|e| e.to_string())?;
            for channel in &monitor.alert.channels {
                notifications.push(NewNotification {
                    idempotency_key: format!("{}:{channel}", event.key),
                    channel: channel.clone(),
                    payload: payload.clone(),
                    created_at: at,
                });
            }
        }
        Ok(Transition {
            state: serde_json::to_string(&d.state).map_err(|e| e.to_string())?,
            notifications,
            incident: d.incident.map(|c| match c {
                EngineIncident::Open {
                    id,
                    opened_at,
                    reason,
                } => IncidentChange::Open {
                    id,
                    monitor: monitor.name.clone(),
                    opened_at,
                    reason,
                },
                EngineIncident::Close { id, closed_at } => IncidentChange::Close { id, closed_at },
            }),
        })
    };
    let outcome = store
        .transition(&monitor.name, &mut decide_fn)
        .map_err(|e| e.to_string())?;
    Ok(MonitorOutcome {
        name: monitor.name.clone(),
        ok: failing == 0,
        at,
        state: status,
        notifications: outcome.notifications_inserted,
        observations,
        rows,
    })
}

/// `14:02:05  shop  PASS  200  12.3ms` (or FAIL with the reasons): one line per tick.
pub fn one_line(o: &MonitorOutcome) -> String {
    let row = o.rows.first();
    let status = row
        .and_then(|r| r.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "—".into());
    let total = row
        .and_then(|r| r.total_ms)
        .map(|t| format!("{t:.1}ms"))
        .unwrap_or_default();
    let why: Vec<&str> = o
        .observations
        .iter()
        .flat_map(|obs| obs.failures.iter().map(String::as_str))
        .collect();
    format!(
        "{}  {}  {}  {status}  {total}  {}",
        o.at.format("%H:%M:%S"),
        o.name,
        if o.ok { "PASS" } else { "FAIL" },
        why.join("; ")
    )
    .trim_end()
    .to_string()
}

/// Open the config's store and build the monitors' prober (system resolver and roots); a
/// failure is reported and becomes exit code 1.
pub fn open(config: &Config) -> Result<(Arc<dyn Store>, Arc<HttpProber>), std::process::ExitCode> {
    let fail = |message: String| {
        eprintln!("watchpost: {message}");
        std::process::ExitCode::FAILURE
    };
    let store = watchpost_store::open(&config.storage)
        .map_err(|e| fail(format!("cannot open the store {:?}: {e}", config.storage)))?;
    let prober = HttpProber::new(ProberOptions::default()).map_err(|e| fail(e.to_string()))?;
    Ok((store, Arc::new(prober)))
}
