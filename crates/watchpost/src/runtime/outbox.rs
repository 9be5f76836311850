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

use super::Generation;
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
            .map_err(|e| generation.config.secrets.redact(&e.to_string()).into_owned())?;
    let claimed = items.len();
    for group in groups(items, &generation.channels) {
        let (store, generation, worker) = (store.clone(), generation.clone(), worker.to_string());
        inflight.spawn(async move { send_group(store, generation, worker, group).await });
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

/// Outbox items that go out in one send, or fail together without one.
struct Group {
    items: Vec<OutboxItem>,
    send: Result<(Arc<Channel>, Vec<Alert>), SendError>,
}

/// Split claimed items into sends: unreadable items and items of channels no longer
/// configured fail on their own; items of a merging channel are batched in claim order.
fn groups(items: Vec<OutboxItem>, channels: &BTreeMap<String, Arc<Channel>>) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    // Open batch per merging channel: index into `out`.
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for item in items {
        let Some(channel) = channels.get(&item.channel).cloned() else {
            let e = SendError::fatal(format!(
                "channel {:?} is no longer configured",
                item.channel
            ));
            out.push(Group {
                items: vec![item],
                send: Err(e),
            });
            continue;
        };
        let alert = match serde_json::from_str::<Alert>(&item.payload) {
            Ok(a) => a,
            Err(e) => {
                let e = SendError::fatal(format!("unreadable alert: {e}"));
                out.push(Group {
                    items: vec![item],
                    send: Err(e),
                });
                continue;
            }
        };
        if channel.merges() {
            if let Some(&i) = open.get(&item.channel)
                && let Ok((_, alerts)) = &mut out[i].send
                && alerts.len() < MERGE_MAX
            {
                alerts.push(alert);
                out[i].items.push(item);
                continue;
            }
            open.insert(item.channel.clone(), out.len());
        }
        out.push(Group {
            items: vec![item],
            send: Ok((channel, vec![alert])),
        });
    }
    out
}

/// Send one group, renewing its lease while the send lasts, then settle each item.
async fn send_group(
    store: Arc<dyn Store>,
    generation: Arc<Generation>,
    worker: String,
    group: Group,
) -> Delivered {
    let ids: Vec<i64> = group.items.iter().map(|i| i.id).collect();
    let locale = generation.locale;
    let send = async {
        match &group.send {
            Err(e) => Err(e.clone()),
            Ok((channel, alerts)) => channel.send_many(alerts, locale).await,
        }
    };
    tokio::pin!(send);
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
    let result = loop {
        tokio::select! {
            r = &mut send => break r,
            _ = renew.tick() => {
                let (s, w, ids) = (store.clone(), worker.clone(), ids.clone());
                let until = Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or_default();
                match tokio::task::spawn_blocking(move || s.extend_lease(&ids, &w, until)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!("cannot renew a delivery lease: {e}"),
                    Err(e) => tracing::warn!("cannot renew a delivery lease: {e}"),
                }
            }
        }
    };
    let mut done = Delivered::default();
    for item in &group.items {
        match settle(&store, &generation, &worker, item, result.clone()).await {
            Ok(Settled::Sent) => done.sent += 1,
            Ok(Settled::Retry) => done.retrying += 1,
            Ok(Settled::GaveUp) => done.gave_up += 1,
            Err(e) => {
                done.unsettled += 1;
                tracing::error!(
                    "cannot record the delivery outcome of {} → {}: {e}; it will be retried \
                     after its lease",
                    item.idempotency_key,
                    item.channel
                );
            }
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
    result: Result<watchpost_channels::Delivery, SendError>,
) -> Result<Settled, String> {
    let secrets = &generation.config.secrets;
    let max_age = generation.config.delivery_max_age;
    let now = Utc::now();
    let (s, w, id) = (store.clone(), worker.to_string(), item.id);
    let what = format!("{} → {}", item.idempotency_key, item.channel);
    let (settled, op): (
        Settled,
        Box<dyn FnOnce() -> Result<(), watchpost_store::StoreError> + Send>,
    ) = match result {
        Ok(delivery) => {
            tracing::info!(
                "delivered {what} ({})",
                delivery
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "ok".into())
            );
            (
                Settled::Sent,
                Box::new(move || s.mark_delivered(id, &w, now)),
            )
        }
        Err(e) => {
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
                        Box::new(move || s.mark_retry(id, &w, next, &message)),
                    )
                }
                _ => {
                    tracing::error!(
                        "giving up on {what} after {} attempt(s): {message}",
                        item.attempts
                    );
                    (
                        Settled::GaveUp,
                        Box::new(move || s.mark_gave_up(id, &w, now, &message)),
                    )
                }
            }
        }
    };
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| secrets.redact(&e.to_string()).into_owned())?;
    Ok(settled)
}

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

    #[test]
    fn merging_channels_get_one_send_per_batch_others_one_per_item() {
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
        let alert = serde_json::to_string(&Alert::test("m", None, Utc::now())).unwrap();
        let mut items = Vec::new();
        for i in 0..(MERGE_MAX as i64 + 3) {
            items.push(item(i, "screen", &alert));
        }
        items.push(item(100, "hook", &alert));
        items.push(item(101, "hook", &alert));
        items.push(item(102, "gone", &alert));
        items.push(item(103, "screen", "{not json"));

        let groups = groups(items, &channels);
        let shape: Vec<(Vec<i64>, bool)> = groups
            .iter()
            .map(|g| (g.items.iter().map(|i| i.id).collect(), g.send.is_ok()))
            .collect();
        let first_batch: Vec<i64> = (0..MERGE_MAX as i64).collect();
        let second_batch: Vec<i64> = (MERGE_MAX as i64..MERGE_MAX as i64 + 3).collect();
        assert_eq!(
            shape,
            vec![
                (first_batch, true),
                (second_batch, true),
                (vec![100], true),
                (vec![101], true),
                (vec![102], false),
                (vec![103], false),
            ]
        );
        let Err(e) = &groups[4].send else { panic!() };
        assert!(e.message().contains("no longer configured"));
        let Err(e) = &groups[5].send else { panic!() };
        assert!(e.message().starts_with("unreadable alert"));
    }
}
