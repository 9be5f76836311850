//! Cron with seconds, in the dialect of Tencent SCF timer triggers, so one expression means the
//! same in watchpost's daemon and in an SCF trigger.
//!
//! - 7 fields `sec min hour day month week year` (recommended), 6 fields
//!   `sec min hour day month week`, 5 fields `min hour day month week` (classic; second 0).
//! - `@every <duration>` (aligned to multiples of the period since the Unix epoch), `@hourly`,
//!   `@daily`, `@weekly`, `@monthly`, `@yearly`.
//! - `, - * /` and `a/n` (from a, every n), names `JAN-DEC` and `SUN-SAT` in any case, week
//!   0-7 with 0 and 7 both Sunday, `?` in day and week, `L`/`LW`/`nW` in day, `nL` and `d#k`
//!   in week, year 1970-2099 (a `*` year too: no fire time lies outside 1970-2099).
//! - **OR rule**: when day and week are both restricted (anything but `*` or `?`), a time
//!   matches if *either* matches: `0 0 12 1 * MON *` fires on the 1st and on every Monday.
//! - **Time zones and DST**: expressions are evaluated on the wall clock of an IANA zone. A
//!   fixed-time job whose time falls in a spring-forward gap runs once, at the first valid
//!   instant after it (02:30 → 03:00); in a fall-back overlap it runs once (the first
//!   occurrence). Jobs stepping seconds or minutes follow real elapsed time (both 01:30s of a
//!   fall-back night fire, none of the missing hour).
//! - An expression that can never fire (`0 0 0 30 2 * *`) is reported as such.
//!
//! Evaluation is done by `croner` behind this front end, which owns field counting, the
//! Tencent ranges, the error messages and the descriptions.

mod describe;
mod fields;

pub use chrono_tz::Tz;
pub use fields::Field;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use std::str::FromStr;
use std::time::Duration;

/// A bad expression. Displays as `week: 8 is out of range 0-7 in "0 0 12 * * 8 *"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message} in {expr:?}", field.map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct CronError {
    pub field: Option<Field>,
    pub message: String,
    pub expr: String,
}

impl CronError {
    fn field(field: Field, message: String, expr: &str) -> Self {
        CronError {
            field: Some(field),
            message,
            expr: expr.to_string(),
        }
    }

    fn whole(message: impl Into<String>, expr: &str) -> Self {
        CronError {
            field: None,
            message: message.into(),
            expr: expr.to_string(),
        }
    }
}

/// The first and the last second of the years 1970-2099 on `zone`'s wall clock: no fire time
/// lies outside them.
fn year_bounds<Z: TimeZone>(zone: &Z) -> Option<(DateTime<Z>, DateTime<Z>)> {
    let first = zone.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).earliest()?;
    let last = zone.with_ymd_and_hms(2099, 12, 31, 23, 59, 59).latest()?;
    Some((first, last))
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    source: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron {
        cron: Box<Cron>,
        /// The 7 normalized fields.
        fields: [String; 7],
    },
    Every(Duration),
}

impl FromStr for Schedule {
    type Err = CronError;

    fn from_str(expr: &str) -> Result<Self, Self::Err> {
        Schedule::parse(expr)
    }
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, CronError> {
        let trimmed = expr.trim();
        if let Some(rest) = trimmed.strip_prefix('@') {
            let (word, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let fields = match word.to_ascii_lowercase().as_str() {
                "every" => {
                    let period = watchpost_units::parse_duration(arg.trim())
                        .map_err(|e| CronError::whole(format!("@every: {e}"), expr))?;
                    if period < Duration::from_secs(1) {
                        return Err(CronError::whole(
                            "@every: the period must be at least 1s",
                            expr,
                        ));
                    }
                    return Ok(Schedule {
                        source: trimmed.to_string(),
                        kind: Kind::Every(period),
                    });
                }
                "hourly" => "0 0 * * * * *",
                "daily" | "midnight" => "0 0 0 * * * *",
                "weekly" => "0 0 0 * * 0 *",
                "monthly" => "0 0 0 1 * * *",
                "yearly" | "annually" => "0 0 0 1 1 * *",
                other => {
                    return Err(CronError::whole(
                        format!(
                            "unknown shortcut @{other} (use @every 30s, @hourly, @daily, @weekly, @monthly, @yearly)"
                        ),
                        expr,
                    ));
                }
            };
            if !arg.trim().is_empty() {
                return Err(CronError::whole(format!("@{word} takes no argument"), expr));
            }
            return Self::parse_fields(fields, trimmed);
        }
        Self::parse_fields(trimmed, trimmed)
    }

    fn parse_fields(text: &str, source: &str) -> Result<Schedule, CronError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let padded: [&str; 7] = match parts.len() {
            7 => [
                parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6],
            ],
            6 => [
                parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], "*",
            ],
            5 => ["0", parts[0], parts[1], parts[2], parts[3], parts[4], "*"],
            0 => return Err(CronError::whole("empty expression", source)),
            n => {
                return Err(CronError::whole(
                    format!(
                        "expected 7 fields (sec min hour day month week year), 6 or 5, got {n}"
                    ),
                    source,
                ));
            }
        };
        let mut fields: [String; 7] = Default::default();
        for (i, field) in Field::ALL.iter().enumerate() {
            fields[i] = fields::check(*field, padded[i], source)?;
        }
        let pattern = fields.join(" ");
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Required)
            .dom_and_dow(false)
            .build()
            .parse(&pattern)
            .map_err(|e| CronError::whole(e.to_string(), source))?;
        Ok(Schedule {
            source: source.to_string(),
            kind: Kind::Cron {
                cron: Box::new(cron),
                fields,
            },
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The period of an `@every` schedule.
    pub fn every(&self) -> Option<Duration> {
        match self.kind {
            Kind::Every(p) => Some(p),
            Kind::Cron { .. } => None,
        }
    }

    /// The first fire time strictly after `after`, in `after`'s zone; `None` when there is
    /// none (the year field has passed, or the expression can never fire).
    pub fn next_after<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<DateTime<Z>>
    where
        DateTime<Z>: croner::time::CronDateTime,
    {
        match &self.kind {
            Kind::Every(period) => {
                let p = period.as_nanos() as i128;
                let t = after.timestamp_nanos_opt()? as i128;
                let next = (t.div_euclid(p) + 1) * p;
                let next = i64::try_from(next).ok()?;
                Some(after.timezone().timestamp_nanos(next))
            }
            Kind::Cron { cron, .. } => {
                // Fire times lie in the years 1970-2099 (of the zone's wall clock): a search
                // starts no earlier than 1970 and none starts past 2099 (croner would panic
                // near chrono's limits).
                let (first, last) = year_bounds(&after.timezone())?;
                if *after >= last {
                    return None;
                }
                let start = if *after < first {
                    first - chrono::TimeDelta::seconds(1)
                } else {
                    after.clone()
                };
                cron.find_next_occurrence(&start, false).ok()
            }
        }
    }

    /// The last fire time strictly before `before`, in `before`'s zone; `None` when there is
    /// none (nothing matched earlier, or the expression can never fire). With
    /// [`next_after`](Self::next_after) returning `None` it tells when an expression whose
    /// year field has passed fired for the last time.
    pub fn previous_before<Z: TimeZone>(&self, before: &DateTime<Z>) -> Option<DateTime<Z>>
    where
        DateTime<Z>: croner::time::CronDateTime,
    {
        match &self.kind {
            Kind::Every(period) => {
                let p = period.as_nanos() as i128;
                let t = before.timestamp_nanos_opt()? as i128;
                let previous = (t - 1).div_euclid(p) * p;
                let previous = i64::try_from(previous).ok()?;
                Some(before.timezone().timestamp_nanos(previous))
            }
            Kind::Cron { cron, .. } => {
                // The same bounds as `next_after`, from the other side.
                let (first, last) = year_bounds(&before.timezone())?;
                if *before <= first {
                    return None;
                }
                let start = if *before > last {
                    last + chrono::TimeDelta::seconds(1)
                } else {
                    before.clone()
                };
                cron.find_previous_occurrence(&start, false).ok()
            }
        }
    }

    /// The next `n` fire times after `after`.
    pub fn upcoming<Z: TimeZone>(&self, after: &DateTime<Z>, n: usize) -> Vec<DateTime<Z>>
    where
        DateTime<Z>: croner::time::CronDateTime,
    {
        let mut out = Vec::with_capacity(n.min(1024));
        let mut cursor = after.clone();
        while out.len() < n {
            match self.next_after(&cursor) {
                Some(t) => {
                    cursor = t.clone();
                    out.push(t);
                }
                None => break,
            }
        }
        out
    }

    /// True when no time from 1970 on matches (`0 0 0 30 2 * *`). An expression that did fire
    /// but whose year field has passed is not "never": ask [`next_after`](Self::next_after)
    /// from now for that.
    pub fn never_fires(&self) -> bool {
        let epoch = Utc.timestamp_opt(0, 0).single().expect("epoch");
        self.next_after(&epoch).is_none()
    }

    /// A one-line plain description: `every 5 seconds`, `at 10:15:00 on Monday through Friday`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Every(p) => describe::every(*p),
            Kind::Cron { cron, fields } => {
                describe::fields(fields).unwrap_or_else(|| describe::fallback(&cron.describe()))
            }
        }
    }
}

/// Parse an IANA zone name (`Asia/Shanghai`, `UTC`).
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?} (use an IANA name like Asia/Shanghai or UTC)")
    })
}

/// The machine's IANA zone (from the OS), or UTC when it can't be told.
pub fn local_tz() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| parse_tz(&name).ok())
        .unwrap_or(Tz::UTC)
}
