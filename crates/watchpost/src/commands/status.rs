//! `watchpost status`: per monitor its state, open incident, uptime over 24 h, 7 d and 30 d
//! and the 24 h p50/p95 of its main metrics, read from the store (the daemon's rollups), and
//! each location's latest result; `--json` prints the document `GET /api/v1/status` serves
//! (`watchpost_engine::status`). Nothing is checked or sent.
//!
//! Exit codes: 0 printed; 2 usage or config error (an unknown `--monitor` too); 3 the store
//! can't be read.

use crate::{EXIT_INTERNAL, EXIT_USAGE};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use watchpost_engine::status::{MonitorStatus, StatusReport};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Config file (default: $WATCHPOST_CONFIG, then ./watchpost.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// The JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Only this monitor.
    #[arg(long, value_name = "NAME")]
    pub monitor: Option<String>,
}

pub fn run(args: StatusArgs) -> ExitCode {
    let path = watchpost_config::default_path(args.config.as_deref());
    let config = match super::load_config(&path, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(name) = &args.monitor
        && !config.monitors.iter().any(|m| &m.name == name)
    {
        let known: Vec<&str> = config.monitors.iter().map(|m| m.name.as_str()).collect();
        eprintln!(
            "watchpost: no monitor {name:?} in {} (monitors: {})",
            path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let store = match watchpost_store::open(&config.storage) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "watchpost: {}",
                config
                    .secrets
                    .redact(&format!("cannot open the store: {e}"))
            );
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let report = match watchpost_engine::status::status(
        store.as_ref(),
        &config,
        chrono::Utc::now(),
        args.monitor.as_deref(),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "watchpost: {}",
                config
                    .secrets
                    .redact(&format!("cannot read the store: {e}"))
            );
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let text = if args.json {
        let mut doc = serde_json::to_value(&report).expect("the report serializes");
        watchpost_engine::pipeline::redact_json(&mut doc, &config.secrets);
        format!("{doc}\n")
    } else {
        config
            .secrets
            .redact(&table(&report, config.timezone))
            .into_owned()
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("watchpost: cannot print the status: {e}");
        return ExitCode::from(EXIT_INTERNAL);
    }
    ExitCode::SUCCESS
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.2}%"))
}

/// The main metric's 24 h p50/p95, shown in its unit: `12.3ms / 45.0ms`.
fn main_metric(m: &MonitorStatus) -> String {
    let Some((name, p)) = m
        .metrics_24h
        .iter()
        .find(|(k, _)| k.starts_with("total"))
        .or_else(|| m.metrics_24h.iter().next())
    else {
        return "—".to_string();
    };
    let unit = if name.ends_with("_ms") {
        watchpost_units::Unit::Ms
    } else if name.ends_with("_days") {
        watchpost_units::Unit::Days
    } else {
        watchpost_units::Unit::Count
    };
    let show = |v: Option<f64>| {
        v.map_or("—".to_string(), |v| {
            watchpost_units::format_value(v, unit)
        })
    };
    let short = name
        .strip_suffix("_ms")
        .or_else(|| name.strip_suffix("_days"))
        .unwrap_or(name);
    format!("{short} {} / {}", show(p.p50), show(p.p95))
}

fn table(report: &StatusReport, tz: watchpost_cron::Tz) -> String {
    use std::fmt::Write;
    let mut rows: Vec<[String; 8]> = vec![[
        "monitor".into(),
        "state".into(),
        "since".into(),
        "incident".into(),
        "24h".into(),
        "7d".into(),
        "30d".into(),
        "p50 / p95 (24h)".into(),
    ]];
    for m in &report.monitors {
        rows.push([
            m.name.clone(),
            m.state.to_string(),
            m.since
                .map_or("—".into(), |t| watchpost_engine::local_time(t, tz)),
            m.incident.clone().unwrap_or_else(|| "—".into()),
            pct(m.uptime_pct.day),
            pct(m.uptime_pct.week),
            pct(m.uptime_pct.month),
            main_metric(m),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    if report.monitors.is_empty() {
        out.push_str("no monitors\n");
        return out;
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for m in &report.monitors {
        for l in &m.locations {
            if let Some(e) = &l.error {
                let _ = writeln!(out, "{} @ {}: {e}", m.name, l.location);
            }
        }
    }
    out
}
