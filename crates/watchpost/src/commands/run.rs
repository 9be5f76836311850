//! `watchpost run`: the daemon. The scheduler fires each monitor on its schedule; each tick
//! goes through the same pipeline as `once` (check → conditions → store transaction with the
//! alert engine → outbox); a delivery worker sends the outbox. `/healthz` answers on
//! `--listen`. SIGTERM/SIGINT: stop firing, finish checks in flight, flush the outbox, exit 0.
//! SIGHUP: reload the config; a bad one is rejected with its errors and the old one keeps
//! running.

use crate::EXIT_USAGE;
use crate::runtime::{self, outbox};
use chrono::Utc;
use clap::Args;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, oneshot};
use watchpost_channels::Channel;
use watchpost_config::Config;
use watchpost_probes::http::HttpProber;
use watchpost_scheduler::{BoxFuture, Job, Run, Scheduler, SystemClock};
use watchpost_store::Store;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Config file (default: $WATCHPOST_CONFIG, then ./watchpost.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Address for /healthz.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Print one line per check (monitor, result, status, total time, why).
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// A loaded config with what it needs at run time.
struct Loaded {
    config: Arc<Config>,
    channels: Arc<BTreeMap<String, Arc<Channel>>>,
}

fn load(path: &Path) -> Result<Loaded, String> {
    let config = watchpost_config::load(path).map_err(|e| e.to_string())?;
    let channels = runtime::build_channels(&config)?;
    Ok(Loaded {
        config: Arc::new(config),
        channels: Arc::new(channels),
    })
}

pub fn run(args: RunArgs) -> ExitCode {
    let path = watchpost_config::default_path(args.config.as_deref());
    let loaded = match load(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (store, prober) = match runtime::open(&loaded.config) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let rt = match crate::tokio_runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(daemon(
        path,
        args.listen,
        args.verbose,
        loaded,
        store,
        prober,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watchpost: {e}");
            ExitCode::FAILURE
        }
    }
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

/// The runner for one config generation: a tick = observe + commit, then wake the worker.
fn runner(
    config: Arc<Config>,
    store: Arc<dyn Store>,
    prober: Arc<HttpProber>,
    wake: Arc<Notify>,
    verbose: bool,
) -> impl Fn(Run) -> BoxFuture + Send + Sync + 'static {
    move |run: Run| {
        let (config, store, prober, wake) =
            (config.clone(), store.clone(), prober.clone(), wake.clone());
        Box::pin(async move {
            let at = run.scheduled_at;
            let (observations, rows) = runtime::observe(&prober, &config.monitors[run.job]).await;
            let c = config.clone();
            let committed = tokio::task::spawn_blocking(move || {
                runtime::commit(store.as_ref(), &c.monitors[run.job], at, observations, rows)
            })
            .await;
            match committed {
                Ok(Ok(outcome)) => {
                    if verbose {
                        println!("{}", runtime::one_line(&outcome));
                    }
                    if outcome.notifications > 0 {
                        wake.notify_one();
                    }
                }
                Ok(Err(e)) => eprintln!("watchpost: {}: {e}", config.monitors[run.job].name),
                Err(e) => eprintln!("watchpost: {}: {e}", config.monitors[run.job].name),
            }
        }) as BoxFuture
    }
}

async fn daemon(
    path: PathBuf,
    listen: SocketAddr,
    verbose: bool,
    mut loaded: Loaded,
    store: Arc<dyn Store>,
    prober: Arc<HttpProber>,
) -> Result<(), String> {
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let (web_stop, web_stopped) = oneshot::channel::<()>();
    let web = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = web_stopped.await;
            })
            .await;
    });
    eprintln!("watchpost: listening on http://{listen}/healthz");

    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;

    // Delivery worker: runs when woken by a commit, and every second for retries.
    let wake = Arc::new(Notify::new());
    let channels = Arc::new(tokio::sync::RwLock::new(loaded.channels.clone()));
    let locale = Arc::new(std::sync::Mutex::new((
        runtime::locale(&loaded.config),
        loaded.config.delivery_max_age,
    )));
    let worker_id = format!("run-{}", std::process::id());
    let (worker_stop, mut worker_stopped) = oneshot::channel::<()>();
    let worker = {
        let (store, wake, channels, locale, id) = (
            store.clone(),
            wake.clone(),
            channels.clone(),
            locale.clone(),
            worker_id.clone(),
        );
        tokio::spawn(async move {
            loop {
                let stopping = tokio::select! {
                    _ = wake.notified() => false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    _ = &mut worker_stopped => true,
                };
                let chans = channels.read().await.clone();
                let (loc, max_age) = *locale.lock().unwrap();
                if let Err(e) = outbox::deliver_due(store.clone(), &chans, loc, &id, max_age).await
                {
                    eprintln!("watchpost: delivery: {e}");
                }
                if stopping {
                    break;
                }
            }
        })
    };

    loop {
        let config = loaded.config.clone();
        eprintln!(
            "watchpost: running {} monitor(s) from {}",
            config.monitors.len(),
            path.display()
        );
        let scheduler = Scheduler::new(jobs(&config), config.concurrency, SystemClock);
        let (stop, stopped) = oneshot::channel::<()>();
        let generation = tokio::spawn(scheduler.run(
            runner(
                config.clone(),
                store.clone(),
                prober.clone(),
                wake.clone(),
                verbose,
            ),
            async {
                let _ = stopped.await;
            },
        ));
        let reload = loop {
            tokio::select! {
                _ = term.recv() => break false,
                _ = int.recv() => break false,
                _ = hup.recv() => match load(&path) {
                    Ok(next) => {
                        eprintln!("watchpost: reloaded {}", path.display());
                        loaded = next;
                        break true;
                    }
                    Err(errors) => {
                        eprintln!("watchpost: the new config is rejected; the old one keeps running:\n{errors}");
                    }
                },
            }
        };
        // Stop firing; the scheduler waits for checks in flight.
        let _ = stop.send(());
        let _ = generation.await;
        if !reload {
            break;
        }
        *channels.write().await = loaded.channels.clone();
        *locale.lock().unwrap() = (
            runtime::locale(&loaded.config),
            loaded.config.delivery_max_age,
        );
    }
    eprintln!("watchpost: stopping: flushing the outbox");
    let _ = worker_stop.send(());
    let _ = worker.await;
    let _ = web_stop.send(());
    let _ = web.await;
    let retention = chrono::Duration::from_std(loaded.config.retention).unwrap_or_default();
    let _ = tokio::task::spawn_blocking(move || store.prune(Utc::now() - retention)).await;
    Ok(())
}
