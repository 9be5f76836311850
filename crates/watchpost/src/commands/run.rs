//! `watchpost run`: the daemon. The scheduler fires each monitor on its schedule; each tick
//! goes through the same pipeline as `once` (check → conditions → store transaction with the
//! alert engine → outbox); a delivery worker sends the outbox continuously. `/healthz` answers
//! on `--listen`: 200 while watchpost is doing its job, 503 with the reasons otherwise.
//!
//! Signals: SIGTERM/SIGINT stop firing, finish checks in flight and flush the outbox, then
//! exit 0; a second SIGTERM/SIGINT while that is going on stops at once (exit 130; undelivered
//! notifications stay queued for the next start). SIGHUP reloads the config; a bad one is
//! rejected with its errors and the old one keeps running, and so does a new one that changes
//! `storage:` (that takes a restart).
//!
//! A panic in the scheduler loop or the delivery worker is logged, makes `/healthz` fail and
//! ends the process with exit code 3, so a supervisor restarts it: never a live-looking process
//! that monitors nothing.

use crate::runtime::health::Health;
use crate::runtime::web::{self, Limits};
use crate::runtime::{self, Generation, outbox};
use crate::{EXIT_INTERNAL, EXIT_USAGE};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Notify, oneshot};
use watchpost_config::Config;
use watchpost_probes::http::HttpProber;
use watchpost_scheduler::{BoxFuture, Job, Run, Scheduler, SystemClock};
use watchpost_store::Store;

/// Exit code after a forced stop (a second SIGTERM/SIGINT during the graceful one).
const EXIT_FORCED: u8 = 130;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Config file (default: $WATCHPOST_CONFIG, then ./watchpost.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Address for /healthz.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

fn load(path: &Path) -> Result<Generation, String> {
    let config = watchpost_config::load(path).map_err(|e| e.to_string())?;
    let channels = runtime::build_channels(&config)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(Generation::new(config, channels))
}

pub fn run(args: RunArgs) -> ExitCode {
    let path = watchpost_config::default_path(args.config.as_deref());
    let generation = match load(&path) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (store, prober) = match runtime::open(&generation.config) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let rt = match crate::tokio_runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = rt.block_on(daemon(path, args.listen, generation, store, prober));
    // Don't wait for stuck blocking work (a store call) on the way out.
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

fn jobs(config: &Config) -> Vec<Job> {
    config
        .monitors
        .iter()
        .map(|m| Job {
            name: m.name.clone(),
            schedule: m.schedule.clone(),
            tz: config.timezone,
            spread: m.spread,
            timeout: m.timeout,
        })
        .collect()
}

/// The runner for one config generation: a tick = observe (within the scheduler's deadline)
/// + commit, then wake the delivery worker.
fn runner(
    generation: Arc<Generation>,
    store: Arc<dyn Store>,
    prober: Arc<HttpProber>,
    wake: Arc<Notify>,
    health: Arc<Health>,
) -> impl Fn(Run) -> BoxFuture + Send + Sync + 'static {
    move |run: Run| {
        let (config, store, prober, wake, health) = (
            generation.config.clone(),
            store.clone(),
            prober.clone(),
            wake.clone(),
            health.clone(),
        );
        Box::pin(async move {
            let tz = config.timezone;
            let outcome = runtime::tick(
                store,
                &prober,
                config,
                run.job,
                run.scheduled_at,
                Some(run.deadline),
                health,
            )
            .await;
            tracing::info!(target: crate::logging::CHECKS, "{}", runtime::one_line(&outcome, tz));
            if outcome.notifications > 0 {
                wake.notify_one();
            }
        }) as BoxFuture
    }
}

/// What the web handlers share.
#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    store: Arc<dyn Store>,
    generation: Arc<RwLock<Arc<Generation>>>,
}

fn current(generation: &RwLock<Arc<Generation>>) -> Arc<Generation> {
    generation.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `/healthz`: `200 ok` while the scheduler loop ticks, the last store commit succeeded, no
/// check was left unrun for lack of resources lately and the oldest undelivered notification
/// is younger than 10 minutes; otherwise `503` with one reason per line.
async fn healthz(State(app): State<AppState>) -> (StatusCode, String) {
    let store = app.store.clone();
    let oldest = tokio::task::spawn_blocking(move || store.oldest_undelivered()).await;
    let secrets = current(&app.generation).config.secrets.clone();
    let mut extra = Vec::new();
    let oldest = match oldest {
        Ok(Ok(Some(p))) => Some((
            p.created_at,
            format!(
                "monitor {:?} → channel {:?}, {} attempt(s){}",
                p.monitor,
                p.channel,
                p.attempts,
                p.last_error
                    .map(|e| format!(", last error: {}", secrets.redact(&e)))
                    .unwrap_or_default()
            ),
        )),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            extra.push(format!(
                "the store cannot be read: {}",
                secrets.redact(&e.to_string())
            ));
            None
        }
        Err(e) => {
            extra.push(format!("the store cannot be read: {e}"));
            None
        }
    };
    let mut problems = app.health.problems(Utc::now(), oldest);
    problems.extend(extra);
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        let mut body = String::from("unhealthy\n");
        for p in problems {
            body.push_str("- ");
            body.push_str(&p);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

/// Wait for `task` to end — unless SIGTERM or SIGINT comes first (false): the second signal
/// of a graceful stop, which means "now".
async fn unless_signalled<T>(
    task: &mut tokio::task::JoinHandle<T>,
    term: &mut Signal,
    int: &mut Signal,
) -> bool {
    tokio::select! {
        _ = task => true,
        _ = term.recv() => false,
        _ = int.recv() => false,
    }
}

/// Why the main loop ended.
enum End {
    Stop,
    Fatal,
}

async fn daemon(
    path: PathBuf,
    listen: SocketAddr,
    first: Generation,
    store: Arc<dyn Store>,
    prober: Arc<HttpProber>,
) -> ExitCode {
    let health = Health::new();
    let generation = Arc::new(RwLock::new(Arc::new(first)));
    let signals = (|| -> std::io::Result<(Signal, Signal, Signal)> {
        Ok((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
        ))
    })();
    let (mut term, mut int, mut hup) = match signals {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for signals: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };

    // The web layer.
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {listen}: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .with_state(AppState {
            health: health.clone(),
            store: store.clone(),
            generation: generation.clone(),
        });
    let limits = Limits::for_open_files(crate::logging::open_files_limit());
    let (web_stop, web_stopped) = oneshot::channel::<()>();
    let web = tokio::spawn(web::serve(listener, app, limits, async {
        let _ = web_stopped.await;
    }));
    tracing::info!(
        "listening on http://{listen}/healthz (at most {} connections)",
        limits.max_connections
    );

    // The delivery worker: claims whenever woken by a commit, when a send finishes, and every
    // second (for retries); sends run concurrently and never hold up the next claim.
    let wake = Arc::new(Notify::new());
    let worker_id = format!("run-{}", std::process::id());
    let (worker_stop, mut worker_stopped) = oneshot::channel::<()>();
    let mut worker = {
        let (store, wake, generation, id, health) = (
            store.clone(),
            wake.clone(),
            generation.clone(),
            worker_id.clone(),
            health.clone(),
        );
        tokio::spawn(async move {
            let mut inflight = tokio::task::JoinSet::new();
            loop {
                let stopping = tokio::select! {
                    _ = wake.notified() => false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    Some(_) = inflight.join_next(), if !inflight.is_empty() => false,
                    _ = &mut worker_stopped => true,
                };
                let g = current(&generation);
                if stopping {
                    // Flush: wait for the sends in flight, then deliver what is due.
                    outbox::join_all(&mut inflight).await;
                    if let Err(e) = outbox::deliver_due(&store, &g, &id).await {
                        tracing::error!("delivery: {e}");
                    }
                    break;
                }
                match outbox::claim_round(&store, &g, &id, &mut inflight).await {
                    Ok(_) => {}
                    Err(e) => {
                        health.store_failed(Utc::now(), &format!("claiming notifications: {e}"));
                        tracing::error!("delivery: cannot claim notifications: {e}");
                    }
                }
            }
        })
    };

    let mut end = End::Stop;
    'generations: loop {
        let g = current(&generation);
        tracing::info!(
            "running {} monitor(s) from {}",
            g.config.monitors.len(),
            path.display()
        );
        let scheduler = Scheduler::new(jobs(&g.config), g.config.concurrency, SystemClock);
        health.watch_scheduler(scheduler.stats());
        let (stop, stopped) = oneshot::channel::<()>();
        let scheduled = scheduler.run(
            runner(
                g.clone(),
                store.clone(),
                prober.clone(),
                wake.clone(),
                health.clone(),
            ),
            async {
                let _ = stopped.await;
            },
        );
        #[cfg(feature = "fault-injection")]
        let scheduled = runtime::fault::scheduler(scheduled);
        let mut running = tokio::spawn(scheduled);
        let next = loop {
            tokio::select! {
                _ = term.recv() => break None,
                _ = int.recv() => break None,
                _ = hup.recv() => match load(&path) {
                    Ok(next) if next.config.storage != g.config.storage => tracing::warn!(
                        "the new config changes `storage:`, which takes a restart; the old \
                         config keeps running"
                    ),
                    Ok(next) => {
                        tracing::info!("reloaded {}", path.display());
                        break Some(next);
                    }
                    Err(errors) => {
                        tracing::warn!("the new config is rejected; the old one keeps running:");
                        for line in errors.lines() {
                            tracing::warn!("{line}");
                        }
                    }
                },
                ended = &mut running => {
                    let why = match ended {
                        Err(e) if e.is_panic() => "the scheduler loop panicked".to_string(),
                        Err(e) => format!("the scheduler loop failed: {e}"),
                        Ok(()) => "the scheduler loop stopped unexpectedly".to_string(),
                    };
                    tracing::error!("{why}; stopping so that a supervisor can restart watchpost");
                    health.fatal(&why);
                    end = End::Fatal;
                    break 'generations;
                }
                ended = &mut worker => {
                    let why = match ended {
                        Err(e) if e.is_panic() => "the delivery worker panicked".to_string(),
                        _ => "the delivery worker stopped unexpectedly".to_string(),
                    };
                    tracing::error!("{why}; stopping so that a supervisor can restart watchpost");
                    health.fatal(&why);
                    let _ = stop.send(());
                    end = End::Fatal;
                    break 'generations;
                }
            }
        };
        // Stop firing; the scheduler waits for checks in flight (a second signal cuts it short).
        let _ = stop.send(());
        if !unless_signalled(&mut running, &mut term, &mut int).await {
            tracing::warn!("stopping now: checks in flight are abandoned");
            return ExitCode::from(EXIT_FORCED);
        }
        match next {
            Some(next) => {
                *generation.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
            }
            None => break,
        }
    }
    if let End::Fatal = end {
        let _ = web_stop.send(());
        return ExitCode::from(EXIT_INTERNAL);
    }
    tracing::info!("stopping: flushing the outbox (a second SIGTERM or SIGINT stops at once)");
    let _ = worker_stop.send(());
    if !unless_signalled(&mut worker, &mut term, &mut int).await {
        tracing::warn!("stopping now: undelivered notifications stay queued for the next start");
        return ExitCode::from(EXIT_FORCED);
    }
    let _ = web_stop.send(());
    let _ = web.await;
    let g = current(&generation);
    runtime::prune(store.clone(), &g.config).await;
    ExitCode::SUCCESS
}
