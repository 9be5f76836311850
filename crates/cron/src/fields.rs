//! Field-by-field validation in the Tencent SCF dialect, producing the normalized 7-field
//! pattern that croner evaluates. Every error names the field, the value and what is allowed.

use crate::CronError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Week,
    Year,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Second,
        Field::Minute,
        Field::Hour,
        Field::Day,
        Field::Month,
        Field::Week,
        Field::Year,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::Day => "day",
            Field::Month => "month",
            Field::Week => "week",
            Field::Year => "year",
        }
    }

    pub fn range(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::Day => (1, 31),
            Field::Month => (1, 12),
            Field::Week => (0, 7),
            Field::Year => (1970, 2099),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTHS,
            Field::Week => &WEEKDAYS,
            _ => &[],
        }
    }

    /// The value a name stands for (`JAN` = 1, `SUN` = 0).
    fn name_value(self, text: &str) -> Option<u32> {
        let upper = text.to_ascii_uppercase();
        let pos = self.names().iter().position(|n| *n == upper)? as u32;
        Some(if self == Field::Month { pos + 1 } else { pos })
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Check one field and return it normalized for croner (names upper-cased, `a/n` expanded to
/// `a-max/n`).
pub fn check(field: Field, text: &str, expr: &str) -> Result<String, CronError> {
    let err = |message: String| CronError::field(field, message, expr);
    if text.is_empty() {
        return Err(err("empty field".into()));
    }
    let mut out = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(err(format!("empty item in list {text:?}")));
        }
        out.push(check_item(field, item, text).map_err(err)?);
    }
    Ok(out.join(","))
}

fn check_item(field: Field, item: &str, whole: &str) -> Result<String, String> {
    let (lo, hi) = field.range();
    let upper = item.to_ascii_uppercase();
    // Special characters first: they stand alone (no lists inside, no steps).
    match field {
        Field::Day if upper == "?" || upper == "L" || upper == "LW" => return Ok(upper),
        Field::Week if upper == "?" => return Ok(upper),
        Field::Day if upper.ends_with('W') => {
            let n = value(field, &item[..item.len() - 1])?;
            return Ok(format!("{n}W"));
        }
        Field::Week if upper == "L" => {
            return Err("L in week needs a day before it: 5L is the last Friday".into());
        }
        Field::Week if upper.ends_with('L') => {
            let n = value(field, &item[..item.len() - 1])?;
            return Ok(format!("{n}L"));
        }
        Field::Week if upper.contains('#') => {
            let (day, nth) = item.split_once('#').unwrap_or_default();
            let d = value(field, day)?;
            let k: u32 = nth
                .parse()
                .map_err(|_| format!("{item}: # takes the week of the month, 1-5"))?;
            if !(1..=5).contains(&k) {
                return Err(format!("{k} is out of range 1-5 after # in {item}"));
            }
            return Ok(format!("{d}#{k}"));
        }
        _ => {}
    }
    if upper == "?" {
        return Err("? is only allowed in day and week".into());
    }
    if upper.contains('L') && !field.names().iter().any(|n| upper.contains(n)) {
        return Err(format!(
            "{item}: L is only allowed in day (L, LW) and week (5L)"
        ));
    }
    if upper.contains('#') {
        return Err(format!("{item}: # is only allowed in week (e.g. MON#1)"));
    }
    if upper.ends_with('W') && !field.names().iter().any(|n| upper.ends_with(n)) {
        return Err(format!("{item}: W is only allowed in day (e.g. 15W)"));
    }
    let (base, step) = match item.split_once('/') {
        Some((b, s)) => {
            let step: u32 = s
                .parse()
                .map_err(|_| format!("step {s:?} in {item} is not a number"))?;
            if step == 0 {
                return Err(format!("step 0 in {item}: the step must be at least 1"));
            }
            if step > hi - lo + 1 && field != Field::Year {
                return Err(format!(
                    "step {step} in {item} is larger than the range {lo}-{hi}"
                ));
            }
            (b, Some(step))
        }
        None => (item, None),
    };
    let suffix = step.map(|s| format!("/{s}")).unwrap_or_default();
    if base == "*" {
        return Ok(format!("*{suffix}"));
    }
    if base.is_empty() {
        return Err(format!("{item}: missing value before /"));
    }
    match base.split_once('-') {
        Some((a, b)) => {
            let a = value(field, a)?;
            let b = value(field, b)?;
            if a > b {
                return Err(format!("range {a}-{b} in {whole} runs backwards"));
            }
            Ok(format!("{a}-{b}{suffix}"))
        }
        None => {
            let a = value(field, base)?;
            Ok(match step {
                // `a/n` = from a, every n, to the end of the range.
                Some(_) => format!("{a}-{hi}{suffix}"),
                None => format!("{a}"),
            })
        }
    }
}

fn value(field: Field, text: &str) -> Result<u32, String> {
    let (lo, hi) = field.range();
    if let Some(v) = field.name_value(text) {
        return Ok(v);
    }
    let n: u32 = text.parse().map_err(|_| {
        if field.names().is_empty() {
            format!("{text:?} is not a number")
        } else {
            format!(
                "{text:?} is not a number or a name ({}-{})",
                field.names()[0],
                field.names()[field.names().len() - 1]
            )
        }
    })?;
    if n < lo || n > hi {
        return Err(format!("{n} is out of range {lo}-{hi}"));
    }
    Ok(n)
}
