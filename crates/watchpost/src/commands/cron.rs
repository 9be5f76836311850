//! `watchpost cron 'EXPR'`: the next fire times of an expression, to check it before use.

use crate::EXIT_USAGE;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use std::io::{IsTerminal, Write};
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
    let mut out = std::io::stdout().lock();
    if out.is_terminal() {
        let _ = writeln!(out, "# {} ({})", schedule.describe(), tz.name());
    }
    // One time at a time, printed as found: a large -n streams instead of piling up, and a
    // reader that stops early (`| head`) ends the command quietly.
    let mut found = 0;
    let mut cursor = after;
    while found < args.count {
        let Some(t) = schedule.next_after(&cursor) else {
            break;
        };
        if writeln!(out, "{}", t.to_rfc3339_opts(SecondsFormat::Secs, false)).is_err() {
            return ExitCode::SUCCESS;
        }
        cursor = t;
        found += 1;
    }
    if found == 0 {
        if schedule.never_fires() {
            eprintln!("watchpost: {:?} never fires: no date matches it", args.expr);
        } else {
            let last = schedule
                .previous_before(&after)
                .map(|t| {
                    format!(
                        ": it last fired at {}",
                        t.to_rfc3339_opts(SecondsFormat::Secs, false)
                    )
                })
                .unwrap_or_default();
            eprintln!(
                "watchpost: {:?} does not fire after {}{last} (its year field has passed)",
                args.expr,
                after.to_rfc3339_opts(SecondsFormat::Secs, false)
            );
        }
        return ExitCode::FAILURE;
    }
    if found < args.count {
        eprintln!("watchpost: only {found} fire times remain (the year field ends)");
    }
    ExitCode::SUCCESS
}
