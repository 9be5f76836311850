//! Which monitors are due: the fire times of a monitor's schedule, as the daemon's scheduler
//! sees them, for the runtimes that are started from outside (`watchpost once --due` from cron
//! or a CronJob, serverless timers) and must run each monitor once per fire time of its own
//! schedule however often they are invoked.
//!
//! A monitor is due when its schedule fired since the fire time it last ran for, which the
//! store keeps ([`watchpost_store::Store::claim_fired`]). The fire times are:
//! - cron expressions: the expression's times in the config's `timezone` (DST as in
//!   `docs/cron.md`);
//! - `@every P`: the multiples of `P` since the Unix epoch (1970-01-01T00:00:00Z), shifted by
//!   the monitor's spread offset when it is spread (`every:` monitors; the same stable offset
//!   inside the period the daemon uses, `watchpost_scheduler::spread_offset`), so `run` and
//!   `once --due` agree on when a monitor fires and two invocations on different hosts agree
//!   with each other without sharing anything but the store.
//!
//! A schedule with no fire time at or before now (its first lies ahead) counts as having
//! fired at the epoch: a monitor never run before runs once, then waits for its first real
//! fire time.

use chrono::{DateTime, TimeDelta, Utc};
use watchpost_config::Monitor;
use watchpost_cron::Tz;

/// The fire time a schedule that has not fired yet is taken to have fired at: the epoch.
pub const NEVER_FIRED: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

/// The spread offset of `monitor`: zero unless it is an `every:` monitor.
fn offset(monitor: &Monitor) -> TimeDelta {
    match (monitor.spread, monitor.schedule.every()) {
        (true, Some(period)) => {
            TimeDelta::from_std(watchpost_scheduler::spread_offset(&monitor.name, period))
                .unwrap_or(TimeDelta::zero())
        }
        _ => TimeDelta::zero(),
    }
}

/// The latest fire time of `monitor`'s schedule at or before `now` (cron expressions in
/// `tz`); [`NEVER_FIRED`] when it has none.
pub fn latest_fire(monitor: &Monitor, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let offset = offset(monitor);
    let Some(shifted) = now.checked_sub_signed(offset) else {
        return NEVER_FIRED;
    };
    let local = shifted.with_timezone(&tz);
    // `previous_before` is strict; a fire time exactly at `now` (or one the search rounds
    // past within its second) is found by stepping forward from it.
    let mut latest = monitor.schedule.previous_before(&local);
    let mut from = latest.unwrap_or_else(|| {
        NEVER_FIRED
            .with_timezone(&tz)
            .max(local - TimeDelta::seconds(2))
    });
    for _ in 0..4 {
        match monitor.schedule.next_after(&from) {
            Some(next) if next <= local => {
                latest = Some(next);
                from = next;
            }
            _ => break,
        }
    }
    latest
        .and_then(|t| t.with_timezone(&Utc).checked_add_signed(offset))
        .filter(|t| *t >= NEVER_FIRED)
        .unwrap_or(NEVER_FIRED)
}

/// The first fire time of `monitor`'s schedule strictly after `now`, `None` when there is none.
pub fn next_fire(monitor: &Monitor, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let offset = offset(monitor);
    let local = now.checked_sub_signed(offset)?.with_timezone(&tz);
    monitor
        .schedule
        .next_after(&local)?
        .with_timezone(&Utc)
        .checked_add_signed(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitors(body: &str) -> watchpost_config::Config {
        let text =
            format!("storage: \"sqlite::memory:\"\ntimezone: Asia/Shanghai\nmonitors:\n{body}");
        watchpost_config::parse("test.yaml", &text).expect("a valid config")
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn cron_fire_times_are_the_configs_zone_and_include_now() {
        let config = monitors(
            "  - {name: daily, type: tcp, address: \"127.0.0.1:1\", schedule: \"0 0 9 * * * *\"}\n\
             \x20 - {name: five, type: tcp, address: \"127.0.0.1:1\", schedule: \"*/5 * * * *\"}\n",
        );
        let tz = config.timezone;
        let daily = &config.monitors[0];
        // 09:00 in Shanghai is 01:00 UTC.
        assert_eq!(
            latest_fire(daily, tz, at("2026-01-02T00:59:59.999Z")),
            at("2026-01-01T01:00:00Z")
        );
        assert_eq!(
            latest_fire(daily, tz, at("2026-01-02T01:00:00Z")),
            at("2026-01-02T01:00:00Z")
        );
        assert_eq!(
            latest_fire(daily, tz, at("2026-01-02T01:00:00.5Z")),
            at("2026-01-02T01:00:00Z")
        );
        assert_eq!(
            next_fire(daily, tz, at("2026-01-02T01:00:00Z")),
            Some(at("2026-01-03T01:00:00Z"))
        );
        let five = &config.monitors[1];
        assert_eq!(
            latest_fire(five, tz, at("2026-01-02T03:14:59Z")),
            at("2026-01-02T03:10:00Z")
        );
        assert_eq!(
            latest_fire(five, tz, at("2026-01-02T03:15:00Z")),
            at("2026-01-02T03:15:00Z")
        );
    }

    #[test]
    fn every_fires_on_multiples_of_its_period_shifted_when_spread() {
        let config = monitors(
            "  - {name: fixed, type: tcp, address: \"127.0.0.1:1\", schedule: \"@every 3s\"}\n\
             \x20 - {name: spread, type: tcp, address: \"127.0.0.1:1\", every: 1m}\n",
        );
        let tz = config.timezone;
        let fixed = &config.monitors[0];
        assert_eq!(
            latest_fire(fixed, tz, at("1970-01-01T00:00:07Z")),
            at("1970-01-01T00:00:06Z")
        );
        assert_eq!(
            latest_fire(fixed, tz, at("2026-01-01T00:00:03Z")),
            at("2026-01-01T00:00:03Z")
        );
        assert_eq!(
            next_fire(fixed, tz, at("2026-01-01T00:00:03Z")),
            Some(at("2026-01-01T00:00:06Z"))
        );

        let spread = &config.monitors[1];
        let offset =
            watchpost_scheduler::spread_offset("spread", std::time::Duration::from_secs(60));
        let offset = TimeDelta::from_std(offset).unwrap();
        let base = at("2026-01-01T00:00:00Z");
        assert_eq!(latest_fire(spread, tz, base + offset), base + offset);
        assert_eq!(
            latest_fire(spread, tz, base + offset - TimeDelta::milliseconds(1)),
            base + offset - TimeDelta::seconds(60)
        );
        assert_eq!(
            next_fire(spread, tz, base + offset),
            Some(base + offset + TimeDelta::seconds(60))
        );
    }

    #[test]
    fn a_schedule_that_has_not_fired_yet_counts_as_fired_at_the_epoch() {
        let config = monitors(
            "  - {name: later, type: tcp, address: \"127.0.0.1:1\", schedule: \"0 0 0 1 1 * 2090\"}\n",
        );
        let later = &config.monitors[0];
        assert_eq!(
            latest_fire(later, config.timezone, at("2026-01-01T00:00:00Z")),
            NEVER_FIRED
        );
    }
}
