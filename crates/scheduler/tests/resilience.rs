//! The scheduler when time and runners misbehave, on tokio's paused clock: wall-clock steps in
//! both directions, NTP-sized slews, a stalled process, panicking runners, the heartbeat,
//! deadlines, and schedules, timeouts and wall times at the edge of what can be represented.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{Instant, sleep};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use watchpost_cron::{Schedule, Tz};
use watchpost_scheduler::{BoxFuture, Clock, Job, ManualClock, Run, Scheduler, Stats, TokioClock};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
}

fn job(name: &str, expr: &str) -> Job {
    Job {
        name: name.into(),
        schedule: Schedule::parse(expr).unwrap(),
        tz: Tz::UTC,
        spread: false,
        timeout: Duration::from_secs(30),
    }
}

/// Each run, with the tokio instant it started at.
type Log = Arc<Mutex<Vec<(Run, Instant)>>>;

fn recorder(log: Log) -> impl Fn(Run) -> BoxFuture + Send + Sync + 'static {
    move |run: Run| {
        let log = log.clone();
        Box::pin(async move {
            log.lock().unwrap().push((run, Instant::now()));
        }) as BoxFuture
    }
}

/// Seconds from `from` to each run's tick.
fn ticks(log: &Log, from: DateTime<Utc>) -> Vec<f64> {
    log.lock()
        .unwrap()
        .iter()
        .map(|(r, _)| (r.scheduled_at - from).num_milliseconds() as f64 / 1000.0)
        .collect()
}

fn count(n: &std::sync::atomic::AtomicU64) -> u64 {
    n.load(Ordering::Relaxed)
}

/// Collects the level and message of every event logged while it is the default subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(Level, String)>>>);

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.clone())
    }

    fn messages(&self, level: Level) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test(start_paused = true)]
async fn after_a_two_hour_step_back_ticks_go_on_at_their_cadence() {
    let logs = Captured::default();
    let _guard = logs.install();
    let log: Log = Arc::default();
    let base = Instant::now();
    let clock = ManualClock::starting_at(start());
    let scheduler = Scheduler::new(vec![job("api", "@every 2s")], 4, clock.clone());
    let stats = scheduler.stats();
    let stop = async {
        sleep(Duration::from_millis(5500)).await;
        clock.step(-TimeDelta::hours(2));
        sleep(Duration::from_secs(6)).await; // until 11.5 s of real time
    };
    scheduler.run(recorder(log.clone()), stop).await;

    // Before: 2 and 4. The step (at 5.5 s) is seen at the loop's next wake (6 s, wall time
    // −7194 s) and the next tick is the first after it on the 2 s grid: −7192 s, 2.5 s of real
    // time after the step, then every 2 s. Nothing waits two hours.
    assert_eq!(ticks(&log, start()), [2.0, 4.0, -7192.0, -7190.0]);
    let real: Vec<Duration> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| *at - base)
        .collect();
    assert_eq!(
        real,
        [2000, 4000, 8000, 10_000].map(Duration::from_millis),
        "real time between runs stays 2 s (4 s across the step)"
    );
    for (run, _) in log.lock().unwrap().iter() {
        assert_eq!(run.started_at, run.scheduled_at, "on time in the new time");
    }
    assert_eq!(count(&stats.clock_steps), 1);
    assert_eq!(count(&stats.missed), 0);
    let warnings = logs.messages(Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "the wall clock stepped back by 2h 0m 0s; schedules recomputed from the new time"
        ),
        "{}",
        warnings[0]
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_25_hour_step_forward_each_job_runs_once_then_resumes() {
    let logs = Captured::default();
    let _guard = logs.install();
    let log: Log = Arc::default();
    let clock = ManualClock::starting_at(start());
    let scheduler = Scheduler::new(vec![job("api", "@every 2s")], 4, clock.clone());
    let stats = scheduler.stats();
    let stop = async {
        sleep(Duration::from_millis(5500)).await;
        clock.step(TimeDelta::hours(25));
        sleep(Duration::from_secs(6)).await;
    };
    scheduler.run(recorder(log.clone()), stop).await;

    let step = 25.0 * 3600.0;
    // The step is seen at 6 s (wall 6 s + 25 h): the pending tick (6 s) runs once right away,
    // the ticks from 8 s to 25 h + 6 s are missed, and the job resumes at 25 h + 8 s.
    assert_eq!(
        ticks(&log, start()),
        [2.0, 4.0, 6.0, step + 8.0, step + 10.0]
    );
    assert_eq!(count(&stats.missed), (90_008 - 8) / 2, "8 s ..= 25 h + 6 s");
    assert_eq!(count(&stats.clock_steps), 1);
    assert_eq!(count(&stats.runs), 5, "no burst of missed ticks");
    let runs = log.lock().unwrap();
    let (catch_up, dispatched) = &runs[2];
    assert_eq!(catch_up.lateness(), Duration::from_secs(90_000));
    assert_eq!(
        catch_up.deadline - *dispatched,
        Duration::from_millis(1800),
        "the catch-up run gets its whole budget, counted from its dispatch"
    );
    let warnings = logs.messages(Level::WARN);
    assert!(
        warnings[0].starts_with("the wall clock stepped forward by 25h 0m 0s;"),
        "{warnings:?}"
    );
}

/// `0 0 3 * * * *` in Asia/Shanghai: 03:00 +08:00 is 19:00 UTC the day before.
fn daily_at_three_in_shanghai() -> Job {
    let mut daily = job("certs", "0 0 3 * * * *");
    daily.tz = "Asia/Shanghai".parse().unwrap();
    daily
}

#[tokio::test(start_paused = true)]
async fn a_daily_cron_job_after_a_forward_step_fires_at_the_next_wall_time() {
    let from = Utc.with_ymd_and_hms(2026, 11, 24, 17, 0, 0).unwrap(); // 01:00 in Shanghai
    let log: Log = Arc::default();
    let clock = ManualClock::starting_at(from);
    let scheduler = Scheduler::new(vec![daily_at_three_in_shanghai()], 4, clock.clone());
    let stats = scheduler.stats();
    let stop = async {
        sleep(Duration::from_millis(10_500)).await;
        clock.step(TimeDelta::hours(25));
        sleep(Duration::from_secs(3600)).await;
    };
    scheduler.run(recorder(log.clone()), stop).await;

    let runs = log.lock().unwrap();
    let seen: Vec<(DateTime<Utc>, DateTime<Utc>)> = runs
        .iter()
        .map(|(r, _)| (r.scheduled_at, r.started_at))
        .collect();
    let first = Utc.with_ymd_and_hms(2026, 11, 24, 19, 0, 0).unwrap();
    let next = Utc.with_ymd_and_hms(2026, 11, 25, 19, 0, 0).unwrap();
    assert_eq!(
        seen,
        [
            // The 03:00 skipped by the step runs once, when the step is seen (at 11 s).
            (first, from + TimeDelta::hours(25) + TimeDelta::seconds(11)),
            // The next day's 03:00 fires at 03:00 on the new clock, not late, not early.
            (next, next),
        ]
    );
    assert_eq!(count(&stats.missed), 0);
    assert_eq!(count(&stats.clock_steps), 1);
}

#[tokio::test(start_paused = true)]
async fn a_daily_cron_job_after_a_backward_step_fires_at_the_next_wall_time() {
    let from = Utc.with_ymd_and_hms(2026, 11, 24, 18, 30, 0).unwrap(); // 02:30 in Shanghai
    let log: Log = Arc::default();
    let clock = ManualClock::starting_at(from);
    let scheduler = Scheduler::new(vec![daily_at_three_in_shanghai()], 4, clock.clone());
    let stop = async {
        sleep(Duration::from_millis(10_500)).await;
        clock.step(-TimeDelta::hours(24));
        sleep(Duration::from_secs(1800)).await;
    };
    scheduler.run(recorder(log.clone()), stop).await;

    // Without recomputing, the pending 2026-11-24 19:00 would be 24.5 h away; the job fires at
    // the next 03:00 of the new time instead, half an hour after the step.
    let runs = log.lock().unwrap();
    let seen: Vec<(DateTime<Utc>, DateTime<Utc>)> = runs
        .iter()
        .map(|(r, _)| (r.scheduled_at, r.started_at))
        .collect();
    let three = Utc.with_ymd_and_hms(2026, 11, 23, 19, 0, 0).unwrap();
    assert_eq!(seen, [(three, three)]);
}

#[tokio::test(start_paused = true)]
async fn slews_below_the_tolerance_keep_the_schedule() {
    let log: Log = Arc::default();
    let clock = ManualClock::starting_at(start());
    let scheduler = Scheduler::new(vec![job("api", "@every 2s")], 4, clock.clone());
    let stats = scheduler.stats();
    let stop = async {
        sleep(Duration::from_millis(3200)).await;
        clock.step(TimeDelta::milliseconds(600));
        sleep(Duration::from_secs(2)).await;
        clock.step(TimeDelta::milliseconds(-600));
        sleep(Duration::from_millis(3800)).await; // until 9 s
    };
    scheduler.run(recorder(log.clone()), stop).await;

    // The ticks stay on their grid; the one after the +0.6 s slew is seen 0.6 s late.
    assert_eq!(ticks(&log, start()), [2.0, 4.0, 6.0, 8.0]);
    let late: Vec<u128> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(r, _)| r.lateness().as_millis())
        .collect();
    assert_eq!(late, [0, 600, 0, 0]);
    assert_eq!(count(&stats.clock_steps), 0, "a slew is not a step");
    assert_eq!(count(&stats.missed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_process_counts_missed_ticks_and_is_no_clock_step() {
    let log: Log = Arc::default();
    // At 2.5 s the whole runtime stalls for 35 s: wall and monotonic time move on together, as
    // when the process is stopped (SIGSTOP) or starved.
    tokio::spawn(async {
        sleep(Duration::from_millis(2500)).await;
        tokio::time::advance(Duration::from_secs(35)).await;
    });
    let scheduler = Scheduler::new(
        vec![job("api", "@every 2s")],
        4,
        TokioClock::starting_at(start()),
    );
    let stats = scheduler.stats();
    scheduler
        .run(recorder(log.clone()), sleep(Duration::from_secs(41)))
        .await;

    // 4 runs late (the loop wakes at 37.5 s), 6 ..= 36 are missed, the schedule resumes at 38.
    assert_eq!(ticks(&log, start()), [2.0, 4.0, 38.0, 40.0]);
    assert_eq!(count(&stats.missed), 16);
    assert_eq!(count(&stats.clock_steps), 0);
    let runs = log.lock().unwrap();
    let (late, at) = &runs[1];
    assert_eq!(late.lateness(), Duration::from_millis(33_500));
    assert_eq!(
        late.deadline - *at,
        Duration::from_millis(1800),
        "a catch-up run gets its budget from its dispatch"
    );
}

#[tokio::test(start_paused = true)]
async fn a_runner_that_panics_runs_again_on_the_next_tick() {
    let logs = Captured::default();
    let _guard = logs.install();
    let log: Log = Arc::default();
    let first = [
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
    ];
    let (l, f) = (log.clone(), first.clone());
    let runner = move |run: Run| {
        l.lock().unwrap().push((run.clone(), Instant::now()));
        // Job 1 panics while creating its future, job 0 inside it; each on its first run only.
        if run.job == 1 && f[1].swap(false, Ordering::SeqCst) {
            panic!("boom while starting");
        }
        let f0 = f[0].clone();
        Box::pin(async move {
            tokio::task::yield_now().await;
            if run.job == 0 && f0.swap(false, Ordering::SeqCst) {
                panic!("boom in the check");
            }
        }) as BoxFuture
    };
    let jobs = vec![
        job("panics-inside", "*/2 * * * * * *"),
        job("panics-at-start", "*/2 * * * * * *"),
    ];
    let scheduler = Scheduler::new(jobs, 4, TokioClock::starting_at(start()));
    let stats = scheduler.stats();
    scheduler.run(runner, sleep(Duration::from_secs(7))).await;

    let seen: Vec<(usize, f64)> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(r, _)| (r.job, (r.scheduled_at - start()).num_seconds() as f64))
        .collect();
    assert_eq!(
        seen,
        [(0, 2.0), (1, 2.0), (0, 4.0), (1, 4.0), (0, 6.0), (1, 6.0)],
        "both jobs run on every tick after their panic"
    );
    assert_eq!(count(&stats.panics), 2);
    assert_eq!(count(&stats.overruns), 0, "the running mark was cleared");
    let errors = logs.messages(Level::ERROR);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"panics-inside\"") && e.contains("boom in the check")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"panics-at-start\"") && e.contains("boom while starting")),
        "{errors:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_shows_a_live_loop_and_a_stopped_one() {
    // No jobs at all, and one that never fires: the loop still wakes every second.
    let scheduler = Scheduler::new(
        vec![job("past", "0 0 0 1 1 * 2020")],
        4,
        TokioClock::starting_at(start()),
    );
    let stats: Arc<Stats> = scheduler.stats();
    let watcher = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut oldest = Duration::ZERO;
            for _ in 0..40 {
                sleep(Duration::from_millis(230)).await;
                oldest = oldest.max(stats.since_last_loop());
            }
            oldest
        })
    };
    scheduler
        .run(recorder(Log::default()), sleep(Duration::from_secs(10)))
        .await;
    let oldest = watcher.await.unwrap();
    assert!(oldest <= Duration::from_secs(1), "oldest beat {oldest:?}");
    sleep(Duration::from_secs(5)).await;
    assert!(
        stats.since_last_loop() >= Duration::from_secs(5),
        "a stopped loop stops beating"
    );
}

#[tokio::test(start_paused = true)]
async fn an_every_2s_job_with_a_10s_timeout_gets_1_8s_from_its_tick() {
    let log: Log = Arc::default();
    let mut api = job("api", "@every 2s");
    api.timeout = Duration::from_secs(10);
    let base = Instant::now();
    let scheduler = Scheduler::new(vec![api], 4, TokioClock::starting_at(start()));
    let remaining = Arc::new(Mutex::new(Vec::new()));
    let (l, rem) = (log.clone(), remaining.clone());
    let runner = move |run: Run| {
        rem.lock().unwrap().push(run.remaining());
        recorder(l.clone())(run)
    };
    scheduler.run(runner, sleep(Duration::from_secs(7))).await;
    let runs = log.lock().unwrap();
    assert_eq!(runs.len(), 3);
    for (run, _) in runs.iter() {
        let tick = base + (run.scheduled_at - start()).to_std().unwrap();
        assert_eq!(run.deadline - tick, Duration::from_millis(1800));
    }
    assert_eq!(
        *remaining.lock().unwrap(),
        [Duration::from_millis(1800); 3],
        "remaining() at the start of each run"
    );
}

#[tokio::test(start_paused = true)]
async fn huge_periods_timeouts_and_wall_times_never_stop_the_loop() {
    let logs = Captured::default();
    let _guard = logs.install();
    let log: Log = Arc::default();
    // The longest period a config can hold (3650d, `watchpost_units::MAX_DURATION`).
    let mut jobs = vec![
        job("decade", "@every 3650d"),
        job("past", "0 0 0 1 1 * 2020"),
        job("fast", "@every 2s"),
        job("cron", "*/2 * * * * * *"),
    ];
    for j in &mut jobs {
        j.timeout = Duration::MAX;
    }
    jobs[0].spread = true;
    let clock = ManualClock::starting_at(start());
    let scheduler = Scheduler::new(jobs, usize::MAX, clock.clone());
    let stats = scheduler.stats();
    // Past every cron year (2099) and nanosecond timestamp (2262), then back.
    let centuries = TimeDelta::days(250 * 365);
    let stop = async {
        sleep(Duration::from_millis(4500)).await;
        clock.step(centuries);
        sleep(Duration::from_secs(3)).await;
        assert!(stats.since_last_loop() <= Duration::from_secs(1));
        clock.step(-centuries);
        sleep(Duration::from_secs(4)).await; // until 11.5 s
    };
    scheduler.run(recorder(log.clone()), stop).await;

    let by_job = |j: usize| -> Vec<i64> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(r, _)| r.job == j)
            .map(|(r, _)| (r.scheduled_at - start()).num_seconds())
            .collect()
    };
    // The step forward (seen at 5 s) runs each pending tick once (6 s); out there neither
    // `@every` (nanosecond timestamps end in 2262) nor cron (searched up to 2099) has a fire
    // time; back home (seen at 8 s) both run on their grid again.
    assert_eq!(by_job(2), [2, 4, 6, 10]);
    assert_eq!(by_job(3), [2, 4, 6, 10]);
    assert_eq!(by_job(0).len(), 1, "the decade job's pending tick, once");
    assert!(by_job(1).is_empty());
    assert_eq!(count(&stats.clock_steps), 2);
    for (run, _) in log.lock().unwrap().iter().filter(|(r, _)| r.job >= 2) {
        assert!(
            run.deadline - run.deadline.min(Instant::now()) <= Duration::from_millis(1800)
                && run.remaining() <= Duration::from_millis(1800),
            "90% of the 2 s gap, not the endless timeout"
        );
    }
    // Each job that dropped out is reported once per time it dropped out, with its name.
    let warnings = logs.messages(Level::WARN);
    let about = |name: &str| {
        warnings
            .iter()
            .filter(|w| w.starts_with(&format!("{name:?}: no fire time")))
            .count()
    };
    assert_eq!(about("past"), 1, "{warnings:?}");
    assert_eq!(about("fast"), 1, "{warnings:?}");
    assert_eq!(about("decade"), 1, "{warnings:?}");
    assert_eq!(about("cron"), 1, "{warnings:?}");
}

#[test]
fn a_manual_clock_saturates_instead_of_overflowing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let clock = ManualClock::starting_at(start());
        clock.step(TimeDelta::MAX);
        clock.step(TimeDelta::MAX);
        assert_eq!(clock.offset(), TimeDelta::nanoseconds(i64::MAX));
        assert!(clock.wall() > start() + TimeDelta::days(290 * 365));
        let end = ManualClock::starting_at(DateTime::<Utc>::MAX_UTC);
        end.step(TimeDelta::hours(1));
        assert_eq!(end.wall(), DateTime::<Utc>::MAX_UTC);
        let dawn = ManualClock::starting_at(DateTime::<Utc>::MIN_UTC);
        dawn.step(-TimeDelta::hours(1));
        assert_eq!(dawn.wall(), DateTime::<Utc>::MIN_UTC);
    });
}

#[tokio::test(start_paused = true)]
async fn a_clock_at_the_ends_of_time_does_not_panic() {
    for from in [
        DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(3),
        DateTime::<Utc>::MIN_UTC,
    ] {
        let log: Log = Arc::default();
        let mut jobs = vec![job("fast", "@every 2s"), job("cron", "* * * * * * *")];
        jobs[0].spread = true;
        let scheduler = Scheduler::new(jobs, 4, TokioClock::starting_at(from));
        let stats = scheduler.stats();
        scheduler
            .run(recorder(log.clone()), sleep(Duration::from_secs(5)))
            .await;
        assert!(
            log.lock().unwrap().is_empty(),
            "no fire time out there ({from})"
        );
        assert!(stats.since_last_loop() <= Duration::from_secs(1));
    }
}
