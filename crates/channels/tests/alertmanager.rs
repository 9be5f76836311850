//! The Alertmanager channel against a real HTTP receiver on 127.0.0.1 standing in for
//! Alertmanager's API v2: the path, the exact alert objects (labels, annotations, startsAt,
//! endsAt for down, resolved and test alerts), merging, and how answers are classified.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::{at, build, try_build, with};
use serde_json::{Value, json};
use std::time::Duration;
use watchpost_channels::{
    Alert, AlertKind, Alertmanager, Channel, ChannelConfig, FailedCondition, Locale, LocationRow,
    SendError,
};
use watchpost_testkit::{Receiver, Reply};

/// The shared down alert with a second failure, and `local` as its only (failing) location.
fn alert() -> Alert {
    let mut a = common::alert(AlertKind::Down);
    a.failures.push(FailedCondition {
        location: "hrb-unicom".into(),
        operand: "error".into(),
        actual: "connect refused".into(),
        text: "connect refused".into(),
        ..FailedCondition::default()
    });
    a.locations = vec![LocationRow {
        location: "local".into(),
        ..a.locations[1].clone()
    }];
    a
}

fn am(settings: Value) -> Alertmanager {
    match build(settings) {
        Channel::Alertmanager(a) => a,
        other => panic!("{other:?}"),
    }
}

fn to(rx: &Receiver) -> Alertmanager {
    am(json!({"type": "alertmanager", "url": rx.url("")}))
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_down_alert_fires_until_ends_after() {
    let mut rx = Receiver::start(vec![Reply::json(200, "")]).await;
    let a = am(json!({
        "type": "alertmanager",
        "url": rx.url(""),
        "labels": {"team": "web", "severity": "page"},
        "headers": {"Authorization": "Bearer am-token"},
        "generator_url": "https://watchpost.example.com/",
    }));
    let before = Utc::now();
    let delivery = a.send(&[alert()], Locale::En).await.unwrap();
    let after = Utc::now();
    assert_eq!(delivery.status, Some(200));

    let seen = rx.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/api/v2/alerts");
    assert_eq!(seen.header("content-type"), "application/json");
    assert_eq!(seen.header("authorization"), "Bearer am-token");
    let mut body = seen.json();
    // Sent now (the alert's time is in the past): endsAt = now + 24h, never in the past.
    let ends = time(&body[0]["endsAt"]);
    let day = TimeDelta::hours(24);
    assert!(
        ends >= before + day - TimeDelta::seconds(1) && ends <= after + day,
        "{ends}"
    );
    body[0]["endsAt"] = json!("checked");
    assert_eq!(
        body,
        json!([{
            "labels": {
                "alertname": "watchpost",
                "monitor": "homepage",
                "severity": "page",
                "source": "watchpost",
                "team": "web",
            },
            "annotations": {
                "title": "[DOWN] homepage",
                "summary": "homepage is DOWN.",
                "description": "广东佛山[电信]: total 1430ms > 1000ms\nhrb-unicom: connect refused",
                "url": "https://www.example.com/",
                "incident": "homepage:1767322800000",
                // Every HTTP phase.
                "locations": "Location  Result  Status     DNS  Connect     TLS    Wait  Download   Total\n\
                              local     FAIL       200  12.0ms   27.0ms  55.0ms  1319ms    17.0ms  1430ms",
            },
            "startsAt": "2026-01-02T02:55:00Z",
            "endsAt": "checked",
            "generatorURL": "https://watchpost.example.com/",
        }])
    );
}

#[test]
fn ends_at_is_computed_from_the_later_of_the_alert_and_sending() {
    let a = am(json!({"type": "alertmanager", "url": "http://127.0.0.1:9093", "ends_after": "2h"}));
    // Sent on time: from the alert's time.
    let body = a.body(&[alert()], Locale::En, at(3, 0, 0));
    assert_eq!(body[0]["startsAt"], "2026-01-02T02:55:00Z");
    assert_eq!(body[0]["endsAt"], "2026-01-02T05:00:00Z");
    // Delivered late (Alertmanager was down): from the sending, so it is not resolved at once.
    let body = a.body(&[alert()], Locale::En, at(9, 30, 0));
    assert_eq!(body[0]["endsAt"], "2026-01-02T11:30:00Z");
    // A reminder moves it on.
    let mut r = alert();
    r.kind = AlertKind::Reminder;
    r.at = at(4, 0, 0);
    let body = a.body(&[r], Locale::En, at(4, 0, 0));
    assert_eq!(body[0]["startsAt"], "2026-01-02T02:55:00Z");
    assert_eq!(body[0]["endsAt"], "2026-01-02T06:00:00Z");
    // Without `since`, it starts at the alert's time; sub-second times keep their fraction.
    let mut d = alert();
    d.since = None;
    d.at = at(3, 0, 0) + TimeDelta::milliseconds(250);
    let body = a.body(&[d], Locale::En, at(3, 0, 0));
    assert_eq!(body[0]["startsAt"], "2026-01-02T03:00:00.250Z");
}

#[tokio::test]
async fn a_resolved_alert_ends_when_it_recovered() {
    let mut rx = Receiver::start(vec![Reply::json(200, "")]).await;
    let mut a = alert();
    a.kind = AlertKind::Resolved;
    a.at = at(4, 12, 30);
    to(&rx).send(&[a], Locale::ZhCn).await.unwrap();
    let body = rx.next().await.json();
    assert_eq!(
        body,
        json!([{
            "labels": {
                "alertname": "watchpost",
                "monitor": "homepage",
                "severity": "critical",
                "source": "watchpost",
            },
            "annotations": {
                "title": "【恢复】homepage",
                "summary": "监控 homepage 已恢复（故障持续 1小时17分钟）。",
                "description": "广东佛山[电信]: total 1430ms > 1000ms\nhrb-unicom: connect refused",
                "url": "https://www.example.com/",
                "incident": "homepage:1767322800000",
                "locations": "位置   结果  状态码  DNS解析  连接耗时  TLS握手  等待响应  下载耗时  总耗时\n\
                              local  异常     200   12.0ms    27.0ms   55.0ms    1319ms    17.0ms  1430ms",
            },
            "startsAt": "2026-01-02T02:55:00Z",
            "endsAt": "2026-01-02T04:12:30Z",
        }])
    );
}

#[tokio::test]
async fn a_test_alert_has_its_own_name_and_goes_away() {
    let mut rx = Receiver::start(vec![Reply::json(200, "")]).await;
    let t = Alert::test("am", Some("hello from ops".into()), Utc::now());
    to(&rx)
        .send(std::slice::from_ref(&t), Locale::En)
        .await
        .unwrap();
    let body = rx.next().await.json();
    let ends = time(&body[0]["endsAt"]);
    let starts = time(&body[0]["startsAt"]);
    // Five minutes from sending (a moment after the alert was made).
    let lasts = ends - starts;
    assert!(
        lasts >= TimeDelta::minutes(5) && lasts < TimeDelta::minutes(5) + TimeDelta::seconds(5),
        "{lasts}"
    );
    assert_eq!(
        body[0]["labels"],
        json!({"alertname": "watchpost_test", "monitor": "am", "severity": "critical", "source": "watchpost"})
    );
    assert_eq!(
        body[0]["annotations"],
        json!({
            "title": "[TEST] am",
            "summary": "This is a test alert from watchpost; no action is needed.",
            "description": "hello from ops",
        })
    );
}

#[tokio::test]
async fn several_alerts_go_in_one_request() {
    let mut rx = Receiver::start(vec![Reply::json(200, "")]).await;
    let channel = Channel::Alertmanager(to(&rx));
    assert!(channel.merges());
    let mut b = alert();
    b.monitor = "api".into();
    b.kind = AlertKind::Resolved;
    let mut c = alert();
    c.monitor = "db".into();
    channel
        .send_many(&[alert(), b, c], Locale::En)
        .await
        .unwrap();
    let body = rx.next().await.json();
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
    let monitors: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["monitor"].as_str().unwrap())
        .collect();
    assert_eq!(monitors, ["homepage", "api", "db"]);
    assert_eq!(body[1]["endsAt"], "2026-01-02T03:00:00Z");
    // No rate limit: another send goes at once.
    channel.send(&alert(), Locale::En).await.unwrap();
    rx.next().await;
}

#[tokio::test]
async fn base_urls_with_a_prefix_or_the_full_path() {
    let mut rx = Receiver::start(vec![Reply::json(200, "")]).await;
    for (url, path) in [
        ("/alertmanager", "/alertmanager/api/v2/alerts"),
        ("/api/v2/alerts", "/api/v2/alerts"),
        ("/am/api/v2/alerts/?tenant=a", "/am/api/v2/alerts?tenant=a"),
    ] {
        am(json!({"type": "alertmanager", "url": rx.url(url)}))
            .send(&[alert()], Locale::En)
            .await
            .unwrap();
        assert_eq!(rx.next().await.uri, path);
    }
}

async fn answer(reply: Reply) -> SendError {
    let mut rx = Receiver::start(vec![reply]).await;
    let e = to(&rx).send(&[alert()], Locale::En).await.unwrap_err();
    rx.next().await;
    e
}

#[tokio::test]
async fn answers_are_classified() {
    let e = answer(Reply::json(400, "\"start time must be before end time\"")).await;
    assert_eq!(
        e,
        SendError::fatal("alertmanager: HTTP 400 Bad Request: start time must be before end time")
    );
    let e = answer(Reply::json(
        422,
        r#"{"code":602,"message":"0.startsAt in body must be of type date-time"}"#,
    ))
    .await;
    assert!(!e.is_retryable(), "{e}");
    assert!(e.message().contains("must be of type date-time"), "{e}");
    let e = answer(Reply::status(401, "Unauthorized")).await;
    assert!(!e.is_retryable(), "{e}");
    let e = answer(Reply::json(500, "\"failed to create alerts\"")).await;
    assert_eq!(
        e,
        SendError::retryable(
            "alertmanager: HTTP 500 Internal Server Error: failed to create alerts"
        )
    );
    let e = answer(Reply::status(429, "slow down").header("retry-after", "30")).await;
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    let e = answer(Reply::status(503, "")).await;
    assert!(e.is_retryable());
}

#[test]
fn config_errors_and_debug() {
    let base = |extra: Value| {
        with(
            json!({"type": "alertmanager", "url": "http://127.0.0.1:9093"}),
            extra,
        )
    };
    try_build(base(json!({}))).unwrap();
    for (labels, want) in [
        (
            json!({"team-name": "x"}),
            "\"team-name\" is not a label name",
        ),
        (json!({"1st": "x"}), "\"1st\" is not a label name"),
        (json!({"__meta": "x"}), "reserved for Prometheus"),
        (json!({"alertname": "x"}), "alertname is set by watchpost"),
        (json!({"monitor": "x"}), "monitor is set by watchpost"),
        (json!({"team": ""}), "team: the value is empty"),
    ] {
        let e = try_build(base(json!({"labels": labels}))).unwrap_err();
        assert!(e.0.starts_with("alertmanager: labels: "), "{e}");
        assert!(e.0.contains(want), "{e}");
    }
    let e = try_build(base(json!({"url": "ftp://am:9093"}))).unwrap_err();
    assert!(e.0.starts_with("alertmanager: url: scheme \"ftp\""), "{e}");
    let e = try_build(base(json!({"url": "am:9093:x"}))).unwrap_err();
    assert!(e.0.starts_with("alertmanager: url:"), "{e}");
    let e = try_build(base(json!({"url": "http://am:9093/api/v1/alerts"}))).unwrap_err();
    assert!(e.0.contains("API v1 was removed"), "{e}");
    let e = try_build(base(json!({"headers": {"Content-Type": "text/plain"}}))).unwrap_err();
    assert!(e.0.contains("set by watchpost"), "{e}");
    let e = try_build(base(json!({"ends_after": "10s"}))).unwrap_err();
    assert!(e.0.contains("ends_after: must be at least 1m"), "{e}");
    let e = try_build(base(json!({"ends_after": "soon"}))).unwrap_err();
    assert!(e.0.contains("ends_after"), "{e}");
    let e = try_build(base(json!({"generator_url": "/dashboard"}))).unwrap_err();
    assert!(e.0.contains("generator_url"), "{e}");
    let e = try_build(base(json!({"severity": "page"}))).unwrap_err();
    assert!(e.0.contains("unknown field `severity`"), "{e}");

    let c = ChannelConfig::from_value(base(json!({
        "url": "https://am.example.com/tenant-SECRET/",
        "headers": {"Authorization": "Bearer SECRET-TOKEN"},
    })))
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("Authorization"), "{shown}");
    let channel = c.build().unwrap();
    assert!(!format!("{channel:?}").contains("SECRET"), "{channel:?}");
}

#[tokio::test]
async fn a_tls_alert_carries_its_certificate_days() {
    let mut rx = Receiver::start(vec![Reply::json(200, ""), Reply::json(200, "")]).await;
    let channel = to(&rx);
    for (locale, table) in [
        (
            Locale::En,
            "Location  Result  Connect     TLS   Total  Cert days\n\
             local     FAIL     11.0ms  35.2ms  47.1ms       9.5d",
        ),
        (
            Locale::ZhCn,
            "位置   结果  连接耗时  TLS握手  总耗时  证书剩余\n\
             local  异常    11.0ms   35.2ms  47.1ms      9.5d",
        ),
    ] {
        channel.send(&[common::tls_alert()], locale).await.unwrap();
        let body = rx.next().await.json();
        let annotations = &body[0]["annotations"];
        assert_eq!(annotations["locations"], table, "{annotations}");
        assert_eq!(annotations["description"], "local: cert_days 9.5d > 14");
        assert_eq!(annotations["url"], "tls://mail.example.com:465");
    }
}
