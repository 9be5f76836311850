//! The engine: what turns a validated config into checks, verdicts, stored state and delivered
//! notifications, for every runtime. `watchpost once` calls [`Engine::run_all`], `watchpost
//! run` calls [`daemon::run`]; later runtimes (serverless functions, probe agents) call the
//! same. The binary keeps arguments, printing, exit codes and signals; nothing here prints,
//! reads the command line or decides an exit code (logs go through `tracing`).
//!
//! - [`pipeline`]: one tick of one monitor — observe, judge, commit (one store transaction).
//! - [`outbox`]: the delivery worker, the only code that sends.
//! - [`once`]: every monitor once with bounded concurrency and an optional overall deadline.
//! - [`daemon`]: the scheduler-driven loop, the delivery worker and the web listener, stopped
//!   and reloaded by [`daemon::Command`]s the caller sends (signals are the binary's).
//! - [`health`]: what `/healthz` and the next alert say about watchpost itself.
//! - [`web`]: the bounded HTTP listener and its routes (the only module that knows axum).

pub mod agent;
pub mod buffer;
pub mod daemon;
pub mod due;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod health;
pub mod locations;
pub mod metrics;
pub mod once;
pub mod outbox;
pub mod pipeline;
pub mod status;
pub mod web;

pub use once::{RunReport, Selection, Skipped};
pub use pipeline::{MonitorOutcome, Observation, human_duration, local_time, metric, one_line};

use health::Health;
use std::collections::BTreeMap;
use std::sync::Arc;
use watchpost_channels::{Channel, ChannelConfig, Locale};
use watchpost_config::{ChannelSpec, Config};
use watchpost_probes::{ProberOptions, Probes};
use watchpost_store::Store;

/// `KIND-HOST-PID-RANDOM`: a name for this process that no other process on any host shares
/// (outbox leases, shard leases, an agent's pushes).
pub fn process_id(kind: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{kind}-{host}-{}-{nanos:08x}", std::process::id())
}

/// What can stop the engine from starting or working.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store can't be opened or used (the message never holds the URL's password).
    #[error("{0}")]
    Store(String),
    /// A channel can't be built from its settings (FILE:LINE:COL: channel "NAME": problem).
    #[error("{0}")]
    Channels(String),
    /// The probes can't be set up (TLS roots, resolver).
    #[error("{0}")]
    Probes(String),
    /// The web listener can't be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Build one configured channel; an error names the channel and where it is in the file.
pub fn build_channel(config: &Config, name: &str, spec: &ChannelSpec) -> Result<Channel, String> {
    ChannelConfig::from_value(spec.settings.clone())
        .and_then(|c| c.build())
        .map_err(|e| {
            format!(
                "{}:{}:{}: channel {name:?}: {}",
                config.file,
                spec.line,
                spec.column,
                config.secrets.redact(&e.0)
            )
        })
}

/// Build every configured channel, reporting all that fail (one line each).
pub fn build_channels(config: &Config) -> Result<BTreeMap<String, Arc<Channel>>, EngineError> {
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
        Err(EngineError::Channels(errors.join("\n")))
    }
}

pub fn locale(config: &Config) -> Locale {
    match config.locale {
        watchpost_config::Locale::ZhCn => Locale::ZhCn,
        watchpost_config::Locale::En => Locale::En,
    }
}

/// A config with everything built from it, swapped as one value on reload: the checks, the
/// delivery worker and the web layer never see the channels of one config with the locale of
/// another.
pub struct Generation {
    pub config: Arc<Config>,
    pub channels: Arc<BTreeMap<String, Arc<Channel>>>,
    pub locale: Locale,
}

impl Generation {
    /// A generation with the given (already built) channels.
    pub fn new(config: Config, channels: BTreeMap<String, Arc<Channel>>) -> Generation {
        Generation {
            locale: locale(&config),
            config: Arc::new(config),
            channels: Arc::new(channels),
        }
    }

    /// Build the config's channels and make a generation of it.
    pub fn build(config: Config) -> Result<Generation, EngineError> {
        let channels = build_channels(&config)?;
        Ok(Generation::new(config, channels))
    }
}

/// The long-lived parts every runtime shares: the store, the probes, and watchpost's own
/// health. Cheap to share (`Arc<Engine>`).
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub probes: Arc<Probes>,
    pub health: Arc<Health>,
    /// This process's id in outbox leases and shard leases.
    pub worker: String,
    /// What ingest tells ticks waiting for their agents.
    pub hub: Arc<locations::Hub>,
    /// Which monitors this process schedules (all of them, unless replicas share the work).
    pub shards: Arc<locations::Shards>,
}

impl Engine {
    /// Open the config's store and set up the probes (system resolver, webpki roots).
    /// `worker` names this process in outbox leases (`once-PID`, `run-PID`).
    pub fn open(config: &Config, worker: impl Into<String>) -> Result<Engine, EngineError> {
        let store = watchpost_store::open(&config.storage).map_err(|e| {
            EngineError::Store(
                config
                    .secrets
                    .redact(&format!("cannot open the store: {e}"))
                    .into_owned(),
            )
        })?;
        let probes = Probes::new(ProberOptions::default())
            .map_err(|e| EngineError::Probes(e.to_string()))?;
        Ok(Engine::with(store, Arc::new(probes), worker))
    }

    /// An engine on an open store and probes (tests, embedding).
    pub fn with(store: Arc<dyn Store>, probes: Arc<Probes>, worker: impl Into<String>) -> Engine {
        Engine {
            store,
            probes,
            health: Health::new(),
            worker: worker.into(),
            hub: locations::Hub::new(),
            shards: locations::Shards::all(),
        }
    }

    /// One tick of monitor `index` of `generation`'s config, scheduled at `at`, within
    /// `deadline` when the scheduler gives one.
    pub async fn tick(
        &self,
        generation: &Generation,
        index: usize,
        at: chrono::DateTime<chrono::Utc>,
        deadline: Option<tokio::time::Instant>,
    ) -> MonitorOutcome {
        pipeline::tick(
            self.store.clone(),
            &self.probes,
            &self.hub,
            generation.config.clone(),
            index,
            at,
            deadline,
            None,
            self.health.clone(),
        )
        .await
    }

    /// [`Engine::tick`] of a scheduled slot `at`, waiting for the monitor's agents to report
    /// it (until its timeout and [`locations::slot::PUSH_GRACE`] after the slot, at most 90%
    /// of its period).
    pub async fn tick_waiting(
        &self,
        generation: &Generation,
        index: usize,
        at: chrono::DateTime<chrono::Utc>,
        deadline: Option<tokio::time::Instant>,
    ) -> MonitorOutcome {
        let config = &generation.config;
        let monitor = &config.monitors[index];
        let until = locations::slot::remote(monitor).next().map(|_| {
            let job = daemon::job(config, index);
            let period = job.next_after(at).and_then(|n| (n - at).to_std().ok());
            let end = at
                + chrono::Duration::from_std(locations::slot::wait_after_slot(monitor, period))
                    .unwrap_or_default();
            let left = (end - chrono::Utc::now()).to_std().unwrap_or_default();
            tokio::time::Instant::now() + left
        });
        pipeline::tick(
            self.store.clone(),
            &self.probes,
            &self.hub,
            config.clone(),
            index,
            at,
            deadline,
            until,
            self.health.clone(),
        )
        .await
    }

    /// Deliver everything due now and wait for every send.
    pub async fn deliver_due(
        &self,
        generation: &Arc<Generation>,
    ) -> Result<outbox::Delivered, EngineError> {
        outbox::deliver_due(&self.store, generation, &self.worker)
            .await
            .map_err(EngineError::Store)
    }

    /// Periodic maintenance: retention. Failures are logged, never fatal.
    pub async fn maintain(&self, generation: &Generation) {
        self.flush().await;
        pipeline::prune(self.store.clone(), &generation.config).await;
    }

    /// Write what quiet ticks left waiting in the store ([`watchpost_store::Store::flush`]).
    /// Failures are logged (the entries wait for the next flush), never fatal.
    pub async fn flush(&self) {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("cannot write the latest results and rollups: {e}"),
            Err(e) => tracing::warn!("internal error while writing results: {e}"),
        }
    }
}
