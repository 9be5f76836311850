//! The daemon's HTTP listener, bounded so that no client can take what the checks need: at
//! most [`Limits::max_connections`] connections at once (further ones wait in the kernel's
//! accept queue, holding none of our file descriptors), a request's head must arrive within
//! [`Limits::header_timeout`] (an idle keep-alive connection is closed after it), and no
//! connection lives longer than [`Limits::max_lifetime`]. The only module that knows about
//! axum and hyper's server side.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub max_lifetime: Duration,
}

impl Limits {
    /// At most 256 connections, or a quarter of the open-files limit if that is smaller (the
    /// rest is for checks, the store and channels); 10 s for a request head; 60 s per
    /// connection.
    pub fn for_open_files(limit: u64) -> Limits {
        let quarter = usize::try_from(limit / 4).unwrap_or(usize::MAX);
        Limits {
            max_connections: quarter.clamp(8, 256),
            header_timeout: Duration::from_secs(10),
            max_lifetime: Duration::from_secs(60),
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves; connections still open then are
/// closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Take a permit before accepting: when all are in use, new clients wait in the
        // kernel's queue instead of costing us a file descriptor each.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                tracing::warn!("web listener: cannot accept a connection: {e}");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.max_lifetime, conn).await;
        });
        // Reap finished connections so the set doesn't grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}
