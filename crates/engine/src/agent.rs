//! The probe agent (`watchpost probe`): checks a location's monitors for a central server.
//!
//! It pulls its assignment from the server (`POST /api/v1/agent/assignment`, again every
//! [`REFRESH_EVERY`] and whenever a push's answer names another generation), runs those
//! monitors with the same scheduler and [`crate::pipeline::observe`] as `watchpost run` (same
//! spread offsets, so its ticks land on the server's slots), and appends each judged
//! observation to its on-disk [`Buffer`]. A sender pushes the buffer in order, in batches
//! (`POST /api/v1/ingest`), and drops a batch from the buffer only once the server took it
//! (or refused it for good: `400`, `403`, `413`, logged). While the server can't be reached
//! the buffer grows (bounded; the oldest records go first, counted and reported in the next
//! push) and the sender retries with backoff from 1 s to 60 s.

use crate::buffer::Buffer;
use crate::locations::wire::{
    Accepted, Assignment, BATCH_BYTES, LOCATION_HEADER, MAX_OBSERVATIONS, VERSION, WireObservation,
};
use crate::pipeline::observe;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use watchpost_channels::http::{Answer, Endpoint};
use watchpost_config::Config;
use watchpost_probes::Probes;
use watchpost_scheduler::{BoxFuture, Run, Scheduler, SystemClock};

/// How often the agent pulls its assignment again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How long one request to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest wait between two attempts to reach the server.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What `watchpost probe` was given.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The server's base URL (`https://watchpost.example.com`).
    pub server: String,
    /// The location's token (never logged).
    pub token: String,
    pub location: String,
    /// Where the buffer's segment files live.
    pub buffer_dir: PathBuf,
    /// The buffer's bound in bytes.
    pub buffer_max: u64,
    /// A CA file to trust for the server's certificate, besides the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// What stops the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("--server: {0}")]
    Server(String),
    #[error("cannot open the buffer in {dir}: {source}")]
    Buffer { dir: String, source: std::io::Error },
}

/// The agent's link to its server.
struct Link {
    assignment: Endpoint,
    ingest: Endpoint,
    headers: axum::http::HeaderMap,
    location: String,
}

impl Link {
    fn new(opts: &AgentOptions) -> Result<Link, AgentError> {
        let base = opts.server.trim_end_matches('/');
        let endpoint = |path: &str| {
            Endpoint::new(
                &format!("{base}{path}"),
                opts.ca_file.as_deref(),
                "--server",
            )
            .map_err(|e| AgentError::Server(e.to_string()))
        };
        let mut headers = axum::http::HeaderMap::new();
        let mut auth = axum::http::HeaderValue::from_str(&format!("Bearer {}", opts.token))
            .map_err(|_| AgentError::Server("the token can't be sent in a header".into()))?;
        auth.set_sensitive(true);
        headers.insert(axum::http::header::AUTHORIZATION, auth);
        if let Ok(v) = axum::http::HeaderValue::from_str(&opts.location) {
            headers.insert(LOCATION_HEADER, v);
        }
        Ok(Link {
            assignment: endpoint("/api/v1/agent/assignment")?,
            ingest: endpoint("/api/v1/ingest")?,
            headers,
            location: opts.location.clone(),
        })
    }

    async fn post(&self, to: &Endpoint, body: Vec<u8>) -> Result<Answer, String> {
        to.post(None, &self.headers, body, REQUEST_TIMEOUT)
            .await
            .map_err(|e| e.to_string())
    }

    /// The location's assignment, or why not.
    async fn fetch(&self) -> Result<Assignment, String> {
        let answer = self.post(&self.assignment, b"{}".to_vec()).await?;
        if !answer.status.is_success() {
            return Err(format!(
                "the server answered {}: {}",
                answer.status,
                answer.short_body()
            ));
        }
        let a: Assignment = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("the server's assignment can't be read: {e}"))?;
        if a.v != VERSION || a.location != self.location {
            return Err(format!(
                "the server sent an assignment for {:?} (version {}), not for {:?}",
                a.location, a.v, self.location
            ));
        }
        Ok(a)
    }
}

/// Shared between the checks, the sender and the loop.
struct Shared {
    buffer: Mutex<Buffer>,
    /// A record was added.
    added: Notify,
    /// The generation the server named in its last answer.
    server_generation: Mutex<String>,
    /// The server named a generation other than ours.
    stale: Notify,
    probe_states: Mutex<HashMap<String, serde_json::Value>>,
    observed: std::sync::atomic::AtomicU64,
}

/// Run the agent until `stop` resolves: then stop checking, give the sender a few seconds to
/// push what is buffered (the rest waits on disk for the next start) and return.
pub async fn run(
    opts: AgentOptions,
    probes: Arc<Probes>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let link = Arc::new(Link::new(&opts)?);
    let buffer =
        Buffer::open(&opts.buffer_dir, opts.buffer_max).map_err(|source| AgentError::Buffer {
            dir: opts.buffer_dir.display().to_string(),
            source,
        })?;
    if !buffer.is_empty() {
        tracing::info!(
            "{} observation(s) from before wait in the buffer; sending them first",
            buffer.len()
        );
    }
    let shared = Arc::new(Shared {
        buffer: Mutex::new(buffer),
        added: Notify::new(),
        server_generation: Mutex::new(String::new()),
        stale: Notify::new(),
        probe_states: Mutex::new(HashMap::new()),
        observed: Default::default(),
    });
    let agent_id = crate::process_id("probe");
    let sender = tokio::spawn(send_loop(link.clone(), shared.clone(), agent_id));
    let _sender_guard = watchpost_net::AbortOnDrop::new(sender);
    tokio::pin!(stop);

    let mut current: Option<(String, Arc<Config>)> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        // Pull the assignment until it comes.
        let assignment = tokio::select! {
            _ = &mut stop => break,
            a = link.fetch() => a,
        };
        let (generation, config) = match assignment {
            Ok(a) => match watchpost_config::parse_with_env(
                &format!("assignment of {}", opts.location),
                &mark_requests(&a.config, &opts.location),
                &a.env,
            ) {
                Ok(config) => (a.generation, Arc::new(config)),
                Err(e) => {
                    tracing::error!("the server's assignment is not valid here: {e}");
                    wait_or_stop(&mut stop, backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!("cannot get the assignment: {e}; retrying in {backoff:?}");
                if wait_or_stop(&mut stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            // Unchanged: keep running; look again later.
        } else {
            tracing::info!(
                "location {}: running {} monitor(s) (assignment {generation})",
                opts.location,
                config.monitors.len()
            );
            current = Some((generation.clone(), config));
        }
        let (_, config) = current.clone().expect("set above");
        *shared
            .server_generation
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = generation.clone();
        // Run this assignment until it changes, the refresh time comes, or stop.
        let (stop_checks, checks_stopped) = oneshot::channel::<()>();
        let scheduler = Scheduler::new(
            crate::daemon::jobs(&config),
            config.concurrency,
            SystemClock,
        );
        let scheduled = tokio::spawn(scheduler.run(
            runner(probes.clone(), config.clone(), shared.clone()),
            async {
                let _ = checks_stopped.await;
            },
        ));
        let stopping = loop {
            tokio::select! {
                _ = &mut stop => break true,
                _ = tokio::time::sleep(REFRESH_EVERY) => {}
                _ = shared.stale.notified() => {}
            }
            // Keep running unless the server's assignment changed; while the server can't
            // be reached, keep checking (the buffer keeps the observations).
            match link.fetch().await {
                Ok(a) if a.generation != generation => break false,
                Ok(_) => {}
                Err(e) => tracing::debug!("cannot refresh the assignment: {e}"),
            }
        };
        let _ = stop_checks.send(());
        let _ = scheduled.await;
        if stopping {
            break;
        }
    }
    // Give the sender a moment to push what is buffered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline
        && !shared
            .buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = shared
        .buffer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len();
    tracing::info!(
        "stopped after {} observation(s); {left} wait in the buffer for the next start",
        shared.observed.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}

/// The header every HTTP check of an agent sends, naming its location, so the target's logs
/// (and a test's target) can tell the locations apart. A monitor's own header of that name
/// wins.
pub const LOCATION_REQUEST_HEADER: &str = "X-Watchpost-Location";

/// The assignment's config with [`LOCATION_REQUEST_HEADER`] added to each HTTP monitor's
/// `headers` (unchanged when it can't be read: validation then reports it).
fn mark_requests(config: &str, location: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(config) else {
        return config.to_string();
    };
    if let Some(monitors) = doc.get_mut("monitors").and_then(|m| m.as_array_mut()) {
        for m in monitors.iter_mut().filter_map(|m| m.as_object_mut()) {
            let http = m
                .get("type")
                .and_then(|t| t.as_str())
                .is_none_or(|t| t == "http");
            if !http || !m.contains_key("url") {
                continue;
            }
            let headers = m.entry("headers").or_insert_with(|| serde_json::json!({}));
            if let Some(h) = headers.as_object_mut()
                && !h
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case(LOCATION_REQUEST_HEADER))
            {
                h.insert(LOCATION_REQUEST_HEADER.into(), location.into());
            }
        }
    }
    doc.to_string()
}

/// Sleep `d` unless `stop` resolves first (then true).
async fn wait_or_stop(
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    d: Duration,
) -> bool {
    tokio::select! {
        _ = stop.as_mut() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// One tick of one monitor: observe, judge, buffer.
fn runner(
    probes: Arc<Probes>,
    config: Arc<Config>,
    shared: Arc<Shared>,
) -> impl Fn(Run) -> BoxFuture + Send + Sync + 'static {
    move |run: Run| {
        let (probes, config, shared) = (probes.clone(), config.clone(), shared.clone());
        Box::pin(async move {
            let monitor = &config.monitors[run.job];
            let previous = monitor
                .check
                .kind()
                .keeps_state()
                .then(|| {
                    shared
                        .probe_states
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&monitor.name)
                        .cloned()
                })
                .flatten();
            let observed = observe(
                &probes,
                monitor,
                Some(run.deadline),
                &config.secrets,
                previous,
            )
            .await;
            if let Some(why) = &observed.not_run {
                tracing::error!("{}: could not run the check: {why}", monitor.name);
                return;
            }
            if let Some(state) = observed.probe_state.clone() {
                shared
                    .probe_states
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(monitor.name.clone(), state);
            }
            let Some(wire) = wire(monitor, run.scheduled_at, run.started_at, observed) else {
                return;
            };
            tracing::info!(
                target: crate::daemon::CHECKS_TARGET,
                "{}  {}  {}",
                run.scheduled_at.with_timezone(&config.timezone).format("%H:%M:%S"),
                monitor.name,
                if wire.ok { "PASS" } else { "FAIL" }
            );
            let record = match serde_json::to_vec(&wire) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("{}: cannot encode the observation: {e}", monitor.name);
                    return;
                }
            };
            let pushed = shared
                .buffer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&[record]);
            match pushed {
                Ok(()) => {
                    shared
                        .observed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    shared.added.notify_one();
                }
                Err(e) => tracing::error!(
                    "{}: cannot write the observation to the buffer: {e}",
                    monitor.name
                ),
            }
        }) as BoxFuture
    }
}

/// An observed tick as the wire carries it (`None` when it holds no observation).
fn wire(
    monitor: &watchpost_config::Monitor,
    slot: chrono::DateTime<chrono::Utc>,
    at: chrono::DateTime<chrono::Utc>,
    observed: crate::pipeline::Observed,
) -> Option<WireObservation> {
    let observation = observed.observations.into_iter().next()?;
    let row = observed.rows.into_iter().next().unwrap_or_default();
    Some(WireObservation {
        monitor: monitor.name.clone(),
        slot,
        at,
        ok: observation.ok,
        failures: observed.failures,
        metrics: row.metrics,
        error: row.error,
        report: observation.check,
    })
}

/// A push's body: the batch's fields and `records` (each an observation's JSON) as its
/// observations.
fn batch_body(
    location: &str,
    agent: &str,
    seq: u64,
    generation: &str,
    dropped: u64,
    records: &[Vec<u8>],
) -> Vec<u8> {
    let mut body = serde_json::to_vec(&serde_json::json!({
        "v": VERSION,
        "location": location,
        "agent": agent,
        "seq": seq,
        "generation": generation,
        "dropped": dropped,
    }))
    .unwrap_or_default();
    // Append the records (already JSON) as the observations array.
    body.pop();
    body.extend_from_slice(b",\"observations\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r);
    }
    body.extend_from_slice(b"]}");
    body
}

/// The agent as a serverless function (`watchpost function --location NAME`): each
/// invocation pulls the assignment, checks every assigned monitor once for its latest slot
/// and pushes the observations before it returns. No buffer: a push that fails fails the
/// invocation, and the platform's retry checks the same slots again (the server keeps one
/// observation per slot).
pub struct FunctionAgent {
    link: Link,
    probes: Arc<Probes>,
    agent: String,
}

impl FunctionAgent {
    pub fn new(opts: &AgentOptions, probes: Arc<Probes>) -> Result<FunctionAgent, AgentError> {
        Ok(FunctionAgent {
            link: Link::new(opts)?,
            probes,
            agent: crate::process_id("function"),
        })
    }

    /// One invocation judged at `at`, its checks within `deadline`: a JSON summary
    /// (`location`, `observed`, `stored`, `duplicates`, `failing`, `skipped`), or why it
    /// failed.
    pub async fn invoke(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<serde_json::Value, String> {
        let a = self.link.fetch().await?;
        let config = watchpost_config::parse_with_env(
            &format!("assignment of {}", self.link.location),
            &mark_requests(&a.config, &self.link.location),
            &a.env,
        )
        .map_err(|e| format!("the server's assignment is not valid here: {e}"))?;
        // Keep a fifth of the time (at most 2 s) for the push.
        let checks_until = deadline.map(|d| {
            let left = d.saturating_duration_since(tokio::time::Instant::now());
            d - (left / 5).min(Duration::from_secs(2))
        });
        let mut skipped = Vec::new();
        let mut set = tokio::task::JoinSet::new();
        let permits = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
        let config = Arc::new(config);
        for i in 0..config.monitors.len() {
            let job = crate::daemon::job(&config, i);
            let Some(slot) = job.latest_at_or_before(at, Duration::from_secs(86_400)) else {
                skipped.push(config.monitors[i].name.clone());
                continue;
            };
            let (config, probes, permits) = (config.clone(), self.probes.clone(), permits.clone());
            set.spawn(async move {
                let _permit = permits.acquire_owned().await.ok()?;
                let monitor = &config.monitors[i];
                let started = chrono::Utc::now();
                let observed = observe(&probes, monitor, checks_until, &config.secrets, None).await;
                if let Some(why) = &observed.not_run {
                    tracing::error!("{}: could not run the check: {why}", monitor.name);
                    return None;
                }
                wire(monitor, slot, started, observed)
            });
        }
        let mut observations = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok(Some(o)) = done {
                observations.push(o);
            }
        }
        observations.sort_by(|a, b| a.monitor.cmp(&b.monitor));
        let failing: Vec<String> = observations
            .iter()
            .filter(|o| !o.ok)
            .map(|o| o.monitor.clone())
            .collect();
        let (mut stored, mut duplicates) = (0, 0);
        for (seq, chunk) in observations.chunks(MAX_OBSERVATIONS).enumerate() {
            let records: Vec<Vec<u8>> = chunk
                .iter()
                .map(|o| serde_json::to_vec(o).unwrap_or_default())
                .collect();
            let body = batch_body(
                &self.link.location,
                &self.agent,
                seq as u64 + 1,
                &a.generation,
                0,
                &records,
            );
            let answer = self.link.post(&self.link.ingest, body).await?;
            if !answer.status.is_success() {
                return Err(format!(
                    "the server refused the observations ({}): {}",
                    answer.status,
                    answer.short_body()
                ));
            }
            let accepted: Accepted = serde_json::from_slice(&answer.body)
                .map_err(|e| format!("the server's answer can't be read: {e}"))?;
            stored += accepted.stored;
            duplicates += accepted.duplicates;
        }
        Ok(serde_json::json!({
            "location": self.link.location,
            "observed": observations.len(),
            "stored": stored,
            "duplicates": duplicates,
            "failing": failing,
            "skipped": skipped,
        }))
    }
}

/// Push the buffer in order, forever (aborted when the agent stops).
async fn send_loop(link: Arc<Link>, shared: Arc<Shared>, agent: String) {
    let mut seq: u64 = 0;
    let mut dropped: u64 = 0;
    let mut backoff = Duration::from_secs(1);
    loop {
        let peeked = {
            let mut buffer = shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
            let lost = buffer.take_dropped();
            if lost > 0 {
                tracing::warn!(
                    "the buffer is full: {lost} oldest observation(s) dropped (reported to the server)"
                );
            }
            dropped += lost;
            buffer.peek(MAX_OBSERVATIONS, BATCH_BYTES)
        };
        let peeked = match peeked {
            Ok(p) if p.records.is_empty() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), shared.added.notified()).await;
                continue;
            }
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read the buffer: {e}");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        seq += 1;
        let generation = shared
            .server_generation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let body = batch_body(
            &link.location,
            &agent,
            seq,
            &generation,
            dropped,
            &peeked.records,
        );
        let count = peeked.records.len();
        let ack = |what: &str| {
            if let Err(e) = shared
                .buffer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .ack(peeked.next)
            {
                tracing::error!("cannot remove {what} observations from the buffer: {e}");
            }
        };
        match link.post(&link.ingest, body).await {
            Ok(answer) if answer.status.is_success() => {
                ack("sent");
                dropped = 0;
                backoff = Duration::from_secs(1);
                if let Ok(a) = serde_json::from_slice::<Accepted>(&answer.body) {
                    tracing::debug!(
                        "pushed {count}: {} stored, {} already there",
                        a.stored,
                        a.duplicates
                    );
                    if !generation.is_empty() && a.generation != generation {
                        shared.stale.notify_one();
                    }
                }
            }
            Ok(answer) if matches!(answer.status.as_u16(), 400 | 403 | 413) => {
                tracing::error!(
                    "the server refused {count} observation(s) for good ({}): {}; they are dropped",
                    answer.status,
                    answer.short_body()
                );
                ack("refused");
                shared.stale.notify_one();
            }
            Ok(answer) => {
                tracing::warn!(
                    "the server answered {}: {}; retrying in {backoff:?}",
                    answer.status,
                    answer.short_body()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => {
                tracing::warn!(
                    "cannot reach the server: {e}; {} observation(s) wait in the buffer; retrying in {backoff:?}",
                    shared
                        .buffer
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .len()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
