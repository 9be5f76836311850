//! Real local servers for watchpost's tests and benchmarks. Everything listens on 127.0.0.1
//! (port 0 = an ephemeral port) and runs until the returned handle is dropped.
//!
//! - [`TestCa`]: a certificate authority made at run time with rcgen, issuing valid, expired,
//!   wrong-host certificates.
//! - [`HttpServer`]: a raw HTTP/1.1 server (optionally TLS) whose behaviour is chosen per
//!   request by the path and query: header delay, body trickle, garbage, reset mid-body,
//!   redirects, huge bodies.
//! - [`H2Server`]: HTTP/2 over TLS (ALPN h2) with hyper's server.
//! - [`Receiver`]: a recording HTTP(S) server that answers from a script of [`Reply`]s — the
//!   stand-in for remote APIs (chat robots, SMS gateways, webhooks).
//! - [`DnsServer`]: a UDP DNS responder serving a [`Zone`] of A, AAAA, TXT and MX records, with
//!   an answer delay, NXDOMAIN for unknown names, a silent mode and a garbage mode.
//! - [`pong_server`]: a TCP service answering `PING` with `+PONG` (a banner to check);
//!   [`greeter`]: one that sends a greeting and closes; [`tls_endpoint`]: a TLS listener that
//!   completes handshakes; [`tls_forwarder`]: TLS in front of a plaintext server.
//! - [`strategies`]: proptest strategies for condition-like text.
//! - [`kafka`]: a real Kafka-compatible broker (Tansu) and confluent-kafka ground truth.

mod ca;
pub mod contract;
mod dns;
mod http;
pub mod kafka;
mod receiver;
pub mod strategies;
mod tcp;

pub use ca::{Leaf, TestCa};
pub use dns::{DnsBehaviour, DnsServer, GARBAGE, Zone};
pub use http::{H2Server, HttpServer, TlsOptions};
pub use receiver::{Receiver, Reply, Seen};
pub use tcp::{greeter, pong_server, tls_endpoint, tls_forwarder};

/// Stops a background server task when dropped.
#[derive(Debug)]
pub struct Guard(tokio::task::JoinHandle<()>);

impl Guard {
    /// Stop the task and wait until it has ended, so that its sockets are closed (and their
    /// addresses free to bind again).
    pub async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
