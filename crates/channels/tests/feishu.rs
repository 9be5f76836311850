//! The Feishu bot against a local receiver standing in for open.feishu.cn: the exact cards and
//! signatures, merging, splitting at 20 KB, the rate limits and how answers are classified.

mod common;

use chrono::{TimeZone, Utc};
use common::{alert, build, location_name, many_locations, three, try_build, with};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use watchpost_channels::feishu::{BODY_MAX, card_markdown, sign};
use watchpost_channels::{AlertKind, Channel, ChannelConfig, Feishu, Locale, SendError};
use watchpost_testkit::{Receiver, Reply, Seen};

const OK: &str = r#"{"code":0,"data":{},"msg":"success"}"#;
const PATH: &str = "/open-apis/bot/v2/hook/h00k";
const SECRET: &str = "s3cretFeishu";

fn feishu(url: String, extra: Value) -> Feishu {
    match build(with(json!({"type": "feishu", "webhook": url}), extra)) {
        Channel::Feishu(f) => f,
        other => panic!("{other:?}"),
    }
}

fn card(template: &str, title: &str, content: &str) -> Value {
    json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {"template": template, "title": {"tag": "plain_text", "content": title}},
            "elements": [{"tag": "markdown", "content": content}],
        },
    })
}

/// The body without its signature fields, after checking them against the secret.
fn check_signature(seen: &Seen, secret: &str) -> (i64, Value) {
    let mut body = seen.json();
    let ts: i64 = body["timestamp"]
        .as_str()
        .expect("a string")
        .parse()
        .unwrap();
    assert_eq!(body["sign"], sign(secret, ts));
    let object = body.as_object_mut().unwrap();
    object.remove("timestamp");
    object.remove("sign");
    (ts, body)
}

#[tokio::test]
async fn a_signed_red_card_zh() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let f = feishu(rx.url(PATH), json!({"secret": SECRET}));
    let a = alert(AlertKind::Down);
    let before = Utc::now().timestamp();
    let d = f
        .send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();
    assert_eq!(d.status, Some(200));
    let seen = rx.next().await;
    assert_eq!(seen.uri, PATH);
    assert_eq!(seen.header("content-type"), "application/json");
    let (ts, body) = check_signature(&seen, SECRET);
    assert!(ts >= before && ts <= Utc::now().timestamp(), "{ts}");
    let content = "\
监控 homepage 发生故障。1/2 个上报地点失败：广东佛山[电信]。

- **时间：** 2026-01-02 11:00:00 +08:00
- **故障开始：** 2026-01-02 10:55:00 +08:00
- **地址：** [https://www.example.com/](https://www.example.com/)
- **事件编号：** `homepage:1767322800000`

**失败条件**

- `广东佛山[电信]: total 1430ms > 1000ms`

**各地探测**

- **local**： 正常 · 状态码 200 · DNS解析 1.2ms · 连接耗时 0.080ms · TLS握手 3.4ms · 等待响应 140ms · 下载耗时 100ms · 总耗时 251ms
- **广东佛山[电信]**： 异常 · 状态码 200 · DNS解析 12.0ms · 连接耗时 27.0ms · TLS握手 55.0ms · 等待响应 1319ms · 下载耗时 17.0ms · 总耗时 1430ms
";
    assert_eq!(body, card("red", "【故障】homepage", content));
}

#[tokio::test]
async fn the_signing_vector_with_a_fixed_clock() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let f = feishu(rx.url(PATH), json!({"secret": "demo"}))
        .with_clock(Arc::new(|| Utc.timestamp_opt(1599360473, 0).unwrap()));
    f.send(&[alert(AlertKind::Test)], Locale::En).await.unwrap();
    let body = rx.next().await.json();
    assert_eq!(body["timestamp"], "1599360473");
    assert_eq!(body["sign"], "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8=");
}

#[tokio::test]
async fn unsigned_cards_in_english_take_the_kind_colour() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let f = feishu(rx.url(PATH), json!({}));
    for (kind, template, title) in [
        (AlertKind::Resolved, "green", "[RESOLVED] homepage"),
        (AlertKind::Reminder, "red", "[REMINDER] homepage"),
        (AlertKind::Test, "blue", "[TEST] homepage"),
    ] {
        let a = alert(kind);
        f.send(std::slice::from_ref(&a), Locale::En).await.unwrap();
        let body = rx.next().await.json();
        let lite = a.markdown_lite(Locale::En);
        let content = lite.split_once("\n\n").unwrap().1;
        assert_eq!(body, card(template, title, content), "{kind}");
    }
}

#[tokio::test]
async fn several_alerts_go_out_as_one_card() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let f = feishu(rx.url(PATH), json!({"secret": SECRET}));
    let alerts = three();
    f.send(&alerts, Locale::ZhCn).await.unwrap();
    let seen = rx.next().await;
    let (_, body) = check_signature(&seen, SECRET);
    let content = card_markdown(&alerts, Locale::ZhCn);
    assert_eq!(
        body,
        card("red", "【watchpost】3 条告警：故障 2，恢复 1", &content)
    );
    assert!(
        content.starts_with(
            "**【故障】homepage**\n\n监控 homepage 发生故障。1/2 个上报地点失败：广东佛山[电信]。\n"
        ),
        "{content}"
    );
    assert!(
        content.contains("\n\n---\n\n**【故障】api**\n\n"),
        "{content}"
    );
    assert!(
        content.contains("\n\n---\n\n**【恢复】cdn**\n\n"),
        "{content}"
    );
    assert!(!content.contains("###"), "{content}");
    assert!(rx.drain().is_empty(), "one request for three alerts");
    assert!(Channel::Feishu(feishu(rx.url(PATH), json!({}))).merges());
}

#[tokio::test]
async fn a_card_over_20kb_is_split() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let f = feishu(rx.url(PATH), json!({"secret": SECRET}));
    let a = many_locations(150);
    let whole = card_markdown(std::slice::from_ref(&a), Locale::ZhCn);
    assert!(whole.len() > BODY_MAX + BODY_MAX / 2, "{}", whole.len());
    f.send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();
    let seen = rx.drain();
    let n = seen.len();
    assert!((2..=5).contains(&n), "{n}");
    let mut joined = String::new();
    for (i, s) in seen.iter().enumerate() {
        assert!(
            s.body.len() <= BODY_MAX,
            "card {} is {} bytes",
            i + 1,
            s.body.len()
        );
        let (_, body) = check_signature(s, SECRET);
        let title = format!("【故障】订单服务接口 ({}/{n})", i + 1);
        let content = body["card"]["elements"][0]["content"].as_str().unwrap();
        assert_eq!(body, card("red", &title, content));
        joined.push_str(content);
    }
    assert_eq!(joined, whole);
    for i in 0..150 {
        assert!(joined.contains(&location_name(i)), "{i}");
    }
}

#[tokio::test]
async fn the_6th_message_in_a_second_is_held_back() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let f = feishu(rx.url(PATH), json!({}));
    let a = alert(AlertKind::Down);
    // 5 a second: the 6th goes out only if 200 ms passed, so send until one is held back
    // (a slow machine may fit in a few more, never many).
    let mut sent = 0;
    let e = loop {
        match f.send(std::slice::from_ref(&a), Locale::ZhCn).await {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 20, "never held back");
    };
    assert!(sent >= 5, "{sent}");
    assert_eq!(rx.drain().len(), sent);
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert!(
        e.message()
            .starts_with("feishu: holding back to stay within 5 messages/second"),
        "{e}"
    );
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
}

async fn answer(reply: Reply) -> SendError {
    let mut rx = Receiver::start(vec![reply]).await;
    let f = feishu(rx.url(PATH), json!({"secret": SECRET}));
    let e = f
        .send(&[alert(AlertKind::Down)], Locale::ZhCn)
        .await
        .unwrap_err();
    rx.next().await;
    e
}

#[tokio::test]
async fn older_answers_are_understood() {
    let mut rx = Receiver::start(vec![Reply::json(
        200,
        r#"{"Extra":null,"StatusCode":0,"StatusMessage":"success"}"#,
    )])
    .await;
    let f = feishu(rx.url(PATH), json!({}));
    f.send(&[alert(AlertKind::Down)], Locale::En).await.unwrap();
    rx.next().await;
}

#[tokio::test]
async fn retryable_answers() {
    let e = answer(
        Reply::json(
            200,
            r#"{"code":11232,"data":{},"msg":"frequency limited psm[lark.oapi.demo]"}"#,
        )
        .header("x-ogw-ratelimit-reset", "12"),
    )
    .await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "feishu: errcode 11232: frequency limited psm[lark.oapi.demo]".into(),
            retry_after: Some(Duration::from_secs(12)),
        }
    );
    // Rate limited with HTTP 400, as some Feishu deployments answer.
    let e = answer(Reply::json(
        400,
        r#"{"code":9499,"msg":"too many request","data":{}}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "feishu: errcode 9499: too many request".into(),
            retry_after: None,
        }
    );
    let e = answer(
        Reply::json(
            429,
            r#"{"code":99991400,"msg":"request trigger frequency limit"}"#,
        )
        .header("x-ogw-ratelimit-reset", "52"),
    )
    .await;
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(52)));
    let e = answer(Reply::status(502, "bad gateway")).await;
    assert_eq!(e.message(), "feishu: HTTP 502 Bad Gateway: bad gateway");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn fatal_answers_carry_the_code_and_message() {
    let e = answer(Reply::json(
        400,
        r#"{"code":19021,"data":{},"msg":"sign match fail or timestamp is not within one hour from current time"}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Fatal {
            message: "feishu: errcode 19021: sign match fail or timestamp is not within one \
                      hour from current time"
                .into()
        }
    );
    let e = answer(Reply::json(
        200,
        r#"{"code":19024,"data":{},"msg":"Key Words Not Found"}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Fatal {
            message: "feishu: errcode 19024: Key Words Not Found".into()
        }
    );
    let e = answer(Reply::json(
        400,
        r#"{"code":9499,"msg":"Bad Request","data":{}}"#,
    ))
    .await;
    assert!(!e.is_retryable(), "{e:?}");
}

#[test]
fn config_errors_and_secrets() {
    let e = try_build(
        json!({"type": "feishu", "webhook": "https://open.feishu.cn/x/SECRETHOOK",
                         "secret": ""}),
    )
    .unwrap_err();
    assert!(e.0.starts_with("feishu: secret: is empty"), "{e}");
    let e = try_build(json!({"type": "feishu", "webhook": "https://u:SECRETPW@open.feishu.cn/x"}))
        .unwrap_err();
    assert!(e.0.starts_with("feishu: webhook: user info"), "{e}");
    assert!(!e.0.contains("SECRET"), "{e}");
    let e =
        try_build(json!({"type": "feishu", "webhook": "https://x/", "at_all": true})).unwrap_err();
    assert!(e.0.contains("unknown field `at_all`"), "{e}");

    let config = ChannelConfig::from_value(json!({
        "type": "feishu",
        "webhook": "https://open.feishu.cn/open-apis/bot/v2/hook/SECRETHOOK",
        "secret": "SECRETSIGN",
    }))
    .unwrap();
    assert_eq!(config.kind(), "feishu");
    let shown = format!("{config:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    let channel = config.build().unwrap();
    assert_eq!(channel.kind(), "feishu");
    assert!(!format!("{channel:?}").contains("SECRET"));
}
