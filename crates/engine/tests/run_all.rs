//! `Engine::run_all` as a library: bounded concurrency and an overall deadline (a serverless
//! function's time limit), against a real local server.

use std::sync::Arc;
use std::time::{Duration, Instant};
use watchpost_engine::{Engine, Generation};
use watchpost_testkit::HttpServer;

fn generation(dir: &std::path::Path, body: &str) -> Generation {
    let text = format!("storage: sqlite://{}/state.db\n{body}", dir.display());
    let config = watchpost_config::parse("test.yaml", &text).expect("a valid config");
    Generation::build(config).expect("channels build")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overall_deadline_cuts_running_checks_and_skips_the_rest() {
    let server = HttpServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("concurrency: 1\nmonitors:\n");
    for i in 0..4 {
        body.push_str(&format!(
            "  - {{name: m{i}, type: http, url: \"http://{}/?wait=2000&n={i}\"}}\n",
            server.addr
        ));
    }
    let generation = Arc::new(generation(dir.path(), &body));
    let engine = Arc::new(Engine::open(&generation.config, "test").unwrap());
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    let report = engine.run_all(&generation, Some(deadline)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1800),
        "bounded by the deadline: {took:?}"
    );
    assert_eq!(report.outcomes.len(), 4);
    // The first check ran and was cut at the deadline: the target failed to answer in time.
    let first = &report.outcomes[0];
    assert_eq!(first.name, "m0");
    assert!(first.error.is_none() && !first.ok, "{first:?}");
    // The others never started: watchpost's own failure, not the targets'.
    for o in &report.outcomes[1..] {
        let error = o.error.as_deref().unwrap_or_default();
        assert!(error.contains("deadline"), "{}: {error}", o.name);
        assert_eq!(o.state, "unknown");
    }
    assert!(report.watchpost_failed());
    assert!(!report.all_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_deadline_every_monitor_runs_within_its_concurrency() {
    let server = HttpServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("concurrency: 2\nmonitors:\n");
    for i in 0..4 {
        body.push_str(&format!(
            "  - {{name: m{i}, type: http, url: \"http://{}/?wait=200&n={i}\"}}\n",
            server.addr
        ));
    }
    let generation = Arc::new(generation(dir.path(), &body));
    let engine = Arc::new(Engine::open(&generation.config, "test").unwrap());
    let started = Instant::now();
    let report = engine.run_all(&generation, None).await;
    // Four 200 ms checks two at a time: at least two rounds.
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(report.all_ok(), "{:?}", report.outcomes);
    assert!(!report.watchpost_failed());
    assert!(report.delivery.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_run_runs_each_monitor_once_per_fire_time_and_reports_the_rest_as_skipped() {
    use watchpost_engine::Selection;
    let server = HttpServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    // Yearly: it fired once this year and won't again during the test.
    let body = format!(
        "monitors:\n\
         \x20 - {{name: yearly, type: http, url: \"http://{0}/\", schedule: \"0 0 0 1 1 *\"}}\n\
         \x20 - {{name: other, type: http, url: \"http://{0}/\", schedule: \"0 0 0 1 1 *\"}}\n",
        server.addr
    );
    let generation = Arc::new(generation(dir.path(), &body));
    let engine = Arc::new(Engine::open(&generation.config, "test").unwrap());

    let only_yearly = Selection {
        names: Some(vec!["yearly".into(), "nope".into()]),
        due: true,
        at: None,
    };
    assert_eq!(only_yearly.unknown(&generation.config), ["nope"]);
    let first = engine.run_selected(&generation, &only_yearly, None).await;
    let ran: Vec<_> = first.outcomes.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(ran, ["yearly"], "never run before: due");
    assert!(first.skipped.is_empty());
    assert!(first.all_ok() && !first.watchpost_failed());

    let second = engine
        .run_selected(&generation, &Selection::due(), None)
        .await;
    let ran: Vec<_> = second.outcomes.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(ran, ["other"]);
    let skipped: Vec<_> = second.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["yearly"]);
    assert!(second.skipped[0].next.unwrap() > chrono::Utc::now());
    assert!(second.all_ok() && !second.watchpost_failed());

    // Not due: every monitor skipped, nothing failed.
    let third = engine
        .run_selected(&generation, &Selection::due(), None)
        .await;
    assert!(third.outcomes.is_empty());
    assert_eq!(third.skipped.len(), 2);
    assert!(third.all_ok() && !third.watchpost_failed());

    // The default runs everything regardless.
    let all = engine.run_all(&generation, None).await;
    assert_eq!(all.outcomes.len(), 2);
    assert!(all.skipped.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_minute_trigger_over_ten_simulated_minutes_runs_a_five_minute_monitor_twice() {
    use watchpost_engine::Selection;
    let server = HttpServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "timezone: Asia/Shanghai\nmonitors:\n\
         \x20 - {{name: five, type: http, url: \"http://{0}/\", schedule: \"0 */5 * * * * *\"}}\n\
         \x20 - {{name: minute, type: http, url: \"http://{0}/\", every: 1m}}\n\
         \x20 - {{name: daily, type: http, url: \"http://{0}/\", schedule: \"0 0 9 * * * *\"}}\n",
        server.addr
    );
    let generation = Arc::new(generation(dir.path(), &body));
    let engine = Arc::new(Engine::open(&generation.config, "test").unwrap());
    // A timer at 30 s past each minute, 12:00:30 to 12:09:30 UTC; `daily` (09:00 in Shanghai,
    // 01:00 UTC) ran before, for today's fire time.
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:30Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let today = chrono::DateTime::parse_from_rfc3339("2026-11-30T01:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        engine
            .store
            .claim_fired(start, &[("daily".into(), today)])
            .unwrap(),
        ["daily"]
    );
    let mut runs: std::collections::BTreeMap<String, usize> = Default::default();
    for minute in 0..10 {
        let selection = Selection {
            at: Some(start + chrono::TimeDelta::minutes(minute)),
            ..Selection::due()
        };
        let report = engine.run_selected(&generation, &selection, None).await;
        assert!(report.all_ok() && !report.watchpost_failed());
        assert_eq!(report.outcomes.len() + report.skipped.len(), 3);
        for o in &report.outcomes {
            *runs.entry(o.name.clone()).or_default() += 1;
        }
    }
    assert_eq!(runs.get("five"), Some(&2), "{runs:?}");
    assert_eq!(runs.get("minute"), Some(&10), "{runs:?}");
    assert_eq!(runs.get("daily"), None, "{runs:?}");
}
