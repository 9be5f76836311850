//! Every monitor once (`watchpost once`, and the serverless runtimes to come): at most
//! `concurrency` checks at a time, each check's future created only when a slot is free, so
//! sockets, resolvers, blocking threads and memory stay bounded however many monitors there
//! are; then the outbox is delivered and old results are pruned. An optional overall deadline
//! (a function's time limit) bounds everything: the checks end a quarter of the time left
//! before it, at most [`DELIVERY_RESERVE`] (2 s), so that what they found is committed and
//! sent in time; checks not started by then are reported as not run, running ones are cut, and what
//! can't be delivered by the deadline stays queued.
//!
//! A [`Selection`] narrows the run to named monitors, and to the monitors that are **due**:
//! whose schedule fired since the fire time they last ran for (see [`crate::due`]). Due
//! monitors are claimed in the store right before they run, so two invocations at the same
//! moment run each of them once; the others are reported as [`Skipped`], not as failures.

use crate::{Engine, EngineError, Generation, MonitorOutcome, due, outbox::Delivered};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// The most of an overall deadline kept for committing and delivering after the checks: the
/// checks end a quarter of the time left before the deadline, at most this.
pub const DELIVERY_RESERVE: std::time::Duration = std::time::Duration::from_secs(2);

/// When the checks of a run whose overall deadline is `deadline` must end (see
/// [`DELIVERY_RESERVE`]).
pub fn checks_deadline(deadline: tokio::time::Instant) -> tokio::time::Instant {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    deadline - (left / 4).min(DELIVERY_RESERVE)
}

/// Which monitors a run takes. The default is every monitor, due or not (`watchpost once`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only the monitors with these names (`None`: all of them). Names the config doesn't
    /// have are ignored: check them first with [`Selection::unknown`].
    pub names: Option<Vec<String>>,
    /// Only the monitors that are due (`watchpost once --due`, timers): the others are
    /// reported in [`RunReport::skipped`].
    pub due: bool,
    /// The instant what is due is judged at (`None`: now). A runtime that is told when its
    /// timer fired (an SCF timer event's `Time`) may pass that; tests simulate time with it.
    /// The checks and their results are at the real time either way.
    pub at: Option<DateTime<Utc>>,
}

impl Selection {
    /// Every monitor, due or not.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// Every monitor that is due.
    pub fn due() -> Selection {
        Selection {
            names: None,
            due: true,
            at: None,
        }
    }

    /// The names in [`Selection::names`] that `config` has no monitor for, in the order given.
    pub fn unknown<'a>(&'a self, config: &watchpost_config::Config) -> Vec<&'a str> {
        self.names
            .iter()
            .flatten()
            .filter(|n| !config.monitors.iter().any(|m| m.name == **n))
            .map(String::as_str)
            .collect()
    }

    fn takes(&self, name: &str) -> bool {
        self.names
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

/// A monitor a run left out because it was not due.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub name: String,
    /// The latest fire time of its schedule, which a run already ran it for
    /// ([`due::NEVER_FIRED`] when the schedule has not fired yet).
    pub fired: DateTime<Utc>,
    /// When its schedule fires next (`None`: never again).
    pub next: Option<DateTime<Utc>>,
}

/// What a run of every monitor came to.
pub struct RunReport {
    /// One outcome per monitor run, in config order.
    pub outcomes: Vec<MonitorOutcome>,
    /// The selected monitors not run because they were not due, in config order: neither
    /// passed nor failed.
    pub skipped: Vec<Skipped>,
    /// What delivery did, or why it could not run.
    pub delivery: Result<Delivered, EngineError>,
}

impl RunReport {
    /// Whether watchpost itself failed at something: a check it could not run, a tick it could
    /// not record, notifications it could not hand out or whose outcome it could not record.
    pub fn watchpost_failed(&self) -> bool {
        self.outcomes.iter().any(|o| o.error.is_some())
            || match &self.delivery {
                Ok(d) => d.unsettled > 0,
                Err(_) => true,
            }
    }

    /// Whether every monitor that ran passed (true when none ran).
    pub fn all_ok(&self) -> bool {
        self.outcomes.iter().all(|o| o.ok)
    }
}

impl Engine {
    /// Run every monitor of `generation` once, deliver what is due, prune old results.
    pub async fn run_all(
        self: &Arc<Self>,
        generation: &Arc<Generation>,
        deadline: Option<tokio::time::Instant>,
    ) -> RunReport {
        self.run_selected(generation, &Selection::all(), deadline)
            .await
    }

    /// Run the monitors of `generation` that `selection` takes once, deliver what is due,
    /// prune old results. With [`Selection::due`], the due monitors are claimed in the store
    /// first (a claim that fails runs nothing and reports every selected monitor as not run:
    /// watchpost's failure); the rest are [`RunReport::skipped`]. `deadline` bounds the
    /// claim, the checks (which end [`checks_deadline`], leaving time to commit and deliver),
    /// the delivery and the maintenance after it.
    pub async fn run_selected(
        self: &Arc<Self>,
        generation: &Arc<Generation>,
        selection: &Selection,
        deadline: Option<tokio::time::Instant>,
    ) -> RunReport {
        let config = generation.config.clone();
        let selected: Vec<usize> = (0..config.monitors.len())
            .filter(|&i| selection.takes(&config.monitors[i].name))
            .collect();
        let (run, skipped, refused) = if selection.due {
            let now = selection.at.unwrap_or_else(Utc::now);
            self.claim_due_monitors(generation, &selected, now, deadline)
                .await
        } else {
            (selected, Vec::new(), None)
        };
        let total = run.len();
        let mut outcomes: Vec<Option<MonitorOutcome>> = (0..total).map(|_| None).collect();
        if let Some(why) = refused {
            for (slot, &i) in outcomes.iter_mut().zip(&run) {
                *slot = Some(MonitorOutcome::failed(
                    &config.monitors[i].name,
                    Utc::now(),
                    why.clone(),
                    None,
                ));
            }
        }
        let overall = deadline;
        let deadline = overall.map(checks_deadline);
        let mut set = tokio::task::JoinSet::new();
        let mut next = 0;
        let out_of_time = || deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        while next < total || !set.is_empty() {
            if next < total && set.len() < config.concurrency {
                let slot = next;
                let i = run[slot];
                next += 1;
                if outcomes[slot].is_some() {
                    continue;
                }
                if out_of_time() {
                    outcomes[slot] = Some(MonitorOutcome::failed(
                        &config.monitors[i].name,
                        Utc::now(),
                        "watchpost could not run the check: the run's deadline passed".into(),
                        None,
                    ));
                    continue;
                }
                let (engine, generation) = (self.clone(), generation.clone());
                set.spawn(async move {
                    let at = Utc::now();
                    (slot, engine.tick(&generation, i, at, deadline).await)
                });
                continue;
            }
            match set.join_next().await {
                Some(Ok((slot, outcome))) => outcomes[slot] = Some(outcome),
                Some(Err(e)) => tracing::error!("a check task failed: {e}"),
                None => {}
            }
        }
        let outcomes: Vec<MonitorOutcome> = outcomes
            .into_iter()
            .enumerate()
            .map(|(slot, o)| {
                o.unwrap_or_else(|| {
                    MonitorOutcome::failed(
                        &config.monitors[run[slot]].name,
                        Utc::now(),
                        "internal error: the check's task failed".into(),
                        None,
                    )
                })
            })
            .collect();
        self.flush().await;
        #[cfg(feature = "fault-injection")]
        crate::fault::crash_point_after_commit();
        let delivery = match overall {
            None => self.deliver_due(generation).await,
            Some(d) => match tokio::time::timeout_at(d, self.deliver_due(generation)).await {
                Ok(result) => result,
                Err(_) => Err(EngineError::Store(
                    "the run's deadline passed during delivery; what was not sent stays queued"
                        .into(),
                )),
            },
        };
        match &delivery {
            Ok(d) if d.retrying > 0 => tracing::info!(
                "{} notification(s) will be retried by the next run",
                d.retrying
            ),
            Err(e) => tracing::error!("cannot deliver notifications: {e}"),
            _ => {}
        }
        match overall {
            None => self.maintain(generation).await,
            Some(d) => {
                if tokio::time::timeout_at(d, self.maintain(generation))
                    .await
                    .is_err()
                {
                    tracing::info!(
                        "the run's deadline passed during retention; the next run goes on"
                    );
                }
            }
        }
        RunReport {
            outcomes,
            skipped,
            delivery,
        }
    }

    /// Of the monitors `selected` (indices into the config), those due at `now`, claimed in
    /// the store, and those not due; or all of them with the reason they can't run when the claim
    /// failed.
    async fn claim_due_monitors(
        &self,
        generation: &Generation,
        selected: &[usize],
        now: DateTime<Utc>,
        deadline: Option<tokio::time::Instant>,
    ) -> (Vec<usize>, Vec<Skipped>, Option<String>) {
        let config = &generation.config;
        let fired: Vec<(String, DateTime<Utc>)> = selected
            .iter()
            .map(|&i| {
                let monitor = &config.monitors[i];
                (
                    monitor.name.clone(),
                    due::latest_fire(monitor, config.timezone, now),
                )
            })
            .collect();
        let store = self.store.clone();
        let pairs = fired.clone();
        let claim = tokio::task::spawn_blocking(move || store.claim_fired(now, &pairs));
        let claimed = match deadline {
            None => claim.await,
            Some(d) => match tokio::time::timeout_at(d, claim).await {
                Ok(result) => result,
                Err(_) => {
                    let why = "watchpost could not run the check: the run's deadline passed \
                               while claiming the due monitors";
                    return (selected.to_vec(), Vec::new(), Some(why.into()));
                }
            },
        };
        let claimed = match claimed {
            Ok(Ok(claimed)) => claimed,
            Ok(Err(e)) => {
                let why = config
                    .secrets
                    .redact(&format!(
                        "watchpost could not run the check: cannot claim the due monitors: {e}"
                    ))
                    .into_owned();
                tracing::error!("{why}");
                return (selected.to_vec(), Vec::new(), Some(why));
            }
            Err(e) => {
                let why = format!(
                    "watchpost could not run the check: internal error while claiming: {e}"
                );
                return (selected.to_vec(), Vec::new(), Some(why));
            }
        };
        let claimed: std::collections::HashSet<&str> = claimed.iter().map(String::as_str).collect();
        let mut run = Vec::with_capacity(claimed.len());
        let mut skipped = Vec::new();
        for (&i, (name, at)) in selected.iter().zip(&fired) {
            if claimed.contains(name.as_str()) {
                run.push(i);
            } else {
                skipped.push(Skipped {
                    name: name.clone(),
                    fired: *at,
                    next: due::next_fire(&config.monitors[i], config.timezone, now),
                });
            }
        }
        tracing::debug!("{} monitor(s) due, {} not due", run.len(), skipped.len());
        (run, skipped, None)
    }
}
