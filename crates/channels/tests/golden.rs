//! Stored alert documents (tests/golden/) load, render and deliver.
//!
//! `legacy-*.json` were written by the release before alert documents were versioned (its
//! code serializing its `Alert` the way its outbox did: `serde_json::to_value`, then
//! `to_string`); `v1-*.json` by this one ([`Alert::to_json`]). Each is read back, rendered and
//! posted through a webhook channel to a real HTTP receiver on 127.0.0.1.

mod common;

use common::build;
use serde_json::{Value, json};
use watchpost_channels::{Alert, AlertKind, Channel, Locale};
use watchpost_testkit::{Receiver, Reply};

fn golden(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Load `name` both ways the outbox can (explicitly and through serde), checking they agree.
fn load(name: &str) -> Alert {
    let text = golden(name);
    let alert = Alert::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let via_serde: Alert = serde_json::from_str(&text).unwrap();
    assert_eq!(via_serde, alert, "{name}");
    alert
}

/// Post `alert` through a webhook channel (the standard payload, then a template written
/// for the payload's version 1) and return the two bodies as received.
async fn deliver(alert: &Alert, locale: Locale) -> (Value, String) {
    let mut rx = Receiver::start(vec![Reply::status(204, ""), Reply::status(204, "")]).await;
    let standard = build(json!({"type": "webhook", "url": rx.url("/hook")}));
    let templated = build(json!({
        "type": "webhook",
        "url": rx.url("/sms"),
        "content_type": "text/plain",
        "template": "{{ status }} {{ monitor }}: {{ failures[0] if failures else '-' }}",
    }));
    for channel in [&standard, &templated] {
        assert!(matches!(channel, Channel::Webhook(_)));
        let delivery = channel.send(alert, locale).await.unwrap();
        assert_eq!(delivery.status, Some(204));
    }
    let payload = rx.next().await;
    assert_eq!(payload.uri, "/hook");
    assert_eq!(
        payload.header("idempotency-key"),
        alert.idempotency_key(),
        "the key is the stored alert's"
    );
    let templated = rx.next().await;
    assert_eq!(templated.uri, "/sms");
    (
        payload.json(),
        String::from_utf8(templated.body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn a_down_alert_of_the_previous_release_loads_renders_and_delivers() {
    let a = load("legacy-down.json");
    assert_eq!(a.kind, AlertKind::Down);
    assert_eq!(a.monitor, "homepage");
    assert_eq!(a.check.as_deref(), Some("http"));
    assert_eq!(a.timezone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(a.notes.len(), 1);
    assert_eq!(a.columns, ["status", "total", "connect", "download"]);
    // Failure strings were `LOCATION: TEXT`, the location one of the alert's rows: that
    // much is split off; the sentence is kept as written (no operand is guessed from it).
    assert_eq!(a.failures.len(), 2);
    assert_eq!(a.failures[0].location, "广东佛山[电信]");
    assert_eq!(a.failures[0].text, "total 1430ms > 1000ms");
    assert_eq!(a.failures[0].actual, a.failures[0].text);
    assert_eq!(a.failures[0].operand, "");
    assert_eq!(a.failures[1].location, "hrb-unicom");
    assert_eq!(a.failures[1].text, "connect refused: connection refused");
    assert_eq!(a.message, None);

    let en = a.plain(Locale::En);
    assert!(
        en.contains(
            "Failing conditions:\n  - 广东佛山[电信]: total 1430ms > 1000ms\n  - hrb-unicom: \
             connect refused: connection refused\n"
        ),
        "{en}"
    );
    assert!(
        en.contains(
            "Location        Result  Status   Total  Connect  Download  Error\n\
             local           OK         200   251ms  0.080ms     100ms\n\
             广东佛山[电信]  FAIL       200  1430ms   27.0ms    17.0ms\n\
             hrb-unicom      FAIL         -   3.9ms        -         -  connect refused\n"
        ),
        "{en}"
    );
    assert!(
        en.contains("Time:        2026-01-02 11:00:00 +08:00\n"),
        "{en}"
    );
    assert!(
        en.contains("Note: watchpost could not run 2 checks"),
        "{en}"
    );
    let zh = a.markdown_lite(Locale::ZhCn);
    assert!(
        zh.contains("- **广东佛山[电信]**： 异常 · 状态码 200 · 总耗时 1430ms · 连接耗时 27.0ms · 下载耗时 17.0ms\n"),
        "{zh}"
    );

    let (payload, templated) = deliver(&a, Locale::ZhCn).await;
    assert_eq!(payload["version"], 2);
    assert_eq!(payload["kind"], "down");
    assert_eq!(payload["incident_id"], "homepage:1767322500000");
    assert_eq!(payload["since"], "2026-01-02T02:55:00Z");
    assert_eq!(
        payload["failures"][0],
        json!({"location": "广东佛山[电信]", "operand": "", "op": "", "expected": "",
               "actual": "total 1430ms > 1000ms",
               "text": "total 1430ms > 1000ms"})
    );
    assert_eq!(
        payload["locations"][1]["metrics"],
        json!([
            {"name": "status", "value": 200.0, "unit": "count"},
            {"name": "total", "value": 1430.0, "unit": "ms"},
            {"name": "connect", "value": 27.0, "unit": "ms"},
            {"name": "download", "value": 17.0, "unit": "ms"},
        ])
    );
    assert_eq!(payload["locations"][2]["error"], "connect refused");
    assert_eq!(payload["text"], a.plain(Locale::ZhCn));
    // A template written for the old payload prints the old failure string.
    assert_eq!(
        templated,
        "故障 homepage: 广东佛山[电信]: total 1430ms > 1000ms"
    );
}

#[tokio::test]
async fn a_test_alert_of_the_previous_release_keeps_its_message() {
    let a = load("legacy-test.json");
    assert_eq!(a.kind, AlertKind::Test);
    assert_eq!(
        a.message.as_deref(),
        Some("hello from the previous release")
    );
    assert!(a.failures.is_empty() && a.locations.is_empty() && a.columns.is_empty());
    let en = a.plain(Locale::En);
    assert!(
        en.contains("Message:\n  - hello from the previous release\n"),
        "{en}"
    );
    assert!(en.contains("Time:  2026-01-02 11:01:02 +08:00\n"), "{en}");
    let (payload, templated) = deliver(&a, Locale::En).await;
    assert_eq!(payload["kind"], "test");
    assert_eq!(payload["message"], "hello from the previous release");
    assert_eq!(payload["failures"], json!([]));
    assert_eq!(templated, "TEST ops-hook: hello from the previous release");
}

#[tokio::test]
async fn version_1_documents_load_unchanged_render_and_deliver() {
    for name in ["v1-down.json", "v1-test.json"] {
        let text = golden(name);
        let a = load(name);
        // Written again, byte for byte the same document.
        assert_eq!(a.to_json(), text.trim_end(), "{name}");
    }
    let a = load("v1-down.json");
    let zh = a.plain(Locale::ZhCn);
    assert!(
        zh.contains(
            "位置            结果  状态码  DNS解析  连接耗时  TLS握手  等待响应  下载耗时  总耗时  错误\n"
        ),
        "{zh}"
    );
    let (payload, templated) = deliver(&a, Locale::En).await;
    let stored: Value = serde_json::from_str(&golden("v1-down.json")).unwrap();
    assert_eq!(payload["failures"], stored["failures"]);
    assert_eq!(payload["locations"], stored["locations"]);
    assert_eq!(payload["columns"], stored["columns"]);
    assert_eq!(payload["failures"][1]["operand"], "error");
    assert_eq!(
        templated,
        "DOWN homepage: 广东佛山[电信]: total 1430ms > 1000ms"
    );

    let t = load("v1-test.json");
    let (payload, templated) = deliver(&t, Locale::ZhCn).await;
    assert_eq!(payload["message"], "hello from version 1");
    assert_eq!(templated, "测试 ops-hook: hello from version 1");
}

#[test]
fn a_document_from_a_newer_version_is_refused_with_a_reason() {
    let mut doc: Value = serde_json::from_str(&golden("v1-down.json")).unwrap();
    doc["v"] = json!(2);
    let e = Alert::from_json(&doc.to_string()).unwrap_err();
    assert!(
        e.to_string()
            .contains("alert document version 2 is newer than this watchpost reads"),
        "{e}"
    );
}
