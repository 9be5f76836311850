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

/// Deliver everything due now. Returns what happened; store errors are returned as text.
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
        let sends = items.into_iter().map(|item| {
            let channel = channels.get(&item.channel).cloned();
            async move {
                let result = match (&channel, serde_json::from_str::<Alert>(&item.payload)) {
                    (None, _) => Err(SendError::fatal(format!(
                        "channel {:?} is no longer configured",
                        item.channel
                    ))),
                    (_, Err(e)) => Err(SendError::fatal(format!("unreadable alert: {e}"))),
                    (Some(ch), Ok(alert)) => ch.send(&alert, locale).await,
                };
                (item, result)
            }
        });
        for (item, result) in futures_join(sends).await {
            let outcome = settle(&store, worker, &item, result, max_age).await?;
            match outcome {
                Settled::Sent => total.sent += 1,
                Settled::Retry => total.retrying += 1,
                Settled::GaveUp => total.gave_up += 1,
            }
        }
    }
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

/// Run futures concurrently and collect their outputs in order.
async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<(usize, F::Output)> = Vec::new();
    while let Some(Ok(r)) = set.join_next().await {
        out.push(r);
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}
