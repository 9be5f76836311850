//! `watchpost once`: every monitor once, at most `concurrency` at a time; judge, commit state
//! and alerts, deliver the outbox, print a table (or `--json`). State lives in the store, so
//! thresholds, reminders and resolves work across invocations (serverless timers, cron jobs),
//! and two invocations at once never alert twice.
//!
//! Exit codes: 0 every monitor passes, 1 a monitor fails, 2 usage or config error, 3
//! watchpost itself could not do its job (a check could not run for lack of resources, the
//! store failed, delivery could not be attempted). A monitor watchpost could not judge is
//! reported with its name; the others carry on.

use crate::runtime::health::Health;
use crate::runtime::{self, Generation, MonitorOutcome, outbox};
use crate::{EXIT_INTERNAL, EXIT_USAGE};
use chrono::Utc;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
    let config = match runtime::load_config(&path, true) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let channels = match runtime::build_channels(&config) {
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
    let (store, prober) = match runtime::open(&config) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let rt = match crate::tokio_runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let generation = Arc::new(Generation::new(config, channels));
    let config = generation.config.clone();
    let worker = format!("once-{}", std::process::id());
    let health = Health::new();
    let (outcomes, delivery_failed) = rt.block_on(async {
        // At most `concurrency` checks (and their commits) at a time: sockets, resolvers,
        // blocking threads — and the checks' futures themselves, which are only created when
        // a slot is free — stay bounded however many monitors there are.
        let total = config.monitors.len();
        let mut outcomes: Vec<Option<MonitorOutcome>> = (0..total).map(|_| None).collect();
        let mut set = tokio::task::JoinSet::new();
        let mut next = 0;
        while next < total || !set.is_empty() {
            if next < total && set.len() < config.concurrency {
                let (config, prober, store, health) = (
                    config.clone(),
                    prober.clone(),
                    store.clone(),
                    health.clone(),
                );
                let i = next;
                set.spawn(async move {
                    let at = Utc::now();
                    (
                        i,
                        runtime::tick(store, &prober, config, i, at, None, health).await,
                    )
                });
                next += 1;
                continue;
            }
            match set.join_next().await {
                Some(Ok((i, outcome))) => outcomes[i] = Some(outcome),
                Some(Err(e)) => tracing::error!("a check task failed: {e}"),
                None => {}
            }
        }
        let outcomes: Vec<MonitorOutcome> = outcomes
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                o.unwrap_or_else(|| {
                    MonitorOutcome::failed(
                        &config.monitors[i].name,
                        Utc::now(),
                        "internal error: the check's task failed".into(),
                        None,
                    )
                })
            })
            .collect();
        #[cfg(feature = "fault-injection")]
        runtime::fault::crash_point_after_commit();
        let mut delivery_failed = false;
        match outbox::deliver_due(&store, &generation, &worker).await {
            Ok(delivered) => {
                if delivered.retrying > 0 {
                    tracing::info!(
                        "{} notification(s) will be retried by the next `once` or by `run`",
                        delivered.retrying
                    );
                }
                if delivered.unsettled > 0 {
                    delivery_failed = true;
                }
            }
            Err(e) => {
                tracing::error!("cannot deliver notifications: {e}");
                delivery_failed = true;
            }
        }
        runtime::prune(store.clone(), &config).await;
        (outcomes, delivery_failed)
    });
    // Written straight to stdout: a few thousand results never sit in memory twice.
    let printed = {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = if args.json {
            serde_json::to_writer(&mut out, &outcomes)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            out.write_all(table(&outcomes).as_bytes())
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
    if delivery_failed || outcomes.iter().any(|o| o.error.is_some()) {
        ExitCode::from(EXIT_INTERNAL)
    } else if outcomes.iter().all(|o| o.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn table(outcomes: &[MonitorOutcome]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let width = outcomes
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        out,
        "{:<width$}  {:<8} {:<6} {:>6} {:>11} {:>11} {:>11}  why",
        "monitor", "location", "result", "status", "total ms", "connect ms", "download ms"
    );
    let num = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into());
    for o in outcomes {
        if o.observations.is_empty() {
            let _ = writeln!(
                out,
                "{:<width$}  {:<8} {:<6} {:>6} {:>11} {:>11} {:>11}  {}",
                o.name,
                "local",
                "ERROR",
                "—",
                "—",
                "—",
                "—",
                o.error.as_deref().unwrap_or("")
            );
            continue;
        }
        for (obs, row) in o.observations.iter().zip(&o.rows) {
            let result = match (&o.error, obs.ok) {
                (Some(_), _) => "ERROR",
                (None, true) => "PASS",
                (None, false) => "FAIL",
            };
            let why: Vec<&str> = obs
                .failures
                .iter()
                .map(String::as_str)
                .chain(o.error.as_deref())
                .collect();
            let _ = writeln!(
                out,
                "{:<width$}  {:<8} {:<6} {:>6} {:>11} {:>11} {:>11}  {}",
                o.name,
                obs.location,
                result,
                row.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "—".into()),
                num(row.total_ms),
                num(row.connect_ms),
                num(row.download_ms),
                why.join("; ")
            );
        }
    }
    out
}
