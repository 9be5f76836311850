#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use tempfile::TempDir;
use watchpost_store::{NewNotification, SqliteStore, Store, Transition, TransitionOutcome};

/// A temporary directory holding one database file; the file goes when this is dropped.
pub struct TempDb {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("watchpost.db");
        TempDb { dir, path }
    }

    pub fn url(&self) -> String {
        url(&self.path)
    }

    pub fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.url()).expect("open store")
    }
}

pub fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// 2025-01-01T00:00:00Z plus `secs` seconds.
pub fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_689_600, 0).unwrap() + TimeDelta::seconds(secs)
}

pub fn notification(key: &str, at: DateTime<Utc>) -> NewNotification {
    NewNotification {
        idempotency_key: key.to_string(),
        channel: "ops".to_string(),
        payload: format!(r#"{{"key":"{key}"}}"#),
        created_at: at,
        incident: None,
    }
}

/// Queues one notification per key through a transition of `monitor`.
pub fn queue(
    store: &dyn Store,
    monitor: &str,
    keys: &[&str],
    at: DateTime<Utc>,
) -> TransitionOutcome {
    store
        .transition(monitor, &mut |_| {
            Ok(Transition {
                state: "{}".to_string(),
                notifications: keys.iter().map(|k| notification(k, at)).collect(),
                incident: None,
            })
        })
        .expect("transition")
}

/// Queues, through one transition of `monitor`, one notification per `(key, channel, incident)`
/// created at `at`, in that order (so their ids ascend in that order).
pub fn queue_in(
    store: &dyn Store,
    monitor: &str,
    items: &[(&str, &str, Option<&str>)],
    at: DateTime<Utc>,
) -> TransitionOutcome {
    store
        .transition(monitor, &mut |_| {
            Ok(Transition {
                state: "{}".to_string(),
                notifications: items
                    .iter()
                    .map(|(key, channel, incident)| NewNotification {
                        channel: channel.to_string(),
                        incident: incident.map(str::to_string),
                        ..notification(key, at)
                    })
                    .collect(),
                incident: None,
            })
        })
        .expect("transition")
}

/// The idempotency keys of `items`, in order.
pub fn keys(items: &[watchpost_store::OutboxItem]) -> Vec<&str> {
    items.iter().map(|i| i.idempotency_key.as_str()).collect()
}
