//! The JSON an invocation answers with: what ran, what passed, what was sent and what stays
//! queued. The same document for every runtime (SCF's response or error body, Lambda's,
//! the HTTP runtime's reply), with every configured secret masked.

use crate::event::{Selection, Trigger};
use serde::Serialize;
use watchpost_engine::RunReport;

/// One monitor's result in an invocation.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorResult {
    pub name: String,
    /// Passed (false when it failed or watchpost could not run it).
    pub ok: bool,
    /// `up`, `down`, `pending`, or `unknown` when the check could not be judged.
    pub state: &'static str,
    /// Notifications this tick created (DOWN, REMINDER, RESOLVED, one per channel).
    pub notifications: usize,
    /// Why watchpost could not judge this monitor (the check could not run, the store failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What happened to notifications during the invocation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Notifications {
    /// Created by this invocation's checks.
    pub created: usize,
    /// Delivered before the invocation returned (this invocation's and earlier ones').
    pub sent: usize,
    /// Still in the outbox for a later invocation: failed sends to retry, and sends whose
    /// outcome could not be recorded.
    pub queued: usize,
    /// Given up on (retried for longer than `delivery.max_age`).
    pub gave_up: usize,
    /// Why delivery did not run to the end (the deadline passed, the store failed); whatever
    /// was not sent stays queued for the next invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to one invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Every monitor that ran passed and watchpost itself did its job.
    pub ok: bool,
    /// watchpost could not do its job: a check it could not run, a tick it could not record,
    /// notifications it could not hand out. The runtimes report such an invocation to the
    /// platform as an error.
    pub watchpost_failed: bool,
    pub trigger: Trigger,
    /// The monitors the event selected; `null` when it selected every monitor.
    pub selected: Option<Vec<String>>,
    pub monitors_run: usize,
    pub passed: usize,
    pub failed: usize,
    pub not_run: usize,
    pub monitors: Vec<MonitorResult>,
    /// The selected monitors not due at this invocation (their schedule has not fired since
    /// their last run), with when it fires next.
    pub skipped: Vec<watchpost_engine::Skipped>,
    pub notifications: Notifications,
    /// The time the invocation allowed itself, in milliseconds (`null`: no deadline).
    pub budget_ms: Option<u64>,
    pub elapsed_ms: u64,
}

impl Summary {
    /// Sum up `report` for an invocation of `trigger` selecting `selection`.
    pub fn new(
        report: &RunReport,
        trigger: Trigger,
        selection: &Selection,
        budget: Option<std::time::Duration>,
        elapsed: std::time::Duration,
    ) -> Summary {
        let monitors: Vec<MonitorResult> = report
            .outcomes
            .iter()
            .map(|o| MonitorResult {
                name: o.name.clone(),
                ok: o.ok && o.error.is_none(),
                state: o.state,
                notifications: o.notifications,
                error: o.error.clone(),
            })
            .collect();
        let not_run = monitors.iter().filter(|m| m.error.is_some()).count();
        let passed = monitors.iter().filter(|m| m.ok).count();
        let notifications = match &report.delivery {
            Ok(d) => Notifications {
                created: 0,
                sent: d.sent,
                queued: d.retrying + d.unsettled,
                gave_up: d.gave_up,
                error: None,
            },
            Err(e) => Notifications {
                error: Some(e.to_string()),
                ..Notifications::default()
            },
        };
        let watchpost_failed = report.watchpost_failed();
        Summary {
            ok: !watchpost_failed && report.all_ok(),
            watchpost_failed,
            trigger,
            selected: match selection {
                Selection::All => None,
                Selection::Only(names) => Some(names.clone()),
            },
            monitors_run: monitors.len(),
            passed,
            failed: monitors.len() - passed - not_run,
            not_run,
            notifications: Notifications {
                created: monitors.iter().map(|m| m.notifications).sum(),
                ..notifications
            },
            monitors,
            skipped: report.skipped.clone(),
            budget_ms: budget.map(|b| u64::try_from(b.as_millis()).unwrap_or(u64::MAX)),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The summary as JSON with every secret of `secrets` masked.
    pub fn to_json(&self, secrets: &watchpost_config::Secrets) -> serde_json::Value {
        let mut doc = serde_json::to_value(self).unwrap_or_default();
        watchpost_engine::pipeline::redact_json(&mut doc, secrets);
        doc
    }
}

/// The body of an error report for an invocation that could not start (a bad event, an
/// unknown monitor): `{"ok":false,"error":"…"}`.
pub fn error_json(message: &str, secrets: &watchpost_config::Secrets) -> serde_json::Value {
    serde_json::json!({"ok": false, "error": secrets.redact(message)})
}
