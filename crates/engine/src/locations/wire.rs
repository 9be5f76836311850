//! What a probe agent and its server say to each other (docs/locations.md, "Wire format"):
//! the assignment the agent pulls, the batches of observations it pushes, and the answer to a
//! push. Every document carries its version (`v`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::time::Duration;
use watchpost_channels::FailedCondition;
use watchpost_units::Metric;

/// The version of every document here.
pub const VERSION: u32 = 1;

/// The largest push body the server reads (`413` above it).
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// The most observations one push may carry.
pub const MAX_OBSERVATIONS: usize = 500;
/// The most bytes of observations an agent puts in one push (it stays well under
/// [`MAX_BODY_BYTES`]).
pub const BATCH_BYTES: usize = 1 << 20;
/// How far in the future an observation's times may lie (clocks of agents differ a little).
pub const MAX_FUTURE: Duration = Duration::from_secs(10 * 60);
/// The longest text (a failure, an error) an observation may hold, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The most failures or metrics one observation may hold.
pub const MAX_ITEMS: usize = 200;
/// The largest check report one observation may hold, in bytes.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;

/// The header naming the location on an assignment request.
pub const LOCATION_HEADER: &str = "x-watchpost-location";

/// `POST /api/v1/agent/assignment` answers this: the monitors the location runs, as a config
/// document the agent validates like any config.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub v: u32,
    pub location: String,
    /// A hash of `config` and `env`: when a push's answer names another one, the agent pulls
    /// its assignment again.
    pub generation: String,
    /// A config (JSON, which is YAML) holding the location's monitors as written in the
    /// server's config, without their `locations`, `alert` and `maintenance` (the server's
    /// business), and the server's `timezone`.
    pub config: String,
    /// The value of every `${VAR}` that config uses, so the agent checks what the server would.
    pub env: BTreeMap<String, String>,
}

/// One push: `POST /api/v1/ingest`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch<O> {
    pub v: u32,
    /// The location reporting; must be the one whose token authorizes the push.
    pub location: String,
    /// Which agent process sent it (free text, for logs).
    #[serde(default)]
    pub agent: String,
    /// The agent's push counter (for logs).
    #[serde(default)]
    pub seq: u64,
    /// The assignment generation the agent runs.
    #[serde(default)]
    pub generation: String,
    /// Observations the agent's buffer dropped (it was full) since its last push.
    #[serde(default)]
    pub dropped: u64,
    pub observations: Vec<O>,
}

/// One location's observation of one tick of one monitor, judged by the agent against the
/// monitor's conditions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireObservation {
    pub monitor: String,
    /// The tick it stands for: one of the monitor's fire times (spread included).
    pub slot: DateTime<Utc>,
    /// When the check ran.
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// Every failed condition (or the probe's error), as data.
    #[serde(default)]
    pub failures: Vec<FailedCondition>,
    /// Every metric measured.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// The probe's error as `PHASE KIND` (`connect refused`), when it failed on the network.
    #[serde(default)]
    pub error: Option<String>,
    /// The check's report (the `watchpost check --json` shape).
    pub report: Box<RawValue>,
}

/// The server's answer to a push that was taken.
#[derive(Debug, Serialize, Deserialize)]
pub struct Accepted {
    /// Observations stored now.
    pub stored: usize,
    /// Observations the server had already (a re-sent batch).
    pub duplicates: usize,
    /// The server's current assignment generation for the location.
    pub generation: String,
}

/// Why a push or an assignment request was refused: its HTTP status and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub reason: String,
}

impl Refused {
    pub fn new(status: u16, reason: impl Into<String>) -> Refused {
        Refused {
            status,
            reason: reason.into(),
        }
    }
}

/// A stable 64-bit FNV-1a hash as 16 hex digits (assignment generations).
pub fn fnv_hex(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.as_bytes().iter().chain(std::iter::once(&0u8)) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Compare two secrets in time that depends only on their lengths, not on where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdef", b"0123456789abcdeF"));
        assert!(!same_secret(b"0123456789abcdef", b"0123456789abcde"));
        assert!(!same_secret(b"", b"x"));
        assert!(same_secret(b"", b""));
    }

    #[test]
    fn generations_are_stable_and_separate_their_parts() {
        assert_eq!(fnv_hex(&["a", "b"]), fnv_hex(&["a", "b"]));
        assert_ne!(fnv_hex(&["ab", ""]), fnv_hex(&["a", "b"]));
        assert_eq!(fnv_hex(&[]), "cbf29ce484222325");
    }
}
