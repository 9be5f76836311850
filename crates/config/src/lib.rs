//! `watchpost.yaml`: parsed by serde-saphyr into typed structs (`deny_unknown_fields`), then
//! validated as a whole. Syntax and type errors stop the parse at the first one (YAML can't be
//! read past them); every semantic problem — unknown channel names, bad cron, bad durations,
//! bad conditions, duplicate monitor names, unset `${VAR}`s — is reported at once, each as
//! `FILE:LINE:COL: message`, in file order.
//!
//! Secrets: `${VAR}` values are substituted into the parsed values only; they never appear in
//! an error message, and [`ChannelSpec`]'s `Debug` shows only the channel type.

mod env;
mod error;
mod raw;
mod validate;

pub use env::interpolate;
pub use error::{ConfigError, ConfigErrors};
pub use raw::MonitorKind;

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use watchpost_conditions::Condition;
use watchpost_cron::{Schedule, Tz};
use watchpost_probes::http::HttpRequest;

/// The config path: `--config`, else `$WATCHPOST_CONFIG`, else `./watchpost.yaml`.
pub fn default_path(flag: Option<&Path>) -> std::path::PathBuf {
    match flag {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("WATCHPOST_CONFIG")
            .map(Into::into)
            .unwrap_or_else(|| "watchpost.yaml".into()),
    }
}

/// Alert message language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    ZhCn,
}

/// A validated config.
#[derive(Debug)]
pub struct Config {
    pub file: String,
    pub timezone: Tz,
    pub storage: String,
    pub locale: Locale,
    pub retention: Duration,
    pub concurrency: usize,
    /// How long the outbox keeps retrying a notification before giving it up (default 24h).
    pub delivery_max_age: Duration,
    pub channels: BTreeMap<String, ChannelSpec>,
    pub locations: BTreeMap<String, LocationSpec>,
    pub monitors: Vec<Monitor>,
}

/// A channel's type and its settings with `${VAR}`s substituted. The channel crate turns the
/// settings into its typed config.
pub struct ChannelSpec {
    pub kind: String,
    pub settings: serde_json::Value,
    /// Where the channel's settings start in the file (1-based), for errors the channel
    /// crate finds when it builds the channel.
    pub line: u64,
    pub column: u64,
}

impl std::fmt::Debug for ChannelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Settings hold secrets (passwords, webhook keys): never print them.
        write!(
            f,
            "ChannelSpec {{ kind: {:?}, settings: <redacted> }}",
            self.kind
        )
    }
}

/// A probe location (agent) declared under `locations:`.
pub struct LocationSpec {
    pub region: Option<String>,
    pub isp: Option<String>,
    pub token: Option<String>,
}

impl std::fmt::Debug for LocationSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocationSpec")
            .field("region", &self.region)
            .field("isp", &self.isp)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug)]
pub struct Monitor {
    pub name: String,
    pub check: Check,
    pub schedule: Schedule,
    /// `every:` schedules are spread over their period; cron ones fire on the dot.
    pub spread: bool,
    pub timeout: Duration,
    pub locations: Vec<String>,
    pub conditions: Vec<Condition>,
    pub alert: AlertPolicy,
    pub maintenance: Vec<Maintenance>,
}

/// What a monitor checks (closed set; one variant per monitor type).
#[derive(Debug)]
pub enum Check {
    Http(Box<HttpRequest>),
}

/// When to notify (PRODUCT.md "Alert semantics").
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPolicy {
    pub channels: Vec<String>,
    /// Failing ticks in a row that open an incident.
    pub failure_threshold: u32,
    /// Passing ticks in a row that resolve it.
    pub success_threshold: u32,
    pub send_resolved: bool,
    /// Re-notify while still failing.
    pub repeat: Option<Duration>,
    /// A tick fails when at least this many locations fail.
    pub quorum: u32,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            channels: Vec::new(),
            failure_threshold: 2,
            success_threshold: 1,
            send_resolved: true,
            repeat: None,
            quorum: 1,
        }
    }
}

/// A recurring window in which results are recorded but notifications are muted.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub start: Schedule,
    pub duration: Duration,
    pub tz: Tz,
}

impl Maintenance {
    /// True when a window started in `(now − duration, now]`.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        let Ok(d) = chrono::Duration::from_std(self.duration) else {
            return false;
        };
        let from = (now - d).with_timezone(&self.tz);
        self.start
            .next_after(&from)
            .is_some_and(|start| start.with_timezone(&Utc) <= now)
    }
}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read the config: {e}"),
        }])
    })?;
    parse(&file, &text)
}

/// Validate config text (`file` names it in errors).
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    validate::validate(file, text)
}
