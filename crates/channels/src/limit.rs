//! Per-channel send rate limits, so a robot is never pushed past what its provider accepts
//! (WeCom and DingTalk: 20 messages a minute per robot; Feishu: 5 a second; Slack and
//! Telegram: about 1 a second per chat).
//!
//! A [`RateLimit`] is a GCRA bucket (the `governor` crate): a full minute's allowance can go
//! at once, then one message per `period / n`. When a send would exceed it, the channel does
//! not drop the alert and does not sleep: it fails *retryably* with the wait as
//! `retry_after`, so the outbox keeps the alert and tries again then — and by then the
//! delivery worker merges everything queued for that channel into one message (see
//! [`crate::Channel::merges`]). Limits are per process: a `once` run starts with a full
//! allowance, and the provider's own "too many requests" answer is retried the same way.

use crate::SendError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// At most `n` messages per `period` (with a burst of `n`).
pub struct RateLimit {
    limiter: DefaultDirectRateLimiter,
    n: u32,
    what: &'static str,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateLimit({} {})", self.n, self.what)
    }
}

impl RateLimit {
    /// At most `n` (≥ 1) messages a minute.
    pub fn per_minute(n: u32) -> RateLimit {
        let n = n.max(1);
        RateLimit {
            limiter: RateLimiter::direct(Quota::per_minute(NonZeroU32::new(n).expect("n >= 1"))),
            n,
            what: "messages/minute",
        }
    }

    /// At most `n` (≥ 1) messages a second.
    pub fn per_second(n: u32) -> RateLimit {
        let n = n.max(1);
        RateLimit {
            limiter: RateLimiter::direct(Quota::per_second(NonZeroU32::new(n).expect("n >= 1"))),
            n,
            what: "messages/second",
        }
    }

    /// Take `messages` (≥ 1) from the allowance, all or none. When they don't fit now: a
    /// retryable error naming `channel` and the limit, with the wait until they fit (a batch
    /// bigger than the whole allowance waits for a full allowance and then goes).
    pub fn take(&self, messages: u32, channel: &str) -> Result<(), SendError> {
        let wanted = messages.clamp(1, self.n);
        let wanted = NonZeroU32::new(wanted).expect("clamped to >= 1");
        let wait = match self.limiter.check_n(wanted) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(DefaultClock::default().now()),
            Err(_) => Duration::from_secs(60),
        };
        // Whole seconds, at least one: the outbox schedules in milliseconds, but a wait
        // rounded up never comes back early.
        let wait = Duration::from_millis(wait.as_millis() as u64 + 1).max(Duration::from_secs(1));
        Err(SendError::Retryable {
            message: format!(
                "{channel}: holding back to stay within {} {}; trying again in {}s",
                self.n,
                self.what,
                wait.as_secs_f64().ceil() as u64
            ),
            retry_after: Some(wait),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_allowance_then_a_wait() {
        let limit = RateLimit::per_minute(20);
        for _ in 0..20 {
            limit.take(1, "wecom").unwrap();
        }
        let e = limit.take(1, "wecom").unwrap_err();
        assert!(e.is_retryable());
        let wait = e.retry_after().unwrap();
        // One message every 3 s after the burst.
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(4),
            "{wait:?}"
        );
        assert!(
            e.message()
                .starts_with("wecom: holding back to stay within 20 messages/minute"),
            "{e}"
        );
    }

    #[test]
    fn batches_take_all_or_nothing() {
        let limit = RateLimit::per_minute(3);
        limit.take(2, "x").unwrap();
        assert!(limit.take(2, "x").is_err());
        limit.take(1, "x").unwrap();
        // More than the whole allowance: capped to the allowance, so it can go eventually.
        let limit = RateLimit::per_second(5);
        limit.take(9, "x").unwrap();
        assert!(limit.take(1, "x").is_err());
    }
}
