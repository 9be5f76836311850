//! The window: a short history of every watched partition and the status judged from it.
//!
//! Each tick the caller reads, for every partition of the groups it watches, the group's
//! committed offset and the partition's end offset, and calls [`evaluate`] with the
//! [`Window`] the previous tick returned (the monitor's stored probe state). It gets back the
//! new window, to store, and an [`Evaluation`]: per partition, topic and group a
//! [`WindowStatus`] and an estimated lag in seconds. Nothing here does I/O or reads a clock;
//! time comes in as `now_ms` (milliseconds since the Unix epoch). `docs/kafka.md` ("Window
//! statuses") explains the same for operators.
//!
//! # What is kept
//!
//! One list of sample times for the whole window (at most [`WindowParams::samples`]), and per
//! partition the committed and end offsets at the newest of those times (a partition first
//! seen later has fewer), plus the time since which its committed offset has been stuck behind
//! the end (which may lie before the oldest sample: that is how STOP is told from STALL).
//! Every partition is sampled at the same instants because a tick reads them together.
//!
//! - A sample closer than [`WindowParams::min_distance`] to the one before the newest replaces
//!   the newest instead of being added, so a fast loop of `watchpost once` keeps the history
//!   spread out, and the newest sample is always the latest reading.
//! - A partition whose end offset went backwards (the topic was deleted and created again, or
//!   truncated) starts its history afresh.
//! - A partition missing from a tick's input is dropped; at most
//!   [`WindowParams::max_partitions`] are kept (those already kept come first, then the others
//!   in order of group, topic and partition number); the rest are evaluated from the current
//!   reading alone and reported as [`Incomplete::NotTracked`]. Group and topic names longer
//!   than [`MAX_NAME_LEN`] bytes are never kept. So the window's size is bounded whatever the
//!   input: partitions × samples × two offsets.
//! - A time more than `min_distance` before the newest sample means the clock was set back:
//!   the history is discarded and starts again ([`Evaluation::clock_stepped_back`]).
//!
//! # The rules, for one partition, in this order
//!
//! Lag is `max(0, end − committed)`. The *evaluated samples* are the newest run of samples
//! that have a committed offset.
//!
//! 1. No committed offset now → UNKNOWN ([`Incomplete::NoCommit`]).
//! 2. Lag now ≤ `allowed_lag` → OK.
//! 3. The committed offset went back and has not since returned to where it was → REWIND.
//! 4. Lag ≤ `allowed_lag` in any evaluated sample → OK.
//! 5. Fewer than `min_samples` evaluated samples → UNKNOWN ([`Incomplete::TooFewSamples`]):
//!    the rules below judge a trend.
//! 6. The committed offset is the same in every evaluated sample → STALL; and STOP once it has
//!    stayed there, behind, for more than twice the span of those samples (a whole window's
//!    length before the window, too).
//! 7. Lag never went down from one sample to the next and is higher than at the start → WARN.
//! 8. Otherwise → OK (a consumer working through a backlog: its lag goes down).
//!
//! A topic's and a group's status is the worst of their partitions' in the order
//! UNKNOWN < OK < WARN < REWIND < STALL < STOP (UNKNOWN only when no partition has another).
//!
//! # Lag in seconds
//!
//! The end offsets of the window say when the partition's end reached each offset. The time
//! lag is how long ago the end was where the committed offset is now: interpolated linearly
//! between the newest sample at or below the committed offset and the one after it. 0 when the
//! consumer is caught up; `None` with a single sample or no committed offset. A committed
//! offset below every end offset in the window is extrapolated back at the window's average
//! production rate (or, when nothing was produced during the window, is at least the window's
//! span), flagged as [`PartitionEvaluation::time_lag_extrapolated`] and capped at
//! [`WindowParams::max_time_lag`].
//!
//! # Stored form
//!
//! [`Window`] serializes as a versioned document (`"v": 1`), deltas for compactness:
//! `{"v":1,"times":[t0,t1−t0,…],"groups":{"G":{"T":[{"p":0,"c":[c0,c1−c0,…],"e":[e0,e1−e0,…],
//! "stuck":ms}]}}}`. `c` holds `null` where there was no commit (deltas then count from the
//! previous commit); `stuck` is the time since which the committed offset has stayed where it
//! is while behind, present only when that is before the newest sample. Reading checks the
//! version and the shape ([`Window::from_json`]); a document of a newer version is refused.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// The version of the stored window this code writes, and the only one it reads.
pub const WINDOW_VERSION: u64 = 1;
/// The most samples per partition a window may keep, whatever [`WindowParams::samples`] says.
pub const MAX_SAMPLES: usize = 100;
/// The most partitions a window may keep, whatever [`WindowParams::max_partitions`] says.
pub const MAX_PARTITIONS: usize = 100_000;
/// Group and topic names longer than this (in bytes) are not kept in the window. Kafka's own
/// limit for topic names is 249.
pub const MAX_NAME_LEN: usize = 512;

/// One partition as read in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSample {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset; `None` when the group has never committed to this
    /// partition (a negative value is taken as `None`: it is Kafka's "no offset").
    pub committed: Option<i64>,
    /// The partition's end offset (a negative value is taken as 0).
    pub end: i64,
}

/// How the window judges. [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowParams {
    /// How many samples each partition keeps (default 10; 2 to [`MAX_SAMPLES`]).
    pub samples: usize,
    /// How many samples with a commit a partition needs before it is judged STALL, STOP, WARN or
    /// REWIND (default 3; 2 to `samples`). Fewer, and it is UNKNOWN unless caught up.
    pub min_samples: usize,
    /// Samples closer together than this replace the newest instead of adding one
    /// (default 10 s).
    pub min_distance: Duration,
    /// Lag (in offsets) that still counts as caught up (default 0).
    pub allowed_lag: i64,
    /// How many partitions the window keeps (default 5,000; 1 to [`MAX_PARTITIONS`]).
    pub max_partitions: usize,
    /// The largest time lag reported (default 7 days): extrapolating a backlog over a slow
    /// producer can give absurd numbers.
    pub max_time_lag: Duration,
}

impl Default for WindowParams {
    fn default() -> Self {
        WindowParams {
            samples: 10,
            min_samples: 3,
            min_distance: Duration::from_secs(10),
            allowed_lag: 0,
            max_partitions: 5_000,
            max_time_lag: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A [`WindowParams`] value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowParamsError {
    #[error("the window's samples must be from 2 to {MAX_SAMPLES}, not {0}")]
    Samples(usize),
    #[error("the window's minimum samples must be from 2 to its samples ({samples}), not {found}")]
    MinSamples { found: usize, samples: usize },
    #[error("the allowed lag can't be negative ({0})")]
    AllowedLag(i64),
    #[error("the window's partition limit must be from 1 to {MAX_PARTITIONS}, not {0}")]
    MaxPartitions(usize),
    #[error("the largest time lag must be at least 1 s")]
    MaxTimeLag,
}

impl WindowParams {
    /// Every field in its range; [`evaluate`] brings out-of-range values into range itself,
    /// this is for configuration to refuse them with a message.
    pub fn validate(&self) -> Result<(), WindowParamsError> {
        if !(2..=MAX_SAMPLES).contains(&self.samples) {
            return Err(WindowParamsError::Samples(self.samples));
        }
        if !(2..=self.samples).contains(&self.min_samples) {
            return Err(WindowParamsError::MinSamples {
                found: self.min_samples,
                samples: self.samples,
            });
        }
        if self.allowed_lag < 0 {
            return Err(WindowParamsError::AllowedLag(self.allowed_lag));
        }
        if !(1..=MAX_PARTITIONS).contains(&self.max_partitions) {
            return Err(WindowParamsError::MaxPartitions(self.max_partitions));
        }
        if self.max_time_lag < Duration::from_secs(1) {
            return Err(WindowParamsError::MaxTimeLag);
        }
        Ok(())
    }

    fn effective(&self) -> Effective {
        let samples = self.samples.clamp(2, MAX_SAMPLES);
        Effective {
            samples,
            min_samples: self.min_samples.clamp(2, samples),
            min_distance_ms: i64::try_from(self.min_distance.as_millis()).unwrap_or(i64::MAX),
            allowed_lag: self.allowed_lag.max(0),
            max_partitions: self.max_partitions.min(MAX_PARTITIONS),
            max_time_lag_secs: self.max_time_lag.as_secs_f64().max(1.0),
        }
    }
}

/// [`WindowParams`] brought into range.
struct Effective {
    samples: usize,
    min_samples: usize,
    min_distance_ms: i64,
    allowed_lag: i64,
    max_partitions: usize,
    max_time_lag_secs: f64,
}

/// A status, ordered from least to most severe: a group's is its worst partition's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WindowStatus {
    /// Not enough to judge: no commit, too few samples, or not kept ([`Incomplete`] says).
    Unknown,
    /// Caught up, or working through its lag.
    Ok,
    /// Lag grew across the whole window: the consumer is slower than the producers.
    Warn,
    /// The committed offset went back (a reset, or a consumer that restarted from older
    /// offsets) and has not caught up with where it was.
    Rewind,
    /// Behind, and the committed offset did not move across the window.
    Stall,
    /// Behind, and the committed offset has not moved for more than twice the window's span:
    /// most likely nothing is consuming.
    Stop,
}

impl WindowStatus {
    /// Every status, least severe first.
    pub const ALL: [WindowStatus; 6] = [
        WindowStatus::Unknown,
        WindowStatus::Ok,
        WindowStatus::Warn,
        WindowStatus::Rewind,
        WindowStatus::Stall,
        WindowStatus::Stop,
    ];

    /// `"UNKNOWN"`, `"OK"`, `"WARN"`, `"REWIND"`, `"STALL"` or `"STOP"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowStatus::Unknown => "UNKNOWN",
            WindowStatus::Ok => "OK",
            WindowStatus::Warn => "WARN",
            WindowStatus::Rewind => "REWIND",
            WindowStatus::Stall => "STALL",
            WindowStatus::Stop => "STOP",
        }
    }

    /// The status named `name` ([`as_str`](Self::as_str)'s names, in any case).
    pub fn from_name(name: &str) -> Option<WindowStatus> {
        WindowStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for WindowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a partition is [`WindowStatus::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Incomplete {
    /// The group has no committed offset for the partition.
    NoCommit,
    /// Fewer than [`WindowParams::min_samples`] samples with a commit so far.
    TooFewSamples,
    /// Beyond [`WindowParams::max_partitions`] (or a name over [`MAX_NAME_LEN`]): no history.
    NotTracked,
}

impl Incomplete {
    /// `"no commit"`, `"too few samples"` or `"not tracked"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Incomplete::NoCommit => "no commit",
            Incomplete::TooFewSamples => "too few samples",
            Incomplete::NotTracked => "not tracked",
        }
    }
}

/// One partition's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionEvaluation {
    pub partition: i32,
    pub status: WindowStatus,
    /// Set exactly when `status` is UNKNOWN.
    pub incomplete: Option<Incomplete>,
    /// `max(0, end − committed)` now; `None` without a committed offset.
    pub lag: Option<i64>,
    /// Estimated seconds since the end offset was where the committed offset is now.
    pub time_lag_secs: Option<f64>,
    /// The time lag lies before the window and was extrapolated (or is its lower bound).
    pub time_lag_extrapolated: bool,
    /// Samples kept for the partition, this one included (0 when not tracked).
    pub samples: usize,
}

/// One topic of a group: the worst of its partitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicEvaluation {
    pub topic: String,
    pub status: WindowStatus,
    /// The largest time lag of its partitions (`None` when none has one).
    pub time_lag_secs: Option<f64>,
    /// How many of its partitions are UNKNOWN.
    pub unknown_partitions: usize,
    /// By partition number.
    pub partitions: Vec<PartitionEvaluation>,
}

/// One group: the worst of its topics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupEvaluation {
    pub group: String,
    pub status: WindowStatus,
    /// The largest time lag of its partitions (`None` when none has one).
    pub time_lag_secs: Option<f64>,
    /// How many of its partitions are UNKNOWN.
    pub unknown_partitions: usize,
    /// By name.
    pub topics: Vec<TopicEvaluation>,
}

/// Everything [`evaluate`] concluded from one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The time of the newest sample (now, or the newest stored time if now is slightly
    /// before it).
    pub at_ms: i64,
    /// The clock went back by more than the minimum distance: the history was discarded.
    pub clock_stepped_back: bool,
    /// Partitions judged from this reading alone because the window was full.
    pub untracked: usize,
    /// Every group of the input, by name.
    pub groups: Vec<GroupEvaluation>,
}

impl Evaluation {
    pub fn group(&self, group: &str) -> Option<&GroupEvaluation> {
        self.groups.iter().find(|g| g.group == group)
    }
}

impl GroupEvaluation {
    pub fn topic(&self, topic: &str) -> Option<&TopicEvaluation> {
        self.topics.iter().find(|t| t.topic == topic)
    }
}

impl TopicEvaluation {
    pub fn partition(&self, partition: i32) -> Option<&PartitionEvaluation> {
        self.partitions.iter().find(|p| p.partition == partition)
    }
}

/// One stored sample of a partition, as [`Window::history`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub committed: Option<i64>,
    pub end: i64,
    pub at_ms: i64,
}

/// The history [`evaluate`] keeps between ticks. Store it as the monitor's probe state:
/// `Serialize`/`Deserialize` (or [`Window::to_json`]/[`Window::from_json`]) give the versioned
/// document described in the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WindowV1", try_from = "WindowV1")]
pub struct Window {
    /// Sample times, oldest first, strictly increasing.
    times: Vec<i64>,
    groups: BTreeMap<String, BTreeMap<String, BTreeMap<i32, History>>>,
}

/// One partition's samples, aligned with the newest of [`Window::times`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct History {
    committed: Vec<Option<i64>>,
    end: Vec<i64>,
    /// Since when the committed offset has been where it is with lag above the allowed lag,
    /// when that is before the newest sample (`None`: not stuck, or only since the newest).
    stuck_since: Option<i64>,
}

impl History {
    fn len(&self) -> usize {
        self.end.len()
    }

    fn newest(&self) -> Option<(Option<i64>, i64)> {
        Some((*self.committed.last()?, *self.end.last()?))
    }

    /// Keep the newest `keep` samples.
    fn trim(&mut self, keep: usize) {
        let n = self.len();
        if n > keep {
            self.committed.drain(..n - keep);
            self.end.drain(..n - keep);
        }
    }
}

impl Window {
    pub fn new() -> Window {
        Window::default()
    }

    /// How many partitions have a history.
    pub fn partitions(&self) -> usize {
        self.groups
            .values()
            .flat_map(|topics| topics.values())
            .map(BTreeMap::len)
            .sum()
    }

    /// The sample times kept, oldest first (ms since the Unix epoch).
    pub fn times(&self) -> &[i64] {
        &self.times
    }

    /// A partition's samples, oldest first; `None` when it has no history.
    pub fn history(&self, group: &str, topic: &str, partition: i32) -> Option<Vec<Sample>> {
        let h = self.groups.get(group)?.get(topic)?.get(&partition)?;
        let times = &self.times[self.times.len().saturating_sub(h.len())..];
        Some(
            times
                .iter()
                .zip(h.committed.iter().zip(&h.end))
                .map(|(&at_ms, (&committed, &end))| Sample {
                    committed,
                    end,
                    at_ms,
                })
                .collect(),
        )
    }

    /// The stored document (`{"v":1,…}`).
    pub fn to_json(&self) -> serde_json::Value {
        // Strings, numbers and arrays only: serializing can't fail.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Read a stored document: version 1, checked for shape and bounds.
    pub fn from_json(value: &serde_json::Value) -> Result<Window, WindowDocError> {
        let Some(object) = value.as_object() else {
            return Err(WindowDocError::Invalid("not a JSON object".into()));
        };
        match object.get("v").and_then(serde_json::Value::as_u64) {
            Some(WINDOW_VERSION) => {}
            Some(found) if found > WINDOW_VERSION => return Err(WindowDocError::Newer { found }),
            _ => return Err(WindowDocError::Invalid("no version 1 in \"v\"".into())),
        }
        let doc =
            WindowV1::deserialize(value).map_err(|e| WindowDocError::Invalid(e.to_string()))?;
        Window::try_from(doc)
    }

    /// Drop the oldest samples beyond `keep`, in the times and in every partition.
    fn trim(&mut self, keep: usize) {
        let n = self.times.len();
        if n > keep {
            self.times.drain(..n - keep);
        }
        for h in self
            .groups
            .values_mut()
            .flat_map(|topics| topics.values_mut())
            .flat_map(BTreeMap::values_mut)
        {
            h.trim(keep);
        }
    }

    fn contains(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.groups
            .get(group)
            .and_then(|topics| topics.get(topic))
            .is_some_and(|partitions| partitions.contains_key(&partition))
    }

    fn take(&mut self, group: &str, topic: &str, partition: i32) -> Option<History> {
        self.groups
            .get_mut(group)?
            .get_mut(topic)?
            .remove(&partition)
    }
}

/// Why a stored window can't be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowDocError {
    #[error(
        "the stored Kafka window is a version {found} document, written by a newer watchpost; \
         this one reads version {WINDOW_VERSION}"
    )]
    Newer { found: u64 },
    #[error("the stored Kafka window is invalid: {0}")]
    Invalid(String),
}

/// Whether the new sample is added after the newest or takes its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Add,
    Replace,
}

/// Add this tick's reading to `previous` and judge every partition in `observed`.
///
/// `observed` holds every partition of every group watched, read at `now_ms`; a partition
/// listed twice counts once (the last). Partitions of `previous` not in `observed` are
/// dropped, so a tick whose reading failed should not call this at all: keep the previous
/// window for the next tick. Never panics, whatever the input; out-of-range parameters are
/// brought into range.
pub fn evaluate(
    previous: Option<Window>,
    observed: &[PartitionSample],
    now_ms: i64,
    params: &WindowParams,
) -> (Window, Evaluation) {
    let p = params.effective();
    let mut window = previous.unwrap_or_default();
    window.trim(p.samples);

    let mut clock_stepped_back = false;
    let previous_last = window.times.last().copied();
    let (at, slot) = match window.times.last().copied() {
        None => (now_ms, Slot::Add),
        Some(last) if now_ms < last.saturating_sub(p.min_distance_ms) => {
            window = Window::default();
            clock_stepped_back = true;
            (now_ms, Slot::Add)
        }
        Some(last) => {
            let at = now_ms.max(last);
            let n = window.times.len();
            // The newest sample is provisional while it is too close to the one before it.
            let provisional =
                n >= 2 && last.saturating_sub(window.times[n - 2]) < p.min_distance_ms;
            if at == last || provisional {
                (at, Slot::Replace)
            } else {
                (at, Slot::Add)
            }
        }
    };

    // One reading per partition, in order of group, topic and partition.
    let mut latest: BTreeMap<(&str, &str, i32), &PartitionSample> = BTreeMap::new();
    for s in observed {
        latest.insert((s.group.as_str(), s.topic.as_str(), s.partition), s);
    }

    // Which partitions keep a history: those already kept first, then new ones, up to the cap.
    let mut tracked: BTreeSet<(&str, &str, i32)> = BTreeSet::new();
    let keepable =
        |&(g, t, _): &(&str, &str, i32)| g.len() <= MAX_NAME_LEN && t.len() <= MAX_NAME_LEN;
    for key in latest.keys().filter(|k| keepable(k)) {
        if tracked.len() >= p.max_partitions {
            break;
        }
        if window.contains(key.0, key.1, key.2) {
            tracked.insert(*key);
        }
    }
    for key in latest.keys().filter(|k| keepable(k)) {
        if tracked.len() >= p.max_partitions {
            break;
        }
        tracked.insert(*key);
    }

    match slot {
        Slot::Add => window.times.push(at),
        Slot::Replace => {
            if let Some(last) = window.times.last_mut() {
                *last = at;
            }
        }
    }
    if window.times.len() > p.samples {
        window.times.remove(0);
    }
    let keep = window.times.len();
    // The time of every kept partition's newest sample before this one.
    let before_at = if clock_stepped_back {
        None
    } else {
        previous_last
    };

    let mut next = Window {
        times: window.times.clone(),
        groups: BTreeMap::new(),
    };
    let mut evaluation = Evaluation {
        at_ms: at,
        clock_stepped_back,
        untracked: 0,
        groups: Vec::new(),
    };
    for (&(group, topic, partition), sample) in &latest {
        let committed = sample.committed.filter(|c| *c >= 0);
        let end = sample.end.max(0);
        let verdict = if tracked.contains(&(group, topic, partition)) {
            let previous = window.take(group, topic, partition);
            let history = record(previous, (committed, end), at, before_at, slot, keep, &p);
            let verdict = judge(&history, &next.times, partition, &p);
            next.groups
                .entry(group.to_owned())
                .or_default()
                .entry(topic.to_owned())
                .or_default()
                .insert(partition, history);
            verdict
        } else {
            evaluation.untracked += 1;
            untracked(committed, end, partition, &p)
        };
        push(&mut evaluation.groups, group, topic, verdict);
    }
    for g in &mut evaluation.groups {
        for t in &mut g.topics {
            t.status = worst(t.partitions.iter().map(|p| p.status));
            t.time_lag_secs = largest(t.partitions.iter().map(|p| p.time_lag_secs));
            t.unknown_partitions = t
                .partitions
                .iter()
                .filter(|p| p.status == WindowStatus::Unknown)
                .count();
        }
        g.status = worst(g.topics.iter().map(|t| t.status));
        g.time_lag_secs = largest(g.topics.iter().map(|t| t.time_lag_secs));
        g.unknown_partitions = g.topics.iter().map(|t| t.unknown_partitions).sum();
    }
    (next, evaluation)
}

/// Put a partition's verdict under its group and topic (the input is sorted, so they are the
/// last ones when they exist).
fn push(groups: &mut Vec<GroupEvaluation>, group: &str, topic: &str, verdict: PartitionEvaluation) {
    if groups.last().is_none_or(|g| g.group != group) {
        groups.push(GroupEvaluation {
            group: group.to_owned(),
            status: WindowStatus::Unknown,
            time_lag_secs: None,
            unknown_partitions: 0,
            topics: Vec::new(),
        });
    }
    let Some(g) = groups.last_mut() else { return };
    if g.topics.last().is_none_or(|t| t.topic != topic) {
        g.topics.push(TopicEvaluation {
            topic: topic.to_owned(),
            status: WindowStatus::Unknown,
            time_lag_secs: None,
            unknown_partitions: 0,
            partitions: Vec::new(),
        });
    }
    if let Some(t) = g.topics.last_mut() {
        t.partitions.push(verdict);
    }
}

fn worst(statuses: impl Iterator<Item = WindowStatus>) -> WindowStatus {
    statuses.max().unwrap_or(WindowStatus::Unknown)
}

fn largest(lags: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    lags.flatten().reduce(f64::max)
}

fn lag(committed: i64, end: i64) -> i64 {
    end.saturating_sub(committed).max(0)
}

/// Add one reading to a partition's history; `before_at` is the time of its newest sample.
fn record(
    previous: Option<History>,
    (committed, end): (Option<i64>, i64),
    at: i64,
    before_at: Option<i64>,
    slot: Slot,
    keep: usize,
    p: &Effective,
) -> History {
    let mut h = previous.unwrap_or_default();
    let mut before = h.newest();
    if before.is_some_and(|(_, e)| end < e) {
        // The end went back: the topic was recreated or truncated. Start afresh.
        h = History::default();
        before = None;
    }
    let behind = |c: Option<i64>, e: i64| c.is_some_and(|c| lag(c, e) > p.allowed_lag);
    let since = if !behind(committed, end) {
        None
    } else {
        match (before, before_at) {
            // Stuck at the same offset as in the newest sample, behind then too.
            (Some((was, was_end)), Some(was_at)) if was == committed && behind(was, was_end) => {
                Some(h.stuck_since.unwrap_or(was_at))
            }
            _ => None,
        }
    };
    if slot == Slot::Replace {
        h.committed.pop();
        h.end.pop();
    }
    h.committed.push(committed);
    h.end.push(end);
    h.trim(keep);
    h.stuck_since = since.filter(|&s| s < at);
    h
}

/// The verdict for a partition with a history; `times` are the window's (the partition's
/// samples are the newest of them).
fn judge(h: &History, times: &[i64], partition: i32, p: &Effective) -> PartitionEvaluation {
    let n = h.len().min(times.len());
    let times = &times[times.len() - n..];
    let committed = &h.committed[h.committed.len() - n..];
    let ends = &h.end[h.end.len() - n..];
    let now = committed.last().copied().flatten();
    let end = ends.last().copied().unwrap_or(0);
    let (time_lag_secs, time_lag_extrapolated) = match now {
        Some(c) => time_lag(times, ends, c, p.max_time_lag_secs),
        None => (None, false),
    };
    let verdict = |status, incomplete| PartitionEvaluation {
        partition,
        status,
        incomplete,
        lag: now.map(|c| lag(c, end)),
        time_lag_secs,
        time_lag_extrapolated,
        samples: n,
    };
    let Some(c) = now else {
        return verdict(WindowStatus::Unknown, Some(Incomplete::NoCommit));
    };
    if lag(c, end) <= p.allowed_lag {
        return verdict(WindowStatus::Ok, None);
    }
    // The newest run of samples with a commit.
    let start = committed
        .iter()
        .rposition(Option::is_none)
        .map_or(0, |i| i + 1);
    let run: Vec<i64> = committed[start..].iter().flatten().copied().collect();
    let run_times = &times[start..];
    let lags: Vec<i64> = run
        .iter()
        .zip(&ends[start..])
        .map(|(&c, &e)| lag(c, e))
        .collect();
    if rewound(&run) {
        return verdict(WindowStatus::Rewind, None);
    }
    if lags.iter().any(|&l| l <= p.allowed_lag) {
        return verdict(WindowStatus::Ok, None);
    }
    if run.len() < p.min_samples {
        return verdict(WindowStatus::Unknown, Some(Incomplete::TooFewSamples));
    }
    let (first_at, last_at) = (run_times[0], run_times[run_times.len() - 1]);
    if run.iter().all(|&o| o == c) {
        let since = h.stuck_since.map_or(first_at, |s| s.min(first_at));
        let span = last_at.saturating_sub(first_at);
        let stuck = last_at.saturating_sub(since);
        return if stuck > span.saturating_mul(2) {
            verdict(WindowStatus::Stop, None)
        } else {
            verdict(WindowStatus::Stall, None)
        };
    }
    let growing = lags.windows(2).all(|w| w[1] >= w[0]);
    if growing && lags[lags.len() - 1] > lags[0] {
        return verdict(WindowStatus::Warn, None);
    }
    verdict(WindowStatus::Ok, None)
}

/// Some committed offset is above every one after it: it went back and hasn't returned.
fn rewound(run: &[i64]) -> bool {
    let mut highest_after: Option<i64> = None;
    for &c in run.iter().rev() {
        if highest_after.is_some_and(|h| c > h) {
            return true;
        }
        highest_after = Some(highest_after.map_or(c, |h| h.max(c)));
    }
    false
}

/// The verdict for a partition without a history: only "caught up" can be told.
fn untracked(
    committed: Option<i64>,
    end: i64,
    partition: i32,
    p: &Effective,
) -> PartitionEvaluation {
    let lag = committed.map(|c| lag(c, end));
    let (status, incomplete) = match lag {
        None => (WindowStatus::Unknown, Some(Incomplete::NoCommit)),
        Some(l) if l <= p.allowed_lag => (WindowStatus::Ok, None),
        Some(_) => (WindowStatus::Unknown, Some(Incomplete::NotTracked)),
    };
    PartitionEvaluation {
        partition,
        status,
        incomplete,
        lag,
        time_lag_secs: committed.filter(|&c| c >= end).map(|_| 0.0),
        time_lag_extrapolated: false,
        samples: 0,
    }
}

/// Seconds since the end offset was at `committed`, from the window's end offsets; and
/// whether it had to be extrapolated before the window.
fn time_lag(times: &[i64], ends: &[i64], committed: i64, cap_secs: f64) -> (Option<f64>, bool) {
    let n = times.len().min(ends.len());
    if n == 0 {
        return (None, false);
    }
    let (newest_at, newest_end) = (times[n - 1], ends[n - 1]);
    if committed >= newest_end {
        return (Some(0.0), false);
    }
    if n < 2 {
        return (None, false);
    }
    // Ages (ms before the newest sample) keep the numbers small and the arithmetic exact.
    let age = |i: usize| (i128::from(newest_at) - i128::from(times[i])) as f64;
    let c = committed as f64;
    // The newest sample whose end was at or below the committed offset: the end passed it
    // between that sample and the next.
    let (age_ms, extrapolated) = match (0..n - 1).rev().find(|&i| ends[i] <= committed) {
        Some(j) => {
            let (e0, e1) = (ends[j] as f64, ends[j + 1] as f64);
            let (a0, a1) = (age(j), age(j + 1));
            (a0 - (c - e0) / (e1 - e0) * (a0 - a1), false)
        }
        None => {
            let (span, e0) = (age(0), ends[0] as f64);
            let produced = newest_end as f64 - e0;
            if produced > 0.0 {
                // Back from the oldest sample at the window's average rate.
                (span + (e0 - c) * span / produced, true)
            } else {
                // Nothing produced during the window: it is at least the window's span.
                (span, true)
            }
        }
    };
    let secs = age_ms / 1000.0;
    if secs.is_finite() {
        (Some(secs.clamp(0.0, cap_secs)), extrapolated)
    } else {
        (None, false)
    }
}

/// Version 1 of the stored window. Field order is the document's.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowV1 {
    v: u64,
    /// The first time absolute, then each the gap from the one before (ms).
    times: Vec<i64>,
    groups: BTreeMap<String, BTreeMap<String, Vec<PartitionV1>>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionV1 {
    p: i32,
    /// Committed offsets: the first present one absolute, then each the change from the
    /// previous present one; `null` where there was no commit.
    c: Vec<Option<i64>>,
    /// End offsets: the first absolute, then each the change from the one before.
    e: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stuck: Option<i64>,
}

fn deltas(values: &[i64]) -> Vec<i64> {
    let mut before = 0i64;
    values
        .iter()
        .map(|&v| {
            let d = v.wrapping_sub(before);
            before = v;
            d
        })
        .collect()
}

fn undeltas(values: &[i64]) -> Vec<i64> {
    let mut before = 0i64;
    values
        .iter()
        .map(|&d| {
            before = before.wrapping_add(d);
            before
        })
        .collect()
}

fn optional_deltas(values: &[Option<i64>]) -> Vec<Option<i64>> {
    let mut before = 0i64;
    values
        .iter()
        .map(|v| {
            v.map(|v| {
                let d = v.wrapping_sub(before);
                before = v;
                d
            })
        })
        .collect()
}

fn optional_undeltas(values: &[Option<i64>]) -> Vec<Option<i64>> {
    let mut before = 0i64;
    values
        .iter()
        .map(|d| {
            d.map(|d| {
                before = before.wrapping_add(d);
                before
            })
        })
        .collect()
}

impl From<Window> for WindowV1 {
    fn from(w: Window) -> WindowV1 {
        WindowV1 {
            v: WINDOW_VERSION,
            times: deltas(&w.times),
            groups: w
                .groups
                .into_iter()
                .map(|(group, topics)| {
                    let topics = topics
                        .into_iter()
                        .map(|(topic, partitions)| {
                            let partitions = partitions
                                .into_iter()
                                .map(|(p, h)| PartitionV1 {
                                    p,
                                    c: optional_deltas(&h.committed),
                                    e: deltas(&h.end),
                                    stuck: h.stuck_since,
                                })
                                .collect();
                            (topic, partitions)
                        })
                        .collect();
                    (group, topics)
                })
                .collect(),
        }
    }
}

impl TryFrom<WindowV1> for Window {
    type Error = WindowDocError;

    fn try_from(doc: WindowV1) -> Result<Window, WindowDocError> {
        let invalid = |why: String| Err(WindowDocError::Invalid(why));
        if doc.v > WINDOW_VERSION {
            return Err(WindowDocError::Newer { found: doc.v });
        }
        if doc.v != WINDOW_VERSION {
            return invalid(format!("version {} is not 1", doc.v));
        }
        if doc.times.len() > MAX_SAMPLES {
            return invalid(format!(
                "{} sample times, over {MAX_SAMPLES}",
                doc.times.len()
            ));
        }
        let times = undeltas(&doc.times);
        if times.windows(2).any(|w| w[1] <= w[0]) {
            return invalid("sample times are not increasing".into());
        }
        let mut partitions = 0usize;
        let mut groups = BTreeMap::new();
        for (group, topics) in doc.groups {
            let mut kept_topics = BTreeMap::new();
            for (topic, list) in topics {
                if group.len() > MAX_NAME_LEN || topic.len() > MAX_NAME_LEN {
                    return invalid(format!("a name over {MAX_NAME_LEN} bytes"));
                }
                let mut kept = BTreeMap::new();
                for part in list {
                    partitions += 1;
                    if partitions > MAX_PARTITIONS {
                        return invalid(format!("more than {MAX_PARTITIONS} partitions"));
                    }
                    let n = part.e.len();
                    if part.c.len() != n || n == 0 || n > times.len() {
                        return invalid(format!(
                            "partition {} of {topic:?} has {} committed and {n} end offsets for \
                             {} sample times",
                            part.p,
                            part.c.len(),
                            times.len()
                        ));
                    }
                    let history = History {
                        committed: optional_undeltas(&part.c),
                        end: undeltas(&part.e),
                        stuck_since: part.stuck,
                    };
                    if kept.insert(part.p, history).is_some() {
                        return invalid(format!("partition {} of {topic:?} twice", part.p));
                    }
                }
                kept_topics.insert(topic, kept);
            }
            groups.insert(group, kept_topics);
        }
        Ok(Window { times, groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_round_trip_at_the_extremes() {
        let values = [i64::MIN, i64::MAX, 0, -1, i64::MAX, 5];
        assert_eq!(undeltas(&deltas(&values)), values);
        let optional = [None, Some(i64::MAX), None, Some(i64::MIN), Some(3), None];
        assert_eq!(optional_undeltas(&optional_deltas(&optional)), optional);
    }

    #[test]
    fn rewound_needs_a_drop_not_made_up() {
        assert!(!rewound(&[1, 2, 3]));
        assert!(!rewound(&[5, 5, 5]));
        assert!(rewound(&[5, 3, 4]));
        assert!(!rewound(&[5, 3, 5]));
        assert!(rewound(&[i64::MIN, 7, i64::MIN]));
    }
}
