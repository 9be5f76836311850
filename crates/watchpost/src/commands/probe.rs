//! `watchpost probe`: a probe agent for one location. It pulls the monitors its server
//! assigns to the location, checks them on their schedules and pushes the observations to the
//! server, buffering them on disk while the server can't be reached (README "Locations").
//! SIGTERM or SIGINT stops it (what is buffered waits for the next start).

use crate::{EXIT_INTERNAL, EXIT_USAGE};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use watchpost_engine::agent::{self, AgentOptions};
use watchpost_probes::{ProberOptions, Probes};

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The central watchpost's base URL (`https://watchpost.example.com`).
    #[arg(long, env = "WATCHPOST_SERVER")]
    pub server: String,
    /// The location's token, as the server's config has it (better: the environment).
    #[arg(long, env = "WATCHPOST_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The location's name, as declared under `locations:` on the server.
    #[arg(long, env = "WATCHPOST_LOCATION")]
    pub location: String,
    /// Where observations wait while the server can't be reached
    /// (default: ./watchpost-probe-LOCATION).
    #[arg(long)]
    pub buffer_dir: Option<PathBuf>,
    /// The most the buffer holds (oldest observations are dropped first, and counted).
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub buffer_max: u64,
    /// A PEM file of CA certificates to trust for the server, besides the system's.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (64MiB, 512KiB, 1GiB)"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (B, KiB, MiB, GiB)")),
    };
    let size = n.saturating_mul(scale);
    if size < 1 << 20 {
        return Err("at least 1MiB".into());
    }
    Ok(size)
}

pub fn run(args: ProbeArgs) -> ExitCode {
    if args.token.trim().is_empty() || args.location.trim().is_empty() {
        eprintln!("error: --token and --location must not be empty");
        return ExitCode::from(EXIT_USAGE);
    }
    let options = AgentOptions {
        buffer_dir: args
            .buffer_dir
            .unwrap_or_else(|| PathBuf::from(format!("watchpost-probe-{}", args.location))),
        server: args.server,
        token: args.token,
        location: args.location,
        buffer_max: args.buffer_max,
        ca_file: args.ca_file,
    };
    let rt = match crate::tokio_runtime(true, crate::BLOCKING_THREADS) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let probes = match Probes::new(ProberOptions::default()) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::error!("cannot set up the probes: {e}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        };
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => (t, i),
            _ => {
                tracing::error!("cannot install signal handlers");
                return ExitCode::from(EXIT_INTERNAL);
            }
        };
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("stopping");
        };
        match agent::run(options, probes, stop).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e @ agent::AgentError::Server(_)) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_USAGE)
            }
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::from(EXIT_INTERNAL)
            }
        }
    })
}
