//! Every monitor once (`watchpost once`, and the serverless runtimes to come): at most
//! `concurrency` checks at a time, each check's future created only when a slot is free, so
//! sockets, resolvers, blocking threads and memory stay bounded however many monitors there
//! are; then the outbox is delivered and old results are pruned. An optional overall deadline
//! (a function's time limit) bounds everything: checks not started by then are reported as not
//! run, running ones are cut at it, and what can't be delivered in time stays queued.

use crate::{Engine, EngineError, Generation, MonitorOutcome, outbox::Delivered};
use chrono::Utc;
use std::sync::Arc;

/// What a run of every monitor came to.
pub struct RunReport {
    /// One outcome per monitor, in config order.
    pub outcomes: Vec<MonitorOutcome>,
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

    /// Whether every monitor passed.
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
        let config = generation.config.clone();
        let total = config.monitors.len();
        let mut outcomes: Vec<Option<MonitorOutcome>> = (0..total).map(|_| None).collect();
        let mut set = tokio::task::JoinSet::new();
        let mut next = 0;
        let out_of_time = || deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        while next < total || !set.is_empty() {
            if next < total && set.len() < config.concurrency {
                let i = next;
                next += 1;
                if out_of_time() {
                    outcomes[i] = Some(MonitorOutcome::failed(
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
                    (i, engine.tick(&generation, i, at, deadline).await)
                });
                continue;
            }
            match set.join_next().await {
                Some(Ok((i, outcome))) => outcomes[i] = Some(outcome),
                Some(Err(e)) => tracing::error!("a check task failed: {e}"),
                None => {}
            }
        }
        let outcomes: Vec<MonitorOutcome> = outcomes
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                o.unwrap_or_else(|| {
                    MonitorOutcome::failed(
                        &config.monitors[i].name,
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
        let delivery = match deadline {
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
        self.maintain(generation).await;
        RunReport { outcomes, delivery }
    }
}
