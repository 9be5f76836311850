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
//!
//! `--due` runs only the monitors whose schedule fired since they last ran (claimed in the
//! store, so cron jobs or timers firing at once run each monitor once; see
//! `watchpost_engine::due`); the others are listed as skipped and count neither way.
//! `--deadline` bounds the whole run — checks, commit and delivery — counted from the start.

use crate::{EXIT_INTERNAL, EXIT_USAGE};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use watchpost_engine::{Engine, Generation, MonitorOutcome, RunReport, Selection, Skipped};

#[derive(Args, Debug)]
pub struct OnceArgs {
    /// Config file (default: $WATCHPOST_CONFIG, then ./watchpost.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// One JSON object per monitor (a JSON array) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Only the monitors whose schedule fired since they last ran (state kept in the store);
    /// the others are reported as skipped. For cron, CronJobs and timers that fire more often
    /// than some monitors' schedules.
    #[arg(long)]
    pub due: bool,
    /// Bound the whole run (checks, commit, delivery), e.g. `20s`, from the start: the checks
    /// end a quarter of the time left before it (at most 2 s) so their alerts are committed
    /// and sent in time; checks not started by then are not run, and notifications not sent
    /// by the deadline stay queued for the next run.
    #[arg(long, value_name = "DURATION", value_parser = parse_deadline)]
    pub deadline: Option<Duration>,
}

/// A `--deadline`: a duration as everywhere (`20s`, `1.5m`), more than zero.
fn parse_deadline(text: &str) -> Result<Duration, String> {
    let d = watchpost_units::parse_duration(text)?;
    if d.is_zero() {
        return Err("the deadline must be more than 0s".into());
    }
    Ok(d)
}

pub fn run(args: OnceArgs) -> ExitCode {
    let started = std::time::Instant::now();
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
    let rt = match crate::tokio_runtime(true, crate::BLOCKING_THREADS) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let generation = Arc::new(Generation::new(config, channels));
    let selection = Selection {
        due: args.due,
        ..Selection::all()
    };
    let report = rt.block_on(async {
        // Counted from the start of the command; `Instant::now()` inside the runtime.
        let deadline = args.deadline.map(|d| {
            let left = d.saturating_sub(started.elapsed());
            tokio::time::Instant::now() + left
        });
        engine.run_selected(&generation, &selection, deadline).await
    });
    let tz = generation.config.timezone;
    // Written straight to stdout: a few thousand results never sit in memory twice.
    let printed = {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = if args.json && args.due {
            serde_json::to_writer(&mut out, &due_json(&generation, &report))
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else if args.json {
            serde_json::to_writer(&mut out, &report.outcomes)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            out.write_all(table(&report.outcomes, &report.skipped, tz).as_bytes())
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

/// One element of `once --due --json`: a monitor that ran, as without `--due` plus
/// `"skipped": null`, or one that was not due.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum DueEntry<'a> {
    Ran {
        #[serde(flatten)]
        outcome: &'a MonitorOutcome,
        skipped: Option<&'static str>,
    },
    /// `{"name","ok":true,"skipped":"not due","fired","next","notifications":0,
    /// "observations":[],"error":null}`: nothing failed, nothing ran.
    NotDue {
        name: &'a str,
        ok: bool,
        skipped: &'static str,
        fired: chrono::DateTime<chrono::Utc>,
        next: Option<chrono::DateTime<chrono::Utc>>,
        notifications: usize,
        observations: [(); 0],
        error: Option<String>,
    },
}

/// Every monitor in config order, whether it ran or was not due.
fn due_json<'a>(generation: &'a Generation, report: &'a RunReport) -> Vec<DueEntry<'a>> {
    let ran: std::collections::HashMap<&str, &MonitorOutcome> = report
        .outcomes
        .iter()
        .map(|o| (o.name.as_str(), o))
        .collect();
    let skipped: std::collections::HashMap<&str, &Skipped> = report
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    generation
        .config
        .monitors
        .iter()
        .filter_map(|m| {
            if let Some(outcome) = ran.get(m.name.as_str()) {
                return Some(DueEntry::Ran {
                    outcome,
                    skipped: None,
                });
            }
            skipped.get(m.name.as_str()).map(|s| DueEntry::NotDue {
                name: &s.name,
                ok: true,
                skipped: "not due",
                fired: s.fired,
                next: s.next,
                notifications: 0,
                observations: [],
                error: None,
            })
        })
        .collect()
}

/// One line per monitor and location: the result, the kind's own measurements (`status 200
/// total 12.3ms` for http, `group_lag 75 partition_lag 25 time_lag 10.00s` for kafka_lag),
/// and why it failed; then one line per monitor not due (`SKIP`, when it runs next).
fn table(outcomes: &[MonitorOutcome], skipped: &[Skipped], tz: watchpost_cron::Tz) -> String {
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
        for (i, row) in o.rows.iter().enumerate() {
            // A tick too few locations reported to judge says so on its first line.
            let undecided = o.undecided.as_deref().filter(|_| i == 0);
            let shown = match (&row.region, &row.isp) {
                (Some(r), Some(i)) => format!("{} ({r} {i})", row.location),
                (Some(x), None) | (None, Some(x)) => format!("{} ({x})", row.location),
                (None, None) => row.location.clone(),
            };
            let Some(obs) = o
                .observations
                .iter()
                .find(|obs| obs.location == row.location)
            else {
                lines.push([
                    o.name.clone(),
                    shown,
                    "MISSING".into(),
                    "—".into(),
                    std::iter::once("no report from this location for this tick")
                        .chain(undecided)
                        .collect::<Vec<_>>()
                        .join("; "),
                ]);
                continue;
            };
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
                .chain(undecided)
                .collect();
            lines.push([
                o.name.clone(),
                shown,
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
    for s in skipped {
        lines.push([
            s.name.clone(),
            "—".into(),
            "SKIP".into(),
            "—".into(),
            match s.next {
                Some(next) => format!("not due (next {})", watchpost_engine::local_time(next, tz)),
                None => "not due (its schedule never fires again)".into(),
            },
        ]);
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
