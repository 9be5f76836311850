//! The outbox worker: the only code that sends notifications. It claims due items with a lease
//! (so two processes never send the same one), sends each through its channel, and marks it
//! delivered, schedules a retry with backoff, or gives up — keeping the error.
//!
//! - **Isolated**: each claimed group is sent in its own task and each item is settled on its
//!   own: a channel that is slow or failing, or a store error while settling one item, never
//!   holds up or aborts another (the error is logged and the item's lease simply runs out, so
//!   it is retried).
//! - **Leases cover the whole send**: while a send is in flight its lease is renewed every
//!   [`RENEW_EVERY`], so a slow multi-part send is never taken over and posted twice.
//! - **In order**: the store never hands out a notification while an earlier one of the same
//!   incident and channel is pending, so a RESOLVED never overtakes its DOWN.
//! - **Never given up by a clock step**: an item is given up only after a minimum number of
//!   attempts *and* `delivery.max_age` of retrying as the store measures it (gaps between
//!   attempts, each capped), whatever the wall clock did.

use crate::Generation;
use chrono::Utc;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use watchpost_channels::{Alert, Channel, SendError, give_up, retry_delay};
use watchpost_store::{OutboxItem, Store};

/// How long a claim is ours before it is renewed.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often an in-flight send renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);
/// Items claimed at once.
const CLAIM_LIMIT: usize = 64;
/// At most this many queued alerts go out as one message on a channel that merges them.
const MERGE_MAX: usize = 20;

#[derive(Debug, Default, Clone, Copy)]
pub struct Delivered {
    pub sent: usize,
    pub retrying: usize,
    pub gave_up: usize,
    /// Items whose outcome could not be recorded (the store failed); retried after their
    /// lease.
    pub unsettled: usize,
}

impl std::ops::AddAssign for Delivered {
    fn add_assign(&mut self, o: Delivered) {
        self.sent += o.sent;
        self.retrying += o.retrying;
        self.gave_up += o.gave_up;
        self.unsettled += o.unsettled;
    }
}

/// Claim what is due now and start sending it in `inflight`; returns how many items were
/// claimed. Only the claim itself can fail.
pub async fn claim_round(
    store: &Arc<dyn Store>,
    generation: &Arc<Generation>,
    worker: &str,
    inflight: &mut JoinSet<Delivered>,
) -> Result<usize, String> {
    let (s, w) = (store.clone(), worker.to_string());
    let items =
        tokio::task::spawn_blocking(move || s.claim_due(Utc::now(), &w, LEASE, CLAIM_LIMIT))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                generation
                    .config
                    .secrets
                    .redact(&e.to_string())
                    .into_owned()
            })?;
    let claimed = items.len();
    let (tasks, doomed) = plan(items, &generation.channels);
    for task in tasks {
        let (store, generation, worker) = (store.clone(), generation.clone(), worker.to_string());
        inflight.spawn(async move { send_task(store, generation, worker, task).await });
    }
    for Doomed { item, error } in doomed {
        let (store, generation, worker) = (store.clone(), generation.clone(), worker.to_string());
        inflight.spawn(async move {
            settle_logged(&store, &generation, &worker, &item, Outcome::Failed(error)).await
        });
    }
    Ok(claimed)
}

/// Deliver everything due now and wait for every send (`once`, and the daemon's final flush).
pub async fn deliver_due(
    store: &Arc<dyn Store>,
    generation: &Arc<Generation>,
    worker: &str,
) -> Result<Delivered, String> {
    let mut total = Delivered::default();
    let mut inflight = JoinSet::new();
    loop {
        let claimed = claim_round(store, generation, worker, &mut inflight).await;
        total += join_all(&mut inflight).await;
        match claimed {
            Ok(0) => return Ok(total),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Wait for every send in `inflight`.
pub async fn join_all(inflight: &mut JoinSet<Delivered>) -> Delivered {
    let mut total = Delivered::default();
    while let Some(joined) = inflight.join_next().await {
        match joined {
            Ok(d) => total += d,
            Err(e) => tracing::error!("delivery task failed: {e}"),
        }
    }
    total
}

/// One unit of sending, run in its own task: batches sent one after another on one channel. A
/// merging channel's task holds all its claimed items, in claim order, in batches of up to
/// [`MERGE_MAX`] (one message each); any other channel gets one task per incident, one item per
/// batch. Within a task, a failed batch holds back the ones after it, so notifications of one
/// incident never arrive out of order (the store hands them out in order; this keeps them so).
struct Task {
    channel: Arc<Channel>,
    batches: Vec<Vec<(OutboxItem, Alert)>>,
}

/// An item that fails without a send: unreadable, or its channel is no longer configured.
struct Doomed {
    item: OutboxItem,
    error: SendError,
}

/// Split claimed items (in claim order) into tasks.
fn plan(
    items: Vec<OutboxItem>,
    channels: &BTreeMap<String, Arc<Channel>>,
) -> (Vec<Task>, Vec<Doomed>) {
    let mut tasks: Vec<Task> = Vec::new();
    let mut doomed = Vec::new();
    // Task index per merging channel, and per (channel, incident) for the others.
    let mut by_key: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for item in items {
        let Some(channel) = channels.get(&item.channel).cloned() else {
            let error = SendError::fatal(format!(
                "channel {:?} is no longer configured",
                item.channel
            ));
            doomed.push(Doomed { item, error });
            continue;
        };
        let alert = match serde_json::from_str::<Alert>(&item.payload) {
            Ok(a) => a,
            Err(e) => {
                let error = SendError::fatal(format!("unreadable alert: {e}"));
                doomed.push(Doomed { item, error });
                continue;
            }
        };
        let key = if channel.merges() {
            Some((item.channel.clone(), None))
        } else {
            item.incident
                .clone()
                .map(|incident| (item.channel.clone(), Some(incident)))
        };
        let merges = channel.merges();
        match key.as_ref().and_then(|k| by_key.get(k)) {
            Some(&i) => {
                let task = &mut tasks[i];
                match task.batches.last_mut() {
                    Some(batch) if merges && batch.len() < MERGE_MAX => batch.push((item, alert)),
                    _ => task.batches.push(vec![(item, alert)]),
                }
            }
            None => {
                if let Some(k) = key {
                    by_key.insert(k, tasks.len());
                }
                tasks.push(Task {
                    channel,
                    batches: vec![vec![(item, alert)]],
                });
            }
        }
    }
    (tasks, doomed)
}

/// What became of one item's send.
#[derive(Clone)]
enum Outcome {
    Sent(watchpost_channels::Delivery),
    Failed(SendError),
    /// Not sent: an earlier notification in its task failed (it would arrive out of order).
    HeldBack,
}

/// Send a task's batches in order, renewing the lease of all its items while the sends last,
/// then settle each item on its own.
async fn send_task(
    store: Arc<dyn Store>,
    generation: Arc<Generation>,
    worker: String,
    task: Task,
) -> Delivered {
    let ids: Vec<i64> = task
        .batches
        .iter()
        .flatten()
        .map(|(item, _)| item.id)
        .collect();
    let locale = generation.locale;
    let channel = task.channel.clone();
    let sends = async {
        let mut outcomes: Vec<(OutboxItem, Outcome)> = Vec::new();
        let mut held = false;
        for batch in task.batches {
            let (items, alerts): (Vec<OutboxItem>, Vec<Alert>) = batch.into_iter().unzip();
            let outcome = if held {
                Outcome::HeldBack
            } else {
                match channel.send_many(&alerts, locale).await {
                    Ok(d) => Outcome::Sent(d),
                    Err(e) => {
                        held = true;
                        Outcome::Failed(e)
                    }
                }
            };
            outcomes.extend(items.into_iter().map(|i| (i, outcome.clone())));
        }
        outcomes
    };
    tokio::pin!(sends);
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
    let outcomes = loop {
        tokio::select! {
            o = &mut sends => break o,
            _ = renew.tick() => {
                let (s, w, ids) = (store.clone(), worker.clone(), ids.clone());
                match tokio::task::spawn_blocking(move || s.extend_lease(&ids, &w, Utc::now(), LEASE)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!("cannot renew a delivery lease: {e}"),
                    Err(e) => tracing::warn!("cannot renew a delivery lease: {e}"),
                }
            }
        }
    };
    let mut done = Delivered::default();
    for (item, outcome) in outcomes {
        done += settle_logged(&store, &generation, &worker, &item, outcome).await;
    }
    done
}

/// Settle one item, logging (never propagating) a store error.
async fn settle_logged(
    store: &Arc<dyn Store>,
    generation: &Generation,
    worker: &str,
    item: &OutboxItem,
    outcome: Outcome,
) -> Delivered {
    let mut done = Delivered::default();
    let telemetry = &crate::metrics::TELEMETRY;
    match settle(store, generation, worker, item, outcome).await {
        Ok(Settled::Sent) => {
            done.sent += 1;
            telemetry.count_notification(&item.channel, "sent");
        }
        Ok(Settled::Retry) => {
            done.retrying += 1;
            telemetry.count_notification(&item.channel, "retry");
        }
        Ok(Settled::GaveUp) => {
            done.gave_up += 1;
            telemetry.count_notification(&item.channel, "gave_up");
        }
        Err(e) => {
            done.unsettled += 1;
            tracing::error!(
                "cannot record the delivery outcome of {} → {}: {e}; it will be retried after \
                 its lease",
                item.idempotency_key,
                item.channel
            );
        }
    }
    done
}

enum Settled {
    Sent,
    Retry,
    GaveUp,
}

async fn settle(
    store: &Arc<dyn Store>,
    generation: &Generation,
    worker: &str,
    item: &OutboxItem,
    outcome: Outcome,
) -> Result<Settled, String> {
    let secrets = &generation.config.secrets;
    let max_age = generation.config.delivery_max_age;
    let now = Utc::now();
    let (s, w, id) = (store.clone(), worker.to_string(), item.id);
    let what = format!("{} → {}", item.idempotency_key, item.channel);
    let (settled, op): (Settled, StoreOp) = match outcome {
        Outcome::Sent(delivery) => {
            tracing::info!(
                "delivered {what} ({})",
                delivery
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "ok".into())
            );
            (
                Settled::Sent,
                Arc::new(move || s.mark_delivered(id, &w, now)),
            )
        }
        Outcome::HeldBack => {
            tracing::info!("held back {what}: an earlier notification of its incident failed");
            let message = "held back: an earlier notification of the same incident was not \
                           delivered yet"
                .to_string();
            (
                Settled::Retry,
                Arc::new(move || s.mark_retry(id, &w, now, &message)),
            )
        }
        Outcome::Failed(e) => {
            let message = secrets.redact(e.message()).into_owned();
            match retry_delay(item.attempts, &e) {
                Some(d) if !give_up(item.attempts, item.retried, max_age) => {
                    tracing::warn!(
                        "delivery of {what} failed (attempt {}): {message}; retrying in {:.0?}",
                        item.attempts,
                        d
                    );
                    let next = chrono::Duration::from_std(d)
                        .ok()
                        .and_then(|d| now.checked_add_signed(d))
                        .unwrap_or(now);
                    (
                        Settled::Retry,
                        Arc::new(move || s.mark_retry(id, &w, next, &message)),
                    )
                }
                _ => {
                    tracing::error!(
                        "giving up on {what} after {} attempt(s): {message}",
                        item.attempts
                    );
                    (
                        Settled::GaveUp,
                        Arc::new(move || s.mark_gave_up(id, &w, now, &message)),
                    )
                }
            }
        }
    };
    // The send has happened: recording it must not fail on a passing store hiccup (a lock
    // held past the busy timeout), or the item would be sent again after its lease. Retried
    // with backoff for up to a quarter of the lease.
    let mut waits = SETTLE_RETRIES.iter();
    loop {
        let attempt = op.clone();
        let result = tokio::task::spawn_blocking(move || attempt())
            .await
            .map_err(|e| e.to_string())?;
        match (result, waits.next()) {
            (Ok(()), _) => return Ok(settled),
            (Err(e), Some(wait)) if e.is_transient() => {
                tracing::warn!(
                    "cannot record the outcome of {what} yet ({}); trying again in {wait:?}",
                    secrets.redact(&e.to_string())
                );
                tokio::time::sleep(*wait).await;
            }
            (Err(e), _) => return Err(secrets.redact(&e.to_string()).into_owned()),
        }
    }
}

/// A store write settling one item, run (and maybe re-run) on the blocking pool.
type StoreOp = Arc<dyn Fn() -> Result<(), watchpost_store::StoreError> + Send + Sync>;

/// The waits between attempts to record a delivery outcome: 15.75 s in all, a quarter of
/// [`LEASE`].
const SETTLE_RETRIES: [Duration; 6] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

#[cfg(test)]
mod tests {
    use super::*;
    use watchpost_channels::ChannelConfig;

    fn item(id: i64, channel: &str, payload: &str) -> OutboxItem {
        OutboxItem {
            id,
            idempotency_key: format!("k{id}"),
            incident: None,
            channel: channel.into(),
            payload: payload.into(),
            created_at: Utc::now(),
            attempts: 1,
            retried: Duration::ZERO,
            last_error: None,
        }
    }

    fn channels() -> BTreeMap<String, Arc<Channel>> {
        let mut channels = BTreeMap::new();
        for (name, cfg) in [
            ("screen", serde_json::json!({"type": "console"})),
            (
                "hook",
                serde_json::json!({"type": "webhook", "url": "http://127.0.0.1:9/"}),
            ),
        ] {
            let ch = ChannelConfig::from_value(cfg).unwrap().build().unwrap();
            channels.insert(name.to_string(), Arc::new(ch));
        }
        channels
    }

    /// Each task's batches as item ids.
    fn shape(tasks: &[Task]) -> Vec<Vec<Vec<i64>>> {
        tasks
            .iter()
            .map(|t| {
                t.batches
                    .iter()
                    .map(|b| b.iter().map(|(i, _)| i.id).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_merging_channel_gets_one_task_of_batches_others_one_task_per_incident() {
        let alert = serde_json::to_string(&Alert::test("m", None, Utc::now())).unwrap();
        let mut items = Vec::new();
        for i in 0..(MERGE_MAX as i64 + 3) {
            items.push(item(i, "screen", &alert));
        }
        let with_incident = |id, incident: &str| OutboxItem {
            incident: Some(incident.into()),
            ..item(id, "hook", &alert)
        };
        items.push(with_incident(100, "a"));
        items.push(with_incident(101, "b"));
        items.push(with_incident(102, "a"));
        items.push(item(103, "hook", &alert));
        items.push(item(104, "hook", &alert));
        items.push(item(105, "gone", &alert));
        items.push(item(106, "screen", "{not json"));

        let (tasks, doomed) = plan(items, &channels());
        let first_batch: Vec<i64> = (0..MERGE_MAX as i64).collect();
        let second_batch: Vec<i64> = (MERGE_MAX as i64..MERGE_MAX as i64 + 3).collect();
        assert_eq!(
            shape(&tasks),
            vec![
                // One task for the merging channel: its batches go out one after another.
                vec![first_batch, second_batch],
                // Incident a's two notifications in one task, in order; b on its own.
                vec![vec![100], vec![102]],
                vec![vec![101]],
                // No incident: unconstrained, one task each.
                vec![vec![103]],
                vec![vec![104]],
            ]
        );
        let doomed: Vec<(i64, String)> = doomed
            .iter()
            .map(|d| (d.item.id, d.error.message().to_string()))
            .collect();
        assert_eq!(doomed.len(), 2);
        assert_eq!(doomed[0].0, 105);
        assert!(doomed[0].1.contains("no longer configured"));
        assert_eq!(doomed[1].0, 106);
        assert!(doomed[1].1.starts_with("unreadable alert"));
    }
}
