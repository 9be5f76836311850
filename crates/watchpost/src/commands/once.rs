//! `watchpost once`: every monitor once, at most `concurrency` at a time; judge, commit state
//! and alerts, deliver the outbox, print a table (or `--json`). State lives in the store, so
//! thresholds, reminders and resolves work across invocations (serverless timers, cron jobs),
//! and two invocations at once never alert twice. The work is the engine's
//! (`Engine::run_all`); this command prints and picks the exit code.
//!
//! Exit codes: 0 every monitor passes, 1 a monitor fails, 2 usage or config error, 3
//! watchpost itself could not do its job (a check could not run for lack of resources, the
//! store failed, delivery could not be attempted). A monitor watchpost could not judge is
//! reported with its name; the others carry on.

use crate::{EXIT_INTERNAL, EXIT_USAGE};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use watchpost_engine::{Engine, Generation, MonitorOutcome};

#[derive(Args, Debug)]
pub struct OnceArgs {
    /// Config file (default: $WATCHPOST_CONFIG, then ./watchpost.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// One JSON object per monitor (a JSON array) instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: OnceArgs) -> ExitCode {
    let path = watchpost_config::default_path(args.config.as_deref());
    let config = match super::load_config(&path, true) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let channels = match watchpost_engine::build_channels(&config) {
        // With --json, stdout is the JSON: console alerts go to stderr.
        Ok(mut c) if args.json => {
            for channel in c.values_mut() {
                if matches!(**channel, watchpost_channels::Channel::Console(_)) {
                    *channel = Arc::new(watchpost_channels::Channel::Console(
                        watchpost_channels::Console::stderr(),
                    ));
                }
            }
            c
        }
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let engine = match Engine::open(&config, format!("once-{}", std::process::id())) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let rt = match crate::tokio_runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let generation = Arc::new(Generation::new(config, channels));
    let report = rt.block_on(engine.run_all(&generation, None));
    // Written straight to stdout: a few thousand results never sit in memory twice.
    let printed = {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = if args.json {
            serde_json::to_writer(&mut out, &report.outcomes)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            out.write_all(table(&report.outcomes).as_bytes())
        };
        written.and_then(|()| out.flush())
    };
    if let Err(e) = printed {
        // A closed pipe (`once | head`) is the reader's choice, not watchpost's failure.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::error!("cannot print the results: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    }
    if report.watchpost_failed() {
        ExitCode::from(EXIT_INTERNAL)
    } else if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One line per monitor and location: the result, the kind's own measurements (`status 200
/// total 12.3ms` for http, `group_lag 75 partition_lag 25 time_lag 10.00s` for kafka_lag),
/// and why it failed.
fn table(outcomes: &[MonitorOutcome]) -> String {
    use std::fmt::Write;
    let mut lines: Vec<[String; 5]> = vec![[
        "monitor".into(),
        "location".into(),
        "result".into(),
        "measured".into(),
        "why".into(),
    ]];
    for o in outcomes {
        if o.observations.is_empty() {
            lines.push([
                o.name.clone(),
                "local".into(),
                "ERROR".into(),
                "—".into(),
                o.error.clone().unwrap_or_default(),
            ]);
            continue;
        }
        for (obs, row) in o.observations.iter().zip(&o.rows) {
            let result = match (&o.error, obs.ok) {
                (Some(_), _) => "ERROR",
                (None, true) => "PASS",
                (None, false) => "FAIL",
            };
            let measured: Vec<String> = o
                .columns
                .iter()
                .filter_map(|name| row.metrics.iter().find(|m| m.name == *name))
                .map(|m| format!("{} {}", m.name, m.display()))
                .collect();
            let why: Vec<&str> = obs
                .failures
                .iter()
                .map(String::as_str)
                .chain(o.error.as_deref())
                .collect();
            lines.push([
                o.name.clone(),
                obs.location.clone(),
                result.into(),
                if measured.is_empty() {
                    "—".into()
                } else {
                    measured.join("  ")
                },
                why.join("; "),
            ]);
        }
    }
    let width = |i: usize| {
        lines
            .iter()
            .map(|l| l[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    let mut out = String::new();
    for l in &lines {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            l[0],
            l[1],
            l[2],
            l[3],
            l[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}
