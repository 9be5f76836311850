//! `watchpost.yaml`: parsed by serde-saphyr into typed structs (`deny_unknown_fields`), then
//! validated as a whole. Syntax and type errors stop the parse at the first one (YAML can't be
//! read past them); every semantic problem — unknown channel names, bad cron, bad durations,
//! bad conditions, duplicate monitor names, unset `${VAR}`s — is reported at once, each as
//! `FILE:LINE:COL: message`, in file order. Nothing is accepted and then ignored: what this
//! version can't do (probe agents, a storage URL no backend opens, credentials in a URL, a
//! schedule whose last fire time has passed) is an error at its position. What is valid but
//! probably not meant (no monitors at all) is a warning in [`Config::warnings`].
//!
//! Limits: durations up to [`watchpost_units::MAX_DURATION`] (3650 days); URLs up to
//! [`MAX_URL_BYTES`], header lines up to [`MAX_HEADER_LINE_BYTES`]; names (monitors, channels,
//! locations) up to [`MAX_NAME_CHARS`] characters, not blank, without control characters.
//!
//! Secrets: `${VAR}` values are substituted into the parsed values only; every value
//! substituted is recorded in [`Config::secrets`] so the program can mask it wherever it would
//! be shown, no error message ever contains one, [`Monitor::target`] shows a URL as written
//! (with its `${VAR}` names), and [`ChannelSpec`]'s `Debug` shows only the channel type.
//!
//! Monitor kinds (`type:` `http`, `tcp`, `tls`, `dns`, `kafka_lag`) keep the YAML flat; each takes its own
//! settings ([`MonitorKind::settings`]) and a setting of another kind is an error at its key.
//! They are validated into [`CheckSettings`] (see `kinds.rs`).

mod env;
mod error;
mod kinds;
mod raw;
mod secrets;
mod validate;
mod yaml;

pub use env::interpolate;
pub use error::{ConfigError, ConfigErrors};
pub use kinds::{DNS_RECORDS, check_kind};
pub use raw::MonitorKind;
pub use secrets::Secrets;
pub use validate::{header_line_problem, http_url_problem, storage_problem};
/// The alert engine's policy, built here from a monitor's `alert:` settings.
pub use watchpost_alerting::AlertPolicy;

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use watchpost_conditions::Condition;
use watchpost_cron::{Schedule, Tz};
use watchpost_probes::CheckSpec;
use watchpost_probes::http::HttpRequest;

/// The longest monitor URL accepted, in bytes (after `${VAR}` substitution): 8 KiB, what
/// common servers accept in a request line.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// The longest request header line (`Name: value`) accepted, in bytes: 8 KiB.
pub const MAX_HEADER_LINE_BYTES: usize = 8 * 1024;

/// The longest monitor, channel or location name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

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

/// How long the store keeps what (`retention:`): full results, per-minute and per-hour
/// rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Full results (failures and the first pass after one), finished notifications, and
    /// the latest result of a location that stopped reporting (default 7 days).
    pub raw: Duration,
    /// Per-minute rollups (default 30 days).
    pub minutes: Duration,
    /// Per-hour rollups (default 400 days).
    pub hours: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        let days = |n: u64| Duration::from_secs(n * 86_400);
        Retention {
            raw: days(7),
            minutes: days(30),
            hours: days(400),
        }
    }
}

/// A validated config. Its `Debug` masks every substituted `${VAR}` value.
pub struct Config {
    pub file: String,
    pub timezone: Tz,
    /// The store URL, `${VAR}`s substituted and a relative SQLite path made relative to the
    /// config file's directory (`sqlite://state.db` → `sqlite:///etc/watchpost/state.db`).
    pub storage: String,
    pub locale: Locale,
    pub retention: Retention,
    pub concurrency: usize,
    /// How long the outbox keeps retrying a notification before giving it up (default 24h).
    pub delivery_max_age: Duration,
    pub channels: BTreeMap<String, ChannelSpec>,
    /// Probe locations declared under `locations:` (agents elsewhere; `local` is this machine
    /// and is never declared).
    pub locations: BTreeMap<String, LocationSpec>,
    pub monitors: Vec<Monitor>,
    /// Valid but probably not meant (e.g. no monitors), with positions like errors. Show them
    /// as `warning: FILE:LINE:COL: message`.
    pub warnings: Vec<ConfigError>,
    /// Every value substituted from `${NAME}`: mask them with [`Secrets::redact`] in anything
    /// shown, logged, stored or sent.
    pub secrets: Secrets,
    /// The text the config was read from (`${VAR}`s as written): what a probe agent's
    /// assignment is cut from.
    pub text: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Fields<'a>(&'a Config);
        impl std::fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let c = self.0;
                f.debug_struct("Config")
                    .field("file", &c.file)
                    .field("timezone", &c.timezone)
                    .field("storage", &c.storage)
                    .field("locale", &c.locale)
                    .field("retention", &c.retention)
                    .field("concurrency", &c.concurrency)
                    .field("delivery_max_age", &c.delivery_max_age)
                    .field("channels", &c.channels)
                    .field("locations", &c.locations)
                    .field("monitors", &c.monitors)
                    .field("warnings", &c.warnings)
                    .field("secrets", &c.secrets)
                    .finish()
            }
        }
        // The storage URL and the requests hold substituted values: mask them all at once.
        let text = if f.alternate() {
            format!("{:#?}", Fields(self))
        } else {
            format!("{:?}", Fields(self))
        };
        f.write_str(&self.secrets.redact(&text))
    }
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
    /// What its agent sends as `Authorization: Bearer TOKEN` (substituted from `${VAR}`).
    pub token: Option<String>,
    /// How long it may go without a report before its dead-man alert: `silent_after:`, or 3 ×
    /// the longest period among its monitors, at least a minute.
    pub silent_after: Duration,
    /// Where its dead-man alert goes: `channels:`, or every channel of its monitors.
    pub channels: Vec<String>,
}

impl std::fmt::Debug for LocationSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocationSpec")
            .field("region", &self.region)
            .field("isp", &self.isp)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("silent_after", &self.silent_after)
            .field("channels", &self.channels)
            .finish()
    }
}

#[derive(Debug)]
pub struct Monitor {
    pub name: String,
    /// What the monitor checks as a person should see it, with `${VAR}` names as written (not
    /// their values): for `http` the `url:` as written, userinfo removed; for `tcp`
    /// `tcp://ADDRESS`; for `tls` `tls://ADDRESS` (`?sni=SNI` when given); for `dns`
    /// `dns://QUERY?type=RECORD` (`&server=SERVER` when given). Show this rather than what
    /// [`Monitor::check`] holds, which has the substituted values.
    pub target: String,
    /// What the probes run, of the monitor's kind, with `${VAR}`s substituted (mask its
    /// `Debug` with [`Config::secrets`]).
    pub check: CheckSpec,
    pub schedule: Schedule,
    /// `every:` schedules are spread over their period; cron ones fire on the dot.
    pub spread: bool,
    pub timeout: Duration,
    /// Where it runs: `local` (this machine) and declared locations (agents), in the order
    /// listed; `["local"]` by default.
    pub locations: Vec<String>,
    /// What must hold, parsed against the kind's operands; the kind's default conditions are
    /// included unless a condition names their operand (HTTP: `status 200-399` unless
    /// `status` is named; see [`watchpost_conditions::with_defaults`]).
    pub conditions: Vec<Condition>,
    pub alert: AlertPolicy,
    pub maintenance: Vec<Maintenance>,
}

/// A monitor's kind-specific settings, validated, with `${VAR}`s substituted (so `Debug` of
/// this shows secrets: mask it with [`Config::secrets`] before showing it). The config's own
/// form, until the probes' check specs take it over: each variant maps onto one.
#[derive(Debug)]
pub enum CheckSettings {
    /// `url`, `method`, `headers`, `body`, `insecure`, `follow_redirects`, `max_body`.
    Http(Box<HttpRequest>),
    /// `address: HOST:PORT`, `send`, `expect`.
    Tcp {
        /// A DNS name in its ASCII form, or an IP address (IPv6 without brackets).
        host: String,
        port: u16,
        /// Sent once connected (as UTF-8).
        send: Option<String>,
        /// Text the reply must contain.
        expect: Option<String>,
    },
    /// `address: HOST:PORT`, `sni`, `insecure`.
    Tls {
        /// A DNS name in its ASCII form, or an IP address (IPv6 without brackets).
        host: String,
        port: u16,
        /// The server name to send instead of the host (a DNS name, ASCII form).
        sni: Option<String>,
        /// Don't fail the check on a certificate chain that does not verify (its lifetime is
        /// still read and judged).
        insecure: bool,
    },
    /// `query`, `record`, `server`.
    Dns {
        /// The name to resolve, ASCII form (a trailing dot kept).
        name: String,
        /// One of [`DNS_RECORDS`], upper case (default `A`).
        record: String,
        /// The server to ask; `None`: the system's resolver.
        server: Option<SocketAddr>,
    },
    /// `bootstrap` or `source: ckafka` + `ckafka`, `group`, `topics`, `sasl`, `tls`, `window`
    /// (the timeout is set when it becomes the probes' check).
    KafkaLag(Box<watchpost_probes::kafka::KafkaLagCheck>),
}

impl CheckSettings {
    /// The monitor kind these settings are for.
    pub fn kind(&self) -> MonitorKind {
        match self {
            CheckSettings::Http(_) => MonitorKind::Http,
            CheckSettings::Tcp { .. } => MonitorKind::Tcp,
            CheckSettings::Tls { .. } => MonitorKind::Tls,
            CheckSettings::Dns { .. } => MonitorKind::Dns,
            CheckSettings::KafkaLag(_) => MonitorKind::KafkaLag,
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
        let from = now
            .checked_sub_signed(d)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .with_timezone(&self.tz);
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
    parse_at(file, text, Utc::now())
}

/// [`parse`] as of `now`: schedules whose last fire time is before `now` are errors.
pub fn parse_at(file: &str, text: &str, now: DateTime<Utc>) -> Result<Config, ConfigErrors> {
    validate::validate(file, text, now)
}

/// [`parse`] with `${NAME}`s read from `env` instead of the process's environment: how a
/// probe agent reads the config its server assigned it, with the values sent along.
pub fn parse_with_env(
    file: &str,
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<Config, ConfigErrors> {
    env::with_env(env, || parse(file, text))
}
