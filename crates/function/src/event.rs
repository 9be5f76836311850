//! What an invocation was asked to do: the trigger that fired (for the summary and the logs)
//! and which monitors to run.
//!
//! Understood shapes, all JSON objects:
//! - Tencent SCF timer: `{"Type":"Timer","TriggerName":"…","Time":"…","Message":"…"}`; the
//!   trigger's message (its `argument` in Serverless Framework) may select monitors.
//! - Amazon EventBridge scheduled event: `{"detail-type":"Scheduled Event","source":
//!   "aws.events","time":"…","resources":["arn:…:rule/NAME"],"detail":{…}}`; `detail.monitors`
//!   may select monitors (a rule's constant input can also be `{"monitors":[…]}`).
//! - Alibaba FC timer: `{"triggerName":"…","triggerTime":"…","payload":"…"}`; the payload may
//!   select monitors.
//! - Anything else that is JSON (`{}`, a Knative PingSource's `data`, a manual test event): a
//!   top-level `monitors` or `Message` selects, otherwise every monitor runs.
//!
//! An empty body runs every monitor; a body that is not JSON is read as a message. A selection
//! is `monitors=NAME,NAME` (spaces around names are ignored), or in JSON a list of names or a
//! comma-separated string. A message that says anything else is refused rather than ignored:
//! a trigger whose message has a typo must fail where people see it, not check nothing.

use crate::FunctionError;
use serde_json::Value;

/// Which monitors an invocation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every monitor in the config.
    All,
    /// These monitors, by name, in the order given, without duplicates.
    Only(Vec<String>),
}

/// The platform's trigger, as far as the event says.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Trigger {
    /// `scf-timer`, `eventbridge`, `fc-timer`, or `event` for anything else.
    pub kind: &'static str,
    /// The trigger's or rule's name, when the event names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the platform says the trigger fired, as it wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// One parsed invocation event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub trigger: Trigger,
    pub selection: Selection,
}

impl Event {
    /// Parse an event body as the platform delivered it.
    pub fn parse(body: &[u8]) -> Result<Event, FunctionError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| FunctionError::Event("the event is not UTF-8 text".into()))?;
        if text.trim().is_empty() {
            return Ok(Event {
                trigger: Trigger {
                    kind: "event",
                    ..Trigger::default()
                },
                selection: Selection::All,
            });
        }
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Event::from_value(&value),
            Err(_) => Ok(Event {
                trigger: Trigger {
                    kind: "event",
                    ..Trigger::default()
                },
                selection: parse_message(text)?,
            }),
        }
    }

    /// Parse an event already read as JSON (the Lambda runtime hands it over that way).
    pub fn from_value(value: &Value) -> Result<Event, FunctionError> {
        let Some(object) = value.as_object() else {
            return match value {
                Value::Null => Ok(Event {
                    trigger: Trigger {
                        kind: "event",
                        ..Trigger::default()
                    },
                    selection: Selection::All,
                }),
                Value::String(s) => Ok(Event {
                    trigger: Trigger {
                        kind: "event",
                        ..Trigger::default()
                    },
                    selection: parse_message(s)?,
                }),
                _ => Err(FunctionError::Event(
                    "the event is neither a JSON object nor a message".into(),
                )),
            };
        };
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        if object.get("Type").and_then(Value::as_str) == Some("Timer") {
            let selection = match object.get("Message") {
                None | Some(Value::Null) => Selection::All,
                Some(Value::String(m)) => parse_message(m)?,
                Some(_) => {
                    return Err(FunctionError::Event(
                        "the timer's Message is not text".into(),
                    ));
                }
            };
            return Ok(Event {
                trigger: Trigger {
                    kind: "scf-timer",
                    name: text("TriggerName"),
                    time: text("Time"),
                },
                selection,
            });
        }
        if object.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            let rule = object
                .get("resources")
                .and_then(Value::as_array)
                .and_then(|r| r.first())
                .and_then(Value::as_str)
                .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_string());
            let selection = match object.get("detail").and_then(|d| d.get("monitors")) {
                None | Some(Value::Null) => Selection::All,
                Some(list) => names_from_json(list)?,
            };
            return Ok(Event {
                trigger: Trigger {
                    kind: "eventbridge",
                    name: rule,
                    time: text("time"),
                },
                selection,
            });
        }
        if object.contains_key("triggerTime") || object.contains_key("triggerName") {
            let selection = match object.get("payload") {
                None | Some(Value::Null) => Selection::All,
                Some(Value::String(p)) => parse_message(p)?,
                Some(_) => {
                    return Err(FunctionError::Event(
                        "the timer's payload is not text".into(),
                    ));
                }
            };
            return Ok(Event {
                trigger: Trigger {
                    kind: "fc-timer",
                    name: text("triggerName"),
                    time: text("triggerTime"),
                },
                selection,
            });
        }
        let selection = match (object.get("monitors"), object.get("Message")) {
            (Some(list), _) if !list.is_null() => names_from_json(list)?,
            (_, Some(Value::String(m))) => parse_message(m)?,
            _ => Selection::All,
        };
        Ok(Event {
            trigger: Trigger {
                kind: "event",
                ..Trigger::default()
            },
            selection,
        })
    }
}

/// A trigger message: empty (every monitor) or `monitors=NAME,NAME`.
pub fn parse_message(message: &str) -> Result<Selection, FunctionError> {
    let message = message.trim();
    if message.is_empty() {
        return Ok(Selection::All);
    }
    let Some((key, value)) = message.split_once('=') else {
        return Err(FunctionError::Event(format!(
            "the trigger message {message:?} is not understood: expected monitors=NAME,NAME or nothing"
        )));
    };
    if key.trim() != "monitors" {
        return Err(FunctionError::Event(format!(
            "the trigger message names {:?}: the only setting is monitors=NAME,NAME",
            key.trim()
        )));
    }
    names(value.split(','))
}

fn names_from_json(value: &Value) -> Result<Selection, FunctionError> {
    match value {
        Value::String(s) => names(s.split(',')),
        Value::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) => list.push(s),
                    None => {
                        return Err(FunctionError::Event(
                            "monitors: expected a list of names".into(),
                        ));
                    }
                }
            }
            names(list.into_iter())
        }
        _ => Err(FunctionError::Event(
            "monitors: expected a list of names or NAME,NAME".into(),
        )),
    }
}

fn names<'a>(parts: impl Iterator<Item = &'a str>) -> Result<Selection, FunctionError> {
    let mut out: Vec<String> = Vec::new();
    for name in parts.map(str::trim) {
        if name.is_empty() {
            continue;
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err(FunctionError::Event(
            "monitors= names no monitor (leave the message empty to run every monitor)".into(),
        ));
    }
    Ok(Selection::Only(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(names: &[&str]) -> Selection {
        Selection::Only(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn scf_timer_with_and_without_a_selection() {
        let e = Event::parse(
            br#"{"Type":"Timer","TriggerName":"every-minute","Time":"2026-01-01T00:01:00Z","Message":"monitors=homepage, orders-lag"}"#,
        )
        .unwrap();
        assert_eq!(e.trigger.kind, "scf-timer");
        assert_eq!(e.trigger.name.as_deref(), Some("every-minute"));
        assert_eq!(e.trigger.time.as_deref(), Some("2026-01-01T00:01:00Z"));
        assert_eq!(e.selection, only(&["homepage", "orders-lag"]));
        let e =
            Event::parse(br#"{"Type":"Timer","TriggerName":"t","Time":"x","Message":""}"#).unwrap();
        assert_eq!(e.selection, Selection::All);
    }

    #[test]
    fn eventbridge_scheduled_event() {
        let e = Event::parse(br#"{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","account":"1","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:1:rule/watchpost-5m"],"detail":{}}"#).unwrap();
        assert_eq!(e.trigger.kind, "eventbridge");
        assert_eq!(e.trigger.name.as_deref(), Some("watchpost-5m"));
        assert_eq!(e.selection, Selection::All);
        let e = Event::parse(br#"{"detail-type":"Scheduled Event","resources":[],"detail":{"monitors":["a","b","a"]}}"#).unwrap();
        assert_eq!(e.selection, only(&["a", "b"]));
    }

    #[test]
    fn fc_timer_and_plain_events() {
        let e = Event::parse(br#"{"triggerTime":"2026-01-01T00:00:00Z","triggerName":"timer","payload":"monitors=a"}"#).unwrap();
        assert_eq!(e.trigger.kind, "fc-timer");
        assert_eq!(e.selection, only(&["a"]));
        assert_eq!(Event::parse(b"").unwrap().selection, Selection::All);
        assert_eq!(Event::parse(b"{}").unwrap().selection, Selection::All);
        assert_eq!(
            Event::parse(br#"{"monitors":"a,b"}"#).unwrap().selection,
            only(&["a", "b"])
        );
        assert_eq!(Event::parse(b"monitors=x").unwrap().selection, only(&["x"]));
    }

    #[test]
    fn messages_that_say_something_else_are_refused() {
        for bad in ["hello", "monitor=a", "monitors=", "monitors= , "] {
            assert!(parse_message(bad).is_err(), "{bad}");
        }
        assert!(Event::parse(br#"{"Type":"Timer","Message":"check everything"}"#).is_err());
        assert!(Event::parse(b"[1,2]").is_err());
    }
}
