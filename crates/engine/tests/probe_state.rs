//! A probe's own state (for checks that compare with their previous run) is committed with the
//! tick, in the monitor's stored state document, and kept by ticks that don't replace it.

use chrono::{TimeZone, Utc};
use std::sync::Arc;
use watchpost_engine::health::Health;
use watchpost_engine::pipeline::{CommitContext, Observation, Observed, commit};
use watchpost_engine::{Engine, Generation};

fn observed(probe_state: Option<serde_json::Value>) -> Observed {
    Observed {
        observations: vec![Observation {
            location: "local".into(),
            ok: true,
            failures: Vec::new(),
            check: serde_json::value::to_raw_value(&serde_json::json!({"kind": "http"})).unwrap(),
        }],
        probe_state,
        ..Observed::default()
    }
}

#[test]
fn the_probe_state_is_committed_with_the_tick_and_kept_until_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "storage: sqlite://{}/state.db\nmonitors:\n  - {{name: lag, type: http, url: \"http://127.0.0.1:9/\"}}\n",
        dir.path().display()
    );
    let config = watchpost_config::parse("test.yaml", &text).unwrap();
    let generation = Arc::new(Generation::build(config).unwrap());
    let engine = Engine::open(&generation.config, "test").unwrap();
    let health = Health::new();
    let ctx = CommitContext {
        tz: generation.config.timezone,
        secrets: &generation.config.secrets,
        health: &health,
    };
    let monitor = &generation.config.monitors[0];
    let stored = || {
        let text = engine.store.state("lag").unwrap().unwrap();
        watchpost_alerting::state_from_json(&text).unwrap().probe
    };

    let window = serde_json::json!({"offsets": [10, 12, 15]});
    let t1 = Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap();
    commit(
        engine.store.as_ref(),
        monitor,
        t1,
        observed(Some(window.clone())),
        &ctx,
    )
    .unwrap();
    assert_eq!(stored(), Some(window.clone()));

    // A tick whose probe has nothing new keeps the stored state.
    let t2 = t1 + chrono::Duration::seconds(60);
    commit(engine.store.as_ref(), monitor, t2, observed(None), &ctx).unwrap();
    assert_eq!(stored(), Some(window));

    // A new state replaces it.
    let next = serde_json::json!({"offsets": [12, 15, 19]});
    let t3 = t2 + chrono::Duration::seconds(60);
    commit(
        engine.store.as_ref(),
        monitor,
        t3,
        observed(Some(next.clone())),
        &ctx,
    )
    .unwrap();
    assert_eq!(stored(), Some(next));
}
