//! `OPERAND OP VALUE` → [`Condition`](crate::Condition).

use crate::{Condition, Op, OperandKind, Operands, Value};
use regex::Regex;
use watchpost_units::{bytes_unit, duration_unit_ms, split_number};

/// Why a condition did not parse; `column` (0-based, in characters) points at the culprit so
/// config errors can say `FILE:LINE:COL`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConditionError {
    pub message: String,
    pub column: usize,
}

fn err(column: usize, message: impl Into<String>) -> ConditionError {
    ConditionError {
        message: message.into(),
        column,
    }
}

const OPS: [(&str, Op); 9] = [
    ("!contains", Op::NotContains),
    ("contains", Op::Contains),
    ("matches", Op::Matches),
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("<", Op::Lt),
    (">", Op::Gt),
];

pub(crate) fn parse(text: &str, operands: &Operands) -> Result<Condition, ConditionError> {
    // Positions are found as byte offsets into `text` and reported in characters.
    let at = |byte: usize, message: String| err(text[..byte].chars().count(), message);
    let leading = text.len() - text.trim_start().len();
    let body = text.trim();
    if body.is_empty() {
        return Err(err(0, "empty condition: write it like `status == 200`"));
    }
    // Operand: up to whitespace or an operator character.
    let op_start = body
        .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '<' | '>'))
        .unwrap_or(body.len());
    let operand = &body[..op_start];
    if operand.is_empty() {
        return Err(at(leading, "missing operand before the operator".into()));
    }
    let kind = operands.kind_of(operand).ok_or_else(|| {
        at(
            leading,
            format!(
                "unknown operand {operand:?}, the kind has: {}",
                operands.names().join(", ")
            ),
        )
    })?;
    let rest = &body[op_start..];
    let rest_trim = rest.trim_start();
    let op_byte = leading + op_start + (rest.len() - rest_trim.len());
    let Some((op_text, op)) = OPS.iter().find(|(t, _)| rest_trim.starts_with(t)) else {
        return Err(at(
            op_byte,
            format!(
                "expected an operator after {operand:?} (one of == != < <= > >= contains !contains matches)"
            ),
        ));
    };
    let after = &rest_trim[op_text.len()..];
    if op_text.chars().all(char::is_alphabetic) && !after.starts_with(char::is_whitespace) {
        return Err(at(op_byte, format!("put a space after {op_text:?}")));
    }
    let value_text = after.trim();
    let value_byte = op_byte + op_text.len() + (after.len() - after.trim_start().len());
    if value_text.is_empty() {
        return Err(at(value_byte, format!("missing value after {op_text:?}")));
    }
    let value = parse_value(value_text, kind, *op, operand).map_err(|m| at(value_byte, m))?;
    Ok(Condition {
        source: body.to_string(),
        operand: operand.to_string(),
        op: *op,
        value,
    })
}

fn unquote(text: &str) -> Result<Option<String>, String> {
    let Some(first) = text.chars().next() else {
        return Ok(None);
    };
    if first != '"' && first != '\'' {
        return Ok(None);
    }
    let mut out = String::new();
    let mut chars = text[1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            c if c == first => {
                let trailing: String = chars.collect();
                if !trailing.trim().is_empty() {
                    return Err(format!(
                        "unexpected text after the closing quote: {trailing:?}"
                    ));
                }
                return Ok(Some(out));
            }
            c => out.push(c),
        }
    }
    Err(format!("unterminated string {text}"))
}

fn parse_value(text: &str, kind: OperandKind, op: Op, operand: &str) -> Result<Value, String> {
    let quoted = unquote(text)?;
    let textual = matches!(op, Op::Contains | Op::NotContains | Op::Matches);
    if textual && kind != OperandKind::Text {
        return Err(format!(
            "{:?} works on text; {operand} is a number",
            op.as_str()
        ));
    }
    if op == Op::Matches {
        let pattern = match &quoted {
            Some(q) => q.clone(),
            None => text
                .strip_prefix('/')
                .and_then(|t| t.strip_suffix('/'))
                .unwrap_or(text)
                .to_string(),
        };
        return Regex::new(&pattern)
            .map(Value::Regex)
            .map_err(|e| format!("bad regular expression: {e}"));
    }
    if let Some(q) = quoted {
        return match kind {
            OperandKind::Text => Ok(Value::Text(q)),
            _ => Err(format!("{operand} is compared with a number, not a string")),
        };
    }
    let number = split_number(text);
    match kind {
        OperandKind::Text => {
            if textual {
                return Ok(Value::Text(text.to_string()));
            }
            match number {
                Some((n, "")) if !matches!(op, Op::Eq | Op::Ne) => Ok(Value::Number(n)),
                _ if matches!(op, Op::Eq | Op::Ne) => Ok(Value::Text(text.to_string())),
                _ => Err(format!(
                    "{} needs a number on the right, got {text:?}",
                    op.as_str()
                )),
            }
        }
        OperandKind::Number => match number {
            Some((n, "")) => Ok(Value::Number(n)),
            _ => Err(format!(
                "{operand} is compared with a plain number, got {text:?}"
            )),
        },
        OperandKind::Duration => match number {
            Some((n, unit)) => match duration_unit_ms(unit) {
                Some(f) => Ok(Value::Duration(n * f)),
                None if unit.is_empty() => Err(format!(
                    "{operand} is a duration: add a unit, e.g. {text}ms"
                )),
                None => Err(format!("unknown duration unit {unit:?} (use us, ms, s, m)")),
            },
            None => Err(format!(
                "{operand} is a duration, got {text:?} (e.g. 800ms)"
            )),
        },
        OperandKind::Bytes | OperandKind::Rate => {
            let (n, unit) =
                number.ok_or_else(|| format!("{operand} is a size, got {text:?} (e.g. 10KB)"))?;
            let unit = if kind == OperandKind::Rate {
                unit.strip_suffix("/s").unwrap_or(unit)
            } else {
                unit
            };
            let f = bytes_unit(unit).ok_or_else(|| {
                format!("unknown size unit {unit:?} (use B, KB, MB, GB, KiB, MiB)")
            })?;
            Ok(if kind == OperandKind::Rate {
                Value::Rate(n * f)
            } else {
                Value::Bytes(n * f)
            })
        }
    }
}
