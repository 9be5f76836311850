//! The webhook channel against a real HTTP receiver on 127.0.0.1 (hyper's server, plain and
//! TLS with a test CA): the exact request, and how each kind of answer is classified.

mod common;

use common::{alert, build, pem_file};
use hyper::HeaderMap;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use watchpost_channels::{AlertKind, Channel, Delivery, Locale, SendError, Webhook, WebhookConfig};
use watchpost_testkit::{Receiver, Reply, TestCa};

fn webhook(url: String, timeout: &str) -> Webhook {
    match build(json!({
        "type": "webhook",
        "url": url,
        "headers": {"Authorization": "Bearer t0ken", "X-Team": "ops"},
        "timeout": timeout,
    })) {
        Channel::Webhook(w) => w,
        other => panic!("{other:?}"),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn posts_the_documented_payload_with_its_headers() {
    let mut rx = Receiver::start(vec![Reply::status(200, "{\"ok\":true}")]).await;
    let a = alert(AlertKind::Down);
    let w = webhook(rx.url("/hooks/watchpost?key=abc"), "5s");
    let delivery = w.send(&a, Locale::ZhCn).await.unwrap();
    assert_eq!(
        delivery,
        Delivery {
            status: Some(200),
            body: "{\"ok\":true}".into()
        }
    );

    let seen = rx.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/hooks/watchpost?key=abc");
    let h = &seen.headers;
    assert_eq!(header(h, "host"), rx.addr.to_string());
    assert_eq!(header(h, "content-type"), "application/json");
    assert_eq!(
        header(h, "idempotency-key"),
        "homepage:1767322800000:down:1767322800000"
    );
    assert_eq!(header(h, "user-agent"), "watchpost/0.1.0");
    assert_eq!(header(h, "authorization"), "Bearer t0ken");
    assert_eq!(header(h, "x-team"), "ops");
    assert_eq!(header(h, "content-length"), seen.body.len().to_string());
    assert_eq!(h.len(), 7, "{h:?}");

    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    let expected = json!({
        "version": 2,
        "kind": "down",
        "monitor": "homepage",
        "incident_id": "homepage:1767322800000",
        "idempotency_key": "homepage:1767322800000:down:1767322800000",
        "at": "2026-01-02T03:00:00Z",
        "since": "2026-01-02T02:55:00Z",
        "locale": "zh-CN",
        "title": "【故障】homepage",
        "text": a.plain(Locale::ZhCn),
        "markdown": a.markdown(Locale::ZhCn),
        "check": "http",
        "url": "https://www.example.com/",
        "message": null,
        "failures": [{"location": "广东佛山[电信]", "operand": "total", "op": ">",
                      "expected": "1000ms", "actual": "1430ms", "text": "total 1430ms > 1000ms"}],
        "columns": ["status", "dns", "connect", "tls", "wait", "download", "total"],
        "locations": [
            {"location": "local", "ok": true, "error": null, "metrics": [
                {"name": "status", "value": 200.0, "unit": "count"},
                {"name": "dns", "value": 1.2, "unit": "ms"},
                {"name": "connect", "value": 0.08, "unit": "ms"},
                {"name": "tls", "value": 3.4, "unit": "ms"},
                {"name": "wait", "value": 140.5, "unit": "ms"},
                {"name": "download", "value": 100.2, "unit": "ms"},
                {"name": "total", "value": 250.8, "unit": "ms"},
            ]},
            {"location": "广东佛山[电信]", "ok": false, "error": null, "metrics": [
                {"name": "status", "value": 200.0, "unit": "count"},
                {"name": "dns", "value": 12.0, "unit": "ms"},
                {"name": "connect", "value": 27.0, "unit": "ms"},
                {"name": "tls", "value": 55.0, "unit": "ms"},
                {"name": "wait", "value": 1319.0, "unit": "ms"},
                {"name": "download", "value": 17.0, "unit": "ms"},
                {"name": "total", "value": 1430.0, "unit": "ms"},
            ]},
        ],
        "notes": [],
    });
    assert_eq!(body, expected);
    // Machine fields are UTC; the texts show the alert's zone (Asia/Shanghai).
    assert!(
        a.plain(Locale::ZhCn)
            .contains("时间：2026-01-02 11:00:00 +08:00")
    );
    // Keys in the documented order.
    let text = std::str::from_utf8(&seen.body).unwrap();
    let order = [
        "\"version\"",
        "\"kind\"",
        "\"monitor\"",
        "\"incident_id\"",
        "\"idempotency_key\"",
        "\"at\"",
        "\"since\"",
        "\"locale\"",
        "\"title\"",
        "\"text\"",
        "\"markdown\"",
        "\"check\"",
        "\"url\"",
        "\"message\"",
        "\"failures\"",
        "\"columns\"",
        "\"locations\"",
        "\"notes\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");

    let plain = body["text"].as_str().unwrap();
    assert!(plain.contains("位置"), "{plain}");
    assert!(
        plain.contains("状态码  DNS解析  连接耗时  TLS握手  等待响应  下载耗时  总耗时"),
        "{plain}"
    );
    assert!(
        plain.contains("广东佛山[电信]: total 1430ms > 1000ms"),
        "{plain}"
    );
}

#[tokio::test]
async fn english_payload_and_the_same_key_on_every_attempt() {
    let mut rx = Receiver::start(vec![Reply::status(204, "")]).await;
    let w = webhook(rx.url("/"), "5s");
    let a = alert(AlertKind::Down);
    for _ in 0..2 {
        let d = w.send(&a, Locale::En).await.unwrap();
        assert_eq!(d.status, Some(204));
    }
    let first = rx.next().await;
    let second = rx.next().await;
    assert_eq!(
        header(&first.headers, "idempotency-key"),
        header(&second.headers, "idempotency-key")
    );
    assert_eq!(first.body, second.body);
    let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["title"], "[DOWN] homepage");
    assert_eq!(body["locale"], "en");
    assert!(body["text"].as_str().unwrap().contains("Location"));
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable() {
    for (status, retry_after) in [
        (500, None),
        (502, None),
        (503, Some("30")),
        (429, Some("7")),
        (408, None),
    ] {
        let mut reply = Reply::status(status, "try again later");
        if let Some(s) = retry_after {
            reply = reply.header("retry-after", s);
        }
        let mut rx = Receiver::start(vec![reply]).await;
        let e = webhook(rx.url("/"), "5s")
            .send(&alert(AlertKind::Down), Locale::En)
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{status}: {e:?}");
        assert!(e.message().starts_with(&format!("HTTP {status} ")), "{e}");
        assert!(e.message().ends_with(": try again later"), "{e}");
        assert_eq!(
            e.retry_after(),
            retry_after.map(|s| Duration::from_secs(s.parse().unwrap()))
        );
        rx.next().await;
    }
}

#[tokio::test]
async fn client_errors_are_fatal() {
    for status in [400, 401, 404, 422] {
        let rx = Receiver::start(vec![Reply::status(status, "{\"error\":\"bad key\"}")]).await;
        let e = webhook(rx.url("/"), "5s")
            .send(&alert(AlertKind::Down), Locale::En)
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Fatal { .. }), "{status}: {e:?}");
        assert!(e.message().contains(&status.to_string()), "{e}");
        assert!(e.message().ends_with("{\"error\":\"bad key\"}"), "{e}");
    }
}

#[tokio::test]
async fn connection_refused_is_retryable_and_keeps_the_path_secret() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = webhook(format!("http://{addr}/send?key=SECRETKEY"), "5s")
        .send(&alert(AlertKind::Down), Locale::En)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        e.message()
            .starts_with(&format!("http://{addr}: connecting to {addr}: ")),
        "{e}"
    );
    assert!(!e.message().contains("SECRET"), "{e}");
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retryable() {
    let mut reply = Reply::status(200, "late");
    reply.delay = Duration::from_secs(30);
    let mut rx = Receiver::start(vec![reply]).await;
    let started = Instant::now();
    let e = webhook(rx.url("/"), "300ms")
        .send(&alert(AlertKind::Down), Locale::En)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().ends_with(": no answer within 300ms"), "{e}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    rx.next().await; // the request did arrive
}

#[tokio::test]
async fn a_silent_server_times_out_too() {
    // Accepts the connection, never reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let e = webhook(format!("http://{addr}/"), "200ms")
        .send(&alert(AlertKind::Down), Locale::En)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().contains("no answer within 200ms"), "{e}");
    hold.abort();
}

#[tokio::test]
async fn https_is_verified() {
    let ca = TestCa::new("watchpost channels test CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let mut rx = Receiver::start_tls(
        vec![Reply::status(200, "ok")],
        leaf.server_config(&[b"http/1.1"]),
    )
    .await;
    let url = rx.url("/hook");

    // Unknown issuer: the handshake fails, retryably (a certificate can be fixed without
    // touching watchpost), and nothing is posted.
    let e = webhook(url.clone(), "5s")
        .send(&alert(AlertKind::Down), Locale::En)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().contains("TLS handshake"), "{e}");
    assert!(e.message().contains("certificate"), "{e}");

    // Trusting the CA with `ca_file` (and the `webhook:` spelling of the URL key).
    let ca_file = pem_file(&ca.cert_pem);
    let channel = build(json!({
        "type": "webhook",
        "webhook": url,
        "ca_file": ca_file.path(),
    }));
    let d = channel
        .send(&alert(AlertKind::Down), Locale::ZhCn)
        .await
        .unwrap();
    assert_eq!(d.status, Some(200));
    let seen = rx.next().await;
    assert_eq!(seen.uri, "/hook");
    assert_eq!(header(&seen.headers, "content-type"), "application/json");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let ca = TestCa::new("watchpost channels test CA");
    let leaf = ca.expired_leaf(&["127.0.0.1"]);
    let rx = Receiver::start_tls(
        vec![Reply::status(200, "ok")],
        leaf.server_config(&[b"http/1.1"]),
    )
    .await;
    let ca_file = pem_file(&ca.cert_pem);
    let w = Webhook::new(&WebhookConfig {
        url: rx.url("/"),
        headers: Default::default(),
        timeout: Duration::from_secs(5),
        ca_file: Some(ca_file.path().to_path_buf()),
        template: None,
        content_type: None,
    })
    .unwrap();
    let e = w
        .send(&alert(AlertKind::Down), Locale::En)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().to_lowercase().contains("expired"), "{e}");
}
