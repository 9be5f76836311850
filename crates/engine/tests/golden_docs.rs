//! Documents the previous release stored (golden files, written by that release's code) are
//! picked up by this one: a monitor's alert state continues where it was (an open incident
//! resolves with its own id), and an alert still queued in the outbox is delivered, in the
//! current webhook format, with nothing lost.

use chrono::{TimeZone, Utc};
use std::sync::Arc;
use watchpost_engine::{Engine, Generation};
use watchpost_store::{IncidentChange, NewNotification, Transition};
use watchpost_testkit::{HttpServer, Receiver, Reply};

fn golden(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn generation(dir: &std::path::Path, body: &str) -> Arc<Generation> {
    let text = format!("storage: sqlite://{}/state.db\n{body}", dir.display());
    let config = watchpost_config::parse("test.yaml", &text).expect("a valid config");
    Arc::new(Generation::build(config).expect("channels build"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_alert_of_the_previous_release_is_delivered() {
    let mut hook = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let dir = tempfile::tempdir().unwrap();
    let generation = generation(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"{}\"}}\nmonitors: []\n",
            hook.url("/alerts")
        ),
    );
    let engine = Arc::new(Engine::open(&generation.config, "golden").unwrap());
    let payload = golden("channels/tests/golden/legacy-down.json");
    assert!(!payload.contains("\"v\""), "the golden file is unversioned");
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap();
    engine
        .store
        .transition("homepage", &mut |_| {
            Ok(Transition {
                state: "{}".into(),
                notifications: vec![NewNotification {
                    idempotency_key: "homepage:legacy:down:hook".into(),
                    channel: "hook".into(),
                    payload: payload.trim().to_string(),
                    created_at: at,
                    incident: Some("homepage:1767322500000".into()),
                }],
                incident: None,
            })
        })
        .unwrap();
    let delivered = engine.deliver_due(&generation).await.unwrap();
    assert_eq!(delivered.sent, 1, "{delivered:?}");
    let seen = hook.next().await;
    let body = seen.json();
    assert_eq!(body["version"], 2);
    assert_eq!(body["kind"], "down");
    assert_eq!(body["monitor"], "homepage");
    assert_eq!(body["incident_id"], "homepage:1767322500000");
    // The old failure strings became failures with their location and text.
    assert_eq!(body["failures"][0]["location"], "广东佛山[电信]");
    assert_eq!(body["failures"][0]["text"], "total 1430ms > 1000ms");
    assert_eq!(body["failures"][1]["location"], "hrb-unicom");
    // The old row's columns became metrics; the rendering shows them.
    let metrics = body["locations"][1]["metrics"].as_array().unwrap();
    let total = metrics.iter().find(|m| m["name"] == "total").unwrap();
    assert_eq!(total["value"], 1430.0);
    assert_eq!(total["unit"], "ms");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("1430ms") || text.contains("1.43s"), "{text}");
    assert!(
        text.contains("too many open files"),
        "the note is kept: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_state_of_the_previous_release_continues_its_incident() {
    let target = HttpServer::start(None).await;
    let mut hook = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let dir = tempfile::tempdir().unwrap();
    let generation = generation(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"{}\"}}\nmonitors:\n  - {{name: homepage, type: http, url: \"{}\", alert: {{channels: [hook]}}}}\n",
            hook.url("/alerts"),
            target.url("/")
        ),
    );
    let engine = Arc::new(Engine::open(&generation.config, "golden").unwrap());
    // The previous release left the monitor down, its incident notified and reminded twice.
    let state = golden("alerting/tests/golden/state-down-reminded.json");
    let opened = Utc.with_ymd_and_hms(2026, 11, 24, 8, 2, 0).unwrap();
    engine
        .store
        .transition("homepage", &mut |_| {
            Ok(Transition {
                state: state.trim().to_string(),
                notifications: Vec::new(),
                incident: Some(IncidentChange::Open {
                    id: "homepage:1795507320981".into(),
                    monitor: "homepage".into(),
                    opened_at: opened,
                    reason: "local: status 503 != 200".into(),
                }),
            })
        })
        .unwrap();
    // The target answers now: this release resolves that very incident.
    let report = engine.run_all(&generation, None).await;
    assert!(report.all_ok(), "{:?}", report.outcomes);
    assert_eq!(report.outcomes[0].state, "up");
    let seen = hook.next().await;
    let body = seen.json();
    assert_eq!(body["kind"], "resolved");
    assert_eq!(body["incident_id"], "homepage:1795507320981");
    assert_eq!(body["since"], "2026-11-24T08:02:00.981114250Z");
    let incidents = engine.store.incidents("homepage").unwrap();
    assert_eq!(incidents.len(), 1);
    assert!(!incidents[0].is_open(), "{incidents:?}");
    // The state is stored in this release's format now.
    let stored = engine.store.state("homepage").unwrap().unwrap();
    assert!(stored.contains("\"v\":1"), "{stored}");
}
