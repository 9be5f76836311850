//! The outbox worker: the only code that sends notifications. It claims due items with a lease
//! (so two processes never send the same one), sends each through its channel, and marks it
//! delivered, schedules a retry with backoff, or gives up after the maximum age — keeping the
//! error. A channel that fails never holds up another: each channel has its own outbox row.

use chrono::Utc;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use watchpost_channels::{Alert, Channel, Locale, SendError, give_up, retry_delay};
use watchpost_store::{OutboxItem, Store};

/// How long a claimed item is ours: longer than any single send.
const LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Clone, Copy)]
pub struct Delivered {
    pub sent: usize,
    pub retrying: usize,
    pub gave_up: usize,
}

/// At most this many queued alerts go out as one message on a channel that merges them.
const MERGE_MAX: usize = 20;

/// Deliver everything due now. Returns what happened; store errors are returned as text.
///
/// Items are grouped per channel: a channel that [merges](Channel::merges) gets its queued
/// alerts (up to [`MERGE_MAX`]) as one message, every other item goes on its own. Groups are
/// sent concurrently and each is settled as soon as it finishes, so a slow or failing channel
/// holds up neither the sending nor the bookkeeping of another.
pub async fn deliver_due(
    store: Arc<dyn Store>,
    channels: &BTreeMap<String, Arc<Channel>>,
    locale: Locale,
    worker: &str,
    max_age: Duration,
) -> Result<Delivered, String> {
    let mut total = Delivered::default();
    loop {
        let (s, w) = (store.clone(), worker.to_string());
        let items = tokio::task::spawn_blocking(move || s.claim_due(Utc::now(), &w, LEASE, 64))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if items.is_empty() {
            return Ok(total);
        }
        let mut set = tokio::task::JoinSet::new();
        for group in groups(items, channels) {
            let (store, worker) = (store.clone(), worker.to_string());
            set.spawn(async move {
                let result = match &group.send {
                    Err(e) => Err(e.clone()),
                    Ok((channel, alerts)) => channel.send_many(alerts, locale).await,
                };
                let mut settled = Vec::new();
                for item in &group.items {
                    settled.push(settle(&store, &worker, item, result.clone(), max_age).await?);
                }
                Ok::<_, String>(settled)
            });
        }
        while let Some(joined) = set.join_next().await {
            for outcome in joined.map_err(|e| e.to_string())?? {
                match outcome {
                    Settled::Sent => total.sent += 1,
                    Settled::Retry => total.retrying += 1,
                    Settled::GaveUp => total.gave_up += 1,
                }
            }
        }
    }
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

enum Settled {
    Sent,
    Retry,
    GaveUp,
}

async fn settle(
    store: &Arc<dyn Store>,
    worker: &str,
    item: &OutboxItem,
    result: Result<watchpost_channels::Delivery, SendError>,
    max_age: Duration,
) -> Result<Settled, String> {
    let now = Utc::now();
    let (s, w, id) = (store.clone(), worker.to_string(), item.id);
    let what = format!("{} → {}", item.idempotency_key, item.channel);
    let (settled, op): (
        Settled,
        Box<dyn FnOnce() -> Result<(), watchpost_store::StoreError> + Send>,
    ) = match result {
        Ok(delivery) => {
            eprintln!(
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
            let delay = retry_delay(item.attempts, &e);
            let fallback = chrono::Duration::from_std(max_age).unwrap_or_default();
            match delay {
                Some(d) if !give_up(item.created_at, now, max_age) => {
                    eprintln!(
                        "delivery of {what} failed (attempt {}): {}; retrying in {:.0?}",
                        item.attempts,
                        e.message(),
                        d
                    );
                    let next = now + chrono::Duration::from_std(d).unwrap_or(fallback);
                    let msg = e.message().to_string();
                    (
                        Settled::Retry,
                        Box::new(move || s.mark_retry(id, &w, next, &msg)),
                    )
                }
                _ => {
                    eprintln!("giving up on {what}: {}", e.message());
                    let msg = e.message().to_string();
                    (
                        Settled::GaveUp,
                        Box::new(move || s.mark_gave_up(id, &w, now, &msg)),
                    )
                }
            }
        }
    };
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
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
            channel: channel.into(),
            payload: payload.into(),
            created_at: Utc::now(),
            attempts: 1,
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
