//! `watchpost once`: every monitor once, concurrently; judge, commit state and alerts, deliver
//! the outbox, print a table (or `--json`), exit 0 when all pass and 1 otherwise. State lives
//! in the store, so thresholds, reminders and resolves work across invocations (serverless
//! timers, cron jobs), and two invocations at once never alert twice.

use crate::EXIT_USAGE;
use crate::runtime::{self, MonitorOutcome, outbox};
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
    let config = match runtime::load_config(&path) {
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
    let rt = match crate::tokio_runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let config = Arc::new(config);
    let worker = format!("once-{}", std::process::id());
    let result: Result<Vec<MonitorOutcome>, String> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..config.monitors.len() {
            let (config, prober, store) = (config.clone(), prober.clone(), store.clone());
            set.spawn(async move {
                let monitor = &config.monitors[i];
                let at = Utc::now();
                let (observations, rows) = runtime::observe(&prober, monitor).await;
                let config2 = config.clone();
                let outcome = tokio::task::spawn_blocking(move || {
                    runtime::commit(store.as_ref(), &config2.monitors[i], at, observations, rows)
                })
                .await
                .map_err(|e| e.to_string())??;
                Ok::<_, String>((i, outcome))
            });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = set.join_next().await {
            outcomes.push(joined.map_err(|e| e.to_string())??);
        }
        outcomes.sort_by_key(|(i, _)| *i);
        crash_point_after_commit();
        let delivered = outbox::deliver_due(
            store.clone(),
            &channels,
            runtime::locale(&config),
            &worker,
            config.delivery_max_age,
        )
        .await?;
        if delivered.retrying > 0 {
            eprintln!(
                "{} notification(s) will be retried by the next `once` or by `run`",
                delivered.retrying
            );
        }
        let retention = chrono::Duration::from_std(config.retention).unwrap_or_default();
        let s = store.clone();
        let _ = tokio::task::spawn_blocking(move || s.prune(Utc::now() - retention)).await;
        Ok(outcomes.into_iter().map(|(_, o)| o).collect())
    });
    let outcomes = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("watchpost: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&outcomes).unwrap_or_default());
    } else {
        print!("{}", table(&outcomes));
    }
    if outcomes.iter().all(|o| o.ok) {
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
        .map(|o| o.name.len())
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
        for (obs, row) in o.observations.iter().zip(&o.rows) {
            let _ = writeln!(
                out,
                "{:<width$}  {:<8} {:<6} {:>6} {:>11} {:>11} {:>11}  {}",
                o.name,
                obs.location,
                if obs.ok { "PASS" } else { "FAIL" },
                row.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "—".into()),
                num(row.total_ms),
                num(row.connect_ms),
                num(row.download_ms),
                obs.failures.join("; ")
            );
        }
    }
    out
}

/// Fault injection for the crash-safety test: with `WATCHPOST_FAULT=kill-after-commit` the
/// process SIGKILLs itself after every state change and its notifications are committed and
/// before anything is delivered. Nothing else reads this variable.
fn crash_point_after_commit() {
    if std::env::var("WATCHPOST_FAULT").as_deref() == Ok("kill-after-commit") {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        std::thread::sleep(std::time::Duration::from_secs(5));
        std::process::abort();
    }
}
