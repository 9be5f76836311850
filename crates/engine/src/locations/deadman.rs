//! The dead-man switch of probe locations: a declared location that sends nothing for longer
//! than its `silent_after` raises its own alert — once — and resolves it when it reports
//! again. Each location is a small state machine in the store under the name
//! `location:NAME`, decided by the same alert engine as monitors (`failure_threshold: 1`,
//! `success_threshold: 1`, no reminders) and notified through the same outbox. While a
//! location is silent its monitors' rows are *missing*, so it never causes a false DOWN.
//!
//! A location that never reported counts as silent from when this process started watching.

use crate::pipeline::{CommitContext, transition_for};
use crate::{Engine, Generation};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use watchpost_alerting::{AlertPolicy, Status, Tick};
use watchpost_channels::{Alert, AlertKind, FailedCondition, LocationRow};

/// How often silent locations are looked for.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The store name of a location's state machine.
pub fn state_name(location: &str) -> String {
    format!("location:{location}")
}

/// One look at every declared location this process is responsible for (its shard): a
/// silent one fails its state machine, one that reported passes it; the store is written only
/// when that changes something. Returns the notifications queued.
pub async fn check(
    engine: &Engine,
    generation: &Generation,
    watching_since: DateTime<Utc>,
) -> usize {
    let config = generation.config.clone();
    let zh = generation.locale == watchpost_channels::Locale::ZhCn;
    if config.locations.is_empty() {
        return 0;
    }
    let (store, health, shards) = (
        engine.store.clone(),
        engine.health.clone(),
        engine.shards.clone(),
    );
    let done = tokio::task::spawn_blocking(move || -> Result<usize, String> {
        let now = Utc::now();
        let reports = store.location_reports().map_err(|e| e.to_string())?;
        let mut queued = 0;
        for (name, spec) in &config.locations {
            let key = state_name(name);
            // A location no monitor lists has nothing to push: it can't be silent.
            let listed = config.monitors.iter().any(|m| m.locations.contains(name));
            if !listed || !shards.owns(&key) {
                continue;
            }
            let last = reports
                .iter()
                .find(|(l, _)| l == name)
                .map(|(_, at)| *at)
                .unwrap_or(watching_since)
                .max(watching_since);
            let quiet_for = (now - last).to_std().unwrap_or_default();
            let silent = quiet_for > spec.silent_after;
            // Nothing to write when the stored status already says so.
            let stored = store.state(&key).map_err(|e| e.to_string())?;
            let status = stored
                .as_deref()
                .and_then(|s| watchpost_alerting::state_from_json(s).ok())
                .map(|s| s.status);
            match (status, silent) {
                (Some(Status::Down), true) | (Some(Status::Up), false) => continue,
                (None, false) => continue,
                _ => {}
            }
            let shown = match (&spec.region, &spec.isp) {
                (Some(r), Some(i)) => format!("{name} ({r} {i})"),
                (Some(x), None) | (None, Some(x)) => format!("{name} ({x})"),
                (None, None) => name.clone(),
            };
            let (quiet, limit) = (
                crate::human_duration(quiet_for),
                crate::human_duration(spec.silent_after),
            );
            let text = match (silent, zh) {
                (true, false) => {
                    format!("no report from location {shown} for {quiet} (silent_after {limit})")
                }
                (true, true) => {
                    format!("探测点 {shown} 已 {quiet} 未上报（silent_after {limit}）")
                }
                (false, false) => format!("location {shown} reports again"),
                (false, true) => format!("探测点 {shown} 恢复上报"),
            };
            let tick = Tick {
                at: now,
                locations: 1,
                failing: u32::from(silent),
                reasons: if silent {
                    vec![text.clone()]
                } else {
                    Vec::new()
                },
            };
            let policy = AlertPolicy {
                channels: spec.channels.clone(),
                failure_threshold: 1,
                success_threshold: 1,
                send_resolved: true,
                repeat: None,
                quorum: 1,
            };
            let alert = Alert {
                kind: AlertKind::Down,
                monitor: key.clone(),
                incident_id: String::new(),
                at: now,
                since: None,
                check: Some("agent".into()),
                failures: if silent {
                    vec![FailedCondition {
                        location: name.clone(),
                        operand: "silence".into(),
                        op: ">".into(),
                        expected: crate::human_duration(spec.silent_after),
                        actual: crate::human_duration(quiet_for),
                        text: text.clone(),
                        topic: None,
                    }]
                } else {
                    Vec::new()
                },
                message: None,
                columns: Vec::new(),
                locations: vec![LocationRow {
                    location: name.clone(),
                    ok: !silent,
                    metrics: Vec::new(),
                    error: None,
                    region: spec.region.clone(),
                    isp: spec.isp.clone(),
                    missing: silent,
                }],
                url: None,
                timezone: Some(config.timezone.name().to_string()),
                notes: Vec::new(),
            };
            let ctx = CommitContext {
                tz: config.timezone,
                secrets: &config.secrets,
                health: &health,
            };
            let outcome = store
                .transition(&key, &mut |previous| {
                    transition_for(&key, previous, &tick, &policy, false, None, &alert, &ctx)
                        .map(|(t, _)| t)
                })
                .map_err(|e| e.to_string())?;
            if silent {
                tracing::warn!("{}", tick.reasons.join("; "));
            } else {
                tracing::info!("location {name}: reports again");
            }
            queued += outcome.notifications_inserted;
        }
        Ok(queued)
    })
    .await;
    match done {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            let e = generation.config.secrets.redact(&e).into_owned();
            tracing::warn!("cannot check for silent locations: {e}");
            0
        }
        Err(e) => {
            tracing::warn!("internal error while checking for silent locations: {e}");
            0
        }
    }
}

/// Look for silent locations every [`CHECK_EVERY`] for as long as the daemon runs, waking
/// the delivery worker when an alert was queued.
pub async fn watch(
    engine: Arc<Engine>,
    generation: Arc<std::sync::RwLock<Arc<Generation>>>,
    wake: Arc<tokio::sync::Notify>,
) {
    let since = Utc::now();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let g = crate::web::current(&generation);
        if check(&engine, &g, since).await > 0 {
            wake.notify_one();
        }
    }
}
