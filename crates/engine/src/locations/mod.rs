//! Probe locations on the server's side (docs/locations.md): the wire format agents speak
//! ([`wire`]), authorizing and taking in their pushes and cutting their assignments
//! ([`server`]), judging a tick over every location ([`slot`]), the dead-man switch of silent
//! locations ([`deadman`]), and which monitors this process schedules when replicas share a
//! PostgreSQL store ([`Shards`]).

pub mod deadman;
pub mod server;
pub mod slot;
pub mod wire;

pub use slot::Hub;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use watchpost_store::{SHARDS, shard_of};

/// How long a shard lease lasts without renewal: a dead replica's monitors move within it
/// and one renewal period.
pub const SHARD_LEASE: Duration = Duration::from_secs(6);
/// How often a replica renews its shard leases.
pub const SHARD_RENEW: Duration = Duration::from_secs(2);

/// Which of the [`SHARDS`] shards of monitor names this process schedules: all of them, or
/// those whose leases it holds (replicas on PostgreSQL).
pub struct Shards {
    leased: AtomicBool,
    held: AtomicU64,
}

impl Shards {
    /// Every shard (one process on its store).
    pub fn all() -> Arc<Shards> {
        Arc::new(Shards {
            leased: AtomicBool::new(false),
            held: AtomicU64::new(u64::MAX),
        })
    }

    /// From now on only the shards given to [`Shards::set`] (none until then).
    pub fn lease(&self) {
        self.held.store(0, Ordering::SeqCst);
        self.leased.store(true, Ordering::SeqCst);
    }

    /// Whether shards are leased (replicas) rather than all held.
    pub fn is_leased(&self) -> bool {
        self.leased.load(Ordering::SeqCst)
    }

    /// The shards held now.
    pub fn set(&self, shards: &[u32]) {
        let mask = shards
            .iter()
            .filter(|s| **s < SHARDS)
            .fold(0u64, |m, s| m | (1 << s));
        self.held.store(mask, Ordering::SeqCst);
    }

    /// How many shards are held.
    pub fn count(&self) -> u32 {
        self.held.load(Ordering::SeqCst).count_ones()
    }

    /// Whether this process schedules the monitor (or dead-man switch) called `name`.
    pub fn owns(&self, name: &str) -> bool {
        self.held.load(Ordering::SeqCst) & (1 << shard_of(name)) != 0
    }
}

/// Keep this replica's shard leases ([`Store::claim_shards`](watchpost_store::Store)):
/// renewed every [`SHARD_RENEW`]; when the store can't be reached for almost a lease's
/// length, every shard is let go (another replica may have taken them), so a monitor is
/// never scheduled twice. Returns when `stop` fires (or its sender is gone), never in the
/// middle of a claim: once it has returned, no claim of this process can follow a release.
pub async fn keep_shards(engine: Arc<crate::Engine>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut last_ok = tokio::time::Instant::now();
    loop {
        let (store, holder) = (engine.store.clone(), engine.worker.clone());
        let claimed = tokio::task::spawn_blocking(move || {
            store.claim_shards(&holder, chrono::Utc::now(), SHARD_LEASE)
        })
        .await;
        match claimed {
            Ok(Ok(shards)) => {
                if shards.len() as u32 != engine.shards.count() {
                    tracing::info!(
                        "replicas: this process now schedules {} of {SHARDS} shards of monitors",
                        shards.len()
                    );
                }
                engine.shards.set(&shards);
                last_ok = tokio::time::Instant::now();
            }
            Ok(Err(e)) => tracing::warn!("replicas: cannot renew shard leases: {e}"),
            Err(e) => tracing::warn!("replicas: cannot renew shard leases: {e}"),
        }
        if last_ok.elapsed() >= SHARD_LEASE - SHARD_RENEW {
            if engine.shards.count() > 0 {
                tracing::warn!(
                    "replicas: shard leases not renewed; scheduling nothing until they are"
                );
            }
            engine.shards.set(&[]);
        }
        tokio::select! {
            _ = tokio::time::sleep(SHARD_RENEW) => {}
            _ = &mut stop => return,
        }
    }
}
