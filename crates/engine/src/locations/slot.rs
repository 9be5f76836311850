//! Judging one tick of a monitor checked from several locations: wait until every location
//! listed has an observation for the tick's slot, or the wait's end passes ([`gather`]), then
//! put the local check and the agents' observations together in the monitor's order of
//! locations, a location without an observation as a *missing* row ([`merge`]). Missing
//! locations count neither as passing nor as failing: the tick's `locations` are those that
//! reported, its `failing` those of them that failed.

use super::wire::WireObservation;
use crate::pipeline::{Observation, Observed};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watchpost_channels::LocationRow;
use watchpost_config::{Config, Monitor};
use watchpost_store::{ObservationRow, Store};

/// Extra time after a slot's check timeout for an agent's push to arrive.
pub const PUSH_GRACE: Duration = Duration::from_secs(5);

/// How often a waiting tick reads the store even without news from this process's ingest
/// (another replica may have taken the push).
const POLL_EVERY: Duration = Duration::from_millis(500);

/// What the ingest of a running server tells waiting ticks, and what it counts.
#[derive(Default)]
pub struct Hub {
    arrived: tokio::sync::Notify,
    dropped: Mutex<BTreeMap<String, u64>>,
    ingested: Mutex<BTreeMap<String, u64>>,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Observations from `location` were stored (`stored` new ones; its agent dropped
    /// `dropped` from a full buffer): wake every waiting tick.
    pub fn arrived(&self, location: &str, stored: usize, dropped: u64) {
        let add = |map: &Mutex<BTreeMap<String, u64>>, n: u64| {
            if n > 0 {
                *map.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(location.to_string())
                    .or_default() += n;
            }
        };
        add(&self.ingested, stored as u64);
        add(&self.dropped, dropped);
        self.arrived.notify_waiters();
    }

    /// Observations stored per location since start.
    pub fn ingested(&self) -> BTreeMap<String, u64> {
        self.ingested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Observations agents reported dropped (buffer full), per location, since start.
    pub fn dropped(&self) -> BTreeMap<String, u64> {
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The monitor's locations other than `local`.
pub fn remote(monitor: &Monitor) -> impl Iterator<Item = &str> {
    monitor
        .locations
        .iter()
        .map(String::as_str)
        .filter(|l| *l != "local")
}

/// How long after its slot a tick of `monitor` waits for its agents: its timeout and
/// [`PUSH_GRACE`], but no more than 90% of its period (the next tick must not wait behind it).
pub fn wait_after_slot(monitor: &Monitor, period: Option<Duration>) -> Duration {
    let wanted = monitor.timeout + PUSH_GRACE;
    match period {
        Some(p) => wanted.min(p.mul_f64(0.9)),
        None => wanted,
    }
}

/// The agents' observations of `monitor` for `slot`, waiting until every remote location has
/// one or `until` passes (no wait without `until`). A store error ends the wait with what
/// was read (logged).
pub async fn gather(
    store: &Arc<dyn Store>,
    hub: &Hub,
    monitor: &Monitor,
    slot: DateTime<Utc>,
    until: Option<tokio::time::Instant>,
) -> Vec<ObservationRow> {
    let wanted = remote(monitor).count();
    loop {
        // Registered before reading, so an arrival between the read and the wait wakes us.
        let arrived = hub.arrived.notified();
        let (s, name) = (store.clone(), monitor.name.clone());
        let read = tokio::task::spawn_blocking(move || s.observations(&name, slot)).await;
        let rows: Vec<ObservationRow> = match read {
            Ok(Ok(rows)) => rows
                .into_iter()
                .filter(|r| monitor.locations.contains(&r.location))
                .collect(),
            Ok(Err(e)) => {
                tracing::warn!(
                    "{}: cannot read the agents' observations: {e}",
                    monitor.name
                );
                return Vec::new();
            }
            Err(e) => {
                tracing::warn!("{}: internal error reading observations: {e}", monitor.name);
                return Vec::new();
            }
        };
        let now = tokio::time::Instant::now();
        match until {
            Some(end) if rows.len() < wanted && now < end => {
                let nap = (end - now).min(POLL_EVERY);
                let _ = tokio::time::timeout(nap, arrived).await;
            }
            _ => return rows,
        }
    }
}

/// The tick's observations from every location of `monitor`, in its order: `local` from
/// `local` (when listed and run), the others from `remote`; a location without one is a
/// missing row. A stored observation that can't be read is logged and counts as missing.
pub fn merge(
    config: &Config,
    monitor: &Monitor,
    local: Option<Observed>,
    remote: Vec<ObservationRow>,
) -> Observed {
    let mut remote: BTreeMap<String, ObservationRow> = remote
        .into_iter()
        .map(|r| (r.location.clone(), r))
        .collect();
    let mut local = local;
    let mut out = Observed::default();
    for location in &monitor.locations {
        let spec = config.locations.get(location);
        let (region, isp) = (
            spec.and_then(|s| s.region.clone()),
            spec.and_then(|s| s.isp.clone()),
        );
        if location == "local" {
            if let Some(l) = local.take() {
                out.observations.extend(l.observations);
                out.rows.extend(l.rows);
                out.failures.extend(l.failures);
                out.probe_state = l.probe_state;
                continue;
            }
        } else if let Some(row) = remote.remove(location) {
            match serde_json::from_str::<WireObservation>(&row.data) {
                Ok(o) => {
                    out.observations.push(Observation {
                        location: location.clone(),
                        ok: o.ok,
                        failures: o.failures.iter().map(|f| f.text.clone()).collect(),
                        check: o.report,
                    });
                    out.rows.push(LocationRow {
                        location: location.clone(),
                        ok: o.ok,
                        metrics: o.metrics,
                        error: o.error,
                        region,
                        isp,
                        missing: false,
                    });
                    out.failures.extend(o.failures);
                    continue;
                }
                Err(e) => tracing::warn!(
                    "{}: the observation of location {location:?} can't be read ({e}); \
                     counted as missing",
                    monitor.name
                ),
            }
        }
        out.rows.push(LocationRow {
            location: location.clone(),
            ok: false,
            metrics: Vec::new(),
            error: None,
            region,
            isp,
            missing: true,
        });
    }
    out
}
