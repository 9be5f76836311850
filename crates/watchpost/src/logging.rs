//! Process set-up shared by every command: logging (tracing, on stderr, a timestamp and a level
//! on every line), the panic hook, and the open-files limit.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// watchpost's own log targets (the binary and the library crates).
const OURS: &[&str] = &[
    "watchpost",
    "watchpost_engine",
    "watchpost_scheduler",
    "watchpost_store",
    "watchpost_channels",
    "watchpost_probes",
    "watchpost_config",
];

/// The log target of the one-line-per-check lines (shown with `-v`).
pub const CHECKS: &str = watchpost_engine::daemon::CHECKS_TARGET;

/// The default filter: warnings from every crate, and watchpost's own lines at `info`, except
/// the line per check (`-v` adds those and watchpost's `debug` lines; `-vv`: `trace`).
/// `RUST_LOG`, when set, replaces it.
fn default_filter(verbose: u8) -> String {
    let ours = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let mut filter = String::from("warn");
    for target in OURS {
        filter.push_str(&format!(",{target}={ours}"));
    }
    if verbose == 0 {
        filter.push_str(&format!(",{CHECKS}=warn"));
    }
    filter
}

/// Start logging. Every line: RFC 3339 local time with its offset, level, message.
pub fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).unwrap_or_else(|_| EnvFilter::new(default_filter(verbose)))
        }
        _ => EnvFilter::new(default_filter(verbose)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_timer(tracing_subscriber::fmt::time::ChronoLocal::new(
            "%Y-%m-%dT%H:%M:%S%.3f%:z".to_string(),
        ))
        .try_init();
    // A panic is a bug in watchpost: log it as one line (no backtrace noise for users).
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!("internal error (a bug in watchpost; please report it): {what}{at}");
    }));
}

/// Raise the soft open-files limit to the hard limit: a monitor opens sockets, and the common
/// default soft limit of 1024 is easily reached by the daemon's listener and checks together.
pub fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!("open files limit: {limit}"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
}

/// The current soft open-files limit (for sizing the web listener's connection cap).
pub fn open_files_limit() -> u64 {
    rlimit::Resource::NOFILE
        .get()
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
}
