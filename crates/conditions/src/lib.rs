//! Conditions: `OPERAND OP VALUE` expressions such as `status == 200`, `total < 800ms`,
//! `body contains "ok"`, parsed once (at config or flag time) and evaluated against an
//! observation. A failing condition is data ([`Failure`]): the operand, the operator, the
//! expected and the actual value, and the sentence people read (`total 1430ms > 1000ms`).
//!
//! The grammar is the same for every check kind; what differs is the set of operands, which
//! each kind declares as an [`Operands`] table so that `total < 800` (no unit) or an operand the
//! kind doesn't have is rejected at parse time rather than silently compared. This crate knows
//! no check kind: the tables and the [`Subject`]s live with the probes.

mod operands;
mod parse;

pub use operands::{Family, Operands};
pub use parse::ConditionError;

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use watchpost_units::{format_bytes, format_ms};

/// What an operand holds, which decides the values and operators it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperandKind {
    /// A plain number (`status`, `cert_days`).
    Number,
    /// A duration, compared in milliseconds; the value needs a unit (`800ms`, `1.5s`).
    Duration,
    /// A size in bytes (`size < 10KB`).
    Bytes,
    /// Bytes per second (`speed > 100KB/s`).
    Rate,
    /// Text (`body`, `header.NAME`, `json.PATH`); numeric comparisons work when both sides are
    /// numbers.
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Matches,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::NotContains => "!contains",
            Op::Matches => "matches",
        }
    }

    fn compare(self, actual: f64, expected: f64) -> bool {
        match self {
            Op::Eq => actual == expected,
            Op::Ne => actual != expected,
            Op::Lt => actual < expected,
            Op::Le => actual <= expected,
            Op::Gt => actual > expected,
            Op::Ge => actual >= expected,
            Op::Contains | Op::NotContains | Op::Matches => false,
        }
    }
}

/// The right-hand side, already in the operand's unit.
#[derive(Debug, Clone)]
pub enum Value {
    Number(f64),
    /// Milliseconds.
    Duration(f64),
    Bytes(f64),
    Rate(f64),
    Text(String),
    Regex(Regex),
}

/// An observed value offered by a [`Subject`].
#[derive(Debug, Clone)]
pub enum Actual<'a> {
    Number(f64),
    /// Milliseconds.
    Duration(f64),
    Bytes(f64),
    Rate(f64),
    Text(Cow<'a, str>),
    /// Several texts (the answers of a DNS query): `contains`, `==` and `matches` hold when one
    /// of them does; `!contains` and `!=` when none does.
    List(Vec<Cow<'a, str>>),
    /// The operand has no value in this observation (a missing header, no TLS).
    Missing,
}

/// Something conditions can be evaluated against: an observation offering its values by
/// operand name. Object safe, so one evaluation serves every kind.
pub trait Subject {
    /// The value of `operand` ([`Actual::Missing`] when this observation has none).
    fn actual(&self, operand: &str) -> Actual<'_>;
}

/// A condition that did not hold, as data: `{operand: "total", op: "<", expected: "1000ms",
/// actual: "1430ms", text: "total 1430ms > 1000ms"}`. `actual` is the observed value as shown
/// to people (unquoted text, cut to 200 characters; `missing` when absent); `expected` the
/// right-hand side in the operand's unit (text unquoted, a regular expression as `/RE/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub operand: String,
    pub op: String,
    pub expected: String,
    pub actual: String,
    pub text: String,
    /// The Kafka topic a per-topic `lag` failure is about (`kafka_lag` judges `lag` for each
    /// topic on its own); `None` for every other condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Every condition that does not hold for `subject`, in order (empty = all hold).
pub fn evaluate(subject: &dyn Subject, conditions: &[Condition]) -> Vec<Failure> {
    conditions
        .iter()
        .filter_map(|c| c.check(subject).err())
        .collect()
}

/// A kind's default conditions in front of `conditions`, except those on an operand one of
/// `conditions` names itself: with HTTP's defaults `status >= 200`, `status <= 399`,
/// `["total < 1s"]` still fails a 503 (`status 503 > 399`), while `["status == 503"]` replaces
/// the defaults and passes it.
pub fn with_defaults(conditions: Vec<Condition>, defaults: &[Condition]) -> Vec<Condition> {
    let mut out: Vec<Condition> = defaults
        .iter()
        .filter(|d| !conditions.iter().any(|c| c.operand == d.operand))
        .cloned()
        .collect();
    out.extend(conditions);
    out
}

/// A parsed condition.
#[derive(Debug, Clone)]
pub struct Condition {
    pub source: String,
    pub operand: String,
    pub op: Op,
    pub value: Value,
}

impl Condition {
    /// Parse `text` against a kind's `operands` (which decide the names and their kinds).
    pub fn parse(text: &str, operands: &Operands) -> Result<Condition, ConditionError> {
        parse::parse(text, operands)
    }

    /// `Ok(())` when the condition holds, else the failure with the actual value.
    #[expect(
        clippy::result_large_err,
        reason = "a failure is built once per failed condition and moved straight out"
    )]
    pub fn check(&self, subject: &dyn Subject) -> Result<(), Failure> {
        let actual = subject.actual(&self.operand);
        if self.holds(&actual) {
            Ok(())
        } else {
            Err(Failure {
                operand: self.operand.clone(),
                op: self.op.as_str().to_string(),
                expected: self.expected_plain(),
                actual: shown(&actual),
                text: self.explain(&actual),
                topic: None,
            })
        }
    }

    fn holds(&self, actual: &Actual<'_>) -> bool {
        match (actual, &self.value) {
            (Actual::Missing, _) => self.op == Op::NotContains || self.op == Op::Ne,
            (Actual::List(items), _) => {
                let any = |c: &Condition| {
                    items
                        .iter()
                        .any(|item| c.holds(&Actual::Text(Cow::Borrowed(item.as_ref()))))
                };
                match self.op {
                    // "none of them contains / equals": the positive form holds for none.
                    Op::NotContains | Op::Ne => {
                        let positive = Condition {
                            op: if self.op == Op::Ne {
                                Op::Eq
                            } else {
                                Op::Contains
                            },
                            ..self.clone()
                        };
                        !any(&positive)
                    }
                    _ => any(self),
                }
            }
            (Actual::Text(text), Value::Text(want)) => match self.op {
                Op::Contains => text.contains(want.as_str()),
                Op::NotContains => !text.contains(want.as_str()),
                Op::Eq => text.as_ref() == want,
                Op::Ne => text.as_ref() != want,
                _ => false,
            },
            (Actual::Text(text), Value::Regex(re)) => re.is_match(text),
            (Actual::Text(text), Value::Number(want)) => text
                .trim()
                .parse::<f64>()
                .is_ok_and(|n| self.op.compare(n, *want)),
            (Actual::Number(a), Value::Number(b))
            | (Actual::Duration(a), Value::Duration(b))
            | (Actual::Bytes(a), Value::Bytes(b))
            | (Actual::Rate(a), Value::Rate(b)) => self.op.compare(*a, *b),
            (Actual::Number(a), Value::Text(b)) => match self.op {
                Op::Eq => b.parse::<f64>().is_ok_and(|b| *a == b),
                Op::Ne => b.parse::<f64>().ok().is_none_or(|b| *a != b),
                _ => false,
            },
            _ => false,
        }
    }

    /// `total 1430ms > 1000ms`, `status 500 != 200`, `body does not contain "ok"`.
    fn explain(&self, actual: &Actual<'_>) -> String {
        let name = &self.operand;
        let expected = self.expected_text();
        let shown = match actual {
            Actual::Missing => {
                return format!(
                    "{name} is missing (expected {} {expected})",
                    self.op.as_str()
                );
            }
            Actual::Number(n) => format_number(*n),
            Actual::Duration(ms) => format_ms(*ms),
            Actual::Bytes(b) => format_bytes(*b),
            Actual::Rate(r) => format!("{}/s", format_bytes(*r)),
            Actual::List(items) => {
                return match self.op {
                    Op::Contains => format!("{name} does not contain {expected}"),
                    Op::NotContains => format!("{name} contains {expected}"),
                    Op::Matches => format!("{name} does not match {expected}"),
                    Op::Eq => format!("{name} [{}] has no {expected}", list_short(items)),
                    Op::Ne => format!("{name} [{}] has {expected}", list_short(items)),
                    _ => format!(
                        "{name} [{}] has none {} {expected}",
                        list_short(items),
                        self.op.as_str()
                    ),
                };
            }
            Actual::Text(t) => {
                return match self.op {
                    Op::Contains => format!("{name} does not contain {expected}"),
                    Op::NotContains => format!("{name} contains {expected}"),
                    Op::Matches => format!("{name} does not match {expected}"),
                    _ => format!(
                        "{name} {} {} {expected}",
                        quote_short(t),
                        violated(self.op, t.as_ref(), &self.value)
                    ),
                };
            }
        };
        let rel = match (actual, &self.value) {
            (Actual::Number(a), Value::Number(b))
            | (Actual::Duration(a), Value::Duration(b))
            | (Actual::Bytes(a), Value::Bytes(b))
            | (Actual::Rate(a), Value::Rate(b)) => match self.op {
                Op::Eq => "!=".to_string(),
                _ => relation(*a, *b),
            },
            _ => format!("is not {}", self.op.as_str()),
        };
        format!("{name} {shown} {rel} {expected}")
    }

    /// The right-hand side as data: unquoted text, `/RE/`, numbers in their unit.
    fn expected_plain(&self) -> String {
        match &self.value {
            Value::Text(t) => t.clone(),
            _ => self.expected_text(),
        }
    }

    fn expected_text(&self) -> String {
        match &self.value {
            Value::Number(n) => format_number(*n),
            Value::Duration(ms) => format_ms(*ms),
            Value::Bytes(b) => format_bytes(*b),
            Value::Rate(r) => format!("{}/s", format_bytes(*r)),
            Value::Text(t) => format!("{t:?}"),
            Value::Regex(re) => format!("/{}/", re.as_str()),
        }
    }
}

/// The relation that actually holds between two numbers (shown when a comparison fails).
fn relation(a: f64, b: f64) -> String {
    if a < b {
        "<".into()
    } else if a > b {
        ">".into()
    } else {
        "==".into()
    }
}

fn violated(op: Op, actual: &str, value: &Value) -> &'static str {
    match (op, value) {
        (Op::Eq, _) => "!=",
        (Op::Ne, _) => "==",
        (_, Value::Number(n)) => match actual.trim().parse::<f64>() {
            Ok(a) if a < *n => "<",
            Ok(a) if a > *n => ">",
            Ok(_) => "==",
            Err(_) => "is not a number, expected",
        },
        _ => "vs",
    }
}

/// The actual value as data (see [`Failure::actual`]).
fn shown(actual: &Actual<'_>) -> String {
    match actual {
        Actual::Missing => "missing".to_string(),
        Actual::Number(n) => format_number(*n),
        Actual::Duration(ms) => format_ms(*ms),
        Actual::Bytes(b) => format_bytes(*b),
        Actual::Rate(r) => format!("{}/s", format_bytes(*r)),
        Actual::Text(t) => cut(t, 200),
        Actual::List(items) => cut(
            &items
                .iter()
                .map(|i| i.as_ref())
                .collect::<Vec<_>>()
                .join(", "),
            200,
        ),
    }
}

/// At most `max` characters of `text`, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    let mut s: String = text.chars().take(max).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// `"a", "b"`: the first items of a list, quoted, cut.
fn list_short(items: &[Cow<'_, str>]) -> String {
    let mut shown: Vec<String> = items.iter().take(5).map(|i| quote_short(i)).collect();
    if items.len() > 5 {
        shown.push(format!("… {} more", items.len() - 5));
    }
    shown.join(", ")
}

fn quote_short(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    format!("{s:?}")
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}
