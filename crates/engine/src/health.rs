//! Whether watchpost itself is doing its job, as `/healthz` reports it and as the next alert
//! notes it. A monitor is only as good as the process running it: a dead scheduler, a store
//! that can't commit, checks that could not run for lack of file descriptors, or alerts stuck
//! in the outbox are watchpost's failures, and they are reported as such — never as the
//! target's.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watchpost_scheduler::Stats;

/// `/healthz` fails when the scheduler loop hasn't iterated for this long (it wakes at least
/// once a second).
pub const SCHEDULER_STALL: Duration = Duration::from_secs(10);
/// `/healthz` fails while a check could not run within this window.
pub const NOT_RUN_WINDOW: Duration = Duration::from_secs(120);
/// `/healthz` fails when the oldest undelivered notification is older than this.
pub const OUTBOX_STALE: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Default)]
struct NotRun {
    /// Checks not run since the last alert noted it.
    unnoted: u64,
    unnoted_since: Option<DateTime<Utc>>,
    last_at: Option<DateTime<Utc>>,
    last_reason: String,
}

#[derive(Debug, Default)]
struct State {
    scheduler: Option<Arc<Stats>>,
    /// The last store commit's error, cleared by the next success.
    store_error: Option<(DateTime<Utc>, String)>,
    not_run: NotRun,
    /// A failure that stops watchpost from working at all (a panicked task).
    fatal: Option<String>,
    /// Runner panics seen so far (the scheduler's count) and when the count last grew.
    panics_seen: u64,
    panicked_at: Option<DateTime<Utc>>,
}

/// Shared by the pipeline (which reports) and the web layer (which asks).
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

impl Health {
    pub fn new() -> Arc<Health> {
        Arc::new(Health::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The scheduler whose loop `/healthz` watches (replaced on every config generation).
    pub fn watch_scheduler(&self, stats: Arc<Stats>) {
        let mut s = self.lock();
        s.panics_seen = stats.panics.load(std::sync::atomic::Ordering::Relaxed);
        s.scheduler = Some(stats);
    }

    /// The scheduler `/healthz` watches, for `/metrics`.
    pub fn scheduler(&self) -> Option<Arc<Stats>> {
        self.lock().scheduler.clone()
    }

    pub fn store_ok(&self) {
        self.lock().store_error = None;
    }

    pub fn store_failed(&self, at: DateTime<Utc>, message: &str) {
        self.lock().store_error = Some((at, message.to_string()));
    }

    /// A check that watchpost could not run (a local resource error).
    pub fn check_not_run(&self, at: DateTime<Utc>, reason: &str) {
        let mut s = self.lock();
        let n = &mut s.not_run;
        n.unnoted += 1;
        n.unnoted_since.get_or_insert(at);
        n.last_at = Some(at);
        n.last_reason = reason.to_string();
    }

    pub fn fatal(&self, message: &str) {
        self.lock().fatal = Some(message.to_string());
    }

    /// A note for the next alert about checks that could not run since the last note, in the
    /// people's time zone; taking it resets the count.
    pub fn take_note(&self, tz: watchpost_cron::Tz) -> Option<String> {
        let mut s = self.lock();
        let n = &mut s.not_run;
        if n.unnoted == 0 {
            return None;
        }
        let since = n.unnoted_since.take().unwrap_or_else(Utc::now);
        let note = format!(
            "watchpost could not run {} check(s) since {}: {}",
            n.unnoted,
            crate::pipeline::local_time(since, tz),
            n.last_reason
        );
        n.unnoted = 0;
        Some(note)
    }

    /// What is wrong now (empty when healthy). `oldest_undelivered` is the creation time and
    /// description of the oldest notification still waiting, if any.
    pub fn problems(
        &self,
        now: DateTime<Utc>,
        oldest_undelivered: Option<(DateTime<Utc>, String)>,
    ) -> Vec<String> {
        let mut s = self.lock();
        let mut out = Vec::new();
        if let Some(f) = &s.fatal {
            out.push(f.clone());
        }
        if let Some(stats) = s.scheduler.clone() {
            let age = stats.since_last_loop();
            if age > SCHEDULER_STALL {
                out.push(format!(
                    "the scheduler loop has not run for {}s",
                    age.as_secs()
                ));
            }
            let panics = stats.panics.load(std::sync::atomic::Ordering::Relaxed);
            if panics != s.panics_seen {
                s.panics_seen = panics;
                s.panicked_at = Some(now);
            }
        }
        if let Some(at) = s.panicked_at
            && (now - at).to_std().unwrap_or_default() < NOT_RUN_WINDOW
        {
            out.push(format!(
                "a check panicked ({} so far; a bug in watchpost: see the log)",
                s.panics_seen
            ));
        }
        if let Some((at, e)) = &s.store_error {
            out.push(format!(
                "the last store commit failed ({}): {e}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        if let Some(last) = s.not_run.last_at
            && (now - last).to_std().unwrap_or_default() < NOT_RUN_WINDOW
        {
            out.push(format!(
                "checks could not run (last at {}): {}",
                last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                s.not_run.last_reason
            ));
        }
        if let Some((created, what)) = oldest_undelivered {
            let age = (now - created).to_std().unwrap_or_default();
            if age > OUTBOX_STALE {
                out.push(format!(
                    "a notification has waited {} to be delivered: {what}",
                    crate::pipeline::human_duration(age)
                ));
            }
        }
        out
    }
}
