//! Delivery policy: how long to wait before the next attempt, and when to stop trying.
//!
//! The delivery worker claims an outbox item (attempt `n`, 1 on the first claim), sends it,
//! and on a retryable failure schedules the next attempt [`retry_delay`] later — unless
//! [`give_up`] says it has been retried long enough. A fatal failure gives up at once.
//!
//! Giving up needs two things: at least [`MIN_ATTEMPTS`] attempts, *and* `max_age` of real
//! time spent retrying. That time is not "now minus when the alert was made" on the wall
//! clock, which a clock step can move by hours in either direction: the store adds up the
//! gaps between consecutive attempts, each gap clamped to a bound, so a step of the clock
//! adds at most that bound, and a step alone (without the attempts) never gives an alert up.

use crate::SendError;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The wait after the first failed attempt.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest wait between attempts of our own backoff.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5 * 60);
/// The longest wait a far end can ask for (`Retry-After`, WeCom's and DingTalk's throttles):
/// an hour. Retrying sooner than asked only earns another refusal — and with DingTalk, a
/// longer ban — while a longer ask is more likely a bogus header than a real plan.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60 * 60);
/// How long an undelivered alert is kept trying by default: a day.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// The fewest attempts before an alert may be given up, however long it has waited.
pub const MIN_ATTEMPTS: u32 = 3;
/// The jitter takes up to this fraction off a wait.
const JITTER: f64 = 0.1;

/// The wait after failed attempt `attempt` (1-based; 0 counts as 1): 1s, 2s, 4s, … doubling
/// up to [`BACKOFF_CAP`], minus a random jitter of up to 10% so that alerts queued together
/// during an outage don't all retry in the same instant.
pub fn backoff(attempt: u32) -> Duration {
    backoff_with_jitter(attempt, random_unit())
}

/// [`backoff`] with the jitter given: `unit` in `[0, 1)` takes `unit × 10%` off the wait.
/// Pure: the same arguments give the same wait.
pub fn backoff_with_jitter(attempt: u32, unit: f64) -> Duration {
    let exponent = attempt.max(1) - 1;
    let full = if exponent >= 16 {
        BACKOFF_CAP
    } else {
        (BACKOFF_BASE * (1u32 << exponent)).min(BACKOFF_CAP)
    };
    full.mul_f64(1.0 - JITTER * unit.clamp(0.0, 1.0))
}

/// When to try again after `error` on attempt `attempt`: None for a fatal error; otherwise
/// [`backoff`], but not sooner than the far end asked (`retry_after`, itself capped at
/// [`RETRY_AFTER_CAP`]).
pub fn retry_delay(attempt: u32, error: &SendError) -> Option<Duration> {
    if !error.is_retryable() {
        return None;
    }
    let wait = backoff(attempt);
    Some(match error.retry_after() {
        Some(asked) => wait.max(asked.min(RETRY_AFTER_CAP)),
        None => wait,
    })
}

/// Whether to stop trying an alert after `attempts` failed attempts (retryable ones) that
/// have taken `retried` of real time: true once there were at least [`MIN_ATTEMPTS`]
/// attempts *and* `retried` reached `max_age`.
///
/// `retried` is what the store measured: the sum of the gaps between consecutive attempts,
/// each gap clamped, so that a jump of the wall clock counts for at most the clamp and can't
/// by itself make an alert look old. With `max_age` at zero, an alert is still tried
/// [`MIN_ATTEMPTS`] times.
pub fn give_up(attempts: u32, retried: Duration, max_age: Duration) -> bool {
    attempts >= MIN_ATTEMPTS && retried >= max_age
}

/// A number in `[0, 1)` from the standard library's per-process random hash keys.
fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_from_one_second_up_to_five_minutes() {
        let waits: Vec<Duration> = (1..=12).map(|n| backoff_with_jitter(n, 0.0)).collect();
        assert_eq!(
            waits,
            [
                S(1),
                S(2),
                S(4),
                S(8),
                S(16),
                S(32),
                S(64),
                S(128),
                S(256),
                S(300),
                S(300),
                S(300)
            ]
        );
        assert_eq!(backoff_with_jitter(0, 0.0), S(1));
        assert_eq!(backoff_with_jitter(u32::MAX, 0.0), S(300));
    }

    #[test]
    fn jitter_takes_at_most_ten_percent_off() {
        assert_eq!(backoff_with_jitter(4, 0.5), Duration::from_millis(7600));
        assert_eq!(
            backoff_with_jitter(10, 0.999_999),
            Duration::from_secs_f64(300.0 * (1.0 - 0.0999999))
        );
        assert_eq!(backoff_with_jitter(1, 7.0), Duration::from_millis(900));
        for n in 1..40 {
            let full = backoff_with_jitter(n, 0.0);
            for _ in 0..50 {
                let w = backoff(n);
                assert!(
                    w <= full && w >= full.mul_f64(0.9),
                    "{n}: {w:?} vs {full:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let waits: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(8)).collect();
        assert!(waits.len() > 1, "{waits:?}");
    }

    #[test]
    fn retry_delay_respects_retry_after_and_fatal() {
        assert_eq!(retry_delay(1, &SendError::fatal("HTTP 400")), None);
        let plain = retry_delay(1, &SendError::retryable("HTTP 500")).unwrap();
        assert!(plain <= S(1) && plain >= Duration::from_millis(900));
        let asked = SendError::Retryable {
            message: "HTTP 429".into(),
            retry_after: Some(S(30)),
        };
        assert_eq!(retry_delay(1, &asked), Some(S(30)));
        let huge = SendError::Retryable {
            message: "HTTP 503".into(),
            retry_after: Some(S(86_400)),
        };
        assert_eq!(retry_delay(1, &huge), Some(S(3600)));
        // DingTalk's ten-minute throttle is waited out, not retried into.
        let throttled = SendError::Retryable {
            message: "dingtalk: errcode 130101: send too fast".into(),
            retry_after: Some(S(600)),
        };
        assert_eq!(retry_delay(1, &throttled), Some(S(600)));
    }

    #[test]
    fn gives_up_after_max_age_and_enough_attempts() {
        let hour = S(3600);
        assert!(!give_up(0, S(0), hour));
        assert!(!give_up(MIN_ATTEMPTS, S(3599), hour));
        assert!(give_up(MIN_ATTEMPTS, hour, hour));
        assert!(give_up(40, S(3 * 86_400), DEFAULT_MAX_AGE));
        assert!(!give_up(u32::MAX, S(86_399), DEFAULT_MAX_AGE));
        assert!(!give_up(1000, S(365 * 86_400), Duration::MAX));
    }

    #[test]
    fn time_alone_never_gives_up() {
        // A clock step forward of days, seen after a single attempt: not enough attempts.
        for attempts in 0..MIN_ATTEMPTS {
            assert!(
                !give_up(attempts, Duration::MAX, DEFAULT_MAX_AGE),
                "{attempts}"
            );
            assert!(!give_up(attempts, S(30 * 86_400), S(60)), "{attempts}");
        }
        // Even a max_age of zero tries MIN_ATTEMPTS times.
        assert!(!give_up(MIN_ATTEMPTS - 1, S(0), Duration::ZERO));
        assert!(give_up(MIN_ATTEMPTS, S(0), Duration::ZERO));
    }

    #[test]
    fn attempts_alone_never_give_up() {
        assert!(!give_up(u32::MAX, S(0), S(1)));
        assert!(!give_up(10_000, S(600), DEFAULT_MAX_AGE));
    }
}
