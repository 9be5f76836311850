//! Raw YAML structs → [`Config`], collecting every problem with its position.

use crate::error::{ConfigErrors, Report};
use crate::raw::{Keyed, MonitorKeys, RawConfig, RawMonitor, S};
use crate::{
    AlertPolicy, ChannelSpec, Config, Locale, LocationSpec, MAX_HEADER_LINE_BYTES, MAX_NAME_CHARS,
    MAX_URL_BYTES, Maintenance, Monitor, Retention,
};
use crate::{env, kinds};
use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use watchpost_cron::{Schedule, Tz, local_tz, parse_tz};

/// The shortest token a location may have: it is the only thing that lets an agent report.
const MIN_TOKEN_CHARS: usize = 16;

/// The shortest `silent_after:`: an agent pushes within seconds of each check, so less would
/// alert on one slow push.
const MIN_SILENT_AFTER: Duration = Duration::from_secs(10);

/// The floor of the default `silent_after` (3 × the longest period of its monitors).
const DEFAULT_SILENT_FLOOR: Duration = Duration::from_secs(60);

/// Why a URL with `user:password@` is refused.
const NO_URL_CREDENTIALS: &str =
    "credentials in the URL are not sent; use headers: {Authorization: ...} with a ${VAR}";

/// Channel types this build knows. Each has its own settings, checked by the channel crate.
pub const CHANNEL_TYPES: &[&str] = &[
    "console",
    "webhook",
    "email",
    "wecom",
    "tencent_sms",
    "dingtalk",
    "feishu",
    "slack",
    "telegram",
    "alertmanager",
];

pub(crate) fn pos<T>(s: &S<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

/// The column of the `index`-th decoded character of a scalar that starts at `offset` in
/// `text`: skips an opening quote and counts escapes (`\"`, `''`) as the raw text has them.
pub(crate) fn scalar_column(text: &str, s: &S<String>, index: usize) -> u64 {
    let (_, column) = pos(s);
    let span = s.referenced.span();
    // The span's `offset` counts characters; slicing needs bytes.
    let byte = match span.byte_offset() {
        Some(b) => b as usize,
        None => text
            .char_indices()
            .nth(span.offset() as usize)
            .map_or(text.len(), |(i, _)| i),
    };
    let raw = text.get(byte..).unwrap_or("");
    let mut chars = raw.chars();
    let quote = match raw.chars().next() {
        Some(q @ ('"' | '\'')) => {
            chars.next();
            Some(q)
        }
        _ => None,
    };
    let mut raw_cols = u64::from(quote.is_some());
    let mut decoded = 0;
    while decoded < index {
        match (quote, chars.next()) {
            (Some('"'), Some('\\')) => {
                chars.next();
                raw_cols += 2;
            }
            (Some('\''), Some('\'')) => {
                chars.next();
                raw_cols += 2;
            }
            (_, Some(_)) => raw_cols += 1,
            (_, None) => break,
        }
        decoded += 1;
    }
    column + raw_cols
}

/// Why watchpost refuses this HTTP URL although it parses: longer than [`MAX_URL_BYTES`], or
/// holding credentials (`user:password@`), which are not sent. The message never quotes the
/// URL (it may hold a secret). `None` when neither applies (or the URL doesn't parse: that is
/// the URL parser's to report).
pub fn http_url_problem(url: &str) -> Option<String> {
    if url.len() > MAX_URL_BYTES {
        return Some(format!(
            "the URL is {} bytes long; the limit is 8 KiB ({MAX_URL_BYTES} bytes)",
            url.len()
        ));
    }
    let parsed = url::Url::parse(url).ok()?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some(NO_URL_CREDENTIALS.to_string());
    }
    None
}

/// Why watchpost refuses a request header line (`Name: value`): longer than
/// [`MAX_HEADER_LINE_BYTES`]. Never quotes the line.
pub fn header_line_problem(line: &str) -> Option<String> {
    (line.len() > MAX_HEADER_LINE_BYTES).then(|| {
        format!(
            "the header line is {} bytes long; the limit is 8 KiB ({MAX_HEADER_LINE_BYTES} bytes)",
            line.len()
        )
    })
}

/// Why the store could not open `storage:` — the forms it opens are `sqlite://PATH`,
/// `sqlite:PATH`, `sqlite::memory:` and `postgres://` / `postgresql://` URLs (with an optional
/// `sslmode` of disable, prefer, allow, require, verify-ca or verify-full). The message never
/// quotes the URL (a PostgreSQL URL holds a password); whether the server answers is only
/// known when the store opens.
pub fn storage_problem(url: &str) -> Option<&'static str> {
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("postgres://")
        .or_else(|| lower.strip_prefix("postgresql://"))
    {
        if rest.contains('#') {
            return Some("fragments (#...) are not supported in a PostgreSQL URL");
        }
        let query = rest.split_once('?').map_or("", |(_, q)| q);
        for pair in query.split('&') {
            if let Some(mode) = pair.strip_prefix("sslmode=")
                && !matches!(
                    mode,
                    "disable" | "prefer" | "allow" | "require" | "verify-ca" | "verify-full"
                )
            {
                return Some("sslmode must be disable, prefer, require, verify-ca or verify-full");
            }
        }
        return None;
    }
    if lower.starts_with("postgres:") || lower.starts_with("postgresql:") {
        return Some("use postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE");
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Some(
            "use sqlite://PATH (e.g. sqlite://watchpost.db), sqlite::memory: or \
             postgres://USER:PASSWORD@HOST/DATABASE",
        );
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path == ":memory:" {
        return None;
    }
    if path.contains('?') {
        return Some("query parameters (?...) are not supported; use sqlite://PATH");
    }
    if path.is_empty() {
        return Some("the SQLite file path is empty; use sqlite://PATH");
    }
    None
}

/// The file path of a `sqlite:` URL (`sqlite://PATH` or `sqlite:PATH`); `None` for another
/// scheme, `:memory:` or an empty path.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// `storage:` with a relative SQLite file path made relative to the config file's directory
/// (as [`Report::path`] does for `ca_file`), so every command opens the same file whatever the
/// working directory: `sqlite://state.db` next to `/etc/watchpost/watchpost.yaml` is
/// `sqlite:///etc/watchpost/state.db`. Absolute paths, `:memory:` and anything that is not a
/// `sqlite:` URL are returned as they are.
fn resolve_storage(r: &Report<'_>, url: &str) -> String {
    match sqlite_file(url) {
        Some(path) if std::path::Path::new(path).is_relative() => {
            // Always the `//` form: `sqlite:` followed by a path that starts with `//` would
            // lose those slashes when opened.
            format!("sqlite://{}", r.path(path).display())
        }
        _ => url.to_string(),
    }
}

/// Bidirectional-text controls: invisible, and able to make a name read as another.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Why a name (of a monitor, channel or location) is refused: blank, longer than
/// [`MAX_NAME_CHARS`], or holding control characters (newline, ESC, DEL, C1, bidi controls)
/// that would garble a terminal or an alert. The name is shown escaped, never raw.
fn name_problem(what: &str, name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some(format!("{what} name is empty"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        let start: String = name.chars().take(40).collect();
        return Some(format!(
            "{what} name {:?}… is {chars} characters long; the limit is {MAX_NAME_CHARS}",
            start
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || is_bidi_control(*c)) {
        return Some(format!(
            "{what} name {} contains the control character {}: names are printed on terminals and in alerts",
            escaped(name),
            escaped_char(c)
        ));
    }
    None
}

/// `text` quoted with every control and bidi character escaped (`"a\nb"`, `"\u{1b}[31m"`).
pub(crate) fn escaped(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) || c == '"' || c == '\\' {
            out.push_str(&escaped_char(c));
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

pub(crate) fn escaped_char(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '"' => "\\\"".into(),
        '\\' => "\\\\".into(),
        c => format!("\\u{{{:x}}}", c as u32),
    }
}

fn check_name(r: &mut Report<'_>, what: &str, name: &S<String>) {
    if let Some(problem) = name_problem(what, &name.value) {
        let (l, c) = pos(name);
        r.at(l, c, problem);
    }
}

/// The URL as written, without `user:password@`.
pub(crate) fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let start = scheme_end + 3;
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &rest[at + 1..]),
        None => url.to_string(),
    }
}

fn duration(r: &mut Report<'_>, s: &S<String>, what: &str) -> Option<Duration> {
    match watchpost_units::parse_duration(&s.value) {
        Ok(d) => Some(d),
        Err(e) => {
            let (l, c) = pos(s);
            r.at(l, c, format!("{what}: {e}"));
            None
        }
    }
}

fn zone(r: &mut Report<'_>, s: &S<String>) -> Option<Tz> {
    match parse_tz(&s.value) {
        Ok(tz) => Some(tz),
        Err(e) => {
            let (l, c) = pos(s);
            r.at(l, c, format!("timezone: {e}"));
            None
        }
    }
}

/// A cron schedule that fires: one that can never fire, or whose last fire time (on `zone`'s
/// wall clock) is before `now`, is an error — it would be accepted and do nothing.
fn parse_schedule(
    r: &mut Report<'_>,
    s: &S<String>,
    what: &str,
    zone: Option<Tz>,
    now: DateTime<Utc>,
) -> Option<Schedule> {
    let (l, c) = pos(s);
    let sched = match Schedule::parse(&s.value) {
        Ok(sched) => sched,
        Err(e) => {
            r.at(l, c, format!("{what}: {e}"));
            return None;
        }
    };
    if sched.never_fires() {
        r.at(
            l,
            c,
            format!("{what}: {:?} never fires: no date matches it", s.value),
        );
        return None;
    }
    if let Some(tz) = zone {
        let local = now.with_timezone(&tz);
        if sched.next_after(&local).is_none() {
            let last = sched
                .previous_before(&local)
                .map(|t| format!(", at {}", t.format("%Y-%m-%d %H:%M:%S %:z")))
                .unwrap_or_default();
            r.at(
                l,
                c,
                format!(
                    "{what}: {:?} does not fire any more: its last fire time has passed{last} (its year field has passed)",
                    s.value
                ),
            );
            return None;
        }
    }
    Some(sched)
}

pub(crate) fn validate(file: &str, text: &str, now: DateTime<Utc>) -> Result<Config, ConfigErrors> {
    let mut r = Report::new(file);
    env::check(text, &mut r);
    let raw: RawConfig = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (l, c) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            r.at(l, c, crate::yaml::message(&e));
            return Err(r.into_errors());
        }
    };

    let timezone = match &raw.timezone {
        Some(s) => zone(&mut r, s),
        None => Some(local_tz()),
    };
    let storage = match &raw.storage {
        Some(s) => {
            let mut used = crate::Secrets::new();
            let v = env::interpolate_recording(&s.value, &mut used);
            if let Some(problem) = storage_problem(&v) {
                let (l, c) = pos(s);
                r.at(l, c, format!("storage: {problem}"));
            }
            let resolved = resolve_storage(&r, &v);
            for (name, value) in used.entries() {
                r.secrets.add(name, value);
                // A value the resolution split (`${DB_URL}` = `sqlite://w.db`): mask what it
                // became, the URL and the path a store error names.
                if !resolved.contains(value) {
                    r.secrets.add(name, &resolved);
                    if let Some(path) = sqlite_file(&resolved) {
                        r.secrets.add(name, path);
                    }
                }
            }
            resolved
        }
        None => resolve_storage(&r, "sqlite://watchpost.db"),
    };
    let locale = match &raw.locale {
        None => Locale::En,
        Some(s) => match s.value.as_str() {
            "en" => Locale::En,
            "zh-CN" | "zh-cn" | "zh" => Locale::ZhCn,
            other => {
                let (l, c) = pos(s);
                r.at(
                    l,
                    c,
                    format!("locale: {other:?} is not supported (zh-CN or en)"),
                );
                Locale::En
            }
        },
    };
    let mut retention = Retention::default();
    match raw.retention.as_ref() {
        None => {}
        Some(s) => match &s.value {
            crate::raw::RawRetention::Raw(text) => match watchpost_units::parse_duration(text) {
                Ok(d) => retention.raw = d,
                Err(e) => {
                    let (l, c) = pos(s);
                    r.at(l, c, format!("retention: {e}"));
                }
            },
            crate::raw::RawRetention::Each {
                raw: each_raw,
                minutes,
                hours,
            } => {
                for (value, slot, what) in [
                    (each_raw, &mut retention.raw, "retention: raw"),
                    (minutes, &mut retention.minutes, "retention: minutes"),
                    (hours, &mut retention.hours, "retention: hours"),
                ] {
                    if let Some(s) = value {
                        *slot = duration(&mut r, s, what).unwrap_or(*slot);
                    }
                }
            }
        },
    }
    let concurrency = match &raw.concurrency {
        Some(s) if s.value == 0 => {
            let (l, c) = pos(s);
            r.at(l, c, "concurrency must be at least 1");
            1
        }
        Some(s) => s.value as usize,
        None => 64,
    };

    let delivery_max_age = match raw.delivery.as_ref().and_then(|d| d.max_age.as_ref()) {
        Some(s) => duration(&mut r, s, "delivery max_age").unwrap_or_default(),
        None => Duration::from_secs(24 * 3600),
    };
    let mut channels = BTreeMap::new();
    for (key, spec) in &raw.channels.0 {
        check_name(&mut r, "channel", key);
        let name = &key.value;
        let (l, c) = pos(spec);
        let kind = spec.value.get("type").and_then(|t| t.as_str());
        match kind {
            None => r.at(
                l,
                c,
                format!(
                    "channel {}: missing `type` (one of {})",
                    escaped(name),
                    CHANNEL_TYPES.join(", ")
                ),
            ),
            Some(k) if !CHANNEL_TYPES.contains(&k) => r.at(
                l,
                c,
                format!(
                    "channel {}: unknown type {} (one of {})",
                    escaped(name),
                    escaped(k),
                    CHANNEL_TYPES.join(", ")
                ),
            ),
            Some(k) => {
                let mut settings = spec.value.clone();
                env::interpolate_json(&mut settings, &mut r.secrets);
                if let Some(ca) = settings.get_mut("ca_file")
                    && let Some(path) = ca.as_str()
                {
                    *ca = r.path(path).display().to_string().into();
                }
                channels.insert(
                    name.clone(),
                    ChannelSpec {
                        kind: k.to_string(),
                        settings,
                        line: l,
                        column: c,
                    },
                );
            }
        }
    }
    let channel_names: BTreeSet<&str> = raw
        .channels
        .0
        .iter()
        .map(|(k, _)| k.value.as_str())
        .collect();

    let declared: BTreeSet<&str> = raw
        .locations
        .0
        .iter()
        .map(|(k, _)| k.value.as_str())
        .filter(|k| *k != "local")
        .collect();
    let mut locations = BTreeMap::new();
    // Locations whose `silent_after:` is to be computed from their monitors.
    let mut silent_default: BTreeSet<String> = BTreeSet::new();
    let mut channels_default: BTreeSet<String> = BTreeSet::new();
    for (key, loc) in &raw.locations.0 {
        check_name(&mut r, "location", key);
        let (l, c) = pos(key);
        if key.value == "local" {
            r.at(
                l,
                c,
                "`local` is this machine (every monitor's default location): it can't be declared",
            );
        }
        let token = match &loc.token {
            None => {
                r.at(
                    l,
                    c,
                    format!(
                        "location {} needs a `token:`, taken from the environment \
                         (token: \"${{MY_LOCATION_TOKEN}}\")",
                        escaped(&key.value)
                    ),
                );
                None
            }
            Some(t) => {
                let (tl, tc) = pos(t);
                let token = r.interpolate(&t.value);
                if !t.value.contains("${") {
                    r.at(
                        tl,
                        tc,
                        "token: write it as \"${VARIABLE}\" and set it in the environment, \
                         not in the file",
                    );
                } else if !token.is_empty() && token.chars().count() < MIN_TOKEN_CHARS {
                    r.at(
                        tl,
                        tc,
                        format!(
                            "token: at least {MIN_TOKEN_CHARS} characters (it is the agent's \
                             password)"
                        ),
                    );
                }
                Some(token)
            }
        };
        let silent_after = match &loc.silent_after {
            None => {
                silent_default.insert(key.value.clone());
                DEFAULT_SILENT_FLOOR
            }
            Some(s) => match duration(&mut r, s, "silent_after") {
                Some(d) if d < MIN_SILENT_AFTER => {
                    let (sl, sc) = pos(s);
                    r.at(sl, sc, "silent_after: at least 10s");
                    d
                }
                Some(d) => d,
                None => DEFAULT_SILENT_FLOOR,
            },
        };
        let mut location_channels = Vec::new();
        match &loc.channels {
            None => {
                channels_default.insert(key.value.clone());
            }
            Some(list) => {
                for ch in list {
                    if !channel_names.contains(ch.value.as_str()) {
                        let (cl, cc) = pos(ch);
                        r.at(
                            cl,
                            cc,
                            format!(
                                "unknown channel {} (defined under channels: {})",
                                escaped(&ch.value),
                                listed(&channel_names, "none")
                            ),
                        );
                    } else if !location_channels.contains(&ch.value) {
                        location_channels.push(ch.value.clone());
                    }
                }
            }
        }
        locations.insert(
            key.value.clone(),
            LocationSpec {
                region: loc.region.clone(),
                isp: loc.isp.clone(),
                token,
                silent_after,
                channels: location_channels,
            },
        );
    }

    // Each monitor's keys with their positions, for errors about a key (the first read
    // keeps only the values' positions). The text was read once already, so this read succeeds;
    // if it didn't, errors fall back to the values' positions.
    let keys: Vec<Keyed<IgnoredAny>> = serde_saphyr::from_str::<MonitorKeys>(text)
        .map(|k| k.monitors)
        .unwrap_or_default();
    if raw.monitors.is_empty() {
        r.warn(
            1,
            1,
            "no monitors are defined: watchpost has nothing to check",
        );
    }
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut monitors = Vec::new();
    for (i, m) in raw.monitors.iter().enumerate() {
        let (l, c) = pos(&m.name);
        check_name(&mut r, "monitor", &m.name);
        if let Some(first) = seen.insert(m.name.value.as_str(), l) {
            r.at(
                l,
                c,
                format!(
                    "duplicate monitor name {} (first defined on line {first})",
                    escaped(&m.name.value)
                ),
            );
        }
        kinds::refuse_foreign_keys(&mut r, m, keys.get(i));
        if let Some(monitor) = monitor(&mut r, text, m, &channel_names, &declared, timezone, now) {
            monitors.push(monitor);
        }
    }
    // Defaults that depend on the monitors: 3 × the longest period of a location's monitors
    // (at least a minute), and the union of their channels.
    for (key, _) in &raw.locations.0 {
        if !monitors.iter().any(|m| m.locations.contains(&key.value)) {
            let (l, c) = pos(key);
            r.warn(
                l,
                c,
                format!(
                    "location {} is declared but no monitor lists it: its agent gets nothing \
                     to check",
                    escaped(&key.value)
                ),
            );
        }
    }
    for (name, spec) in locations.iter_mut() {
        let mine = monitors.iter().filter(|m| m.locations.contains(name));
        if silent_default.contains(name) {
            let longest = mine
                .clone()
                .filter_map(|m| period(&m.schedule))
                .max()
                .unwrap_or_default();
            spec.silent_after = (longest * 3).max(DEFAULT_SILENT_FLOOR);
        }
        if channels_default.contains(name) {
            let mut all: Vec<String> = mine.flat_map(|m| m.alert.channels.clone()).collect();
            all.sort();
            all.dedup();
            spec.channels = all;
        }
    }
    let finished = r.finish()?;
    Ok(Config {
        file: file.to_string(),
        timezone: timezone.unwrap_or(Tz::UTC),
        storage,
        locale,
        retention,
        concurrency,
        delivery_max_age,
        channels,
        locations,
        monitors,
        warnings: finished.warnings,
        secrets: finished.secrets,
        text: text.to_string(),
    })
}

fn monitor(
    r: &mut Report<'_>,
    text: &str,
    m: &RawMonitor,
    channels: &BTreeSet<&str>,
    declared: &BTreeSet<&str>,
    zone_default: Option<Tz>,
    now: DateTime<Utc>,
) -> Option<Monitor> {
    let name = m.name.value.clone();
    let shown = escaped(&name);
    let errors_before = r.errors.len();

    let settings = kinds::settings(r, m);

    let (schedule, spread) = match (&m.schedule, &m.every) {
        (Some(_), Some(e)) => {
            let (l, c) = pos(e);
            r.at(
                l,
                c,
                format!("monitor {shown}: give either `schedule:` or `every:`, not both"),
            );
            (None, false)
        }
        (Some(s), None) => (parse_schedule(r, s, "schedule", zone_default, now), false),
        (None, Some(e)) => {
            let every = duration(r, e, "every");
            match every {
                Some(d) if d < Duration::from_secs(1) => {
                    let (l, c) = pos(e);
                    r.at(l, c, "every: the period must be at least 1s");
                    (None, true)
                }
                Some(_) => (Schedule::parse(&format!("@every {}", e.value)).ok(), true),
                None => (None, true),
            }
        }
        (None, None) => (Schedule::parse("@every 60s").ok(), true),
    };

    let timeout = match &m.timeout {
        Some(s) => duration(r, s, "timeout"),
        None => Some(Duration::from_secs(10)),
    };
    let check = settings.map(|(settings, target)| {
        let limit = timeout.unwrap_or(Duration::from_secs(10));
        (kinds::probe_check(settings, limit), target)
    });

    let mut locs: Vec<String> = Vec::new();
    for loc in &m.locations {
        let (l, c) = pos(loc);
        if loc.value != "local" && !declared.contains(loc.value.as_str()) {
            r.at(
                l,
                c,
                format!(
                    "unknown location {} (`local`, or one declared under locations: {})",
                    escaped(&loc.value),
                    listed(declared, "none are")
                ),
            );
        } else if locs.contains(&loc.value) {
            r.at(
                l,
                c,
                format!("location {} is listed twice", escaped(&loc.value)),
            );
            continue;
        }
        locs.push(loc.value.clone());
    }
    if locs.is_empty() {
        locs.push("local".into());
    }

    let conditions = kinds::conditions(r, text, m);

    let mut alert = AlertPolicy::default();
    if let Some(a) = &m.alert {
        for ch in &a.channels {
            if !channels.contains(ch.value.as_str()) {
                let (l, c) = pos(ch);
                r.at(
                    l,
                    c,
                    format!(
                        "unknown channel {} (defined under channels: {})",
                        escaped(&ch.value),
                        listed(channels, "none")
                    ),
                );
            }
            alert.channels.push(ch.value.clone());
        }
        for (field, value, target) in [
            (
                "failure_threshold",
                &a.failure_threshold,
                &mut alert.failure_threshold,
            ),
            (
                "success_threshold",
                &a.success_threshold,
                &mut alert.success_threshold,
            ),
        ] {
            if let Some(v) = value {
                if v.value == 0 {
                    let (l, c) = pos(v);
                    r.at(l, c, format!("{field} must be at least 1"));
                }
                *target = v.value.max(1);
            }
        }
        if let Some(q) = &a.quorum {
            let (l, c) = pos(q);
            match quorum(&q.value, locs.len()) {
                Ok(n) => alert.quorum = n,
                Err(e) => r.at(l, c, e),
            }
        }
        if let Some(b) = a.send_resolved {
            alert.send_resolved = b;
        }
        if let Some(rep) = &a.repeat {
            alert.repeat = duration(r, rep, "repeat");
        }
    }

    let mut maintenance = Vec::new();
    for w in &m.maintenance {
        let tz = match &w.timezone {
            Some(s) => zone(r, s),
            None => zone_default,
        };
        let start = parse_schedule(r, &w.start, "maintenance start", tz, now);
        let dur = duration(r, &w.duration, "maintenance duration");
        if let (Some(start), Some(duration), Some(tz)) = (start, dur, tz) {
            maintenance.push(Maintenance {
                start,
                duration,
                tz,
            });
        }
    }

    if r.errors.len() > errors_before {
        return None;
    }
    let (check, target) = check?;
    Some(Monitor {
        name,
        target,
        check,
        schedule: schedule?,
        spread,
        timeout: timeout?,
        locations: locs,
        conditions,
        alert,
        maintenance,
    })
}

/// The names of `names`, comma-separated, or `none` when there are none.
/// The gap between a schedule's next two fire times (its `every:` period, or a cron
/// schedule's current gap); `None` for a schedule that fires less than twice from now.
fn period(schedule: &Schedule) -> Option<Duration> {
    if let Some(every) = schedule.every() {
        return Some(every);
    }
    let next = schedule.upcoming(&Utc::now(), 2);
    match next.as_slice() {
        [a, b] => (*b - *a).to_std().ok(),
        _ => None,
    }
}

fn listed(names: &BTreeSet<&str>, none: &str) -> String {
    if names.is_empty() {
        none.to_string()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// `quorum:` as a number of the monitor's `locations` locations: a count from 1 to
/// `locations`, or a percentage of them (`50%`, rounded up, at least 1).
fn quorum(raw: &crate::raw::RawQuorum, locations: usize) -> Result<u32, String> {
    use crate::raw::RawQuorum;
    let usage =
        "quorum must be a number of locations (1, 2, ...) or a percentage of them (\"50%\")";
    let count = match raw {
        RawQuorum::Count(n) => *n,
        RawQuorum::Text(text) => {
            let text = text.trim();
            match text.strip_suffix('%') {
                Some(pct) => {
                    let pct: f64 = pct
                        .trim()
                        .parse()
                        .ok()
                        .filter(|p: &f64| p.is_finite())
                        .ok_or_else(|| format!("{usage}, not {text:?}"))?;
                    if !(pct > 0.0 && pct <= 100.0) {
                        return Err(format!(
                            "quorum {text} is not a percentage above 0% and at most 100%"
                        ));
                    }
                    // Rounded up: 50% of 3 locations is 2; never below 1.
                    ((pct / 100.0 * locations as f64) - 1e-9).ceil().max(1.0) as i64
                }
                None => text
                    .parse::<i64>()
                    .map_err(|_| format!("{usage}, not {text:?}"))?,
            }
        }
    };
    if count < 1 {
        return Err("quorum must be at least 1".into());
    }
    if count as u64 > locations as u64 {
        return Err(format!(
            "quorum {count} is more than the monitor's {locations} location(s)"
        ));
    }
    Ok(count as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_removed_from_the_target() {
        assert_eq!(
            without_userinfo("https://u:${PW}@example.com/a?b=${T}"),
            "https://example.com/a?b=${T}"
        );
        assert_eq!(
            without_userinfo("http://example.com/p@th"),
            "http://example.com/p@th"
        );
        assert_eq!(without_userinfo("${URL}"), "${URL}");
    }

    #[test]
    fn storage_forms() {
        for ok in [
            "sqlite://watchpost.db",
            "sqlite:///var/lib/w.db",
            "sqlite:w.db",
            "sqlite::memory:",
            "sqlite://:memory:",
            "postgres://u:secret@h/db",
            "postgresql://h/db",
            "PostgreSQL://h:5433/db?sslmode=verify-full&application_name=w",
            "postgres://u@127.0.0.1/db?sslmode=disable",
        ] {
            assert_eq!(storage_problem(ok), None, "{ok}");
        }
        for (bad, want) in [
            ("postgres://u:secret@h/db?sslmode=secret", "sslmode"),
            ("postgres://u:secret@h/db#secret", "fragments"),
            ("postgres:u:secret@h/db", "use postgres://"),
            ("sqlite:///x.db?mode=ro", "query parameters"),
            ("sqlite://", "empty"),
            ("sqlite:", "empty"),
            ("mysql://h/db", "use sqlite://PATH"),
        ] {
            let got = storage_problem(bad).unwrap();
            assert!(got.contains(want), "{bad}: {got}");
            assert!(!got.contains("secret"));
        }
    }

    #[test]
    fn storage_resolves_against_the_config_directory() {
        let r = Report::new("/etc/watchpost/watchpost.yaml");
        for (url, want) in [
            ("sqlite://state.db", "sqlite:///etc/watchpost/state.db"),
            ("sqlite://data/w.db", "sqlite:///etc/watchpost/data/w.db"),
            ("sqlite:state.db", "sqlite:///etc/watchpost/state.db"),
            ("sqlite://../w.db", "sqlite:///etc/watchpost/../w.db"),
            ("sqlite:///var/lib/w.db", "sqlite:///var/lib/w.db"),
            ("sqlite:/var/lib/w.db", "sqlite:/var/lib/w.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("sqlite://:memory:", "sqlite://:memory:"),
            ("postgres://h/db", "postgres://h/db"),
        ] {
            assert_eq!(resolve_storage(&r, url), want, "{url}");
        }
        // A config named relative to the working directory: its directory, as named.
        let r = Report::new("conf/watchpost.yaml");
        assert_eq!(
            resolve_storage(&r, "sqlite:state.db"),
            "sqlite://conf/state.db"
        );
        let r = Report::new("watchpost.yaml");
        assert_eq!(
            resolve_storage(&r, "sqlite://state.db"),
            "sqlite://state.db"
        );
    }

    #[test]
    fn storage_is_resolved_in_the_config() {
        let parsed = |text: &str| validate("/srv/wp/watchpost.yaml", text, Utc::now()).unwrap();
        assert_eq!(
            parsed("storage: sqlite://state.db\nmonitors: []\n").storage,
            "sqlite:///srv/wp/state.db"
        );
        assert_eq!(
            parsed("storage: \"sqlite::memory:\"\nmonitors: []\n").storage,
            "sqlite::memory:"
        );
        // The default is a relative path too.
        assert_eq!(
            parsed("monitors: []\n").storage,
            "sqlite:///srv/wp/watchpost.db"
        );
    }

    #[test]
    fn names() {
        assert_eq!(name_problem("monitor", "homepage"), None);
        assert_eq!(name_problem("monitor", "首页 (北京)"), None);
        assert_eq!(
            name_problem("monitor", "a\nb").unwrap(),
            "monitor name \"a\\nb\" contains the control character \\n: names are printed on terminals and in alerts"
        );
        let esc = name_problem("channel", "\u{1b}[31mred").unwrap();
        assert!(esc.contains("\"\\u{1b}[31mred\""), "{esc}");
        assert!(!esc.contains('\u{1b}'));
        for c in ['\u{7f}', '\u{85}', '\u{9b}', '\u{202e}', '\0'] {
            let got = name_problem("location", &format!("x{c}y")).unwrap();
            assert!(!got.contains(c), "{got}");
        }
        assert!(name_problem("monitor", "  ").unwrap().contains("empty"));
        let long = "x".repeat(201);
        assert!(
            name_problem("monitor", &long)
                .unwrap()
                .contains("201 characters long; the limit is 200")
        );
        assert_eq!(name_problem("monitor", &"名".repeat(200)), None);
    }
}
