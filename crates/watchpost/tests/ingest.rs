//! `POST /api/v1/ingest` and `POST /api/v1/agent/assignment` on a running `watchpost run`:
//! who may push what, and that nothing of a refused push is stored while a re-sent one is
//! stored once.

mod common;

use common::{Daemon, free_port, http_post, stored_observations, wait_for, write_config};
use std::time::Duration;

const GZ: &str = "gz-token-0123456789abcdef";
const HRB: &str = "hrb-token-0123456789abcdef";

fn config(dir: &std::path::Path, target: u16) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            r#"locations:
  gz: {{region: 广东佛山, isp: 电信, token: "${{GZ_TOKEN}}"}}
  hrb: {{region: 黑龙江哈尔滨, isp: 联通, token: "${{HRB_TOKEN}}"}}
monitors:
  - name: shop
    type: http
    url: "http://127.0.0.1:{target}/?key=${{SHOP_KEY}}"
    schedule: "*/10 * * * * *"
    locations: [gz, hrb]
  - name: only-hrb
    type: tcp
    address: 127.0.0.1:{target}
    schedule: "*/10 * * * * *"
    locations: [hrb]
"#
        ),
    )
}

fn start(dir: &std::path::Path) -> Daemon {
    let target = free_port();
    let config = config(dir, target);
    Daemon::start(
        &config,
        &[
            ("GZ_TOKEN", GZ.to_string()),
            ("HRB_TOKEN", HRB.to_string()),
            ("SHOP_KEY", "shop-secret-key-42".to_string()),
        ],
    )
}

/// A slot of the `*/10 s` schedules: the last multiple of ten seconds.
fn slot() -> String {
    let now = chrono::Utc::now().timestamp();
    chrono::DateTime::from_timestamp(now - now % 10, 0)
        .unwrap()
        .to_rfc3339()
}

fn observation(monitor: &str, slot: &str, ok: bool) -> serde_json::Value {
    serde_json::json!({
        "monitor": monitor, "slot": slot, "at": slot, "ok": ok,
        "failures": if ok { serde_json::json!([]) } else {
            serde_json::json!([{"operand": "status", "op": "==", "expected": "200", "actual": "503", "text": "status 503 != 200"}])
        },
        "metrics": [{"name": "total", "value": 12.5, "unit": "ms"}],
        "report": {"kind": "http", "ok": ok, "echo": "shop-secret-key-42"}
    })
}

fn batch(location: &str, observations: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "v": 1, "location": location, "agent": "test", "seq": 1, "dropped": 0,
        "observations": observations
    }))
    .unwrap()
}

fn push(port: u16, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let headers: Vec<&str> = auth.iter().map(String::as_str).collect();
    http_post(port, "/api/v1/ingest", &headers, body).expect("the server answers")
}

async fn ready(d: &Daemon) {
    wait_for("the daemon to listen", Duration::from_secs(20), || {
        common::healthz(d.port).is_some()
    })
    .await;
}

#[tokio::test]
async fn refused_pushes_store_nothing_and_a_resent_push_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    ready(&d).await;
    let s = slot();
    let good = batch("gz", vec![observation("shop", &s, false)]);

    // No token, a wrong token, another location's token (hrb's token for gz's body).
    let (code, body) = push(d.port, None, &good);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("Authorization"), "{body}");
    let (code, body) = push(d.port, Some("not-a-token-of-anyone-here"), &good);
    assert_eq!(code, 401, "{body}");
    let (code, body) = push(d.port, Some(HRB), &good);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"gz\""), "{body}");
    // A monitor not assigned to the location.
    let (code, body) = push(
        d.port,
        Some(GZ),
        &batch("gz", vec![observation("only-hrb", &s, true)]),
    );
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("only-hrb") && body.contains("not assigned"),
        "{body}"
    );
    // A valid observation next to an unassigned one: the whole push is refused.
    let (code, _) = push(
        d.port,
        Some(GZ),
        &batch(
            "gz",
            vec![observation("shop", &s, true), observation("nope", &s, true)],
        ),
    );
    assert_eq!(code, 403);
    // Malformed: not JSON, unknown version, a slot off the schedule, too far in the future,
    // too many observations, a field of the wrong type, an unknown field.
    let off = (chrono::DateTime::parse_from_rfc3339(&s).unwrap() + chrono::Duration::seconds(3))
        .to_rfc3339();
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let mut v2: serde_json::Value = serde_json::from_slice(&good).unwrap();
    v2["v"] = 2.into();
    let mut typo: serde_json::Value = serde_json::from_slice(&good).unwrap();
    typo["observations"][0]["okay"] = true.into();
    let mut wrong_type: serde_json::Value = serde_json::from_slice(&good).unwrap();
    wrong_type["observations"][0]["ok"] = "yes".into();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "not a batch"),
        (serde_json::to_vec(&v2).unwrap(), "v: unknown version 2"),
        (
            batch("gz", vec![observation("shop", &off, true)]),
            "observations[0].slot",
        ),
        (
            batch("gz", vec![observation("shop", &future, true)]),
            "in the future",
        ),
        (
            batch(
                "gz",
                (0..501).map(|_| observation("shop", &s, true)).collect(),
            ),
            "at most 500",
        ),
        (serde_json::to_vec(&typo).unwrap(), "okay"),
        (serde_json::to_vec(&wrong_type).unwrap(), "not a batch"),
    ];
    for (body, why) in cases {
        let (code, answer) = push(d.port, Some(GZ), &body);
        assert_eq!(code, 400, "{why}: {answer}");
        assert!(answer.contains(why), "{why}: {answer}");
    }
    // Oversized: 5 MiB.
    let mut huge = batch("gz", vec![observation("shop", &s, true)]);
    huge.truncate(huge.len() - 2);
    huge.extend(std::iter::repeat_n(b' ', 5 << 20));
    huge.extend_from_slice(b"]}");
    let (code, _) = push(d.port, Some(GZ), &huge);
    assert_eq!(code, 413);
    assert!(
        stored_observations(dir.path()).is_empty(),
        "a refused push stored something"
    );

    // Taken, then the same push again: stored once.
    let (code, body) = push(d.port, Some(GZ), &good);
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["stored"], 1);
    assert_eq!(answer["duplicates"], 0);
    assert_eq!(answer["generation"].as_str().unwrap().len(), 16);
    let (code, body) = push(d.port, Some(GZ), &good);
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (answer["stored"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        stored_observations(dir.path()),
        [("gz".to_string(), 1)].into()
    );
    // The secret the agent echoed is stored masked.
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let data: String = db
        .query_row("SELECT data FROM observations", [], |r| r.get(0))
        .unwrap();
    assert!(!data.contains("shop-secret-key-42"), "{data}");
    assert!(data.contains("${SHOP_KEY}"), "{data}");
    assert!(
        !d.log().contains(GZ) && !d.log().contains(HRB),
        "a token was logged"
    );

    // An agent whose buffer overflowed says how many it dropped: logged and counted.
    let mut lossy: serde_json::Value = serde_json::from_slice(&good).unwrap();
    lossy["dropped"] = 7.into();
    let (code, body) = push(d.port, Some(GZ), &serde_json::to_vec(&lossy).unwrap());
    assert_eq!(code, 200, "{body}");
    let (_, page) = common::http_get(d.port, "/metrics").unwrap();
    assert!(
        page.contains("watchpost_location_dropped_total{location=\"gz\"} 7"),
        "{page}"
    );
    assert!(
        page.contains("watchpost_location_observations_total{location=\"gz\"} 1"),
        "{page}"
    );
    assert!(
        d.log().contains("its agent dropped 7 observation(s)"),
        "{}",
        d.log()
    );
}

#[tokio::test]
async fn an_agent_gets_only_its_monitors_and_the_values_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    ready(&d).await;
    let post = |token: &str, location: &str| {
        let auth = format!("Authorization: Bearer {token}");
        let loc = format!("X-Watchpost-Location: {location}");
        http_post(d.port, "/api/v1/agent/assignment", &[&auth, &loc], b"{}").unwrap()
    };
    let (code, body) = post(GZ, "gz");
    assert_eq!(code, 200, "{body}");
    let a: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(a["v"], 1);
    assert_eq!(a["location"], "gz");
    let config: serde_json::Value = serde_json::from_str(a["config"].as_str().unwrap()).unwrap();
    let names: Vec<&str> = config["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop"]);
    assert!(config["monitors"][0].get("locations").is_none());
    assert_eq!(a["env"]["SHOP_KEY"], "shop-secret-key-42");
    assert!(a["env"].get("GZ_TOKEN").is_none(), "{body}");
    // Another location's name with this token, or no token.
    assert_eq!(post(GZ, "hrb").0, 401);
    assert_eq!(post("x", "gz").0, 401);
}
