//! One tick of one monitor: run its check ([`observe`]), judge it and commit the results, the
//! alert engine's decision and its notifications in one store transaction ([`commit`]);
//! [`tick`] is both, reporting watchpost's own failures to [`Health`] instead of blaming the
//! target. Probes never touch the store; only the outbox worker sends.
//!
//! Secrets: every text that leaves the pipeline — printed results, stored results, alert
//! payloads, delivery errors — passes through the config's [`Secrets`] first, so a `${VAR}`
//! value shows as `${VAR}`; a monitor's URL is shown as written in the config.

use crate::health::Health;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use watchpost_alerting::{
    EventKind, IncidentChange as EngineIncident, MonitorState, Status, Tick, decide,
};
use watchpost_channels::{Alert, AlertKind, FailedCondition, LocationRow};
use watchpost_config::{Config, Monitor, Secrets};
use watchpost_cron::Tz;
use watchpost_probes::Probes;
use watchpost_store::{
    IncidentChange, NewNotification, ResultRow, Step, Store, StoreError, Transition,
    TransitionOutcome,
};

/// `2026-11-30 11:30:29 +08:00`: how times are shown to people (messages, notes, tables).
pub fn local_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// `3h 5m`, `12m 5s`, `42s`: an age for people.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Replace every secret in every string of a JSON document.
pub fn redact_json(value: &mut serde_json::Value, secrets: &Secrets) {
    match value {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = secrets.redact(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, secrets)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| redact_json(v, secrets)),
        _ => {}
    }
}

/// One location's observation of one tick.
#[derive(Debug, Serialize)]
pub struct Observation {
    pub location: String,
    pub ok: bool,
    /// What failed, as people read it (`total 1430ms > 1000ms`, `connect refused: ...`).
    pub failures: Vec<String>,
    /// The check's report (the `watchpost check --json` shape), kept as its JSON text: one
    /// allocation per result, however many headers it holds.
    pub check: Box<serde_json::value::RawValue>,
}

/// What one run of a monitor's check came to, judged.
#[derive(Debug, Default)]
pub struct Observed {
    pub observations: Vec<Observation>,
    /// Each location's row for messages: its verdict and every metric of the kind.
    pub rows: Vec<LocationRow>,
    /// Every failed condition (or probe error) of every location, as data.
    pub failures: Vec<FailedCondition>,
    /// The probe's own state after this run, for kinds that compare with their previous run;
    /// committed with the tick (`MonitorState::probe`). `None` keeps the stored one.
    pub probe_state: Option<serde_json::Value>,
    /// Set when watchpost could not run the check itself (no file descriptors, no time left):
    /// the tick gets no verdict and the target is not blamed.
    pub not_run: Option<String>,
}

impl Observed {
    fn not_run(reason: String) -> Observed {
        Observed {
            not_run: Some(reason),
            ..Observed::default()
        }
    }
}

/// What one tick of one monitor came to.
#[derive(Debug, Serialize)]
pub struct MonitorOutcome {
    pub name: String,
    pub ok: bool,
    pub at: DateTime<Utc>,
    /// `up`, `down`, `pending`, or `unknown` when the tick could not be judged.
    pub state: &'static str,
    pub notifications: usize,
    pub observations: Vec<Observation>,
    /// Why watchpost could not judge this tick (the check could not run, or the store failed).
    pub error: Option<String>,
    /// Locations that did not report this tick (never counted as passing or failing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Why the tick got no verdict although watchpost did its job: too few locations
    /// reported to tell whether `quorum` of them fail. The state is left as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undecided: Option<String>,
    #[serde(skip)]
    pub rows: Vec<LocationRow>,
    /// The metrics a person reads first for the monitor's kind, in order
    /// (`CheckKind::columns`; empty when the tick could not be judged).
    #[serde(skip)]
    pub columns: &'static [&'static str],
}

impl MonitorOutcome {
    /// An outcome for a tick that watchpost could not judge.
    pub fn failed(
        name: &str,
        at: DateTime<Utc>,
        error: String,
        observed: Option<Observed>,
    ) -> Self {
        let (observations, rows) = observed
            .map(|o| (o.observations, o.rows))
            .unwrap_or_default();
        MonitorOutcome {
            name: name.to_string(),
            ok: false,
            at,
            state: "unknown",
            notifications: 0,
            observations,
            error: Some(error),
            missing: missing(&rows),
            undecided: None,
            rows,
            columns: &[],
        }
    }
}

impl Prepared {
    /// The outcome of a tick too few locations reported to judge (see
    /// [`MonitorOutcome::undecided`]).
    fn undecided(self, monitor: &Monitor, reason: String) -> MonitorOutcome {
        MonitorOutcome {
            name: monitor.name.clone(),
            ok: self.failing == 0,
            at: self.tick.at,
            state: "unknown",
            notifications: 0,
            observations: self.observations,
            error: None,
            missing: missing(&self.rows),
            undecided: Some(reason),
            rows: self.rows,
            columns: monitor.check.kind().columns(),
        }
    }
}

/// The locations of `rows` that did not report.
fn missing(rows: &[LocationRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.missing)
        .map(|r| r.location.clone())
        .collect()
}

/// The value of metric `name` on `row`, if the row has it.
pub fn metric(row: &LocationRow, name: &str) -> Option<f64> {
    row.metrics.iter().find(|m| m.name == name).map(|m| m.value)
}

/// The time a check may take: its own limits, and no more than what is left until the
/// scheduler's deadline for this run.
fn time_limit(
    monitor: &Monitor,
    own: Duration,
    deadline: Option<tokio::time::Instant>,
) -> Duration {
    let limit = own.min(monitor.timeout);
    match deadline {
        Some(d) => limit.min(d.saturating_duration_since(tokio::time::Instant::now())),
        None => limit,
    }
}

/// Run the monitor's check from every location this process serves (`local`), within
/// `deadline` when the scheduler gives one, and judge it against the monitor's conditions.
/// `previous_state` is the probe state the last tick stored, for kinds that keep one
/// (`CheckKind::keeps_state`); the new one is in [`Observed::probe_state`].
pub async fn observe(
    probes: &Probes,
    monitor: &Monitor,
    deadline: Option<tokio::time::Instant>,
    secrets: &Secrets,
    previous_state: Option<serde_json::Value>,
) -> Observed {
    let location = "local";
    let mut spec = monitor.check.clone();
    let limit = time_limit(monitor, spec.timeout(), deadline);
    if limit.is_zero() {
        return Observed::not_run(
            "no time was left before the monitor's next tick (watchpost is overloaded)".into(),
        );
    }
    spec.set_timeout(limit);
    #[cfg(feature = "fault-injection")]
    crate::fault::maybe_panic_in_check(&monitor.name);
    let (observation, probe_state) = if spec.kind().keeps_state() {
        probes.run_with_state(&spec, previous_state).await
    } else {
        (probes.run(&spec).await, None)
    };
    if let Some(e) = observation.error.as_ref().filter(|e| e.is_local()) {
        return Observed::not_run(secrets.redact(&e.message).into_owned());
    }
    let clean = |text: &str| secrets.redact(text).into_owned();
    let failures: Vec<FailedCondition> = observation
        .judge(&monitor.conditions)
        .into_iter()
        .map(|f| FailedCondition {
            location: location.to_string(),
            operand: f.operand,
            op: f.op,
            expected: clean(&f.expected),
            actual: clean(&f.actual),
            text: clean(&f.text),
            topic: f.topic,
        })
        .collect();
    let ok = failures.is_empty();
    let row = LocationRow {
        location: location.into(),
        ok,
        metrics: observation.metrics.clone(),
        error: observation
            .error
            .as_ref()
            .map(|e| format!("{} {}", e.phase, e.kind)),
        ..LocationRow::default()
    };
    let check = report_json(&observation, ok, &monitor.target, secrets);
    Observed {
        observations: vec![Observation {
            location: location.into(),
            ok,
            failures: failures.iter().map(|f| f.text.clone()).collect(),
            check,
        }],
        rows: vec![row],
        failures,
        probe_state,
        not_run: None,
    }
}

/// The check's report as stored and printed: the target as written in the config (its
/// `${VAR}`s unexpanded), every other string (headers, answers, error messages) cleaned of
/// secrets. Serialized straight to text; only when some form of a secret occurs in that text
/// is the document built and each of its strings cleaned ([`redact_json`]: structure and
/// numbers are never touched).
fn report_json(
    observation: &watchpost_probes::Observation,
    ok: bool,
    target: &str,
    secrets: &Secrets,
) -> Box<serde_json::value::RawValue> {
    let view = || observation.report_view(ok).with_url(target);
    if let Ok(raw) = serde_json::value::to_raw_value(&view())
        && matches!(secrets.redact(raw.get()), std::borrow::Cow::Borrowed(_))
    {
        return raw;
    }
    let mut check = serde_json::to_value(view()).unwrap_or_default();
    redact_json(&mut check, secrets);
    serde_json::value::to_raw_value(&check)
        .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
}

/// What [`commit`] needs besides the tick itself.
pub struct CommitContext<'a> {
    pub tz: Tz,
    pub secrets: &'a Secrets,
    pub health: &'a Health,
}

/// A judged tick, ready for the store: its result rows, its verdict over the locations and
/// what messages about it need.
pub struct Prepared {
    results: Vec<ResultRow>,
    tick: Tick,
    observations: Vec<Observation>,
    rows: Vec<LocationRow>,
    failures: Vec<FailedCondition>,
    probe_state: Option<serde_json::Value>,
    failing: u32,
    muted: bool,
}

/// Turn an observed tick into what the store records.
pub fn prepare(monitor: &Monitor, at: DateTime<Utc>, observed: Observed) -> Prepared {
    let Observed {
        observations,
        rows,
        failures,
        probe_state,
        ..
    } = observed;
    // The kind's main metrics are summarized (percentiles); a status code is not.
    let columns = monitor.check.kind().columns();
    let mut summarized: Vec<String> = Vec::new();
    for m in rows.iter().flat_map(|r| &r.metrics) {
        if m.name != "status" && columns.contains(&&*m.name) {
            let key = m.key();
            if !summarized.contains(&key) {
                summarized.push(key);
            }
        }
    }
    summarized.sort_unstable();
    let mut results: Vec<ResultRow> = observations
        .iter()
        .map(|o| ResultRow {
            monitor: monitor.name.clone(),
            location: o.location.clone(),
            at,
            ok: o.ok,
            data: o.check.get().to_string(),
            metrics: rows
                .iter()
                .find(|r| r.location == o.location)
                .map(|r| r.metrics.iter().map(|m| (m.key(), m.value)).collect())
                .unwrap_or_default(),
            summarize: Vec::new(),
        })
        .collect();
    // The last row takes the list itself; the others a copy.
    if let Some((last, others)) = results.split_last_mut() {
        for row in others {
            row.summarize.clone_from(&summarized);
        }
        last.summarize = summarized;
    }
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
    Prepared {
        results,
        tick,
        observations,
        rows,
        failures,
        probe_state,
        failing,
        muted: monitor.maintenance.iter().any(|w| w.active_at(at)),
    }
}

impl Prepared {
    fn outcome(self, monitor: &Monitor, status: Status, notifications: usize) -> MonitorOutcome {
        MonitorOutcome {
            name: monitor.name.clone(),
            ok: self.failing == 0,
            at: self.tick.at,
            state: match status {
                Status::Pending => "pending",
                Status::Up => "up",
                Status::Down => "down",
            },
            notifications,
            observations: self.observations,
            error: None,
            missing: missing(&self.rows),
            undecided: None,
            rows: self.rows,
            columns: monitor.check.kind().columns(),
        }
    }
}

/// Record a quiet tick — passing, up before and after, nothing to tell anyone — without a
/// write ([`Store::commit_quiet_tick`]): `Ok(Err(prepared))` hands the tick back for
/// [`commit_prepared`] when it isn't quiet (or the store has no such path). Cheap enough for
/// an async task.
pub fn commit_quiet(
    store: &dyn Store,
    monitor: &Monitor,
    prepared: Prepared,
) -> Result<Result<MonitorOutcome, Prepared>, StoreError> {
    if prepared.failing > 0 || prepared.results.is_empty() {
        return Ok(Err(prepared));
    }
    let mut quiet = |previous: Option<&str>| -> Option<String> {
        let previous = watchpost_alerting::state_from_json(previous?).ok()?;
        let status = previous.status;
        if status != Status::Up || previous.incident.is_some() || previous.consecutive_failures > 0
        {
            return None;
        }
        let mut d = decide(
            &monitor.name,
            Some(previous),
            &prepared.tick,
            &monitor.alert,
            prepared.muted,
        );
        if let Some(state) = &prepared.probe_state {
            d.state.probe = Some(state.clone());
        }
        if !d.events.is_empty() || d.incident.is_some() || d.state.status != status {
            return None;
        }
        Some(watchpost_alerting::state_to_json(&d.state))
    };
    Ok(
        match store.commit_quiet_tick(&monitor.name, &prepared.results, &mut quiet)? {
            Some(_) => Ok(prepared.outcome(monitor, Status::Up, 0)),
            None => Err(prepared),
        },
    )
}

/// Record the tick, run the alert engine on it and queue its notifications: one store
/// transaction. A tick watchpost could not run is not committed (the caller reports it).
pub fn commit(
    store: &dyn Store,
    monitor: &Monitor,
    at: DateTime<Utc>,
    observed: Observed,
    ctx: &CommitContext<'_>,
) -> Result<MonitorOutcome, StoreError> {
    commit_prepared(store, monitor, prepare(monitor, at, observed), ctx)
}

/// [`commit`] of a tick already [`prepare`]d.
pub fn commit_prepared(
    store: &dyn Store,
    monitor: &Monitor,
    prepared: Prepared,
    ctx: &CommitContext<'_>,
) -> Result<MonitorOutcome, StoreError> {
    let Prepared {
        ref results,
        ref tick,
        ref rows,
        ref failures,
        ref probe_state,
        muted,
        ..
    } = prepared;
    let kind = monitor.check.kind();
    let mut status = Status::Pending;
    let alert = Alert {
        kind: AlertKind::Down,
        monitor: monitor.name.clone(),
        incident_id: String::new(),
        at: tick.at,
        since: None,
        failures: failures.clone(),
        locations: rows.clone(),
        check: Some(kind.as_str().to_string()),
        columns: kind.columns().iter().map(|c| c.to_string()).collect(),
        url: Some(monitor.target.clone()),
        timezone: Some(ctx.tz.name().to_string()),
        notes: Vec::new(),
        message: None,
    };
    let mut decide_fn = |previous: Option<String>| -> Result<Transition, String> {
        let (transition, s) = transition_for(
            &monitor.name,
            previous,
            tick,
            &monitor.alert,
            muted,
            probe_state.as_ref(),
            &alert,
            ctx,
        )?;
        status = s;
        Ok(transition)
    };
    let outcome: TransitionOutcome = store.commit_tick(&monitor.name, results, &mut decide_fn)?;
    Ok(prepared.outcome(monitor, status, outcome.notifications_inserted))
}

/// The alert engine's decision on `tick` from the `previous` stored state, as the store's
/// [`Transition`]: the new state (carrying `probe_state` when given), one notification per
/// event and channel (`alert` filled in for the event; watchpost's own notes added), the
/// incident change. Also the new status.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transition_for(
    name: &str,
    previous: Option<String>,
    tick: &Tick,
    policy: &watchpost_alerting::AlertPolicy,
    muted: bool,
    probe_state: Option<&serde_json::Value>,
    alert: &Alert,
    ctx: &CommitContext<'_>,
) -> Result<(Transition, Status), String> {
    let previous: Option<MonitorState> = previous.and_then(|json| {
        watchpost_alerting::state_from_json(&json)
            .map_err(|e| {
                // One unreadable row must not stop this monitor (or any other) for good:
                // start it afresh, and say so.
                tracing::warn!(
                    "monitor {name:?}: its stored alert state is unreadable ({e}); starting it \
                     from a fresh state"
                );
            })
            .ok()
    });
    let mut d = decide(name, previous, tick, policy, muted);
    if let Some(state) = probe_state {
        d.state.probe = Some(state.clone());
    }
    let notes: Vec<String> = if d.events.is_empty() {
        Vec::new()
    } else {
        ctx.health.take_note(ctx.tz).into_iter().collect()
    };
    let mut notifications = Vec::new();
    for event in &d.events {
        let mut alert = alert.clone();
        alert.kind = match event.kind {
            EventKind::Down => AlertKind::Down,
            EventKind::Reminder => AlertKind::Reminder,
            EventKind::Resolved => AlertKind::Resolved,
        };
        alert.incident_id = event.incident_id.clone();
        alert.at = tick.at;
        alert.since = Some(event.incident_opened_at);
        alert.notes = notes.clone();
        // Every string was cleaned on the way in; the document is cleaned once more as a
        // whole, so nothing added later can carry a secret out.
        let mut payload: serde_json::Value =
            serde_json::from_str(&alert.to_json()).map_err(|e| e.to_string())?;
        redact_json(&mut payload, ctx.secrets);
        let payload = payload.to_string();
        for channel in &policy.channels {
            notifications.push(NewNotification {
                idempotency_key: format!("{}:{channel}", event.key),
                incident: Some(event.incident_id.clone()),
                channel: channel.clone(),
                payload: payload.clone(),
                created_at: tick.at,
            });
        }
    }
    let status = d.state.status;
    Ok((
        Transition {
            state: watchpost_alerting::state_to_json(&d.state),
            notifications,
            incident: d.incident.map(|c| match c {
                EngineIncident::Open {
                    id,
                    opened_at,
                    reason,
                } => IncidentChange::Open {
                    id,
                    monitor: name.to_string(),
                    opened_at,
                    reason,
                },
                EngineIncident::Close { id, closed_at } => IncidentChange::Close { id, closed_at },
            }),
        },
        status,
    ))
}

/// Observe and commit one tick of `monitor`, reporting watchpost's own failures to `health`
/// (and never as the target's). The commit runs on the blocking pool. A monitor with remote
/// locations also takes its agents' observations of the tick's slot, waiting for them until
/// `agents_until` (see [`crate::locations::slot`]).
#[allow(clippy::too_many_arguments)]
pub async fn tick(
    store: Arc<dyn Store>,
    probes: &Probes,
    hub: &crate::locations::Hub,
    config: Arc<Config>,
    index: usize,
    at: DateTime<Utc>,
    deadline: Option<tokio::time::Instant>,
    agents_until: Option<tokio::time::Instant>,
    health: Arc<Health>,
) -> MonitorOutcome {
    let monitor = &config.monitors[index];
    let previous_state = if monitor.check.kind().keeps_state() {
        stored_probe_state(store.clone(), &monitor.name, &config.secrets).await
    } else {
        None
    };
    let remote = crate::locations::slot::remote(monitor).next().is_some();
    let local = if monitor.locations.iter().any(|l| l == "local") {
        Some(observe(probes, monitor, deadline, &config.secrets, previous_state).await)
    } else {
        None
    };
    let not_run = |observed: &Observed| -> Option<String> {
        let reason = observed.not_run.as_ref()?;
        health.check_not_run(at, reason);
        tracing::error!(
            "{}: watchpost could not run the check: {reason}",
            monitor.name
        );
        Some(format!("watchpost could not run the check: {reason}"))
    };
    let observed = if remote {
        // The local check that could not run counts as missing; the agents still count.
        let local = local.filter(|l| not_run(l).is_none());
        let job = crate::daemon::job(&config, index);
        let slot = if job.fires_at(at) {
            at
        } else {
            job.latest_at_or_before(at, std::time::Duration::from_secs(86_400))
                .unwrap_or(at)
        };
        let rows = crate::locations::slot::gather(&store, hub, monitor, slot, agents_until).await;
        let merged = crate::locations::slot::merge(&config, monitor, local, rows);
        let missing = merged.rows.iter().filter(|r| r.missing).count() as u32;
        let failing = merged.observations.iter().filter(|o| !o.ok).count() as u32;
        let quorum = monitor.alert.quorum.max(1);
        if failing < quorum && failing + missing >= quorum {
            // The missing locations could tip it either way: record what was seen, judge
            // nothing (a missing location never counts as passing or failing).
            let reason = if merged.observations.is_empty() {
                "no location reported this tick".to_string()
            } else {
                format!(
                    "not judged: {failing} location(s) failing, {missing} missing, quorum {quorum}"
                )
            };
            let prepared = prepare(monitor, at, merged);
            let results = prepared.results.clone();
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.record_results(&results)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(
                    "{}: cannot record the locations' results: {}",
                    monitor.name,
                    config.secrets.redact(&e.to_string())
                ),
                Err(e) => tracing::warn!("{}: internal error recording results: {e}", monitor.name),
            }
            return prepared.undecided(monitor, reason);
        }
        merged
    } else {
        let Some(observed) = local else {
            return MonitorOutcome::failed(&monitor.name, at, "no location".into(), None);
        };
        if let Some(reason) = not_run(&observed) {
            return MonitorOutcome::failed(&monitor.name, at, reason, Some(observed));
        }
        observed
    };
    let name = monitor.name.clone();
    let started = std::time::Instant::now();
    let prepared = prepare(monitor, at, observed);
    // A quiet tick on a local store is recorded right here; otherwise on the blocking pool.
    let store_failed = |e: StoreError| {
        let message = config.secrets.redact(&e.to_string()).into_owned();
        health.store_failed(at, &message);
        tracing::error!("{name}: cannot record the check in the store: {message}");
        MonitorOutcome::failed(&name, at, format!("store: {message}"), None)
    };
    let (prepared, quiet_there) = if store.quiet_inline() {
        match commit_quiet(store.as_ref(), monitor, prepared) {
            Ok(Ok(outcome)) => {
                crate::metrics::TELEMETRY.commit.observe(started.elapsed());
                health.store_ok();
                return outcome;
            }
            Ok(Err(prepared)) => (prepared, false),
            Err(e) => return store_failed(e),
        }
    } else {
        (prepared, true)
    };
    let (c, h) = (config.clone(), health.clone());
    let committed = tokio::task::spawn_blocking(move || {
        let ctx = CommitContext {
            tz: c.timezone,
            secrets: &c.secrets,
            health: &h,
        };
        let monitor = &c.monitors[index];
        let prepared = if quiet_there {
            match commit_quiet(store.as_ref(), monitor, prepared)? {
                Ok(outcome) => return Ok(outcome),
                Err(prepared) => prepared,
            }
        } else {
            prepared
        };
        let committed = commit_prepared(store.as_ref(), monitor, prepared, &ctx);
        crate::metrics::TELEMETRY.commit.observe(started.elapsed());
        committed
    })
    .await;
    match committed {
        Ok(Ok(outcome)) => {
            health.store_ok();
            outcome
        }
        Ok(Err(e)) => store_failed(e),
        Err(e) => {
            tracing::error!("{name}: internal error while recording the check: {e}");
            health.store_failed(at, "internal error while committing");
            MonitorOutcome::failed(&name, at, format!("internal error: {e}"), None)
        }
    }
}

/// The probe state the monitor's last tick stored (`MonitorState::probe`), read on the
/// blocking pool. Nothing stored, an unreadable state or a store error give `None` (the probe
/// starts afresh), the last two with a warning.
async fn stored_probe_state(
    store: Arc<dyn Store>,
    name: &str,
    secrets: &Secrets,
) -> Option<serde_json::Value> {
    let owned = name.to_string();
    let read = tokio::task::spawn_blocking(move || store.state(&owned)).await;
    match read {
        Ok(Ok(Some(json))) => match watchpost_alerting::state_from_json(&json) {
            Ok(state) => state.probe,
            Err(e) => {
                tracing::warn!("{name}: its stored state is unreadable ({e}); starting afresh");
                None
            }
        },
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            let e = secrets.redact(&e.to_string()).into_owned();
            tracing::warn!("{name}: cannot read its stored state: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("{name}: internal error while reading its stored state: {e}");
            None
        }
    }
}

/// `14:02:05  shop  PASS  200  12.3ms` (or FAIL with the reasons, or ERROR with watchpost's
/// own problem): one line per tick, in the config's time zone.
pub fn one_line(o: &MonitorOutcome, tz: Tz) -> String {
    let row = o.rows.first();
    let status = row
        .and_then(|r| metric(r, "status"))
        .map(|s| format!("{s:.0}"))
        .unwrap_or_else(|| "—".into());
    let total = row
        .and_then(|r| metric(r, "total"))
        .map(|t| format!("{t:.1}ms"))
        .unwrap_or_default();
    let why: Vec<&str> = o
        .observations
        .iter()
        .flat_map(|obs| obs.failures.iter().map(String::as_str))
        .chain(o.error.as_deref())
        .chain(o.undecided.as_deref())
        .collect();
    let verdict = match (&o.error, o.ok) {
        (Some(_), _) => "ERROR",
        (None, _) if o.undecided.is_some() => "UNDECIDED",
        (None, true) => "PASS",
        (None, false) => "FAIL",
    };
    // Several locations: each one's verdict and total instead of the first one's.
    let measured = if o.rows.len() > 1 {
        o.rows
            .iter()
            .map(|r| {
                let v = if r.missing {
                    "MISSING".to_string()
                } else {
                    let total = metric(r, "total")
                        .map(|t| format!(" {t:.1}ms"))
                        .unwrap_or_default();
                    format!("{}{total}", if r.ok { "PASS" } else { "FAIL" })
                };
                format!("{}={v}", r.location)
            })
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        format!("{status}  {total}")
    };
    format!(
        "{}  {}  {verdict}  {measured}  {}",
        o.at.with_timezone(&tz).format("%H:%M:%S"),
        o.name,
        why.join("; ")
    )
    .trim_end()
    .to_string()
}

/// Retention: delete full results (and finished outbox rows) older than the config's
/// `retention.raw`, minute rollups older than `retention.minutes` and hour rollups older than
/// `retention.hours`, in chunks. A failure is logged, never fatal.
pub async fn prune(store: Arc<dyn Store>, config: &Config) {
    let now = Utc::now();
    let cutoff = |d: std::time::Duration| {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
    };
    let r = config.retention;
    let (raw, minutes, hours) = (cutoff(r.raw), cutoff(r.minutes), cutoff(r.hours));
    let pruned = tokio::task::spawn_blocking(move || -> Result<usize, StoreError> {
        let mut n = 0;
        if let Some(c) = raw {
            n += store.prune(c)?;
        }
        if let Some(c) = minutes {
            n += store.prune_rollups(Step::Minute, c)?;
        }
        if let Some(c) = hours {
            n += store.prune_rollups(Step::Hour, c)?;
        }
        Ok(n)
    })
    .await;
    match pruned {
        Ok(Ok(n)) => tracing::debug!("retention: {n} old row(s) deleted"),
        Ok(Err(e)) => tracing::warn!(
            "cannot prune old results: {}",
            config.secrets.redact(&e.to_string())
        ),
        Err(e) => tracing::warn!("cannot prune old results: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use watchpost_probes::{CheckKind, Detail, HttpDetail, Observation};
    use watchpost_units::{Metric, Unit};

    fn observation(header: &str) -> Observation {
        Observation {
            kind: CheckKind::Http,
            url: "http://127.0.0.1:9/health?token=s3cr3t-t0ken".into(),
            metrics: vec![
                Metric::new("total", 12.5, Unit::Ms),
                Metric::new("status", 200.0, Unit::Count),
            ],
            error: None,
            detail: Detail::Http(HttpDetail {
                status: Some(200),
                http_version: Some("HTTP/1.1"),
                remote_addr: None,
                redirects: 0,
                final_url: String::new(),
                size: 4242,
                headers: BTreeMap::from([("x-echo".to_string(), header.to_string())]),
                body: Default::default(),
                tls: None,
            }),
        }
    }

    fn secrets() -> Secrets {
        let mut s = Secrets::new();
        s.add("TOKEN", "s3cr3t-t0ken");
        // A value that also spells a number of the report: only strings are cleaned.
        s.add("SIZE", "4242");
        s
    }

    #[test]
    fn the_stored_report_is_the_printed_report_with_the_target_as_written() {
        let o = observation("plain");
        let target = "http://127.0.0.1:9/health?token=${TOKEN}";
        let raw = report_json(&o, true, target, &secrets());
        let mut expected = o.report(true);
        expected["url"] = target.into();
        let stored: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(stored, expected);
        assert_eq!(stored["size_bytes"], 4242);
        // Same keys, same order as `check --json`.
        assert_eq!(
            raw.get(),
            serde_json::to_string(&expected).unwrap(),
            "key order"
        );
    }

    #[test]
    fn a_secret_anywhere_in_a_string_is_masked_and_numbers_are_left_alone() {
        let o = observation("echo: GET /health?token=s3cr3t-t0ken and \"quoted\" 4242");
        let raw = report_json(&o, false, "http://127.0.0.1:9/health", &secrets());
        assert!(!raw.get().contains("s3cr3t-t0ken"), "{}", raw.get());
        let stored: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(
            stored["headers"]["x-echo"],
            "echo: GET /health?token=${TOKEN} and \"quoted\" ${SIZE}"
        );
        assert_eq!(stored["size_bytes"], 4242);
        assert_eq!(stored["ok"], false);
    }
}
