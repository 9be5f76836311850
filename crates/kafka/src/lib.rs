//! A small Kafka admin client and consumer-group lag, in pure Rust.
//!
//! Messages are encoded and decoded by the `kafka-protocol` crate; everything else is here:
//! the tokio transport ([`conn`]: size-prefixed frames, correlation ids, ApiVersions
//! negotiation picking the highest version both sides support, TLS through `watchpost-net`'s
//! rustls configs, SASL PLAIN and SCRAM-SHA-256/512 ([`scram`])), the [`Cluster`] that keeps one
//! connection per broker across calls and replaces a failed one, and [`lag()`].
//!
//! End offsets are read with ListOffsets at `READ_UNCOMMITTED`, i.e. the high watermark
//! ([`ISOLATION_READ_UNCOMMITTED`] says why). Every call takes a deadline and returns a
//! [`KafkaError`] by then; nothing read from the network can make it panic.
//!
//! A peer can still make the `kafka-protocol` codec reserve an absurd capacity (a lying array
//! length); a binary that talks to brokers installs [`alloc::Lazy`] so that costs address
//! space instead of aborting the process.
//!
//! [`ckafka`] reads the same report through Tencent Cloud's CKafka API instead of the brokers
//! (for a watchpost that can't reach them).

pub mod alloc;
pub mod ckafka;
mod cluster;
mod conn;
mod error;
mod lag;
pub mod scram;
mod settings;

pub use cluster::{
    Cluster, EndOffsets, GroupDescription, GroupListing, ISOLATION_READ_UNCOMMITTED, Metadata,
    TopicPartition,
};
pub use error::KafkaError;
pub use lag::{GroupLag, LagReport, PartitionLag, TopicLag, lag};
pub use settings::{Sasl, SaslMechanism, Settings, Tls};
