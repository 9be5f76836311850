//! The stored form of [`MonitorState`]: a JSON document with its format version first,
//! `{"v":1,"status":"down",…}`.
//!
//! Each format is a frozen set of private structs, separate from the domain types, so the
//! engine's types can change without changing what is on disk; a change to the document is a
//! new version with an explicit conversion here. Formats read:
//!
//! - **v1** (written by [`state_to_json`]): `v`, `status` (`pending`, `up`, `down`),
//!   `consecutive_failures`, `consecutive_successes`, `incident` (`id`, `opened_at`,
//!   `notified`, `last_notified_at`, `reminders`, `reasons`, or null), `last_tick`. Times are
//!   RFC 3339 UTC. Unknown fields are refused: a v1 document holds exactly these.
//! - **unversioned**: what releases before the version field stored, the same fields without
//!   `v` (unknown fields ignored, as those releases did). `tests/golden/` keeps examples.
//!
//! A document with a higher version than [`STATE_VERSION`] was written by a newer watchpost:
//! [`state_from_json`] refuses it rather than guess.

use crate::{Incident, MonitorState, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The version [`state_to_json`] writes, and the highest [`state_from_json`] reads.
pub const STATE_VERSION: u64 = 1;

/// Why a stored state document can't be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// Not JSON at all (the reason says where it stops being JSON).
    #[error("the stored state is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the stored state is not a JSON object")]
    NotAnObject,
    /// `v` is there but not a version number (1, 2, …); the value is shown shortened.
    #[error("the stored state has an invalid version {0} (expected a whole number from 1)")]
    BadVersion(String),
    /// Written by a newer watchpost, in a format this one doesn't know.
    #[error(
        "the stored state is a version {found} document, written by a newer watchpost; this \
         one reads versions up to {STATE_VERSION}: run the newer watchpost, or remove the \
         monitor's stored state to start it afresh"
    )]
    Newer { found: u64 },
    /// A known version whose content doesn't fit it (`format` is `v1` or `unversioned`).
    #[error("the stored state ({format} document) is invalid: {reason}")]
    Invalid {
        format: &'static str,
        reason: String,
    },
}

/// `state` as a v1 document: `{"v":1,…}`.
pub fn state_to_json(state: &MonitorState) -> String {
    let doc = StateV1::from(state);
    // Plain structs of strings, numbers, booleans and RFC 3339 times: serializing can't fail.
    serde_json::to_string(&doc).unwrap_or_default()
}

/// Read a stored state document: v1, or the unversioned form of earlier releases (converted).
/// Anything else is a [`DocError`]; a newer version says so.
pub fn state_from_json(text: &str) -> Result<MonitorState, DocError> {
    // The common case, read straight into the struct (a quiet tick reads its state every
    // time): a v1 document as `state_to_json` writes it. Anything else, or any doubt, takes
    // the general path below, which also words the errors.
    if text.starts_with(r#"{"v":1,"#)
        && let Ok(doc) = serde_json::from_str::<StateV1>(text)
    {
        return Ok(doc.into());
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DocError::NotJson(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(DocError::NotAnObject);
    };
    match object.get("v") {
        None => {
            let legacy: LegacyState =
                serde_json::from_value(value).map_err(|e| DocError::Invalid {
                    format: "unversioned",
                    reason: e.to_string(),
                })?;
            Ok(StateV1::from(legacy).into())
        }
        Some(v) => match v.as_u64() {
            Some(1) => {
                let doc: StateV1 =
                    serde_json::from_value(value).map_err(|e| DocError::Invalid {
                        format: "v1",
                        reason: e.to_string(),
                    })?;
                Ok(doc.into())
            }
            Some(found) if found > STATE_VERSION => Err(DocError::Newer { found }),
            _ => Err(DocError::BadVersion(shortened(&v.to_string()))),
        },
    }
}

/// At most 40 characters of `text`, marked when cut.
fn shortened(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// The status as every format so far spells it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StatusDoc {
    Pending,
    Up,
    Down,
}

impl From<Status> for StatusDoc {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => StatusDoc::Pending,
            Status::Up => StatusDoc::Up,
            Status::Down => StatusDoc::Down,
        }
    }
}

impl From<StatusDoc> for Status {
    fn from(s: StatusDoc) -> Self {
        match s {
            StatusDoc::Pending => Status::Pending,
            StatusDoc::Up => Status::Up,
            StatusDoc::Down => Status::Down,
        }
    }
}

/// Version 1. Field order is the document's order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateV1 {
    v: u64,
    status: StatusDoc,
    consecutive_failures: u32,
    consecutive_successes: u32,
    incident: Option<IncidentV1>,
    last_tick: Option<DateTime<Utc>>,
    /// The probe's own state (`MonitorState::probe`), when its kind keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probe: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentV1 {
    id: String,
    opened_at: DateTime<Utc>,
    notified: bool,
    last_notified_at: Option<DateTime<Utc>>,
    reminders: u32,
    reasons: Vec<String>,
}

impl From<&MonitorState> for StateV1 {
    fn from(s: &MonitorState) -> Self {
        StateV1 {
            v: 1,
            status: s.status.into(),
            consecutive_failures: s.consecutive_failures,
            consecutive_successes: s.consecutive_successes,
            incident: s.incident.as_ref().map(|i| IncidentV1 {
                id: i.id.clone(),
                opened_at: i.opened_at,
                notified: i.notified,
                last_notified_at: i.last_notified_at,
                reminders: i.reminders,
                reasons: i.reasons.clone(),
            }),
            last_tick: s.last_tick,
            probe: s.probe.clone(),
        }
    }
}

impl From<StateV1> for MonitorState {
    fn from(d: StateV1) -> Self {
        MonitorState {
            status: d.status.into(),
            consecutive_failures: d.consecutive_failures,
            consecutive_successes: d.consecutive_successes,
            incident: d.incident.map(|i| Incident {
                id: i.id,
                opened_at: i.opened_at,
                notified: i.notified,
                last_notified_at: i.last_notified_at,
                reminders: i.reminders,
                reasons: i.reasons,
            }),
            last_tick: d.last_tick,
            probe: d.probe,
        }
    }
}

/// What releases before the version field stored: the serde form of the state as it was then
/// (every field required except the optional ones, unknown fields ignored).
#[derive(Debug, Deserialize)]
struct LegacyState {
    status: StatusDoc,
    consecutive_failures: u32,
    consecutive_successes: u32,
    incident: Option<LegacyIncident>,
    last_tick: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct LegacyIncident {
    id: String,
    opened_at: DateTime<Utc>,
    notified: bool,
    last_notified_at: Option<DateTime<Utc>>,
    reminders: u32,
    reasons: Vec<String>,
}

/// The unversioned form holds what v1 holds, without the probe's state: read as the v1
/// document it would have been, field by field.
impl From<LegacyState> for StateV1 {
    fn from(d: LegacyState) -> Self {
        StateV1 {
            v: 1,
            status: d.status,
            consecutive_failures: d.consecutive_failures,
            consecutive_successes: d.consecutive_successes,
            incident: d.incident.map(|i| IncidentV1 {
                id: i.id,
                opened_at: i.opened_at,
                notified: i.notified,
                last_notified_at: i.last_notified_at,
                reminders: i.reminders,
                reasons: i.reasons,
            }),
            last_tick: d.last_tick,
            probe: None,
        }
    }
}
