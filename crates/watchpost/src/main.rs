//! The `watchpost` binary: argument parsing and the glue between the library crates. Exit
//! codes are a contract: 0 ok, 1 a check failing, 2 usage or config error.

mod commands;
mod runtime;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "watchpost",
    version,
    about = "Monitoring and alerting: precise HTTP checks with a per-phase timing breakdown",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check one URL now and show where the time went (DNS, connect, TLS, wait, download).
    Check(commands::check::CheckArgs),
    /// Print the next fire times of a cron expression (Tencent SCF dialect, with seconds).
    Cron(commands::cron::CronArgs),
    /// Check a config file: prints `ok`, or every problem as FILE:LINE:COL: message (exit 2).
    Validate(commands::validate::ValidateArgs),
    /// Run every monitor once, alert, persist state, deliver notifications, exit (serverless).
    Once(commands::once::OnceArgs),
    /// The daemon: monitors on their schedules, alerts, /healthz; SIGHUP reloads the config.
    Run(commands::run::RunArgs),
    /// Send a test alert through one channel and show what it answered (exit 1 if it failed).
    Notify(commands::notify::NotifyArgs),
}

/// Exit code for bad usage or bad config.
pub const EXIT_USAGE: u8 = 2;

/// The tokio runtime a command runs on (one thread for one-shot commands, a pool for `run`);
/// a failure to start it is reported and becomes exit code 1.
pub fn tokio_runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("watchpost: cannot start the runtime: {e}");
        ExitCode::FAILURE
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
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "watchpost: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Check(args) => commands::check::run(args),
        Command::Cron(args) => commands::cron::run(args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Once(args) => commands::once::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Notify(args) => commands::notify::run(args),
    }
}
