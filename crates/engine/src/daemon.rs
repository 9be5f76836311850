//! The daemon (`watchpost run`): the scheduler fires each monitor on its schedule; each tick
//! goes through the pipeline (check → conditions → one store transaction with the alert
//! engine → outbox); a delivery worker sends the outbox continuously; the web listener answers
//! `/healthz`; old results are pruned every [`maintenance_every`].
//!
//! The caller drives it with [`Command`]s (the binary turns signals into them): `Reload` swaps
//! the whole [`Generation`] at once (checks in flight finish under the old one), `Stop` stops
//! firing, lets checks in flight finish, flushes the outbox and returns [`Exit::Stopped`];
//! `StopNow` — or a second `Stop` — during that returns [`Exit::Forced`] at once (undelivered
//! notifications stay queued). A panic in the scheduler loop or the delivery worker returns
//! [`Exit::Fatal`] so a supervisor can restart the process: never a live-looking process that
//! monitors nothing.

use crate::web::{self, AppState, Limits, current};
use crate::{Engine, Generation, outbox, pipeline};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};
use watchpost_config::Config;
use watchpost_net::AbortOnDrop;
use watchpost_scheduler::{BoxFuture, Job, Run, Scheduler, SystemClock};

/// How often the daemon prunes old results while it runs, at most (see [`maintenance_every`]).
pub const MAINTENANCE_EVERY: Duration = Duration::from_secs(10 * 60);

/// How often to prune for `config`: every [`MAINTENANCE_EVERY`], or a tenth of the shortest
/// retention when that is shorter (at least a second), so nothing outlives its retention by
/// more than a tenth of it.
pub fn maintenance_every(config: &Config) -> Duration {
    let r = config.retention;
    let shortest = r.raw.min(r.minutes).min(r.hours);
    (shortest / 10).clamp(Duration::from_secs(1), MAINTENANCE_EVERY)
}

/// The longest the delivery worker sleeps without being woken (a safety net: it is woken by
/// new notifications, finished sends and the store's next due time).
pub const DELIVERY_IDLE_MAX: Duration = Duration::from_secs(10);

/// How long until the store's next item may be claimed (`Store::next_wake`), between 10 ms
/// and [`DELIVERY_IDLE_MAX`]; a second when the store can't say.
async fn next_claim_in(store: &Arc<dyn watchpost_store::Store>) -> Duration {
    let s = store.clone();
    let now = chrono::Utc::now();
    match tokio::task::spawn_blocking(move || s.next_wake(now)).await {
        Ok(Ok(None)) => DELIVERY_IDLE_MAX,
        Ok(Ok(Some(at))) => (at - now)
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(10), DELIVERY_IDLE_MAX),
        _ => Duration::from_secs(1),
    }
}

/// The log target of the one-line-per-check lines.
pub const CHECKS_TARGET: &str = "watchpost::checks";

/// What the caller asks of a running daemon.
pub enum Command {
    /// Swap in a new config generation.
    Reload(Box<Generation>),
    /// Stop gracefully (a second one means now).
    Stop,
    /// Stop at once.
    StopNow,
}

/// How the daemon ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped on request, checks finished and the outbox flushed.
    Stopped,
    /// Stopped at once on request; what was in flight was abandoned.
    Forced,
    /// A task that keeps watchpost working died (the reason).
    Fatal(String),
}

/// The scheduler's job for monitor `index` of `config` (agents build the same, so their
/// ticks land on the server's slots).
pub fn job(config: &Config, index: usize) -> Job {
    let m = &config.monitors[index];
    Job {
        name: m.name.clone(),
        schedule: m.schedule.clone(),
        tz: config.timezone,
        spread: m.spread,
        timeout: m.timeout,
    }
}

pub fn jobs(config: &Config) -> Vec<Job> {
    (0..config.monitors.len()).map(|i| job(config, i)).collect()
}

/// How often the results of quiet ticks are written (see `Store::flush`): what a crash may
/// lose of passing ticks' counts, and how stale another process's `status` may be. A flush
/// writes a few rows per monitor however many ticks it holds (its state, latest result and
/// rollup rows, each read and rewritten): the longer the interval, the less each tick costs
/// (BENCHMARKS.md section 6), while memory stays the same (one entry per monitor).
pub const FLUSH_EVERY: Duration = Duration::from_secs(15);

/// The runner for one config generation: a tick = observe (within the scheduler's deadline)
/// + commit, then wake the delivery worker.
fn runner(
    engine: Arc<Engine>,
    generation: Arc<Generation>,
    wake: Arc<Notify>,
) -> impl Fn(Run) -> BoxFuture + Send + Sync + 'static {
    move |run: Run| {
        let (engine, generation, wake) = (engine.clone(), generation.clone(), wake.clone());
        Box::pin(async move {
            let monitor = &generation.config.monitors[run.job];
            // With replicas, another process schedules the monitors of shards it holds.
            if !engine.shards.owns(&monitor.name) {
                return;
            }
            crate::metrics::TELEMETRY.lateness.observe(run.lateness());
            let outcome = engine
                .tick_waiting(&generation, run.job, run.scheduled_at, Some(run.deadline))
                .await;
            tracing::info!(
                target: CHECKS_TARGET,
                "{}",
                pipeline::one_line(&outcome, generation.config.timezone)
            );
            if outcome.notifications > 0 {
                wake.notify_one();
            }
        }) as BoxFuture
    }
}

/// What a wait for a task to end came to.
enum Waited {
    /// It ended. `stop`: a `Stop` arrived meanwhile (stop after this); `reload`: the newest
    /// config that arrived meanwhile.
    Done {
        stop: bool,
        reload: Option<Box<Generation>>,
    },
    /// The caller said "now" (a `StopNow`, or a `Stop` while already stopping).
    Now,
}

/// Wait for `task` to end while taking commands: when `stopping`, a `Stop` means "now";
/// otherwise it is remembered, and so is the newest `Reload`.
async fn wait_for<T>(
    task: &mut tokio::task::JoinHandle<T>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    mut stopping: bool,
) -> Waited {
    let mut reload = None;
    loop {
        tokio::select! {
            _ = &mut *task => return Waited::Done { stop: stopping, reload },
            command = commands.recv() => match command {
                Some(Command::StopNow) | None => return Waited::Now,
                Some(Command::Stop) if stopping => return Waited::Now,
                Some(Command::Stop) => stopping = true,
                Some(Command::Reload(next)) => reload = Some(next),
            },
        }
    }
}

/// Run the daemon until a `Stop` (see the module docs). `listener` serves `/healthz` with
/// `limits`.
pub async fn run(
    engine: Arc<Engine>,
    first: Generation,
    listener: TcpListener,
    limits: Limits,
    mut commands: mpsc::UnboundedReceiver<Command>,
) -> Exit {
    let generation = Arc::new(RwLock::new(Arc::new(first)));
    let (web_stop, web_stopped) = oneshot::channel::<()>();
    let app = web::app(AppState {
        health: engine.health.clone(),
        store: engine.store.clone(),
        generation: generation.clone(),
        hub: engine.hub.clone(),
    });
    let web = tokio::spawn(web::serve(listener, app, limits, async {
        let _ = web_stopped.await;
    }));

    // The delivery worker: claims whenever woken by a commit, when a send finishes, and when
    // the store says the next item becomes due (a retry, an expired lease; at the latest every
    // `DELIVERY_IDLE_MAX`); sends run concurrently and never hold up the next claim.
    let wake = Arc::new(Notify::new());
    let (worker_stop, mut worker_stopped) = oneshot::channel::<()>();
    let mut worker = {
        let (engine, wake, generation) = (engine.clone(), wake.clone(), generation.clone());
        tokio::spawn(async move {
            let mut inflight = tokio::task::JoinSet::new();
            let mut idle = Duration::ZERO;
            loop {
                let stopping = tokio::select! {
                    _ = wake.notified() => false,
                    _ = tokio::time::sleep(idle) => false,
                    Some(_) = inflight.join_next(), if !inflight.is_empty() => false,
                    _ = &mut worker_stopped => true,
                };
                let g = current(&generation);
                if stopping {
                    // Flush: wait for the sends in flight, then deliver what is due.
                    outbox::join_all(&mut inflight).await;
                    if let Err(e) = engine.deliver_due(&g).await {
                        tracing::error!("delivery: {e}");
                    }
                    break;
                }
                if let Err(e) =
                    outbox::claim_round(&engine.store, &g, &engine.worker, &mut inflight).await
                {
                    engine
                        .health
                        .store_failed(chrono::Utc::now(), &format!("claiming notifications: {e}"));
                    tracing::error!("delivery: cannot claim notifications: {e}");
                }
                idle = next_claim_in(&engine.store).await;
            }
        })
    };

    // Periodic maintenance (retention) while the daemon runs, not only when it stops.
    let maintenance = {
        let (engine, generation) = (engine.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                // Read anew each round: a reload may change the retention.
                let every = maintenance_every(&current(&generation).config);
                tokio::time::sleep(every).await;
                engine.maintain(&current(&generation)).await;
            }
        })
    };
    let _maintenance = AbortOnDrop::new(maintenance);
    // Quiet ticks' results wait in memory; written every FLUSH_EVERY (and when stopping).
    let flusher = {
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                engine.flush().await;
            }
        })
    };
    let _flusher = AbortOnDrop::new(flusher);
    // Replicas on one PostgreSQL database share the monitors by shard leases.
    let (shards_stop, shards_stopped) = oneshot::channel::<()>();
    let mut shards = engine.shards.is_leased().then(|| {
        AbortOnDrop::new(tokio::spawn(crate::locations::keep_shards(
            engine.clone(),
            shards_stopped,
        )))
    });
    // Silent probe locations raise their own alert.
    let _deadman = AbortOnDrop::new(tokio::spawn(crate::locations::deadman::watch(
        engine.clone(),
        generation.clone(),
        wake.clone(),
    )));

    let fatal = |why: String| {
        tracing::error!("{why}; stopping so that a supervisor can restart watchpost");
        engine.health.fatal(&why);
        Exit::Fatal(why)
    };
    loop {
        let g = current(&generation);
        tracing::info!("running {} monitor(s)", g.config.monitors.len());
        let scheduler = Scheduler::new(jobs(&g.config), g.config.concurrency, SystemClock);
        engine.health.watch_scheduler(scheduler.stats());
        let (stop, stopped) = oneshot::channel::<()>();
        let scheduled = scheduler.run(runner(engine.clone(), g.clone(), wake.clone()), async {
            let _ = stopped.await;
        });
        #[cfg(feature = "fault-injection")]
        let scheduled = crate::fault::scheduler(scheduled);
        let mut running = tokio::spawn(scheduled);
        let next = tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Reload(next)) => Some(next),
                Some(Command::Stop | Command::StopNow) | None => None,
            },
            ended = &mut running => {
                let why = match ended {
                    Err(e) if e.is_panic() => "the scheduler loop panicked".to_string(),
                    Err(e) => format!("the scheduler loop failed: {e}"),
                    Ok(()) => "the scheduler loop stopped unexpectedly".to_string(),
                };
                let _ = web_stop.send(());
                return fatal(why);
            }
            ended = &mut worker => {
                let why = match ended {
                    Err(e) if e.is_panic() => "the delivery worker panicked".to_string(),
                    _ => "the delivery worker stopped unexpectedly".to_string(),
                };
                let _ = stop.send(());
                let _ = web_stop.send(());
                return fatal(why);
            }
        };
        // Stop firing; the scheduler waits for checks in flight (a second stop cuts it short).
        let _ = stop.send(());
        let stopping = next.is_none();
        match wait_for(&mut running, &mut commands, stopping).await {
            Waited::Now => {
                tracing::warn!("stopping now: checks in flight are abandoned");
                return Exit::Forced;
            }
            Waited::Done { stop: true, .. } => break,
            Waited::Done {
                stop: false,
                reload,
            } => {
                // The newest config wins when several reloads came in meanwhile.
                if let Some(next) = reload.or(next) {
                    *generation.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(next);
                }
            }
        }
    }
    tracing::info!("stopping: flushing the outbox (a second SIGTERM or SIGINT stops at once)");
    let _ = worker_stop.send(());
    if let Waited::Now = wait_for(&mut worker, &mut commands, true).await {
        tracing::warn!("stopping now: undelivered notifications stay queued for the next start");
        return Exit::Forced;
    }
    let _ = web_stop.send(());
    let _ = web.await;
    engine.maintain(&current(&generation)).await;
    if let Some(keeper) = shards.as_mut() {
        // Stop renewing first, and wait for a claim in flight: a claim committed after the
        // release would take the shards again for a whole lease.
        let _ = shards_stop.send(());
        let _ = (&mut keeper.0).await;
        // Hand the shards over at once rather than when their leases run out.
        let (store, holder) = (engine.store.clone(), engine.worker.clone());
        let released = tokio::task::spawn_blocking(move || store.release_shards(&holder)).await;
        if let Ok(Err(e)) = released {
            tracing::warn!("replicas: cannot release shard leases: {e}");
        }
    }
    Exit::Stopped
}
