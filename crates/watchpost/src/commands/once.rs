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
use tokio::sync::Semaphore;

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
        // At most `concurrency` checks (and their commits) at a time: sockets, resolvers and
        // blocking threads stay bounded however many monitors there are.
        let permits = Arc::new(Semaphore::new(config.concurrency));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..config.monitors.len() {
            let (config, prober, store, health, permits) = (
                config.clone(),
                prober.clone(),
                store.clone(),
                health.clone(),
                permits.clone(),
            );
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let at = Utc::now();
                (
                    i,
                    runtime::tick(store, &prober, config, i, at, None, health).await,
                )
            });
        }
        let mut outcomes: Vec<Option<MonitorOutcome>> =
            (0..config.monitors.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, outcome)) => outcomes[i] = Some(outcome),
                Err(e) => tracing::error!("a check task failed: {e}"),
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
        let retention = chrono::Duration::from_std(config.retention).unwrap_or_default();
        let s = store.clone();
        match tokio::task::spawn_blocking(move || {
            Utc::now()
                .checked_sub_signed(retention)
                .map(|cutoff| s.prune(cutoff))
        })
        .await
        {
            Ok(Some(Err(e))) => tracing::warn!(
                "cannot prune old results: {}",
                config.secrets.redact(&e.to_string())
            ),
            Err(e) => tracing::warn!("cannot prune old results: {e}"),
            _ => {}
        }
        (outcomes, delivery_failed)
    });
    if args.json {
        match serde_json::to_string(&outcomes) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                tracing::error!("cannot print the results as JSON: {e}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        }
    } else {
        print!("{}", table(&outcomes));
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
