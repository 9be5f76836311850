//! Plain one-line descriptions of schedules for people: `every 5 seconds`,
//! `at 10:15:00 on Monday through Friday`. Common shapes are phrased here; anything else falls
//! back to croner's description.

use std::time::Duration;

const DAYS: [&str; 8] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("every {unit}")
    } else {
        format!("every {n} {unit}s")
    }
}

pub fn every(p: Duration) -> String {
    let s = p.as_secs();
    if p.subsec_nanos() != 0 {
        return format!("every {:.3} seconds", p.as_secs_f64());
    }
    match s {
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

fn any(f: &str) -> bool {
    f == "*" || f == "?"
}

fn number(f: &str) -> Option<u32> {
    f.parse().ok()
}

/// `*/n` or `*` → the step.
fn step(f: &str) -> Option<u64> {
    if f == "*" {
        return Some(1);
    }
    f.strip_prefix("*/").and_then(|s| s.parse().ok())
}

fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn weekday(f: &str) -> Option<String> {
    if let Some((a, b)) = f.split_once('-') {
        let (a, b) = (number(a)? as usize, number(b)? as usize);
        return Some(format!("{} through {}", DAYS[a], DAYS[b]));
    }
    let days: Option<Vec<String>> = f
        .split(',')
        .map(|d| number(d).map(|d| DAYS[d as usize].to_string()))
        .collect();
    days.map(|d| join(&d))
}

fn day_of_month(f: &str) -> Option<String> {
    Some(match f {
        "L" => "the last day of the month".into(),
        "LW" => "the last weekday of the month".into(),
        _ => {
            let days: Option<Vec<u32>> = f.split(',').map(number).collect();
            let days = days?;
            let list: Vec<String> = days.iter().map(|d| d.to_string()).collect();
            format!("day {} of the month", join(&list))
        }
    })
}

/// The date part: `on Monday through Friday`, `on day 1 of the month`, `in January`.
fn date_part(day: &str, month: &str, week: &str, year: &str) -> Option<String> {
    let mut out = String::new();
    match (any(day), any(week)) {
        (true, true) => {}
        (true, false) => out.push_str(&format!(" on {}", weekday(week)?)),
        (false, true) => out.push_str(&format!(" on {}", day_of_month(day)?)),
        (false, false) => out.push_str(&format!(
            " on {} or on {}",
            day_of_month(day)?,
            weekday(week)?
        )),
    }
    if !any(month) {
        let months: Option<Vec<String>> = month
            .split(',')
            .map(|m| number(m).map(|m| MONTHS[m as usize - 1].to_string()))
            .collect();
        out.push_str(&format!(" in {}", join(&months?)));
    }
    if !any(year) {
        number(year)?;
        out.push_str(&format!(" in {year}"));
    }
    Some(out)
}

/// Describe normalized fields `[sec, min, hour, day, month, week, year]`, or `None` when the
/// shape is not one we phrase ourselves.
pub fn fields(f: &[String; 7]) -> Option<String> {
    let [sec, min, hour, day, month, week, year] = f;
    let date = date_part(day, month, week, year)?;
    // every N seconds
    if let (Some(n), true, true) = (step(sec), min == "*", hour == "*") {
        return Some(format!("{}{date}", plural(n, "second")));
    }
    // every N minutes (at second S), optionally within hours a-b
    if let (Some(s), Some(n)) = (number(sec), step(min)) {
        let at = if s == 0 {
            String::new()
        } else {
            format!(" at second {s}")
        };
        let hours = match hour.as_str() {
            "*" => String::new(),
            h => match h.split_once('-') {
                Some((a, b)) => format!(" from {:02}:00 to {:02}:59", number(a)?, number(b)?),
                None => return None,
            },
        };
        return Some(format!("{}{at}{hours}{date}", plural(n, "minute")));
    }
    // every N hours at minute M
    if let (Some(s), Some(m), Some(n)) = (number(sec), number(min), step(hour)) {
        return Some(format!(
            "{} at minute {m}, second {s}{date}",
            plural(n, "hour")
        ));
    }
    // at fixed times
    let (s, m) = (number(sec)?, number(min)?);
    let hours: Option<Vec<u32>> = hour.split(',').map(number).collect();
    let times: Vec<String> = hours?
        .iter()
        .map(|h| format!("{h:02}:{m:02}:{s:02}"))
        .collect();
    let when = if date.is_empty() {
        " every day".to_string()
    } else {
        date
    };
    Some(format!("at {}{when}", join(&times)))
}

/// croner's English, adapted to one lower-case line: "At 12:00, on day 1." → "at 12:00, on day 1".
pub fn fallback(text: &str) -> String {
    let text = text.trim().trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
