//! Conditions: `OPERAND OP VALUE` expressions such as `status == 200`, `total < 800ms`,
//! `body contains "ok"`, parsed once (at config or flag time) and evaluated against an
//! observation. A failing condition explains itself with the actual value: `total 1430ms > 1000ms`.
//!
//! The grammar is the same for every probe kind; what differs is the set of operands, which a
//! [`Subject`] declares with their kinds so that `total < 800` (no unit) is rejected at parse
//! time rather than silently compared.

mod http;
mod parse;

pub use http::{DEFAULT_HTTP_CONDITIONS, HttpSubject, evaluate_http, with_default_status};
pub use parse::ConditionError;

use regex::Regex;
use std::borrow::Cow;
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
    /// The operand has no value in this observation (a missing header, no TLS).
    Missing,
}

/// Something conditions can be evaluated against.
pub trait Subject {
    /// The kind of `operand`, or `None` when the operand is unknown for this subject.
    fn operand_kind(operand: &str) -> Option<OperandKind>
    where
        Self: Sized;
    /// The operands to list in "unknown operand" errors.
    fn operand_names() -> &'static [&'static str]
    where
        Self: Sized;
    fn actual(&self, operand: &str) -> Actual<'_>;
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
    /// Parse `text` for the subject type `S` (which decides the operands and their kinds).
    pub fn parse<S: Subject>(text: &str) -> Result<Condition, ConditionError> {
        parse::parse(text, S::operand_kind, S::operand_names())
    }

    /// `Ok(())` when the condition holds, else the failure explained with the actual value.
    pub fn check<S: Subject>(&self, subject: &S) -> Result<(), String> {
        let actual = subject.actual(&self.operand);
        if self.holds(&actual) {
            Ok(())
        } else {
            Err(self.explain(&actual))
        }
    }

    fn holds(&self, actual: &Actual<'_>) -> bool {
        match (actual, &self.value) {
            (Actual::Missing, _) => self.op == Op::NotContains || self.op == Op::Ne,
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
