//! The Kafka window, driven by scripted samples: every status, the time-lag estimate, the
//! stored document and the bounds.
//!
//! Each tick goes through the stored JSON document, as it does between two `watchpost once`
//! processes, so every test also proves the history survives being stored.

use proptest::prelude::*;
use std::time::Duration;
use watchpost_probes::kafka::window::{
    Evaluation, Incomplete, MAX_NAME_LEN, MAX_PARTITIONS, MAX_SAMPLES, PartitionEvaluation,
    PartitionSample, Window, WindowDocError, WindowParams, WindowStatus, evaluate,
};

const MINUTE: i64 = 60_000;
/// 2026-11-30T10:00:00Z
const T0: i64 = 1_796_032_800_000;

fn sample(
    group: &str,
    topic: &str,
    partition: i32,
    committed: Option<i64>,
    end: i64,
) -> PartitionSample {
    PartitionSample {
        group: group.into(),
        topic: topic.into(),
        partition,
        committed,
        end,
    }
}

/// One partition: group `g`, topic `t`, partition 0.
fn one(committed: i64, end: i64) -> Vec<PartitionSample> {
    vec![sample("g", "t", 0, Some(committed), end)]
}

/// A monitor's ticks, its window stored as JSON in between.
struct Monitor {
    stored: Option<serde_json::Value>,
    params: WindowParams,
}

impl Monitor {
    fn new() -> Monitor {
        Monitor::with(WindowParams::default())
    }

    fn with(params: WindowParams) -> Monitor {
        Monitor {
            stored: None,
            params,
        }
    }

    fn tick(&mut self, at_ms: i64, observed: &[PartitionSample]) -> Evaluation {
        let previous = self
            .stored
            .as_ref()
            .map(|doc| Window::from_json(doc).expect("the stored window reads back"));
        let (window, evaluation) = evaluate(previous, observed, at_ms, &self.params);
        let doc = window.to_json();
        assert_eq!(Window::from_json(&doc).as_ref(), Ok(&window));
        self.stored = Some(doc);
        evaluation
    }

    fn window(&self) -> Window {
        Window::from_json(self.stored.as_ref().expect("a tick ran")).expect("valid")
    }
}

fn partition<'a>(e: &'a Evaluation, group: &str, topic: &str, p: i32) -> &'a PartitionEvaluation {
    e.group(group)
        .and_then(|g| g.topic(topic))
        .and_then(|t| t.partition(p))
        .unwrap_or_else(|| panic!("{group}/{topic}/{p} evaluated"))
}

fn status(e: &Evaluation) -> WindowStatus {
    partition(e, "g", "t", 0).status
}

/// Ticks every minute from T0; `script(i)` gives (committed, end) at tick `i`. The statuses.
fn script(
    monitor: &mut Monitor,
    ticks: usize,
    script: impl Fn(i64) -> (i64, i64),
) -> Vec<WindowStatus> {
    (0..ticks as i64)
        .map(|i| {
            let (c, e) = script(i);
            status(&monitor.tick(T0 + i * MINUTE, &one(c, e)))
        })
        .collect()
}

#[test]
fn statuses_have_their_names_and_order() {
    let names: Vec<&str> = WindowStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["UNKNOWN", "OK", "WARN", "REWIND", "STALL", "STOP"]);
    let mut sorted = WindowStatus::ALL;
    sorted.sort();
    assert_eq!(sorted, WindowStatus::ALL);
    assert_eq!(WindowStatus::Stall.to_string(), "STALL");
    for status in WindowStatus::ALL {
        assert_eq!(WindowStatus::from_name(status.as_str()), Some(status));
    }
    assert_eq!(WindowStatus::from_name("stop"), Some(WindowStatus::Stop));
    assert_eq!(WindowStatus::from_name("ERR"), None);
    assert_eq!(
        serde_json::to_value(WindowStatus::Rewind).unwrap(),
        "REWIND"
    );
}

#[test]
fn caught_up_is_ok_from_the_first_sample() {
    let mut m = Monitor::new();
    let e = m.tick(T0, &one(500, 500));
    let p = partition(&e, "g", "t", 0);
    assert_eq!(p.status, WindowStatus::Ok);
    assert_eq!(p.lag, Some(0));
    assert_eq!(p.time_lag_secs, Some(0.0));
    // A commit ahead of the end (read in between) is lag 0, not negative.
    let e = m.tick(T0 + MINUTE, &one(520, 510));
    assert_eq!(partition(&e, "g", "t", 0).lag, Some(0));
    assert_eq!(status(&e), WindowStatus::Ok);
}

#[test]
fn behind_with_too_few_samples_or_no_commit_is_unknown() {
    let mut m = Monitor::new();
    let e = m.tick(
        T0,
        &[
            sample("g", "t", 0, Some(100), 200),
            sample("g", "t", 1, None, 50),
        ],
    );
    let p0 = partition(&e, "g", "t", 0);
    assert_eq!(
        (p0.status, p0.incomplete),
        (WindowStatus::Unknown, Some(Incomplete::TooFewSamples))
    );
    assert_eq!(p0.time_lag_secs, None, "one sample gives no time lag");
    let p1 = partition(&e, "g", "t", 1);
    assert_eq!(
        (p1.status, p1.incomplete),
        (WindowStatus::Unknown, Some(Incomplete::NoCommit))
    );
    assert_eq!((p1.lag, p1.time_lag_secs), (None, None));
    let g = e.group("g").unwrap();
    assert_eq!((g.status, g.unknown_partitions), (WindowStatus::Unknown, 2));
    // Kafka's -1 is "no commit" too.
    let e = m.tick(T0 + MINUTE, &[sample("g", "t", 0, Some(-1), 200)]);
    assert_eq!(
        partition(&e, "g", "t", 0).incomplete,
        Some(Incomplete::NoCommit)
    );
}

#[test]
fn lag_growing_across_the_window_is_warn() {
    // Producers write 300 a minute, the consumer manages 200.
    let statuses = script(&mut Monitor::new(), 12, |i| {
        (1_000 + 200 * i, 1_100 + 300 * i)
    });
    assert_eq!(&statuses[..2], [WindowStatus::Unknown; 2]);
    assert!(
        statuses[2..].iter().all(|&s| s == WindowStatus::Warn),
        "{statuses:?}"
    );
}

#[test]
fn a_consumer_catching_up_from_a_burst_is_ok() {
    // A burst left 5,000 behind; the consumer takes 800 a minute, producers add 300.
    let statuses = script(&mut Monitor::new(), 15, |i| {
        let end = 10_000 + 300 * i;
        ((5_000 + 800 * i).min(end), end)
    });
    assert!(
        statuses[2..].iter().all(|&s| s == WindowStatus::Ok),
        "{statuses:?}"
    );
}

#[test]
fn a_lag_that_dips_once_is_not_warn() {
    let lags = [100, 120, 140, 130, 150, 170];
    let statuses = script(&mut Monitor::new(), lags.len(), |i| {
        let end = 10_000 + 1_000 * i;
        (end - lags[i as usize], end)
    });
    assert_eq!(statuses[2], WindowStatus::Warn);
    assert!(
        statuses[3..].iter().all(|&s| s == WindowStatus::Ok),
        "{statuses:?}"
    );
}

#[test]
fn stuck_consumer_is_stall_then_stop_as_time_passes() {
    // Consumes until tick 5, then its committed offset stays at 1,500 while producers go on.
    let statuses = script(&mut Monitor::new(), 30, |i| {
        (1_000 + 100 * i.min(5), 1_100 + 100 * i)
    });
    // Lag steady while it consumes (OK), then growing while the window still sees it move.
    assert!(
        statuses[2..=5].iter().all(|&s| s == WindowStatus::Ok),
        "{statuses:?}"
    );
    assert!(
        statuses[6..14].iter().all(|&s| s == WindowStatus::Warn),
        "{statuses:?}"
    );
    // From tick 14 the window (ticks 5-14) has one committed offset: STALL.
    assert!(
        statuses[14..=23].iter().all(|&s| s == WindowStatus::Stall),
        "{statuses:?}"
    );
    // Stuck since tick 5, the window spans 9 minutes: more than 18 minutes stuck is STOP.
    assert!(
        statuses[24..].iter().all(|&s| s == WindowStatus::Stop),
        "{statuses:?}"
    );
}

#[test]
fn a_consumer_stuck_from_the_start_is_stall_once_judged_then_stop() {
    let statuses = script(&mut Monitor::new(), 21, |i| (700, 800 + 10 * i));
    assert_eq!(statuses[2], WindowStatus::Stall);
    // The window grows with the stuck time until it is full (10 samples, 9 minutes): STOP after
    // 18 minutes.
    assert!(
        statuses[2..=18].iter().all(|&s| s == WindowStatus::Stall),
        "{statuses:?}"
    );
    assert!(
        statuses[19..].iter().all(|&s| s == WindowStatus::Stop),
        "{statuses:?}"
    );
}

#[test]
fn stuck_with_nothing_produced_is_still_behind() {
    // The end doesn't move either: the consumer has 50 left and doesn't take them.
    let statuses = script(&mut Monitor::new(), 4, |_| (950, 1_000));
    assert_eq!(&statuses[2..], [WindowStatus::Stall; 2]);
}

#[test]
fn a_stuck_consumer_that_was_caught_up_in_the_window_is_ok() {
    // Idle topic, caught up; then producers write and the consumer doesn't follow.
    let mut m = Monitor::new();
    let mut statuses = Vec::new();
    for i in 0..14 {
        let end = if i < 4 { 1_000 } else { 1_000 + 50 * (i - 3) };
        statuses.push(status(&m.tick(T0 + i * MINUTE, &one(1_000, end))));
    }
    // Lag was 0 within the window (ticks 0-3) until tick 13 drops tick 3.
    assert!(
        statuses[..13].iter().all(|&s| s == WindowStatus::Ok),
        "{statuses:?}"
    );
    assert_eq!(statuses[13], WindowStatus::Stall);
}

#[test]
fn lag_within_the_allowed_lag_anywhere_in_the_window_is_ok() {
    let params = WindowParams {
        allowed_lag: 20,
        ..WindowParams::default()
    };
    // Lag 10 (allowed), then the consumer stops while 100 a minute arrive.
    let statuses = script(&mut Monitor::with(params), 12, |i| (990, 1_000 + 100 * i));
    assert_eq!(statuses[0], WindowStatus::Ok);
    assert!(
        statuses[1..10].iter().all(|&s| s == WindowStatus::Ok),
        "{statuses:?}"
    );
    assert_eq!(statuses[10], WindowStatus::Stall);
}

#[test]
fn committed_offset_going_back_is_rewind_until_it_returns() {
    let committed = [1_000, 1_100, 1_200, 600, 700, 1_100, 1_250, 1_300];
    let statuses = script(&mut Monitor::new(), committed.len(), |i| {
        (committed[i as usize], 1_500 + 100 * i)
    });
    assert_eq!(statuses[2], WindowStatus::Ok);
    assert_eq!(&statuses[3..6], [WindowStatus::Rewind; 3], "{statuses:?}");
    // Back above 1,200: no longer a rewind.
    assert_ne!(statuses[6], WindowStatus::Rewind);
    assert_ne!(statuses[7], WindowStatus::Rewind);
}

#[test]
fn a_rewind_leaves_with_the_window() {
    let mut m = Monitor::new();
    let committed = |i: i64| {
        if i < 3 {
            5_000 + 10 * i
        } else {
            1_000 + 200 * i
        }
    };
    let statuses: Vec<_> = (0..14)
        .map(|i| status(&m.tick(T0 + i * MINUTE, &one(committed(i), 6_000 + 100 * i))))
        .collect();
    assert!(
        statuses[3..12].iter().all(|&s| s == WindowStatus::Rewind),
        "{statuses:?}"
    );
    // Tick 12's window starts at tick 3: the drop has left it; the consumer is catching up.
    assert_eq!(statuses[12], WindowStatus::Ok);
}

#[test]
fn a_drop_is_rewind_from_the_second_sample() {
    let statuses = script(&mut Monitor::new(), 2, |i| {
        (if i == 0 { 900 } else { 400 }, 1_000)
    });
    assert_eq!(statuses, [WindowStatus::Unknown, WindowStatus::Rewind]);
}

#[test]
fn names_too_long_to_keep_are_judged_without_history() {
    let long = "x".repeat(MAX_NAME_LEN + 1);
    let mut m = Monitor::new();
    for i in 0..4 {
        let e = m.tick(
            T0 + i * MINUTE,
            &[
                sample(&long, "t", 0, Some(5), 10 + i),
                sample("g", &long, 0, Some(7), 7),
            ],
        );
        let behind = partition(&e, &long, "t", 0);
        assert_eq!(
            (behind.status, behind.incomplete),
            (WindowStatus::Unknown, Some(Incomplete::NotTracked))
        );
        assert_eq!(behind.lag, Some(5 + i));
        let caught_up = partition(&e, "g", &long, 0);
        assert_eq!(
            (caught_up.status, caught_up.time_lag_secs),
            (WindowStatus::Ok, Some(0.0))
        );
        assert_eq!(e.untracked, 2);
    }
    assert_eq!(m.window().partitions(), 0);
}

#[test]
fn samples_closer_than_the_minimum_distance_replace_the_newest() {
    let mut m = Monitor::new();
    // A `once` loop every second for two minutes.
    let mut last = None;
    for s in 0..=120 {
        last = Some(m.tick(T0 + s * 1_000, &one(10 * s, 10 * s + 500)));
    }
    let window = m.window();
    let times = window.times();
    assert!(times.len() <= 10);
    // Kept samples are at least 10 s apart, but the newest, which is the latest reading.
    assert!(
        times[..times.len() - 1]
            .windows(2)
            .all(|w| w[1] - w[0] >= 10_000),
        "{times:?}"
    );
    assert_eq!(*times.last().unwrap(), T0 + 120_000);
    let history = window.history("g", "t", 0).unwrap();
    assert_eq!(history.last().unwrap().committed, Some(1_200));
    assert_eq!(history.last().unwrap().end, 1_700);
    assert_eq!(last.unwrap().at_ms, T0 + 120_000);
    // And the window covers most of the two minutes, not the last few seconds.
    assert!(times[times.len() - 1] - times[0] >= 90_000, "{times:?}");
}

#[test]
fn the_same_instant_twice_replaces_and_a_slightly_earlier_one_too() {
    let mut m = Monitor::new();
    m.tick(T0, &one(100, 200));
    m.tick(T0 + MINUTE, &one(150, 260));
    m.tick(T0 + MINUTE, &one(160, 270));
    let e = m.tick(T0 + MINUTE - 3_000, &one(170, 280));
    assert!(!e.clock_stepped_back);
    assert_eq!(e.at_ms, T0 + MINUTE);
    assert_eq!(m.window().times(), [T0, T0 + MINUTE]);
    assert_eq!(
        m.window().history("g", "t", 0).unwrap()[1].committed,
        Some(170)
    );
}

#[test]
fn a_clock_set_back_starts_the_history_again() {
    let mut m = Monitor::new();
    for i in 0..5 {
        m.tick(T0 + i * MINUTE, &one(100, 200 + i));
    }
    let e = m.tick(T0 - 3_600_000, &one(100, 210));
    assert!(e.clock_stepped_back);
    assert_eq!(m.window().times(), [T0 - 3_600_000]);
    assert_eq!(status(&e), WindowStatus::Unknown);
}

#[test]
fn an_end_offset_going_back_resets_that_partition_only() {
    let mut m = Monitor::new();
    for i in 0..5 {
        m.tick(
            T0 + i * MINUTE,
            &[
                sample("g", "t", 0, Some(1_000), 5_000 + i),
                sample("g", "t", 1, Some(10 * i), 10 * i + 5),
            ],
        );
    }
    // Partition 0's topic was recreated: its end is back near zero, and so is the commit.
    let e = m.tick(
        T0 + 5 * MINUTE,
        &[
            sample("g", "t", 0, Some(0), 40),
            sample("g", "t", 1, Some(50), 55),
        ],
    );
    let w = m.window();
    let h0 = w.history("g", "t", 0).unwrap();
    assert_eq!(h0.len(), 1);
    assert_eq!(h0[0].end, 40);
    assert_eq!(w.history("g", "t", 1).unwrap().len(), 6);
    let p0 = partition(&e, "g", "t", 0);
    assert_eq!(
        (p0.status, p0.incomplete),
        (WindowStatus::Unknown, Some(Incomplete::TooFewSamples))
    );
    assert_eq!(p0.time_lag_secs, None);
    let e = m.tick(
        T0 + 6 * MINUTE,
        &[
            sample("g", "t", 0, Some(10), 90),
            sample("g", "t", 1, Some(60), 65),
        ],
    );
    let p0 = partition(&e, "g", "t", 0);
    assert_eq!((p0.status, p0.samples), (WindowStatus::Unknown, 2));
}

#[test]
fn partitions_that_disappear_are_dropped() {
    let mut m = Monitor::new();
    let both = [
        sample("g", "a", 0, Some(1), 2),
        sample("g", "b", 0, Some(1), 2),
    ];
    m.tick(T0, &both);
    assert_eq!(m.window().partitions(), 2);
    let e = m.tick(T0 + MINUTE, &both[..1]);
    assert_eq!(m.window().partitions(), 1);
    assert!(m.window().history("g", "b", 0).is_none());
    assert!(e.group("g").unwrap().topic("b").is_none());
    // Back again: a fresh history.
    m.tick(T0 + 2 * MINUTE, &both);
    assert_eq!(m.window().history("g", "b", 0).unwrap().len(), 1);
}

#[test]
fn the_group_and_topic_take_the_worst_partition() {
    let mut m = Monitor::new();
    let mut e = None;
    for i in 0..4 {
        e = Some(m.tick(
            T0 + i * MINUTE,
            &[
                // stuck
                sample("g", "orders", 0, Some(100), 200 + 10 * i),
                // caught up
                sample("g", "orders", 1, Some(50 + i), 50 + i),
                // falling behind
                sample("g", "payments", 0, Some(100 + 10 * i), 120 + 20 * i),
                // never committed
                sample("g", "payments", 1, None, 70),
                // another group, fine
                sample("h", "orders", 0, Some(200 + 10 * i), 200 + 10 * i),
            ],
        ));
    }
    let e = e.unwrap();
    let g = e.group("g").unwrap();
    assert_eq!(g.topic("orders").unwrap().status, WindowStatus::Stall);
    assert_eq!(g.topic("payments").unwrap().status, WindowStatus::Warn);
    assert_eq!(g.topic("payments").unwrap().unknown_partitions, 1);
    assert_eq!(g.status, WindowStatus::Stall);
    assert_eq!(g.unknown_partitions, 1);
    assert_eq!(e.group("h").unwrap().status, WindowStatus::Ok);
    assert_eq!(
        e.groups
            .iter()
            .map(|g| g.group.as_str())
            .collect::<Vec<_>>(),
        ["g", "h"]
    );
    // The group's time lag is its largest partition's.
    let largest = g
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.time_lag_secs)
        .fold(0.0, f64::max);
    assert_eq!(g.time_lag_secs, Some(largest));
    assert!(largest > 0.0);
}

#[test]
fn time_lag_is_exact_on_a_linear_producer() {
    // 5 messages a second, sampled every minute: the end is 300 higher each tick.
    let end = |t_ms: i64| 10_000 + (t_ms - T0) * 5 / 1_000;
    let mut m = Monitor::new();
    let mut e = None;
    for i in 0..10 {
        let t = T0 + i * MINUTE;
        // The consumer is where the end was at tick 3 + 30 s.
        e = Some(m.tick(t, &one(end(T0 + 3 * MINUTE + 30_000), end(t))));
    }
    let p = partition(e.as_ref().unwrap(), "g", "t", 0);
    // Now is tick 9: 6 minutes after tick 3, less the 30 s.
    let secs = p.time_lag_secs.unwrap();
    assert!((secs - 330.0).abs() < 1e-9, "{secs}");
    assert!(!p.time_lag_extrapolated);

    // Exactly at a sample's end offset: that sample's time.
    let e = m.tick(
        T0 + 10 * MINUTE,
        &one(end(T0 + 8 * MINUTE), end(T0 + 10 * MINUTE)),
    );
    let secs = partition(&e, "g", "t", 0).time_lag_secs.unwrap();
    assert!((secs - 120.0).abs() < 1e-9, "{secs}");

    // Before the window (it starts at tick 1): extrapolated at the same rate, still exact.
    let e = m.tick(
        T0 + 11 * MINUTE,
        &one(end(T0 - 5 * MINUTE), end(T0 + 11 * MINUTE)),
    );
    let p = partition(&e, "g", "t", 0);
    assert!(
        (p.time_lag_secs.unwrap() - 16.0 * 60.0).abs() < 1e-9,
        "{p:?}"
    );
    assert!(p.time_lag_extrapolated);

    // Caught up: 0.
    let e = m.tick(
        T0 + 12 * MINUTE,
        &one(end(T0 + 12 * MINUTE), end(T0 + 12 * MINUTE)),
    );
    assert_eq!(partition(&e, "g", "t", 0).time_lag_secs, Some(0.0));
}

#[test]
fn time_lag_behind_an_idle_window_is_its_span_and_is_capped() {
    let mut m = Monitor::new();
    for i in 0..4 {
        m.tick(T0 + i * MINUTE, &one(900, 1_000));
    }
    let e = m.tick(T0 + 4 * MINUTE, &one(900, 1_000));
    let p = partition(&e, "g", "t", 0);
    assert_eq!(p.time_lag_secs, Some(240.0), "at least the window's span");
    assert!(p.time_lag_extrapolated);

    // A huge backlog behind a trickle extrapolates far back: capped.
    let params = WindowParams {
        max_time_lag: Duration::from_secs(3_600),
        ..WindowParams::default()
    };
    let mut m = Monitor::with(params);
    m.tick(T0, &one(0, 1_000_000));
    let e = m.tick(T0 + MINUTE, &one(0, 1_000_001));
    assert_eq!(partition(&e, "g", "t", 0).time_lag_secs, Some(3_600.0));
}

#[test]
fn the_window_reads_back_from_its_document() {
    let mut m = Monitor::new();
    for i in 0..12 {
        m.tick(
            T0 + i * MINUTE,
            &[
                sample("g", "t", 0, Some(100), 200 + i),
                sample(
                    "g",
                    "t",
                    3,
                    if i % 3 == 0 { None } else { Some(10 * i) },
                    20 * i,
                ),
                sample("g2", "é", 7, Some(i64::MAX - 5), i64::MAX),
            ],
        );
    }
    let window = m.window();
    let text = serde_json::to_string(&window).unwrap();
    let back: Window = serde_json::from_str(&text).unwrap();
    assert_eq!(back, window);
    assert_eq!(Window::from_json(&window.to_json()), Ok(window.clone()));
    let doc = window.to_json();
    assert_eq!(doc["v"], 1);
    // Deltas: the first time absolute, then one minute each.
    let times = doc["times"].as_array().unwrap();
    assert_eq!(times.len(), 10);
    assert!(times[1..].iter().all(|d| d == MINUTE));
    assert_eq!(doc["groups"]["g"]["t"][0]["stuck"], T0);
}

#[test]
fn a_newer_or_damaged_document_is_refused() {
    let newer = serde_json::json!({"v": 2, "times": [], "groups": {}, "more": true});
    assert_eq!(
        Window::from_json(&newer),
        Err(WindowDocError::Newer { found: 2 })
    );
    let damaged = [
        serde_json::json!([]),
        serde_json::json!({"times": [], "groups": {}}),
        serde_json::json!({"v": 1, "times": [5, 0], "groups": {}}),
        serde_json::json!({"v": 1, "times": [5], "groups": {"g": {"t": [{"p": 0, "c": [1, 2], "e": [1, 2]}]}}}),
        serde_json::json!({"v": 1, "times": [5], "groups": {"g": {"t": [{"p": 0, "c": [1], "e": [1]}, {"p": 0, "c": [1], "e": [1]}]}}}),
        serde_json::json!({"v": 1, "times": [5], "groups": {"g": {"t": [{"p": 0, "c": [], "e": []}]}}}),
        serde_json::json!({"v": 1, "times": [5], "groups": {}, "extra": 1}),
    ];
    for doc in damaged {
        assert!(
            matches!(Window::from_json(&doc), Err(WindowDocError::Invalid(_))),
            "{doc}"
        );
    }
    let ok = serde_json::json!({"v": 1, "times": [5, 10], "groups": {"g": {"t": [{"p": 0, "c": [null], "e": [1]}]}}});
    let w = Window::from_json(&ok).unwrap();
    assert_eq!(w.times(), [5, 15]);
    assert_eq!(w.history("g", "t", 0).unwrap()[0].at_ms, 15);
}

#[test]
fn the_window_stays_bounded_with_ten_thousand_partitions() {
    let params = WindowParams::default();
    let observed = |i: i64| -> Vec<PartitionSample> {
        (0..10_000)
            .map(|n: i64| {
                let group = format!("group-{}", n % 7);
                let topic = format!("topic-{}", n % 50);
                let end = 1_000_000_000 + n * 1_000 + 300 * i;
                sample(&group, &topic, n as i32, Some(end - 100 - (n % 10)), end)
            })
            .collect()
    };
    let mut window = None;
    let mut kept = None;
    for i in 0..14 {
        let (w, e) = evaluate(window, &observed(i), T0 + i * MINUTE, &params);
        assert_eq!(w.partitions(), params.max_partitions);
        assert_eq!(e.untracked, 10_000 - params.max_partitions);
        assert!(w.times().len() <= params.samples);
        let untracked: usize = e
            .groups
            .iter()
            .flat_map(|g| &g.topics)
            .flat_map(|t| &t.partitions)
            .filter(|p| p.incomplete == Some(Incomplete::NotTracked))
            .count();
        assert_eq!(untracked, e.untracked);
        // The same partitions stay tracked from tick to tick.
        let doc = w.to_json();
        let names: Vec<String> = doc["groups"].as_object().unwrap().keys().cloned().collect();
        if let Some(k) = &kept {
            assert_eq!(k, &names);
        }
        kept = Some(names);
        window = Some(w);
    }
    let w = window.unwrap();
    let text = serde_json::to_string(&w).unwrap();
    // 5,000 partitions × 10 samples, offsets near 10⁹ stored as deltas.
    assert!(text.len() < 600_000, "{} bytes", text.len());
    assert!(w.history("group-0", "topic-0", 0).unwrap().len() == params.samples);
}

#[test]
fn parameters_out_of_range_are_refused_by_validate_and_clamped_by_evaluate() {
    assert_eq!(WindowParams::default().validate(), Ok(()));
    let bad = [
        WindowParams {
            samples: 1,
            ..Default::default()
        },
        WindowParams {
            samples: MAX_SAMPLES + 1,
            ..Default::default()
        },
        WindowParams {
            min_samples: 11,
            ..Default::default()
        },
        WindowParams {
            min_samples: 1,
            ..Default::default()
        },
        WindowParams {
            allowed_lag: -1,
            ..Default::default()
        },
        WindowParams {
            max_partitions: 0,
            ..Default::default()
        },
        WindowParams {
            max_partitions: MAX_PARTITIONS + 1,
            ..Default::default()
        },
        WindowParams {
            max_time_lag: Duration::ZERO,
            ..Default::default()
        },
    ];
    for params in bad {
        assert!(params.validate().is_err(), "{params:?}");
        let (w, _) = evaluate(None, &one(1, 2), T0, &params);
        assert!(w.partitions() <= 1);
    }
    let message = WindowParams {
        samples: 1,
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        message.to_string(),
        "the window's samples must be from 2 to 100, not 1"
    );
}

#[derive(Debug, Clone)]
struct Tick {
    step_ms: i64,
    samples: Vec<(u8, u8, i32, Option<i64>, i64)>,
}

fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![8 => -5i64..200, 1 => any::<i64>()]
}

fn tick() -> impl Strategy<Value = Tick> {
    (
        prop_oneof![6 => -20_000i64..120_000, 1 => any::<i64>()],
        prop::collection::vec(
            (
                0u8..3,
                0u8..3,
                -1i32..4,
                prop::option::of(offset()),
                offset(),
            ),
            0..14,
        ),
    )
        .prop_map(|(step_ms, samples)| Tick { step_ms, samples })
}

fn params() -> impl Strategy<Value = WindowParams> {
    (
        0usize..14,
        0usize..16,
        0u64..30_000,
        -3i64..30,
        0usize..12,
        0u64..100_000,
    )
        .prop_map(
            |(samples, min_samples, min_distance, allowed_lag, max_partitions, max_time_lag)| {
                WindowParams {
                    samples,
                    min_samples,
                    min_distance: Duration::from_millis(min_distance),
                    allowed_lag,
                    max_partitions,
                    max_time_lag: Duration::from_secs(max_time_lag),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_sequence_keeps_the_window_within_its_bounds(
        params in params(),
        start in prop_oneof![Just(T0), any::<i64>()],
        ticks in prop::collection::vec(tick(), 1..30),
    ) {
        let samples_cap = params.samples.clamp(2, MAX_SAMPLES);
        let partitions_cap = params.max_partitions.min(MAX_PARTITIONS);
        let mut window: Option<Window> = None;
        let mut now = start;
        for tick in ticks {
            now = now.saturating_add(tick.step_ms);
            let observed: Vec<PartitionSample> = tick
                .samples
                .iter()
                .map(|&(g, t, p, c, e)| sample(&format!("g{g}"), &format!("t{t}"), p, c, e))
                .collect();
            let (w, e) = evaluate(window.take(), &observed, now, &params);
            prop_assert!(w.times().len() <= samples_cap);
            prop_assert!(w.times().windows(2).all(|p| p[1] > p[0]));
            prop_assert!(w.partitions() <= partitions_cap);
            let mut distinct: Vec<_> = observed.iter().map(|s| (&s.group, &s.topic, s.partition)).collect();
            distinct.sort();
            distinct.dedup();
            let judged: usize = e.groups.iter().flat_map(|g| &g.topics).map(|t| t.partitions.len()).sum();
            prop_assert_eq!(judged, distinct.len());
            prop_assert_eq!(w.partitions() + e.untracked, distinct.len());
            for p in e.groups.iter().flat_map(|g| &g.topics).flat_map(|t| &t.partitions) {
                prop_assert!(p.samples <= samples_cap);
                prop_assert_eq!(p.status == WindowStatus::Unknown, p.incomplete.is_some());
                if let Some(secs) = p.time_lag_secs {
                    prop_assert!(secs.is_finite() && secs >= 0.0);
                }
                if let Some(lag) = p.lag {
                    prop_assert!(lag >= 0);
                }
            }
            let doc = w.to_json();
            prop_assert_eq!(Window::from_json(&doc), Ok(w.clone()));
            window = Some(w);
        }
    }
}

#[test]
fn the_golden_v1_window_reads_and_writes_back_the_same() {
    let text = include_str!("golden/kafka-window-v1.json").trim_end();
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let window = Window::from_json(&doc).expect("a v1 window reads");
    assert_eq!(serde_json::to_string(&window).unwrap(), text);
    assert_eq!(window.partitions(), 4);
    let at = |k: i64| T0 + k * MINUTE;
    assert_eq!(window.times(), [at(0), at(1) + 1_250, at(2), at(3) + 1_250]);
    let refunds = window.history("billing", "refunds", 0).unwrap();
    let committed: Vec<_> = refunds.iter().map(|s| s.committed).collect();
    assert_eq!(committed, [None, None, Some(12), Some(13)]);
    assert_eq!(refunds[3].end, 33);

    // The next tick carries on from it.
    let observed = [
        sample("billing", "invoices", 0, Some(120_000), 120_660),
        sample("billing", "invoices", 1, Some(98_240), 98_250),
        sample("billing", "refunds", 0, Some(14), 34),
        sample("search-indexer", "documents", 2, Some(4_002_000), 4_003_700),
    ];
    let (_, e) = evaluate(Some(window), &observed, at(4), &WindowParams::default());
    assert_eq!(
        partition(&e, "billing", "invoices", 0).status,
        WindowStatus::Stall
    );
    assert_eq!(
        partition(&e, "billing", "invoices", 1).status,
        WindowStatus::Ok
    );
    let refunds = partition(&e, "billing", "refunds", 0);
    assert_eq!((refunds.status, refunds.samples), (WindowStatus::Ok, 5));
    assert_eq!(
        e.group("search-indexer").unwrap().status,
        WindowStatus::Warn
    );
}
