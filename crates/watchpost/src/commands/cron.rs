//! `watchpost cron 'EXPR'`: the next fire times of an expression, to check it before use.

use crate::EXIT_USAGE;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use std::io::IsTerminal;
use std::process::ExitCode;
use watchpost_cron::{Schedule, Tz, local_tz, parse_tz};

#[derive(Args, Debug)]
pub struct CronArgs {
    /// The expression: 7 fields `sec min hour day month week year`, 6 or 5 fields, or
    /// `@every 30s`, `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    pub expr: String,
    /// How many fire times to print.
    #[arg(short = 'n', default_value_t = 5)]
    pub count: usize,
    /// IANA time zone to evaluate in (default: this machine's zone).
    #[arg(long)]
    pub tz: Option<String>,
    /// Start after this instant, RFC 3339 (default: now).
    #[arg(long)]
    pub after: Option<String>,
}

pub fn run(args: CronArgs) -> ExitCode {
    let usage = |m: String| {
        eprintln!("watchpost: {m}");
        ExitCode::from(EXIT_USAGE)
    };
    let schedule = match Schedule::parse(&args.expr) {
        Ok(s) => s,
        Err(e) => return usage(e.to_string()),
    };
    let tz = match &args.tz {
        Some(name) => match parse_tz(name) {
            Ok(tz) => tz,
            Err(e) => return usage(e),
        },
        None => local_tz(),
    };
    let after: DateTime<Tz> = match &args.after {
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => t.with_timezone(&tz),
            Err(e) => {
                return usage(format!(
                    "invalid --after {text:?}: {e} (use RFC 3339, e.g. 2026-11-24T00:00:00+08:00)"
                ));
            }
        },
        None => Utc::now().with_timezone(&tz),
    };
    if args.count == 0 {
        return usage("-n must be at least 1".into());
    }
    if std::io::stdout().is_terminal() {
        println!("# {} ({})", schedule.describe(), tz.name());
    }
    let times = schedule.upcoming(&after, args.count);
    for t in &times {
        println!("{}", t.to_rfc3339_opts(SecondsFormat::Secs, false));
    }
    if times.is_empty() {
        if schedule.never_fires() {
            eprintln!("watchpost: {:?} never fires: no date matches it", args.expr);
        } else {
            eprintln!(
                "watchpost: {:?} does not fire after {} (its year field has passed)",
                args.expr,
                after.to_rfc3339_opts(SecondsFormat::Secs, false)
            );
        }
        return ExitCode::FAILURE;
    }
    if times.len() < args.count {
        eprintln!(
            "watchpost: only {} fire times remain (the year field ends)",
            times.len()
        );
    }
    ExitCode::SUCCESS
}
