//! The scheduler: many jobs, each with a [`Schedule`], driven from **one** timer heap (not a
//! sleeping task per monitor).
//!
//! - Each tick becomes a [`Run`] with `scheduled_at` (the fire time) and `started_at` (when the
//!   runner actually got it, after waiting for a concurrency permit), so lateness is measured,
//!   not assumed.
//! - Concurrency is bounded by a semaphore; the timer loop never waits for it.
//! - A job never overlaps itself: a tick that arrives while the job's previous run is still
//!   going is skipped and counted as an **overrun**.
//! - The next tick is computed from the previous *scheduled* time, so runs don't drift; if the
//!   process fell behind by a whole period (suspend, clock jump), the ticks in between are
//!   counted as **missed** and the schedule resumes from now.
//! - `@every` schedules can be **spread**: a stable per-job offset inside the period (from a
//!   hash of the job's name), so 10,000 monitors on `@every 10s` don't fire in the same
//!   millisecond, and the same monitor fires at the same phase after every restart.
//! - A run's deadline is shorter than its period (at most 90% of the gap to the next tick).
//! - The clock is injectable ([`Clock`]): [`SystemClock`] for real use, [`TokioClock`] for
//!   tests on tokio's paused time.

use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use watchpost_cron::{Schedule, Tz};

/// Wall-clock time for schedules, tokio time for sleeping.
pub trait Clock: Send + Sync + 'static {
    fn wall(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time that advances with tokio's clock from a fixed start: with `tokio::time::pause()`
/// tests control time completely.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_wall: DateTime<Utc>,
    base: Instant,
}

impl TokioClock {
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        TokioClock {
            base_wall: wall,
            base: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn wall(&self) -> DateTime<Utc> {
        self.base_wall + (Instant::now() - self.base)
    }
}

/// One scheduled job.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub schedule: Schedule,
    /// The zone cron fields are read in.
    pub tz: Tz,
    /// Spread an `@every` schedule by a stable offset inside its period.
    pub spread: bool,
    /// The run's own time limit; the deadline is also cut to 90% of the gap to the next tick.
    pub timeout: Duration,
}

/// One tick handed to the runner.
#[derive(Debug, Clone)]
pub struct Run {
    /// Index of the job in the list given to [`Scheduler::new`].
    pub job: usize,
    pub scheduled_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    /// The run must finish by then (tokio time).
    pub deadline: Instant,
}

impl Run {
    /// started_at − scheduled_at.
    pub fn lateness(&self) -> Duration {
        (self.started_at - self.scheduled_at)
            .to_std()
            .unwrap_or_default()
    }
}

/// Counters, readable while the scheduler runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Runs started.
    pub runs: AtomicU64,
    /// Ticks skipped because the job's previous run was still going.
    pub overruns: AtomicU64,
    /// Ticks that passed while the scheduler itself was behind by more than a period.
    pub missed: AtomicU64,
}

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What runs a tick. Its future must finish by `run.deadline` (the scheduler does not cancel
/// it; probes enforce their own deadlines).
pub trait Runner: Send + Sync + 'static {
    fn run(&self, run: Run) -> BoxFuture;
}

impl<F> Runner for F
where
    F: Fn(Run) -> BoxFuture + Send + Sync + 'static,
{
    fn run(&self, run: Run) -> BoxFuture {
        self(run)
    }
}

/// A stable offset in `[0, period)` for `name` (FNV-1a: the same on every run and build).
pub fn spread_offset(name: &str, period: Duration) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let ms = period.as_millis().max(1) as u64;
    Duration::from_millis(hash % ms)
}

pub struct Scheduler<C: Clock> {
    jobs: Vec<Job>,
    offsets: Vec<Duration>,
    clock: Arc<C>,
    permits: Arc<Semaphore>,
    stats: Arc<Stats>,
}

impl<C: Clock> Scheduler<C> {
    pub fn new(jobs: Vec<Job>, concurrency: usize, clock: C) -> Self {
        let offsets = jobs
            .iter()
            .map(|j| match (j.spread, j.schedule.every()) {
                (true, Some(period)) => spread_offset(&j.name, period),
                _ => Duration::ZERO,
            })
            .collect();
        Scheduler {
            jobs,
            offsets,
            clock: Arc::new(clock),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            stats: Arc::new(Stats::default()),
        }
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// The job's first fire time strictly after `t`.
    fn next_fire(&self, i: usize, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let job = &self.jobs[i];
        let offset = chrono::Duration::from_std(self.offsets[i]).ok()?;
        let local = (t - offset).with_timezone(&job.tz);
        job.schedule
            .next_after(&local)
            .map(|n| n.with_timezone(&Utc) + offset)
    }

    /// Run until `shutdown` resolves; then wait for runs in flight and return.
    pub async fn run<R: Runner>(self, runner: R, shutdown: impl Future<Output = ()>) {
        let runner = Arc::new(runner);
        let running: Arc<Vec<AtomicBool>> = Arc::new(
            (0..self.jobs.len())
                .map(|_| AtomicBool::new(false))
                .collect(),
        );
        let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = BinaryHeap::new();
        let now = self.clock.wall();
        for i in 0..self.jobs.len() {
            if let Some(t) = self.next_fire(i, now) {
                heap.push(Reverse((t, i)));
            }
        }
        let mut in_flight = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let Some(Reverse((due, _))) = heap.peek().copied() else {
                // Nothing will ever fire again: wait for shutdown only.
                (&mut shutdown).await;
                break;
            };
            let wait = (due - self.clock.wall()).to_std().unwrap_or_default();
            if !wait.is_zero() {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(wait) => {}
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                }
                if self.clock.wall() < due {
                    continue; // woke early (a run finished, or the clock moved back)
                }
            }
            let now = self.clock.wall();
            while let Some(Reverse((t, i))) = heap.peek().copied() {
                if t > now {
                    break;
                }
                heap.pop();
                self.dispatch(i, t, &runner, &running, &mut in_flight);
                let mut next = self.next_fire(i, t);
                // Fell behind by more than a period: count the ticks that passed, resume now.
                while let Some(n) = next.filter(|n| *n <= now) {
                    self.stats.missed.fetch_add(1, Ordering::Relaxed);
                    next = self.next_fire(i, n);
                }
                if let Some(n) = next {
                    heap.push(Reverse((n, i)));
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    fn dispatch<R: Runner>(
        &self,
        i: usize,
        scheduled_at: DateTime<Utc>,
        runner: &Arc<R>,
        running: &Arc<Vec<AtomicBool>>,
        in_flight: &mut tokio::task::JoinSet<()>,
    ) {
        if running[i].swap(true, Ordering::AcqRel) {
            self.stats.overruns.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let gap = self
            .next_fire(i, scheduled_at)
            .and_then(|n| (n - scheduled_at).to_std().ok())
            .unwrap_or(Duration::MAX);
        let limit = self.jobs[i].timeout.min(gap.mul_f64(0.9));
        let (runner, running, permits, clock, stats) = (
            runner.clone(),
            running.clone(),
            self.permits.clone(),
            self.clock.clone(),
            self.stats.clone(),
        );
        in_flight.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                running[i].store(false, Ordering::Release);
                return;
            };
            stats.runs.fetch_add(1, Ordering::Relaxed);
            let started_at = clock.wall();
            let late = (started_at - scheduled_at).to_std().unwrap_or_default();
            let run = Run {
                job: i,
                scheduled_at,
                started_at,
                // Counted from the tick, not the start: a late start shortens the run.
                deadline: Instant::now() + limit.saturating_sub(late),
            };
            runner.run(run).await;
            running[i].store(false, Ordering::Release);
        });
    }
}
