//! Raw YAML structs → [`Config`], collecting every problem with its position.

use crate::env;
use crate::error::{ConfigErrors, Report};
use crate::raw::{MonitorKind, RawConfig, RawMonitor, S};
use crate::{AlertPolicy, ChannelSpec, Check, Config, Locale, LocationSpec, Maintenance, Monitor};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use watchpost_conditions::{Condition, DEFAULT_HTTP_CONDITIONS, HttpSubject};
use watchpost_cron::{Schedule, Tz, local_tz, parse_tz};
use watchpost_probes::http::HttpRequest;

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

fn pos<T>(s: &S<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

/// The column of the `index`-th decoded character of a scalar that starts at `offset` in
/// `text`: skips an opening quote and counts escapes (`\"`, `''`) as the raw text has them.
fn scalar_column(text: &str, s: &S<String>, index: usize) -> u64 {
    let (_, column) = pos(s);
    let offset = s.referenced.span().offset() as usize;
    let raw = text.get(offset..).unwrap_or("");
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

/// serde-saphyr's message without its position and snippet (we print our own position).
fn serde_message(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 2 column 1: unknown field ..." → "unknown field ..."
    match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
            rest.to_string()
        }
        _ => first.to_string(),
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

fn parse_schedule(r: &mut Report<'_>, s: &S<String>, what: &str) -> Option<Schedule> {
    let (l, c) = pos(s);
    match Schedule::parse(&s.value) {
        Ok(sched) if sched.never_fires() => {
            r.at(
                l,
                c,
                format!("{what}: {:?} never fires: no date matches it", s.value),
            );
            None
        }
        Ok(sched) => Some(sched),
        Err(e) => {
            r.at(l, c, format!("{what}: {e}"));
            None
        }
    }
}

pub(crate) fn validate(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let mut r = Report::new(file);
    env::check(text, &mut r);
    let raw: RawConfig = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (l, c) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            r.at(l, c, serde_message(&e));
            return Err(r.finish().expect_err("an error was reported"));
        }
    };

    let timezone = match &raw.timezone {
        Some(s) => zone(&mut r, s),
        None => Some(local_tz()),
    };
    let storage = match &raw.storage {
        Some(s) => {
            let v = env::interpolate(&s.value);
            if !(v.starts_with("sqlite:") || v.starts_with("postgres://")) {
                let (l, c) = pos(s);
                r.at(
                    l,
                    c,
                    "storage: use sqlite://PATH (or postgres://... for shared setups)",
                );
            }
            v
        }
        None => "sqlite://watchpost.db".to_string(),
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
    let retention = match &raw.retention {
        Some(s) => duration(&mut r, s, "retention").unwrap_or_default(),
        None => Duration::from_secs(7 * 86_400),
    };
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
    for (name, spec) in &raw.channels {
        let (l, c) = pos(spec);
        let kind = spec.value.get("type").and_then(|t| t.as_str());
        match kind {
            None => r.at(
                l,
                c,
                format!(
                    "channel {name:?}: missing `type` (one of {})",
                    CHANNEL_TYPES.join(", ")
                ),
            ),
            Some(k) if !CHANNEL_TYPES.contains(&k) => r.at(
                l,
                c,
                format!(
                    "channel {name:?}: unknown type {k:?} (one of {})",
                    CHANNEL_TYPES.join(", ")
                ),
            ),
            Some(k) => {
                let mut settings = spec.value.clone();
                env::interpolate_json(&mut settings);
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
    let locations: BTreeMap<String, LocationSpec> = raw
        .locations
        .iter()
        .map(|(name, l)| {
            (
                name.clone(),
                LocationSpec {
                    region: l.region.clone(),
                    isp: l.isp.clone(),
                    token: l.token.as_deref().map(env::interpolate),
                },
            )
        })
        .collect();

    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut monitors = Vec::new();
    for m in &raw.monitors {
        let (l, c) = pos(&m.name);
        if m.name.value.trim().is_empty() {
            r.at(l, c, "monitor name is empty");
        }
        if let Some(first) = seen.insert(m.name.value.as_str(), l) {
            r.at(
                l,
                c,
                format!(
                    "duplicate monitor name {:?} (first defined on line {first})",
                    m.name.value
                ),
            );
        }
        if let Some(monitor) = monitor(&mut r, text, m, &raw.channels, &locations, timezone) {
            monitors.push(monitor);
        }
    }
    r.finish()?;
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
    })
}

fn monitor(
    r: &mut Report<'_>,
    text: &str,
    m: &RawMonitor,
    channels: &BTreeMap<String, S<serde_json::Value>>,
    locations: &BTreeMap<String, LocationSpec>,
    zone_default: Option<Tz>,
) -> Option<Monitor> {
    let name = m.name.value.clone();
    let errors_before = r.errors.len();

    let check = match m.kind.value {
        MonitorKind::Http => http_check(r, m),
    };

    let (schedule, spread) = match (&m.schedule, &m.every) {
        (Some(_), Some(e)) => {
            let (l, c) = pos(e);
            r.at(
                l,
                c,
                format!("monitor {name:?}: give either `schedule:` or `every:`, not both"),
            );
            (None, false)
        }
        (Some(s), None) => (parse_schedule(r, s, "schedule"), false),
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

    let mut locs = Vec::new();
    for loc in &m.locations {
        if loc.value != "local" && !locations.contains_key(&loc.value) {
            let (l, c) = pos(loc);
            let known: Vec<&str> = std::iter::once("local")
                .chain(locations.keys().map(String::as_str))
                .collect();
            r.at(
                l,
                c,
                format!(
                    "unknown location {:?} (known: {})",
                    loc.value,
                    known.join(", ")
                ),
            );
        }
        locs.push(loc.value.clone());
    }
    if locs.is_empty() {
        locs.push("local".into());
    }

    let mut conditions = Vec::new();
    if m.conditions.is_empty() {
        conditions.extend(
            DEFAULT_HTTP_CONDITIONS
                .iter()
                .filter_map(|c| Condition::parse::<HttpSubject>(c).ok()),
        );
    }
    for cond in &m.conditions {
        match Condition::parse::<HttpSubject>(&cond.value) {
            Ok(c) => conditions.push(c),
            Err(e) => {
                let (l, _) = pos(cond);
                r.at(
                    l,
                    scalar_column(text, cond, e.column),
                    format!("condition: {}", e.message),
                );
            }
        }
    }

    let mut alert = AlertPolicy::default();
    if let Some(a) = &m.alert {
        for ch in &a.channels {
            if !channels.contains_key(&ch.value) {
                let (l, c) = pos(ch);
                let known: Vec<&str> = channels.keys().map(String::as_str).collect();
                r.at(
                    l,
                    c,
                    format!(
                        "unknown channel {:?} (defined under channels: {})",
                        ch.value,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
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
            ("quorum", &a.quorum, &mut alert.quorum),
        ] {
            if let Some(v) = value {
                if v.value == 0 {
                    let (l, c) = pos(v);
                    r.at(l, c, format!("{field} must be at least 1"));
                }
                *target = v.value.max(1);
            }
        }
        if let Some(q) = &a.quorum
            && q.value as usize > locs.len()
        {
            let (l, c) = pos(q);
            r.at(
                l,
                c,
                format!(
                    "quorum {} is more than the monitor's {} location(s)",
                    q.value,
                    locs.len()
                ),
            );
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
        let start = parse_schedule(r, &w.start, "maintenance start");
        let dur = duration(r, &w.duration, "maintenance duration");
        let tz = match &w.timezone {
            Some(s) => zone(r, s),
            None => zone_default,
        };
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
    Some(Monitor {
        name,
        check: check?,
        schedule: schedule?,
        spread,
        timeout: timeout?,
        locations: locs,
        conditions,
        alert,
        maintenance,
    })
}

fn http_check(r: &mut Report<'_>, m: &RawMonitor) -> Option<Check> {
    let name = &m.name.value;
    let Some(url) = &m.url else {
        let (l, c) = pos(&m.name);
        r.at(l, c, format!("monitor {name:?}: type http needs a `url:`"));
        return None;
    };
    let (l, c) = pos(url);
    let mut req = match HttpRequest::get(&env::interpolate(&url.value)) {
        Ok(req) => req,
        Err(e) => {
            // The interpolated URL may hold a secret: name only the problem.
            let message = match e {
                watchpost_probes::http::RequestError::Url { reason, .. } => {
                    format!("url: invalid URL: {reason}")
                }
                other => format!("url: {other}"),
            };
            r.at(l, c, message);
            return None;
        }
    };
    if let Some(method) = &m.method {
        match req.clone().method(&method.value) {
            Ok(next) => req = next,
            Err(e) => {
                let (l, c) = pos(method);
                r.at(l, c, e.to_string());
            }
        }
    }
    for (k, v) in &m.headers {
        match req
            .clone()
            .header_line(&format!("{k}: {}", env::interpolate(v)))
        {
            Ok(next) => req = next,
            Err(_) => r.at(l, c, format!("header {k:?}: invalid name or value")),
        }
    }
    if let Some(body) = &m.body {
        req.body = env::interpolate(body).into_bytes().into();
    }
    req.insecure = m.insecure.unwrap_or(false);
    req.follow_redirects = m.follow_redirects.unwrap_or(false);
    if let Some(mb) = &m.max_body {
        match watchpost_units::parse_size(&mb.value) {
            Ok(n) => req.max_body = n,
            Err(e) => {
                let (l, c) = pos(mb);
                r.at(l, c, format!("max_body: {e}"));
            }
        }
    }
    Some(Check::Http(Box::new(req)))
}
