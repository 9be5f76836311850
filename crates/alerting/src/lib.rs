//! The alert engine: what a monitor's new tick means for its incident, as a **pure function**
//! of the previous state, the tick, the policy and whether a maintenance window is active. It
//! does no I/O: the caller runs [`decide`] inside the store's transaction and writes the
//! returned state and notifications together, so a state change and its alerts commit (or
//! not) as one.
//!
//! Semantics (README.md, "How alerts behave"):
//! - A tick **fails** when at least `quorum` of its locations fail.
//! - `failure_threshold` failing ticks in a row open an incident and notify **Down**.
//! - While the incident stays open, `repeat` re-notifies (**Reminder**) at most every `repeat`.
//! - `success_threshold` passing ticks in a row resolve it and notify **Resolved** when
//!   `send_resolved` is set and the Down was actually sent.
//! - During maintenance, results still move the state, but nothing is notified; an incident
//!   opened while muted is announced (Down) at the first failing tick after the window.
//! - A tick not newer than the last one applied, by less than [`REPLAY_WINDOW`], is ignored:
//!   a replay of the same tick, or the older tick of two runs racing (two `once` at once). A
//!   tick older than that is not a replay but a wall clock that was set back: it is applied,
//!   so a clock step never stalls alerting until the wall time catches up.
//!
//! The state is stored between ticks as a versioned JSON document: [`state_to_json`] writes
//! it, [`state_from_json`] reads it (and the unversioned documents of earlier releases). The
//! crate depends on nothing else of watchpost's: the config builds the [`AlertPolicy`].

mod doc;

pub use doc::{DocError, STATE_VERSION, state_from_json, state_to_json};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Ticks at most this much older than the last one applied are replays or races, and ignored;
/// older ones mean the wall clock went back, and are applied.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(10);

/// When to notify: a monitor's `alert:` settings (README.md, "How alerts behave").
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPolicy {
    /// The channels notified, by name.
    pub channels: Vec<String>,
    /// Failing ticks in a row that open an incident.
    pub failure_threshold: u32,
    /// Passing ticks in a row that resolve it.
    pub success_threshold: u32,
    /// Whether a Resolved is sent when the incident closes (only if its Down was sent).
    pub send_resolved: bool,
    /// Re-notify while still failing.
    pub repeat: Option<Duration>,
    /// A tick fails when at least this many locations fail.
    pub quorum: u32,
}

impl Default for AlertPolicy {
    /// No channels, `failure_threshold: 2`, `success_threshold: 1`, `send_resolved: true`, no
    /// `repeat`, `quorum: 1`.
    fn default() -> Self {
        AlertPolicy {
            channels: Vec::new(),
            failure_threshold: 2,
            success_threshold: 1,
            send_resolved: true,
            repeat: None,
            quorum: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No tick yet.
    #[default]
    Pending,
    Up,
    Down,
}

/// An open incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub opened_at: DateTime<Utc>,
    /// Whether the Down notification was written (false while muted by maintenance).
    pub notified: bool,
    pub last_notified_at: Option<DateTime<Utc>>,
    pub reminders: u32,
    /// Why it opened (the failing conditions of the opening tick).
    pub reasons: Vec<String>,
}

/// Per-monitor state, kept between ticks (and between `once` invocations). Store it with
/// [`state_to_json`] and read it back with [`state_from_json`]; it has no serde form of its own,
/// so it can't be stored without its version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonitorState {
    pub status: Status,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    pub incident: Option<Incident>,
    pub last_tick: Option<DateTime<Utc>>,
    /// The probe's own state for checks that compare with their previous run (a window of
    /// Kafka offsets, a page's last hash): opaque here, carried unchanged by [`decide`]; the
    /// engine sets it from the tick's observation, so it is committed with the tick.
    pub probe: Option<serde_json::Value>,
}

/// One tick's outcome over its locations.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at: DateTime<Utc>,
    pub locations: u32,
    pub failing: u32,
    /// The failing conditions (actual vs expected), for messages.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Down,
    Reminder,
    Resolved,
}

/// A notification to write to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub incident_id: String,
    pub incident_opened_at: DateTime<Utc>,
    /// Unique per incident and event: the outbox's idempotency key (plus the channel).
    pub key: String,
}

/// A change to the incident table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentChange {
    Open {
        id: String,
        opened_at: DateTime<Utc>,
        reason: String,
    },
    Close {
        id: String,
        closed_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub state: MonitorState,
    pub events: Vec<Event>,
    pub incident: Option<IncidentChange>,
}

/// Apply one tick. `monitor` names incidents (`monitor:opened-at-millis`).
pub fn decide(
    monitor: &str,
    previous: Option<MonitorState>,
    tick: &Tick,
    policy: &AlertPolicy,
    muted: bool,
) -> Decision {
    let mut s = previous.unwrap_or_default();
    let window = chrono::Duration::from_std(REPLAY_WINDOW).unwrap_or_default();
    if s.last_tick
        .is_some_and(|last| tick.at <= last && last.signed_duration_since(tick.at) < window)
    {
        return Decision {
            state: s,
            events: Vec::new(),
            incident: None,
        };
    }
    s.last_tick = Some(tick.at);
    let mut events = Vec::new();
    let mut change = None;
    let event = |kind: EventKind, inc: &Incident, suffix: String| Event {
        kind,
        incident_id: inc.id.clone(),
        incident_opened_at: inc.opened_at,
        key: format!("{}:{}", inc.id, suffix),
    };

    let failing = tick.failing >= policy.quorum.max(1);
    if failing {
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.consecutive_successes = 0;
        if s.incident.is_none() && s.consecutive_failures >= policy.failure_threshold.max(1) {
            let inc = Incident {
                id: format!("{monitor}:{}", tick.at.timestamp_millis()),
                opened_at: tick.at,
                notified: false,
                last_notified_at: None,
                reminders: 0,
                reasons: tick.reasons.clone(),
            };
            change = Some(IncidentChange::Open {
                id: inc.id.clone(),
                opened_at: inc.opened_at,
                reason: tick.reasons.join("; "),
            });
            s.incident = Some(inc);
        }
        if let Some(inc) = s.incident.as_mut() {
            s.status = Status::Down;
            if !muted {
                if !inc.notified {
                    inc.notified = true;
                    inc.last_notified_at = Some(tick.at);
                    events.push(event(EventKind::Down, inc, "down".into()));
                } else if inc.last_notified_at.is_some_and(|last| last > tick.at) {
                    // The wall clock went back past the last notification: count the repeat
                    // interval from now rather than waiting for the clock to catch up.
                    inc.last_notified_at = Some(tick.at);
                } else if let (Some(repeat), Some(last)) = (policy.repeat, inc.last_notified_at)
                    && chrono::Duration::from_std(repeat).is_ok_and(|r| tick.at - last >= r)
                {
                    inc.reminders += 1;
                    inc.last_notified_at = Some(tick.at);
                    let suffix = format!("reminder-{}", inc.reminders);
                    events.push(event(EventKind::Reminder, inc, suffix));
                }
            }
        } else if s.status == Status::Pending {
            // Failing, but not yet past the threshold: still up until proven down.
            s.status = Status::Up;
        }
    } else {
        s.consecutive_successes = s.consecutive_successes.saturating_add(1);
        s.consecutive_failures = 0;
        match s.incident.take() {
            Some(inc) if s.consecutive_successes >= policy.success_threshold.max(1) => {
                change = Some(IncidentChange::Close {
                    id: inc.id.clone(),
                    closed_at: tick.at,
                });
                if policy.send_resolved && inc.notified && !muted {
                    events.push(event(EventKind::Resolved, &inc, "resolved".into()));
                }
                s.status = Status::Up;
            }
            Some(inc) => s.incident = Some(inc),
            None => s.status = Status::Up,
        }
    }
    Decision {
        state: s,
        events,
        incident: change,
    }
}
