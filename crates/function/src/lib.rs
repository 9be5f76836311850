//! watchpost as a serverless function (`watchpost function`): each invocation is one run of
//! the engine's one-shot path ([`watchpost_engine::Engine::run_all`]) on the monitors the
//! event selects, within the invocation's deadline; state lives in the configured store, so
//! thresholds, reminders and resolves carry over between invocations and instances.
//!
//! - [`event`]: timer events (Tencent SCF, EventBridge, Alibaba FC) and the monitor selection.
//! - [`summary`]: the JSON answer (monitors run, pass/fail, notifications sent and queued).
//! - [`scf`]: the Tencent SCF custom-runtime loop.
//! - [`lambda`]: the AWS Lambda loop, through the `lambda_runtime` crate.
//! - [`http`]: an HTTP server for Alibaba FC custom runtimes, SCF web functions, Cloud Run and
//!   Knative (`POST /invoke`, `POST /`, `GET /healthz`).
//! - [`persistence`]: whether the store outlives the instance (the cold-start warning).
//!
//! Nothing here prints or picks an exit code: the binary (`commands/function.rs`) does.

pub mod event;
pub mod http;
pub mod lambda;
pub mod persistence;
pub mod scf;
pub mod summary;

use event::{Event, Selection};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use summary::Summary;
use tokio::time::Instant;
use watchpost_engine::{Engine, Generation};

/// What can stop an invocation or a runtime.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The event can't be read or selects monitors in a way watchpost doesn't understand.
    #[error("bad event: {0}")]
    Event(String),
    /// The event selects monitors the config doesn't have.
    #[error("the event selects monitors that are not in the config: {}", .0.join(", "))]
    UnknownMonitors(Vec<String>),
    /// The config could not be read again to run a selection of its monitors.
    #[error("cannot read the config again: {0}")]
    Config(String),
    /// The runtime's settings are missing or wrong (environment variables, port).
    #[error("{0}")]
    Setup(String),
    /// The platform's runtime API failed or went away.
    #[error("the runtime API at {api}: {message}")]
    RuntimeApi { api: String, message: String },
    /// The HTTP runtime can't listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The Lambda runtime loop ended with an error.
    #[error("the Lambda runtime: {0}")]
    Lambda(String),
}

/// Which platform protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Scf,
    Lambda,
    Http,
}

impl Runtime {
    /// `auto`: Lambda when `AWS_LAMBDA_RUNTIME_API` is set, SCF when `SCF_RUNTIME_API` is,
    /// else HTTP. `env` reads a variable (the process environment in the binary).
    pub fn detect(env: impl Fn(&str) -> Option<String>) -> Runtime {
        let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
        if set("AWS_LAMBDA_RUNTIME_API") {
            Runtime::Lambda
        } else if set("SCF_RUNTIME_API") {
            Runtime::Scf
        } else {
            Runtime::Http
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Runtime::Scf => "scf",
            Runtime::Lambda => "lambda",
            Runtime::Http => "http",
        }
    }
}

/// How long an invocation may take: the smaller of the platform's deadline (Lambda's) and
/// `limit` (`--deadline`: SCF and FC don't tell a custom runtime its timeout), less a safety
/// margin so that results are committed and notifications handed out before the platform
/// stops the function.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub limit: Option<Duration>,
}

impl Budget {
    /// The deadline for an invocation starting at `start` whose platform deadline is
    /// `platform`, and the time it allows; `None` when neither bounds it.
    pub fn deadline(
        &self,
        start: Instant,
        platform: Option<Instant>,
    ) -> Option<(Instant, Duration)> {
        let end = match (platform, self.limit.map(|l| start + l)) {
            (Some(p), Some(l)) => p.min(l),
            (Some(p), None) => p,
            (None, Some(l)) => l,
            (None, None) => return None,
        };
        let remaining = end.saturating_duration_since(start);
        let allowed = remaining.saturating_sub(margin(remaining));
        Some((start + allowed, allowed))
    }
}

/// A tenth of the time left, at least 200 ms and at most 2 s: the process still has to
/// answer the runtime API after the engine returns.
pub fn margin(remaining: Duration) -> Duration {
    (remaining / 10).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// Runs invocations: the engine and the config's generation built once at cold start, shared
/// by every invocation of the instance.
pub struct Invoker {
    pub engine: Arc<Engine>,
    pub generation: Arc<Generation>,
    /// The config file, read again for an invocation that selects some of its monitors.
    pub config_path: PathBuf,
    pub budget: Budget,
    /// Set for `watchpost function --location NAME`: each invocation is a probe agent's round
    /// for that location (checks pushed to the server) instead of the server's own work.
    pub agent: Option<Arc<watchpost_engine::agent::FunctionAgent>>,
}

/// What an invocation came to, for a runtime to report.
pub enum Invocation {
    /// It ran: the summary says how it went ([`Summary::watchpost_failed`] → report an error).
    Ran(Box<Summary>),
    /// It could not start (a bad event, an unknown monitor): report an error.
    Refused(FunctionError),
    /// A probe agent's round: its summary, or why it failed (report an error).
    Agent(Result<serde_json::Value, String>),
}

impl Invocation {
    /// Whether the platform should see this invocation as failed.
    pub fn failed(&self) -> bool {
        match self {
            Invocation::Ran(s) => s.watchpost_failed,
            Invocation::Refused(_) => true,
            Invocation::Agent(r) => r.is_err(),
        }
    }
}

/// How far from now an event's own time may lie and still be what its monitors' due-ness is
/// judged at (see [`judged_at`]).
pub const MAX_EVENT_SKEW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The instant an invocation judges which monitors are due at: the time the platform says
/// its timer fired (an RFC 3339 `Time` / `time` / `triggerTime`), so that a retried or
/// duplicated event runs nothing twice and a late one still counts for its own minute; `None`
/// (now) when the event has no time, an unreadable one, or one more than
/// [`MAX_EVENT_SKEW`] away from `now`.
pub fn judged_at(
    trigger: &event::Trigger,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let time = chrono::DateTime::parse_from_rfc3339(trigger.time.as_deref()?.trim()).ok()?;
    let time = time.with_timezone(&chrono::Utc);
    ((time - now).abs() <= MAX_EVENT_SKEW).then_some(time)
}

impl Invoker {
    /// Run one invocation for the event `body`, within `platform` (the platform's deadline,
    /// when it gives one) and the budget; returns the answer as JSON, secrets masked.
    pub async fn invoke(&self, body: &[u8], platform: Option<Instant>) -> Invocation {
        match Event::parse(body) {
            Ok(event) => self.run(event, platform).await,
            Err(e) => Invocation::Refused(e),
        }
    }

    /// Run one parsed invocation.
    pub async fn run(&self, event: Event, platform: Option<Instant>) -> Invocation {
        let start = Instant::now();
        let deadline = self.budget.deadline(start, platform);
        if let Some(agent) = &self.agent {
            let at = judged_at(&event.trigger, chrono::Utc::now()).unwrap_or_else(chrono::Utc::now);
            let round = agent.invoke(at, deadline.map(|(d, _)| d)).await;
            match &round {
                Ok(summary) => tracing::info!("invocation: {summary}"),
                Err(e) => tracing::error!("invocation failed: {e}"),
            }
            return Invocation::Agent(round);
        }
        let generation = match self.generation_for(&event.selection) {
            Ok(g) => g,
            Err(e) => return Invocation::Refused(e),
        };
        tracing::info!(
            "invocation: trigger {}{}, {} monitor(s){}",
            event.trigger.kind,
            event
                .trigger
                .name
                .as_deref()
                .map(|n| format!(" {n:?}"))
                .unwrap_or_default(),
            generation.config.monitors.len(),
            deadline
                .map(|(_, d)| format!(", {} ms allowed", d.as_millis()))
                .unwrap_or_default()
        );
        // The one place an invocation picks what to run: of the event's monitors (already
        // the generation's), those whose schedule fired since their last run (kept in the
        // store), so one timer serves monitors of different schedules; a monitor that missed
        // several fire times runs once.
        let report = self
            .engine
            .run_selected(
                &generation,
                &watchpost_engine::Selection {
                    at: judged_at(&event.trigger, chrono::Utc::now()),
                    ..watchpost_engine::Selection::due()
                },
                deadline.map(|(d, _)| d),
            )
            .await;
        let summary = Summary::new(
            &report,
            event.trigger,
            &event.selection,
            deadline.map(|(_, d)| d),
            start.elapsed(),
        );
        Invocation::Ran(Box::new(summary))
    }

    /// The generation holding the selected monitors: the cold-start one for every monitor,
    /// else the config read again with only those (its channels are the cold-start ones, so
    /// rate limits stay per process).
    fn generation_for(&self, selection: &Selection) -> Result<Arc<Generation>, FunctionError> {
        let Selection::Only(names) = selection else {
            return Ok(self.generation.clone());
        };
        let known = |name: &str| {
            self.generation
                .config
                .monitors
                .iter()
                .any(|m| m.name == name)
        };
        let unknown: Vec<String> = names.iter().filter(|n| !known(n)).cloned().collect();
        if !unknown.is_empty() {
            return Err(FunctionError::UnknownMonitors(unknown));
        }
        let mut config = watchpost_config::load(&self.config_path)
            .map_err(|e| FunctionError::Config(e.to_string()))?;
        config.monitors.retain(|m| names.contains(&m.name));
        if config.monitors.len() != names.len() {
            return Err(FunctionError::Config(
                "the config file changed since the function started: a selected monitor is gone"
                    .into(),
            ));
        }
        Ok(Arc::new(Generation::new(
            config,
            (*self.generation.channels).clone(),
        )))
    }

    /// The JSON answer for `invocation`, secrets masked.
    pub fn answer(&self, invocation: &Invocation) -> serde_json::Value {
        let secrets = &self.generation.config.secrets;
        match invocation {
            Invocation::Ran(s) => s.to_json(secrets),
            Invocation::Refused(e) => summary::error_json(&e.to_string(), secrets),
            Invocation::Agent(Ok(summary)) => summary.clone(),
            Invocation::Agent(Err(e)) => summary::error_json(e, secrets),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_prefers_lambda_then_scf_then_http() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            Runtime::detect(env(&[
                ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
                ("SCF_RUNTIME_API", "x")
            ])),
            Runtime::Lambda
        );
        assert_eq!(
            Runtime::detect(env(&[("SCF_RUNTIME_API", "127.0.0.1")])),
            Runtime::Scf
        );
        assert_eq!(
            Runtime::detect(env(&[("SCF_RUNTIME_API", "")])),
            Runtime::Http
        );
    }

    #[test]
    fn the_deadline_is_the_nearer_one_less_a_margin() {
        let start = Instant::now();
        let budget = Budget {
            limit: Some(Duration::from_secs(20)),
        };
        let (d, allowed) = budget
            .deadline(start, Some(start + Duration::from_secs(5)))
            .unwrap();
        assert_eq!(allowed, Duration::from_millis(4500));
        assert_eq!(d, start + allowed);
        let (_, allowed) = budget.deadline(start, None).unwrap();
        assert_eq!(allowed, Duration::from_secs(18));
        let (_, allowed) = Budget { limit: None }
            .deadline(start, Some(start + Duration::from_secs(1)))
            .unwrap();
        assert_eq!(allowed, Duration::from_millis(800));
        assert!(Budget { limit: None }.deadline(start, None).is_none());
        let (_, allowed) = Budget { limit: None }
            .deadline(start, Some(start + Duration::from_millis(100)))
            .unwrap();
        assert_eq!(allowed, Duration::ZERO);
    }
}

#[cfg(test)]
mod due_tests {
    use super::*;

    #[test]
    fn an_event_time_near_now_is_what_due_is_judged_at() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let trigger = |time: Option<&str>| event::Trigger {
            kind: "scf-timer",
            name: None,
            time: time.map(str::to_string),
        };
        let fired = judged_at(&trigger(Some("2026-11-30T12:00:00Z")), now).unwrap();
        assert_eq!(fired.to_rfc3339(), "2026-11-30T12:00:00+00:00");
        assert!(judged_at(&trigger(Some("2026-11-30T20:00:00+08:00")), now).is_some());
        assert_eq!(judged_at(&trigger(Some("2025-01-01T00:00:00Z")), now), None);
        assert_eq!(judged_at(&trigger(Some("yesterday")), now), None);
        assert_eq!(judged_at(&trigger(None), now), None);
    }
}
