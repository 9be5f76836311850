//! The scheduler: many jobs, each with a [`Schedule`], driven from **one** timer heap (not a
//! sleeping task per monitor).
//!
//! - Each tick becomes a [`Run`] with `scheduled_at` (the fire time) and `started_at` (when the
//!   runner actually got it, after waiting for a concurrency permit), so lateness is measured,
//!   not assumed.
//! - Concurrency is bounded by a semaphore; the timer loop never waits for it.
//! - A job never overlaps itself: a tick that arrives while the job's previous run is still
//!   going is skipped and counted as an **overrun**.
//! - The next tick is computed from the previous *scheduled* time, so runs don't drift.
//! - `@every` schedules can be **spread**: a stable per-job offset inside the period (from a
//!   hash of the job's name, in 10-ms slots), so 10,000 monitors on `@every 10s` don't fire in
//!   the same instant, and the same monitor fires at the same phase after every restart.
//! - Each run gets a **deadline** ([`Run::deadline`]): the job's timeout, cut to 90% of the gap
//!   to the job's next tick, counted from the scheduled tick. The scheduler never cancels a
//!   run; the [`Runner`] must bound its work by the deadline.
//!
//! # Two clocks
//!
//! Fire times are wall-clock times (cron fields mean 03:00 in a time zone), read from the
//! injected [`Clock`]. Waiting is done on tokio's **monotonic** clock
//! ([`tokio::time::Instant`]), never more than [`MAX_SLEEP`] (1 s) at a time. On every wake
//! the loop compares how far the wall clock moved with how far the monotonic clock moved since
//! the previous wake:
//!
//! - They agree (within [`STEP_TOLERANCE`], 1 s; NTP slewing stays far below it): nothing
//!   special. If the process itself fell behind (it was stopped, or starved; both clocks moved
//!   on together) the first overdue tick of a job still runs, late, the ticks after it that
//!   have also passed are counted as **missed**, and the schedule resumes at the job's first
//!   fire time after now.
//! - They disagree by more than the tolerance: the **wall clock stepped** (an operator or NTP
//!   set it, a VM was restored; on Linux a suspend also shows up as a forward step, because the
//!   monotonic clock stops while suspended). The step is logged with `tracing::warn!`, counted
//!   in [`Stats::clock_steps`], and every job's next fire time is recomputed from the new wall
//!   time. After a step **back**, ticks go on at their normal cadence from the new time (an
//!   `@every 2s` job runs again within 2 s; nothing waits for the old time to come round
//!   again). After a step **forward**, a job whose tick fell inside the skipped span runs once
//!   right away (a catch-up run), the other skipped ticks are counted as missed, and the job
//!   resumes at its first fire time after the new time: no burst of missed ticks.
//!
//! A catch-up run (one dispatched more than [`STEP_TOLERANCE`] after its tick, after a stall or
//! a forward step) gets its deadline counted from the moment it is dispatched, so it gets the
//! full budget rather than none.
//!
//! # Health and failures
//!
//! - The loop records every iteration in [`Stats`]; since it wakes at least every second,
//!   [`Stats::since_last_loop`] above a few seconds means the loop is stuck or gone.
//! - A runner that panics is caught: the panic is logged with `tracing::error!` naming the job,
//!   counted in [`Stats::panics`], the job's "running" mark is cleared (whatever happens to
//!   the run, even if it is cancelled) and the job runs again on its next tick.
//! - The loop itself does checked arithmetic throughout: huge periods, huge timeouts and wall
//!   times out of range never panic. A job whose next fire time can't be computed is not
//!   rescheduled (logged once with `tracing::warn!`); it is tried again after a wall-clock
//!   step.
//!
//! The clock is injectable ([`Clock`]): [`SystemClock`] for real use, [`TokioClock`] for tests
//! on tokio's paused time, and [`ManualClock`] for tests that step the wall clock.

use chrono::{DateTime, TimeDelta, Utc};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use watchpost_cron::{Schedule, Tz};

/// The longest the loop sleeps before looking at the clocks again.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

/// How far the wall clock may move differently from the monotonic clock between two wakes of
/// the loop before it counts as a step (schedules recomputed). Slewing by NTP stays far below.
pub const STEP_TOLERANCE: Duration = Duration::from_secs(1);

/// Used for a deadline that would not fit in an [`Instant`] (a timeout of centuries).
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);

/// Missed ticks of a cron schedule are counted one by one, up to this many per catch-up
/// (`@every` schedules are counted exactly, by division).
const MISSED_COUNT_CAP: u64 = 10_000;

/// Wall-clock time for schedules. The scheduler sleeps on tokio's monotonic clock and uses the
/// wall clock only to know which fire time is due.
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

/// `base + d`, pinned to the representable range instead of overflowing.
fn saturating_add(base: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    base.checked_add_signed(d)
        .unwrap_or(if d < TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// A std duration as a chrono one, saturating.
fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Wall time that advances with tokio's clock from a fixed start: with `tokio::time::pause()`
/// tests control time completely.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_wall: DateTime<Utc>,
    base: Instant,
}

impl TokioClock {
    /// A clock that reads `wall` now and moves on with tokio's clock.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        TokioClock {
            base_wall: wall,
            base: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn wall(&self) -> DateTime<Utc> {
        saturating_add(self.base_wall, delta(Instant::now() - self.base))
    }
}

/// A wall clock for tests that can be **stepped**, like a clock set by hand or by NTP: it reads
/// `start + (tokio time elapsed since creation) + offset`, and [`ManualClock::step`] shifts the
/// offset. Clones share the offset, so a test keeps one clone and gives another to the
/// scheduler. Out-of-range sums are pinned to chrono's minimum or maximum time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    base_wall: DateTime<Utc>,
    base: Instant,
    /// Nanoseconds added to the tokio-driven time.
    offset_ns: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock that reads `wall` now and moves on with tokio's clock.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        ManualClock {
            base_wall: wall,
            base: Instant::now(),
            offset_ns: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Step the wall clock by `by` (negative: back), for this clock and all its clones. Steps
    /// add up; the total saturates at about ±292 years.
    pub fn step(&self, by: TimeDelta) {
        let ns = by.num_nanoseconds().unwrap_or(if by < TimeDelta::zero() {
            i64::MIN
        } else {
            i64::MAX
        });
        let _ = self
            .offset_ns
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                Some(cur.saturating_add(ns))
            });
    }

    /// The sum of all steps so far.
    pub fn offset(&self) -> TimeDelta {
        TimeDelta::nanoseconds(self.offset_ns.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn wall(&self) -> DateTime<Utc> {
        let moved = saturating_add(self.base_wall, delta(Instant::now() - self.base));
        saturating_add(moved, self.offset())
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

impl Job {
    /// The job's spread offset ([`spread_offset`] of its period for a spread `every:`
    /// schedule, zero otherwise): every process computes the same, so a probe agent's ticks
    /// land on the server's slots.
    pub fn offset(&self) -> Duration {
        match (self.spread, self.schedule.every()) {
            (true, Some(period)) => spread_offset(&self.name, period),
            _ => Duration::ZERO,
        }
    }

    /// The job's first fire time strictly after `t` (spread included); `None` when there is
    /// none or it is out of range.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let offset = TimeDelta::from_std(self.offset()).ok()?;
        let local = t.checked_sub_signed(offset)?.with_timezone(&self.tz);
        let next = self
            .schedule
            .next_after(&local)?
            .with_timezone(&Utc)
            .checked_add_signed(offset)?;
        (next > t).then_some(next)
    }

    /// Whether `t` is one of the job's fire times.
    pub fn fires_at(&self, t: DateTime<Utc>) -> bool {
        t.checked_sub_signed(TimeDelta::nanoseconds(1))
            .and_then(|before| self.next_after(before))
            == Some(t)
    }

    /// The job's latest fire time at or before `t`, looking back at most `within`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>, within: Duration) -> Option<DateTime<Utc>> {
        let start = t.checked_sub_signed(TimeDelta::from_std(within).ok()?)?;
        let mut at = self.next_after(start)?;
        if at > t {
            return None;
        }
        while let Some(next) = self.next_after(at).filter(|n| *n <= t) {
            at = next;
        }
        Some(at)
    }
}

/// One tick handed to the runner.
#[derive(Debug, Clone)]
pub struct Run {
    /// Index of the job in the list given to [`Scheduler::new`].
    pub job: usize,
    /// The tick this run stands for (wall clock).
    pub scheduled_at: DateTime<Utc>,
    /// When the runner got it, after waiting for a concurrency permit (wall clock).
    pub started_at: DateTime<Utc>,
    /// The run must be finished by then (tokio's monotonic clock): the job's timeout, cut to
    /// 90% of the gap between this tick and the job's next one, counted from the tick (so
    /// waiting for a permit shortens it). A catch-up run, dispatched more than
    /// [`STEP_TOLERANCE`] after its tick, counts it from its dispatch instead. The scheduler
    /// does not cancel the run: the runner must bound all its work (connect, request, storing
    /// the result) by this instant, e.g. by passing [`Run::remaining`] as the check's timeout.
    pub deadline: Instant,
}

impl Run {
    /// started_at − scheduled_at (zero if the wall clock says the run started before its tick).
    pub fn lateness(&self) -> Duration {
        (self.started_at - self.scheduled_at)
            .to_std()
            .unwrap_or_default()
    }

    /// Time left until [`Run::deadline`], from now (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Counters and the loop's heartbeat, readable while the scheduler runs.
#[derive(Debug)]
pub struct Stats {
    /// Runs started.
    pub runs: AtomicU64,
    /// Ticks skipped because the job's previous run was still going.
    pub overruns: AtomicU64,
    /// Ticks that passed without a run: the scheduler fell behind by more than a period, or a
    /// forward wall-clock step skipped them. (Of a cron schedule at most 10,000 are counted per
    /// job and catch-up; `@every` schedules are counted exactly.)
    pub missed: AtomicU64,
    /// Wall-clock steps seen (the wall clock moved more than [`STEP_TOLERANCE`] differently
    /// from the monotonic clock between two wakes).
    pub clock_steps: AtomicU64,
    /// Runs whose runner panicked (caught and logged; the job runs again on its next tick).
    pub panics: AtomicU64,
    /// Reference point for `last_loop_ns`.
    base: Instant,
    /// When the loop last iterated, in nanoseconds since `base`.
    last_loop_ns: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            runs: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            clock_steps: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            base: Instant::now(),
            last_loop_ns: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// How long ago the scheduler loop last iterated (tokio's monotonic clock). The loop wakes
    /// at least every [`MAX_SLEEP`] (1 s), so more than a few seconds means it is stuck or has
    /// stopped (it also stops beating once [`Scheduler::run`] has returned). Before the loop's
    /// first iteration, this counts from when the `Stats` were created.
    pub fn since_last_loop(&self) -> Duration {
        let ns = self.last_loop_ns.load(Ordering::Acquire);
        let last = self
            .base
            .checked_add(Duration::from_nanos(ns))
            .unwrap_or(self.base);
        Instant::now().saturating_duration_since(last)
    }

    fn beat(&self, now: Instant) {
        let ns =
            u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        self.last_loop_ns.store(ns, Ordering::Release);
    }
}

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What runs a tick. Its future **must** finish by `run.deadline`: the scheduler does not
/// cancel it, and until it finishes every later tick of the same job is an overrun. A panic in
/// [`Runner::run`] or in its future is caught, logged and counted ([`Stats::panics`]).
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

/// The grain of spread offsets: jobs are spread over [`SPREAD_STEP`]-wide slots of their
/// period, so that the few that share a slot start on one wake-up of the process (with
/// 1,000 monitors every second, ten per wake-up instead of one per millisecond) while a
/// target still sees its checks spread across the period.
pub const SPREAD_STEP: Duration = Duration::from_millis(10);

/// A stable offset in `[0, period)` for `name` (FNV-1a: the same on every run and build), a
/// multiple of [`SPREAD_STEP`] (of a millisecond for periods shorter than 100 steps).
pub fn spread_offset(name: &str, period: Duration) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
    let step = SPREAD_STEP.as_millis() as u64;
    if ms < step * 100 {
        return Duration::from_millis(hash % ms);
    }
    Duration::from_millis(hash % (ms / step) * step)
}

/// `2h 0m 0s`, `3m 5s`, `1.500s`.
fn human(d: TimeDelta) -> String {
    let ms = d.num_milliseconds().unsigned_abs();
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h {}m {}s", s / 3600, s % 3600 / 60, s % 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{}.{:03}s", s, ms % 1000)
    }
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Clears a job's "running" mark when dropped: after the run finishes, panics or is
/// cancelled.
struct RunningMark {
    running: Arc<Vec<AtomicBool>>,
    job: usize,
}

impl Drop for RunningMark {
    fn drop(&mut self) {
        self.running[self.job].store(false, Ordering::Release);
    }
}

/// Polls a runner's future, turning a panic into `Err(payload)`.
struct CatchPanic(BoxFuture);

impl Future for CatchPanic {
    type Output = Result<(), Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

type Heap = BinaryHeap<Reverse<(DateTime<Utc>, usize)>>;

/// The loop's bookkeeping of which jobs are in the heap.
struct Plan {
    heap: Heap,
    /// Jobs with no next fire time (logged once, when they dropped out).
    unscheduled: Vec<bool>,
}

pub struct Scheduler<C: Clock> {
    jobs: Arc<Vec<Job>>,
    clock: Arc<C>,
    permits: Arc<Semaphore>,
    stats: Arc<Stats>,
}

impl<C: Clock> Scheduler<C> {
    /// `concurrency` is clamped to `1..=Semaphore::MAX_PERMITS`.
    pub fn new(jobs: Vec<Job>, concurrency: usize, clock: C) -> Self {
        Scheduler {
            jobs: Arc::new(jobs),
            clock: Arc::new(clock),
            permits: Arc::new(Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS))),
            stats: Arc::new(Stats::default()),
        }
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// The job's first fire time strictly after `t`; `None` when there is none or it is out of
    /// range.
    fn next_fire(&self, i: usize, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Strictly later, or the loop could spin on one instant.
        self.jobs[i].next_after(t)
    }

    /// Put job `i` in the heap at its first fire time after `t`, or mark it unscheduled
    /// (logged when it drops out, not again while it stays out).
    fn schedule_after(&self, plan: &mut Plan, i: usize, t: DateTime<Utc>) {
        match self.next_fire(i, t) {
            Some(n) => {
                plan.heap.push(Reverse((n, i)));
                plan.unscheduled[i] = false;
            }
            None => self.drop_out(plan, i, t),
        }
    }

    fn drop_out(&self, plan: &mut Plan, i: usize, t: DateTime<Utc>) {
        if !plan.unscheduled[i] {
            plan.unscheduled[i] = true;
            tracing::warn!(
                job = %self.jobs[i].name,
                "{:?}: no fire time after {} for {:?}: the job will not run (unless the wall clock steps back)",
                self.jobs[i].name,
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                self.jobs[i].schedule.source(),
            );
        }
    }

    /// After job `i` fired at `t`: queue its next tick. If that has passed too (the loop fell
    /// behind, or the wall clock stepped forward), count the passed ticks as missed and resume
    /// at the first fire time after `now`.
    fn reschedule(&self, plan: &mut Plan, i: usize, t: DateTime<Utc>, now: DateTime<Utc>) {
        let Some(next) = self.next_fire(i, t) else {
            self.drop_out(plan, i, t);
            return;
        };
        if next > now {
            plan.heap.push(Reverse((next, i)));
            return;
        }
        let resume = self.next_fire(i, now);
        let missed = self.count_ticks(i, next, now, resume);
        self.stats.missed.fetch_add(missed, Ordering::Relaxed);
        match resume {
            Some(n) => plan.heap.push(Reverse((n, i))),
            None => self.drop_out(plan, i, now),
        }
    }

    /// The number of job `i`'s ticks in `[first, now]`, given `resume`, its first tick after
    /// `now`.
    fn count_ticks(
        &self,
        i: usize,
        first: DateTime<Utc>,
        now: DateTime<Utc>,
        resume: Option<DateTime<Utc>>,
    ) -> u64 {
        if let (Some(period), Some(resume)) = (self.jobs[i].schedule.every(), resume) {
            // Both on the grid offset + k·period: the count is a division.
            let span = resume - first;
            let ns =
                i128::from(span.num_seconds()) * 1_000_000_000 + i128::from(span.subsec_nanos());
            let p = i128::try_from(period.as_nanos())
                .unwrap_or(i128::MAX)
                .max(1);
            return u64::try_from(ns / p).unwrap_or(u64::MAX);
        }
        let mut count = 0;
        let mut cursor = Some(first);
        while let Some(c) = cursor.filter(|c| *c <= now) {
            count += 1;
            if count >= MISSED_COUNT_CAP {
                break;
            }
            cursor = self.next_fire(i, c);
        }
        count
    }

    /// The wall clock stepped by `step` (wall movement minus monotonic movement): log it and
    /// recompute every job's next fire time from `now`. A job whose pending tick is now in the
    /// past (a forward step) keeps it, so it runs once right away.
    fn recover_from_step(&self, plan: &mut Plan, step: TimeDelta, now: DateTime<Utc>) {
        self.stats.clock_steps.fetch_add(1, Ordering::Relaxed);
        let direction = if step < TimeDelta::zero() {
            "back"
        } else {
            "forward"
        };
        tracing::warn!(
            step_ms = step.num_milliseconds(),
            "the wall clock stepped {direction} by {}; schedules recomputed from the new time ({})",
            human(step),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        let pending = std::mem::take(&mut plan.heap).into_vec();
        let mut queued = vec![false; self.jobs.len()];
        for Reverse((t, i)) in pending {
            queued[i] = true;
            if t <= now {
                plan.heap.push(Reverse((t, i)));
            } else {
                self.schedule_after(plan, i, now);
            }
        }
        // Jobs that had dropped out may have fire times again (after a step back).
        for (i, queued) in queued.into_iter().enumerate() {
            if !queued {
                self.schedule_after(plan, i, now);
            }
        }
    }

    /// The run's time budget: its timeout, cut to 90% of the gap to the tick after `t`.
    fn budget(&self, i: usize, t: DateTime<Utc>) -> Duration {
        let gap = self
            .next_fire(i, t)
            .and_then(|n| (n - t).to_std().ok())
            .unwrap_or(Duration::MAX);
        let ninety = gap.checked_mul(9).map_or(gap / 10 * 9, |g| g / 10);
        self.jobs[i].timeout.min(ninety)
    }

    /// Run until `shutdown` resolves; then wait for runs in flight and return.
    pub async fn run<R: Runner>(self, runner: R, shutdown: impl Future<Output = ()>) {
        let runner = Arc::new(runner);
        let running: Arc<Vec<AtomicBool>> = Arc::new(
            (0..self.jobs.len())
                .map(|_| AtomicBool::new(false))
                .collect(),
        );
        let mut plan = Plan {
            heap: BinaryHeap::with_capacity(self.jobs.len()),
            unscheduled: vec![false; self.jobs.len()],
        };
        let mut last_wall = self.clock.wall();
        let mut last_mono = Instant::now();
        for i in 0..self.jobs.len() {
            self.schedule_after(&mut plan, i, last_wall);
        }
        let mut in_flight = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let now_mono = Instant::now();
            let now_wall = self.clock.wall();
            self.stats.beat(now_mono);
            if let Some(step) = wall_step(last_wall, last_mono, now_wall, now_mono) {
                self.recover_from_step(&mut plan, step, now_wall);
            }
            (last_wall, last_mono) = (now_wall, now_mono);

            while let Some(Reverse((t, i))) = plan.heap.peek().copied() {
                if t > now_wall {
                    break;
                }
                plan.heap.pop();
                self.dispatch(i, t, now_wall, now_mono, &runner, &running, &mut in_flight);
                self.reschedule(&mut plan, i, t, now_wall);
            }

            let wait = plan
                .heap
                .peek()
                .and_then(|Reverse((due, _))| (*due - now_wall).to_std().ok())
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            let wake = now_mono.checked_add(wait).unwrap_or(now_mono);
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    self.reap(joined);
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        // Wait for the runs in flight, still beating: the loop is alive while it drains.
        loop {
            self.stats.beat(Instant::now());
            tokio::select! {
                joined = in_flight.join_next() => match joined {
                    Some(joined) => self.reap(joined),
                    None => break,
                },
                _ = tokio::time::sleep(MAX_SLEEP) => {}
            }
        }
    }

    /// A finished run task. Runner panics are caught inside the task; this catches the rest
    /// (a panic while dropping the runner's future).
    fn reap(&self, joined: Result<(), JoinError>) {
        if let Err(e) = joined
            && e.is_panic()
        {
            self.stats.panics.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "a run task panicked after its run: {}",
                panic_text(e.into_panic().as_ref())
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch<R: Runner>(
        &self,
        i: usize,
        scheduled_at: DateTime<Utc>,
        now_wall: DateTime<Utc>,
        now_mono: Instant,
        runner: &Arc<R>,
        running: &Arc<Vec<AtomicBool>>,
        in_flight: &mut JoinSet<()>,
    ) {
        if running[i].swap(true, Ordering::AcqRel) {
            self.stats.overruns.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mark = RunningMark {
            running: running.clone(),
            job: i,
        };
        // The tick on the monotonic clock: the deadline counts from it. A catch-up run (far
        // behind its tick) counts from now instead, or it would get no time at all.
        let behind = (now_wall - scheduled_at).to_std().unwrap_or_default();
        let tick = if behind <= STEP_TOLERANCE {
            now_mono.checked_sub(behind).unwrap_or(now_mono)
        } else {
            now_mono
        };
        let budget = self.budget(i, scheduled_at);
        let deadline = tick
            .checked_add(budget)
            .or_else(|| tick.checked_add(FAR_FUTURE))
            .unwrap_or(tick);
        let (runner, permits, clock, stats, jobs) = (
            runner.clone(),
            self.permits.clone(),
            self.clock.clone(),
            self.stats.clone(),
            self.jobs.clone(),
        );
        in_flight.spawn(async move {
            // Dropped however this task ends: the job is free to run again.
            let _mark = mark;
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            stats.runs.fetch_add(1, Ordering::Relaxed);
            let run = Run {
                job: i,
                scheduled_at,
                started_at: clock.wall(),
                deadline,
            };
            let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| runner.run(run))) {
                Ok(fut) => CatchPanic(fut).await,
                Err(payload) => Err(payload),
            };
            if let Err(payload) = outcome {
                stats.panics.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    job = %jobs[i].name,
                    "the run of {:?} (tick {}) panicked: {}; it runs again on its next tick",
                    jobs[i].name,
                    scheduled_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    panic_text(payload.as_ref()),
                );
            }
        });
    }
}

/// The wall clock's step between two wakes: how much further (positive) or less far
/// (negative) it moved than the monotonic clock, when that exceeds [`STEP_TOLERANCE`].
fn wall_step(
    last_wall: DateTime<Utc>,
    last_mono: Instant,
    now_wall: DateTime<Utc>,
    now_mono: Instant,
) -> Option<TimeDelta> {
    let wall = now_wall.signed_duration_since(last_wall);
    let mono = delta(now_mono.saturating_duration_since(last_mono));
    let step = wall.checked_sub(&mono).unwrap_or(TimeDelta::MIN);
    let tolerance = delta(STEP_TOLERANCE);
    (step > tolerance || step < -tolerance).then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_described_in_hours_minutes_and_seconds() {
        assert_eq!(human(TimeDelta::hours(-2)), "2h 0m 0s");
        assert_eq!(human(TimeDelta::hours(25)), "25h 0m 0s");
        assert_eq!(human(TimeDelta::seconds(185)), "3m 5s");
        assert_eq!(human(TimeDelta::milliseconds(1500)), "1.500s");
    }

    #[test]
    fn a_huge_period_gives_an_offset_without_overflow() {
        let huge = Duration::from_secs(u64::MAX);
        assert!(spread_offset("x", huge) < huge);
        assert_eq!(spread_offset("x", Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn steps_below_the_tolerance_are_not_steps() {
        let t0 = Utc::now();
        let m0 = Instant::now();
        let m1 = m0 + Duration::from_secs(1);
        let slewed = t0 + TimeDelta::milliseconds(1900);
        assert_eq!(wall_step(t0, m0, slewed, m1), None);
        let stepped = t0 + TimeDelta::milliseconds(2100);
        assert_eq!(
            wall_step(t0, m0, stepped, m1),
            Some(TimeDelta::milliseconds(1100))
        );
        let back = t0 - TimeDelta::hours(2) + TimeDelta::seconds(1);
        assert_eq!(wall_step(t0, m0, back, m1), Some(TimeDelta::hours(-2)));
        assert!(wall_step(DateTime::<Utc>::MIN_UTC, m0, DateTime::<Utc>::MAX_UTC, m1).is_some());
    }
}
