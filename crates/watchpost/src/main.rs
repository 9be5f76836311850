//! The `watchpost` binary: argument parsing, printing, exit codes and signals; the pipeline
//! is `watchpost_engine` and the library crates.
//!
//! Exit codes are a contract (README "Exit codes"): 0 ok, 1 a check or monitor failing, 2
//! usage or config error, 3 watchpost itself could not do its job (store, resources, internal
//! error).

mod commands;
mod logging;

use clap::{ArgAction, Parser, Subcommand};
use std::process::ExitCode;

/// A Kafka peer's lying array length must cost address space, not abort the process (see
/// `watchpost_kafka::alloc`).
#[global_allocator]
static ALLOC: watchpost_kafka::alloc::Lazy = watchpost_kafka::alloc::Lazy;

#[derive(Parser)]
#[command(
    name = "watchpost",
    version,
    about = "Monitoring and alerting: precise HTTP checks with a per-phase timing breakdown",
    propagate_version = true,
    after_help = "Exit codes: 0 ok (every check or monitor passed); 1 a check or monitor failed; \
                  2 bad usage or config; 3 watchpost itself could not do its job (store \
                  unavailable, out of file descriptors or memory, internal error).\n\
                  Logs go to stderr with a timestamp and level; -v shows more, RUST_LOG \
                  (e.g. RUST_LOG=watchpost=debug) sets the filter exactly."
)]
struct Cli {
    /// More log output on stderr: -v also logs every check and delivery, -vv is for debugging.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check one target now and show where the time went: an http(s) URL, tcp://HOST:PORT,
    /// tls://HOST:PORT or dns://NAME?type=A.
    Check(Box<commands::check::CheckArgs>),
    /// Print the next fire times of a cron expression (Tencent SCF dialect, with seconds).
    Cron(commands::cron::CronArgs),
    /// Kafka consumer-group lag now: per group, topic and partition (committed, end, lag).
    /// Exit 1 when the cluster can't be read or a named group doesn't exist.
    Lag(commands::lag::LagArgs),
    /// Check a config file: prints `ok`, or every problem as FILE:LINE:COL: message (exit 2).
    Validate(commands::validate::ValidateArgs),
    /// Run every monitor once, alert, persist state, deliver notifications, exit (serverless).
    /// Exit 0 all pass, 1 a monitor fails, 2 config error, 3 watchpost could not do its job.
    Once(commands::once::OnceArgs),
    /// The daemon: monitors on their schedules, alerts, /healthz; SIGHUP reloads the config.
    Run(commands::run::RunArgs),
    /// Send a test alert through one channel and show what it answered (exit 1 if it failed).
    Notify(commands::notify::NotifyArgs),
    /// Each monitor's state, open incident, uptime (24h, 7d, 30d) and 24h p50/p95, from the
    /// store; `--json` as `GET /api/v1/status` serves it.
    Status(commands::status::StatusArgs),
    /// Serverless: serve invocations as a Tencent SCF or AWS Lambda custom runtime, or over
    /// HTTP (Alibaba FC, Cloud Run, Knative); each runs the monitors its event selects.
    Function(commands::function::FunctionArgs),
    /// A probe agent for one location: checks the monitors the server assigns to it and
    /// pushes the results to the server (buffered on disk while it can't be reached).
    Probe(commands::probe::ProbeArgs),
}

/// Exit code for bad usage or bad config.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when watchpost itself could not do its job: the store is unavailable, it ran out
/// of file descriptors or memory, or an internal error. Distinct from 1 ("a site is down") so
/// a cron wrapper can tell them apart.
pub const EXIT_INTERNAL: u8 = 3;

/// Blocking threads (store calls) for most commands: enough for the store's group commit to
/// batch the commits of many monitors finishing together.
pub const BLOCKING_THREADS: usize = 8;

/// The tokio runtime a command runs on (one thread for small one-shot commands and
/// `function`, a pool for `once` and `run`) with at most `blocking` threads for store calls; a failure to start it
/// is reported and becomes exit code 3.
pub fn tokio_runtime(
    multi_thread: bool,
    blocking: usize,
) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    // Store calls run on the blocking pool and queue on the store's one connection: a few
    // threads are enough, and each thread more costs memory (its own malloc arena).
    builder.max_blocking_threads(blocking);
    builder.enable_all().build().map_err(|e| {
        tracing::error!("cannot start the async runtime: {e}");
        ExitCode::from(EXIT_INTERNAL)
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // One line naming what was wrong (clap's first line), then a pointer to --help.
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string();
            // "the following required arguments were not provided:" names them on the next
            // line: keep them on this one.
            if first.ends_with(':')
                && let Some(next) = lines.next()
            {
                first.push(' ');
                first.push_str(next);
            }
            eprintln!("watchpost: {first} (see --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    logging::init(cli.verbose);
    logging::raise_open_files_limit();
    match cli.command {
        Command::Check(args) => commands::check::run(*args),
        Command::Cron(args) => commands::cron::run(args),
        Command::Lag(args) => commands::lag::run(args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Once(args) => commands::once::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Notify(args) => commands::notify::run(args),
        Command::Function(args) => commands::function::run(args),
        Command::Probe(args) => commands::probe::run(args),
    }
}
