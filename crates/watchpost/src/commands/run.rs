//! `watchpost run`: the daemon (`watchpost_engine::daemon`). This command loads the config,
//! binds `--listen`, turns signals into the daemon's commands and its end into an exit code.
//!
//! Signals: SIGTERM/SIGINT stop firing, finish checks in flight and flush the outbox, then
//! exit 0; a second SIGTERM/SIGINT while that is going on stops at once (exit 130; undelivered
//! notifications stay queued for the next start). SIGHUP reloads the config; a bad one is
//! rejected with its errors and the old one keeps running, and so does a new one that changes
//! `storage:` (that takes a restart). A dead scheduler loop or delivery worker: exit 3.

use crate::{EXIT_INTERNAL, EXIT_USAGE};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use watchpost_engine::daemon::{self, Command, Exit};
use watchpost_engine::web::Limits;
use watchpost_engine::{Engine, Generation};

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
    let generation = Generation::build(config).map_err(|e| e.to_string())?;
    for warning in &generation.config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(generation)
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
    let engine = match Engine::open(&generation.config, watchpost_engine::process_id("run")) {
        Ok(e) => {
            if generation.config.storage.starts_with("postgres") {
                // Replicas on one database share the monitors (README "Locations").
                e.shards.lease();
            }
            Arc::new(e)
        }
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let rt = match crate::tokio_runtime(true, crate::BLOCKING_THREADS) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = rt.block_on(serve(path, args.listen, generation, engine));
    // Don't wait for stuck blocking work (a store call) on the way out.
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(
    path: PathBuf,
    listen: SocketAddr,
    first: Generation,
    engine: Arc<Engine>,
) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {listen}: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let limits = Limits::for_open_files(crate::logging::open_files_limit());
    tracing::info!(
        "listening on http://{listen}/healthz (at most {} connections); config {}",
        limits.max_connections,
        path.display()
    );
    let (term, int, hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            tracing::error!("cannot listen for signals");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let (commands, received) = mpsc::unbounded_channel();
    let storage = first.config.storage.clone();
    tokio::spawn(signals(path, storage, term, int, hup, commands));
    match daemon::run(engine, first, listener, limits, received).await {
        Exit::Stopped => ExitCode::SUCCESS,
        Exit::Forced => ExitCode::from(EXIT_FORCED),
        Exit::Fatal(_) => ExitCode::from(EXIT_INTERNAL),
    }
}

/// Signals → commands: SIGTERM/SIGINT stop (the daemon takes a second one as "now"); SIGHUP
/// loads the config again and sends it, unless it is rejected.
async fn signals(
    path: PathBuf,
    storage: String,
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
    mut hup: tokio::signal::unix::Signal,
    commands: mpsc::UnboundedSender<Command>,
) {
    loop {
        let command = tokio::select! {
            _ = term.recv() => Command::Stop,
            _ = int.recv() => Command::Stop,
            _ = hup.recv() => match load(&path) {
                Ok(next) if next.config.storage != storage => {
                    tracing::warn!(
                        "the new config changes `storage:`, which takes a restart; the old \
                         config keeps running"
                    );
                    continue;
                }
                Ok(next) => {
                    tracing::info!("reloaded {}", path.display());
                    Command::Reload(Box::new(next))
                }
                Err(errors) => {
                    tracing::warn!("the new config is rejected; the old one keeps running:");
                    for line in errors.lines() {
                        tracing::warn!("{line}");
                    }
                    continue;
                }
            },
        };
        if commands.send(command).is_err() {
            return;
        }
    }
}
