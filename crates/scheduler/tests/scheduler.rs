//! The scheduler on tokio's paused clock: exact fire times, no overlap, overruns, spread,
//! wall-clock steps, panics, the heartbeat and out-of-range input.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watchpost_cron::{Schedule, Tz};
use watchpost_scheduler::{BoxFuture, Clock, Job, Run, Scheduler, TokioClock, spread_offset};

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

type Log = Arc<Mutex<Vec<Run>>>;

/// A runner that logs each run and then sleeps `busy`.
fn recorder(log: Log, busy: Duration) -> impl Fn(Run) -> BoxFuture + Send + Sync + 'static {
    move |run: Run| {
        let log = log.clone();
        Box::pin(async move {
            log.lock().unwrap().push(run);
            tokio::time::sleep(busy).await;
        }) as BoxFuture
    }
}

fn secs(t: DateTime<Utc>) -> f64 {
    (t - start()).num_milliseconds() as f64 / 1000.0
}

#[tokio::test(start_paused = true)]
async fn fires_in_order_at_the_exact_seconds() {
    let log: Log = Arc::default();
    let jobs = vec![job("a", "*/2 * * * * * *"), job("b", "*/3 * * * * * *")];
    let scheduler = Scheduler::new(jobs, 8, TokioClock::starting_at(start()));
    let stats = scheduler.stats();
    scheduler
        .run(
            recorder(log.clone(), Duration::ZERO),
            tokio::time::sleep(Duration::from_millis(6500)),
        )
        .await;
    let runs = log.lock().unwrap();
    let seen: Vec<(usize, f64)> = runs.iter().map(|r| (r.job, secs(r.scheduled_at))).collect();
    assert_eq!(
        seen,
        [(0, 2.0), (1, 3.0), (0, 4.0), (0, 6.0), (1, 6.0)],
        "a every 2 s, b every 3 s, ties in job order"
    );
    for r in runs.iter() {
        assert_eq!(
            r.started_at, r.scheduled_at,
            "no lateness on a paused clock"
        );
    }
    assert_eq!(stats.runs.load(Ordering::Relaxed), 5);
    assert_eq!(stats.overruns.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_job_never_overlaps_itself_and_overruns_are_counted() {
    let log: Log = Arc::default();
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (a, p, l) = (active.clone(), peak.clone(), log.clone());
    let runner = move |run: Run| {
        let (a, p, l) = (a.clone(), p.clone(), l.clone());
        Box::pin(async move {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            l.lock().unwrap().push(run);
            tokio::time::sleep(Duration::from_millis(2500)).await;
            a.fetch_sub(1, Ordering::SeqCst);
        }) as BoxFuture
    };
    let scheduler = Scheduler::new(
        vec![job("slow", "* * * * * * *")],
        8,
        TokioClock::starting_at(start()),
    );
    let stats = scheduler.stats();
    scheduler
        .run(runner, tokio::time::sleep(Duration::from_millis(10_500)))
        .await;
    let started: Vec<f64> = log
        .lock()
        .unwrap()
        .iter()
        .map(|r| secs(r.scheduled_at))
        .collect();
    // Busy 2.5 s each: runs at 1, 4, 7, 10; the ticks at 2, 3, 5, 6, 8, 9 are overruns.
    assert_eq!(started, [1.0, 4.0, 7.0, 10.0]);
    assert_eq!(stats.overruns.load(Ordering::Relaxed), 6);
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "never two runs of one job at once"
    );
    assert_eq!(
        active.load(Ordering::SeqCst),
        0,
        "in-flight runs finished before return"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_and_queueing_shows_as_lateness() {
    let log: Log = Arc::default();
    let jobs: Vec<Job> = (0..6)
        .map(|i| job(&format!("j{i}"), "*/5 * * * * * *"))
        .collect();
    let scheduler = Scheduler::new(jobs, 2, TokioClock::starting_at(start()));
    scheduler
        .run(
            recorder(log.clone(), Duration::from_millis(100)),
            tokio::time::sleep(Duration::from_millis(5900)),
        )
        .await;
    let runs = log.lock().unwrap();
    assert_eq!(runs.len(), 6);
    let mut late: Vec<u128> = runs.iter().map(|r| r.lateness().as_millis()).collect();
    late.sort();
    // Two at a time, 100 ms each: started at +0, +0, +100, +100, +200, +200.
    assert_eq!(late, [0, 0, 100, 100, 200, 200]);
}

#[tokio::test(start_paused = true)]
async fn every_schedules_are_spread_by_a_stable_offset() {
    let period = Duration::from_secs(10);
    let a = spread_offset("homepage", period);
    assert_eq!(a, spread_offset("homepage", period), "stable");
    assert!(a < period);
    // 10,000 monitors land on nearly all of the period's 1,000 slots of 10 ms, evenly.
    let mut slots = std::collections::HashMap::<u128, usize>::new();
    for i in 0..10_000 {
        let offset = spread_offset(&format!("monitor-{i}"), period).as_millis();
        assert_eq!(offset % 10, 0, "{offset} ms is not on a 10-ms slot");
        *slots.entry(offset).or_default() += 1;
    }
    assert!(slots.len() > 990, "only {} distinct slots", slots.len());
    let fullest = slots.values().max().copied().unwrap_or(0);
    assert!(fullest <= 30, "{fullest} monitors share one slot");
    // A short period is spread by the millisecond.
    assert!(spread_offset("homepage", Duration::from_millis(500)) < Duration::from_millis(500));

    let log: Log = Arc::default();
    let mut spread = job("homepage", "@every 10s");
    spread.spread = true;
    let scheduler = Scheduler::new(vec![spread], 4, TokioClock::starting_at(start()));
    scheduler
        .run(
            recorder(log.clone(), Duration::ZERO),
            tokio::time::sleep(Duration::from_secs(30)),
        )
        .await;
    let runs = log.lock().unwrap();
    assert_eq!(runs.len(), 3);
    for r in runs.iter() {
        let into_period = (r.scheduled_at.timestamp_millis() % 10_000) as u128;
        assert_eq!(
            into_period,
            a.as_millis(),
            "fires at its offset in every period"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_shorter_than_the_period() {
    let log: Log = Arc::default();
    let fast = job("fast", "*/2 * * * * * *"); // timeout 30 s, period 2 s
    let mut relaxed = job("relaxed", "0 * * * * * *");
    relaxed.timeout = Duration::from_secs(5);
    // On a paused clock tokio time and wall time move together from here.
    let base = tokio::time::Instant::now();
    let scheduler = Scheduler::new(vec![fast, relaxed], 4, TokioClock::starting_at(start()));
    scheduler
        .run(
            recorder(log.clone(), Duration::ZERO),
            tokio::time::sleep(Duration::from_secs(61)),
        )
        .await;
    let runs = log.lock().unwrap();
    assert_eq!(runs.len(), 31);
    for r in runs.iter() {
        let started = base + (r.started_at - start()).to_std().unwrap();
        let budget = r.deadline - started;
        match r.job {
            0 => assert_eq!(budget, Duration::from_millis(1800), "90% of the 2 s period"),
            _ => assert_eq!(
                budget,
                Duration::from_secs(5),
                "the timeout when it is shorter"
            ),
        }
    }
}

/// A clock that can jump forward, like a suspended laptop or a VM that was paused.
struct JumpClock {
    inner: TokioClock,
    jumped_secs: Arc<AtomicI64>,
}

impl Clock for JumpClock {
    fn wall(&self) -> DateTime<Utc> {
        self.inner.wall() + chrono::Duration::seconds(self.jumped_secs.load(Ordering::SeqCst))
    }
}

#[tokio::test(start_paused = true)]
async fn ticks_lost_to_a_clock_jump_are_counted_as_missed() {
    let log: Log = Arc::default();
    let jumped = Arc::new(AtomicI64::new(0));
    let clock = JumpClock {
        inner: TokioClock::starting_at(start()),
        jumped_secs: jumped.clone(),
    };
    let scheduler = Scheduler::new(vec![job("tick", "*/10 * * * * * *")], 4, clock);
    let stats = scheduler.stats();
    let jumper = jumped.clone();
    let stop = async move {
        tokio::time::sleep(Duration::from_secs(15)).await; // ran at 10
        jumper.store(35, Ordering::SeqCst); // the wall clock leaps 35 s ahead
        tokio::time::sleep(Duration::from_secs(11)).await;
    };
    scheduler
        .run(recorder(log.clone(), Duration::ZERO), stop)
        .await;
    let at: Vec<f64> = log
        .lock()
        .unwrap()
        .iter()
        .map(|r| secs(r.scheduled_at))
        .collect();
    assert_eq!(at[0], 10.0);
    // The jump is noticed when the 20 s timer fires (wall time 55 s): 20 still runs, late;
    // 30, 40 and 50 are counted as missed; the schedule resumes at 60.
    assert_eq!(at, [10.0, 20.0, 60.0]);
    assert_eq!(stats.missed.load(Ordering::Relaxed), 3);
    assert_eq!(
        stats.clock_steps.load(Ordering::Relaxed),
        1,
        "the jump is a wall-clock step"
    );
}
