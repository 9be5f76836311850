//! The DingTalk robot against a local receiver standing in for oapi.dingtalk.com: the exact
//! requests and signatures, merging, splitting at 20000 bytes, the rate limit and how answers
//! are classified.

mod common;

use chrono::{TimeZone, Utc};
use common::{alert, build, location_name, many_locations, three, try_build, with};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use watchpost_channels::dingtalk::{BODY_MAX, sign};
use watchpost_channels::{
    AlertKind, Channel, ChannelConfig, Dingtalk, Locale, SendError, digest_markdown_lite,
};
use watchpost_testkit::{Receiver, Reply, Seen};

const OK: &str = r#"{"errcode":0,"errmsg":"ok"}"#;
const PATH: &str = "/robot/send?access_token=t0ken";
const SECRET: &str = "SEC0123456789abcdef";

fn dingtalk(url: String, extra: Value) -> Dingtalk {
    match build(with(json!({"type": "dingtalk", "webhook": url}), extra)) {
        Channel::Dingtalk(d) => d,
        other => panic!("{other:?}"),
    }
}

/// The timestamp and signature of a request, checked against the secret.
fn check_signature(seen: &Seen, secret: &str) -> i64 {
    assert_eq!(seen.path(), "/robot/send");
    let q = seen.query();
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["access_token", "timestamp", "sign"], "{}", seen.uri);
    assert_eq!(seen.query_param("access_token").unwrap(), "t0ken");
    let ts: i64 = seen.query_param("timestamp").unwrap().parse().unwrap();
    assert_eq!(seen.query_param("sign").unwrap(), sign(secret, ts));
    ts
}

#[tokio::test]
async fn a_signed_markdown_message_with_mentions_zh() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let d = dingtalk(
        rx.url(PATH),
        json!({"secret": SECRET, "at_mobiles": ["13800001111", "+8613900002222"]}),
    );
    let a = alert(AlertKind::Down);
    let before = Utc::now().timestamp_millis();
    let delivery = d
        .send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();
    assert_eq!(delivery.status, Some(200));
    let seen = rx.next().await;
    let ts = check_signature(&seen, SECRET);
    assert!(ts >= before && ts <= Utc::now().timestamp_millis(), "{ts}");
    assert_eq!(seen.header("content-type"), "application/json");
    let text = format!(
        "{}\n\n@13800001111 @+8613900002222",
        a.markdown_lite(Locale::ZhCn)
    );
    assert_eq!(
        seen.json(),
        json!({
            "msgtype": "markdown",
            "markdown": {"title": "【故障】homepage", "text": text},
            "at": {"atMobiles": ["13800001111", "+8613900002222"], "isAtAll": false},
        })
    );
    assert!(text.starts_with(
        "### 【故障】homepage\n\n监控 homepage 发生故障。1/2 个上报地点失败：广东佛山[电信]。\n"
    ));
    assert!(text.contains(
        "- **广东佛山[电信]**： 异常 · 状态码 200 · DNS解析 12.0ms · 连接耗时 27.0ms · TLS握手 55.0ms · \
         等待响应 1319ms · 下载耗时 17.0ms · 总耗时 1430ms\n"
    ));
}

#[tokio::test]
async fn the_official_style_vector_with_a_fixed_clock() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let d =
        dingtalk(rx.url(PATH), json!({"secret": "this is secret"})).with_clock(Arc::new(|| {
            Utc.timestamp_millis_opt(1577808000000).unwrap()
        }));
    d.send(&[alert(AlertKind::Test)], Locale::En).await.unwrap();
    let seen = rx.next().await;
    assert_eq!(
        seen.uri,
        "/robot/send?access_token=t0ken&timestamp=1577808000000\
         &sign=ijHEivi6YiCNPZOq4hZstmvZ3sPfbioAiMhP30ae7W0%3D"
    );
    assert_eq!(
        seen.query_param("sign").unwrap(),
        "ijHEivi6YiCNPZOq4hZstmvZ3sPfbioAiMhP30ae7W0="
    );
}

#[tokio::test]
async fn unsigned_in_english_with_at_all() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let d = dingtalk(rx.url(PATH), json!({"at_all": true}));
    let a = alert(AlertKind::Resolved);
    d.send(std::slice::from_ref(&a), Locale::En).await.unwrap();
    let seen = rx.next().await;
    assert_eq!(seen.uri, PATH);
    assert_eq!(
        seen.json(),
        json!({
            "msgtype": "markdown",
            "markdown": {"title": "[RESOLVED] homepage", "text": a.markdown_lite(Locale::En)},
            "at": {"atMobiles": [], "isAtAll": true},
        })
    );
}

#[tokio::test]
async fn several_alerts_go_out_as_one_message() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let d = dingtalk(rx.url(PATH), json!({"secret": SECRET}));
    let alerts = three();
    d.send(&alerts, Locale::ZhCn).await.unwrap();
    let seen = rx.next().await;
    check_signature(&seen, SECRET);
    assert_eq!(
        seen.json(),
        json!({
            "msgtype": "markdown",
            "markdown": {
                "title": "【watchpost】3 条告警：故障 2，恢复 1",
                "text": digest_markdown_lite(&alerts, Locale::ZhCn),
            },
            "at": {"atMobiles": [], "isAtAll": false},
        })
    );
    assert!(rx.drain().is_empty(), "one request for three alerts");
    let channel = Channel::Dingtalk(dingtalk(rx.url(PATH), json!({})));
    assert!(channel.merges());
}

#[tokio::test]
async fn a_body_over_20000_bytes_is_split() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let d = dingtalk(
        rx.url(PATH),
        json!({"secret": SECRET, "at_mobiles": ["13800001111"]}),
    );
    let a = many_locations(200);
    let whole = a.markdown_lite(Locale::ZhCn);
    assert!(whole.len() > 2 * BODY_MAX, "{}", whole.len());
    d.send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();
    let seen = rx.drain();
    let n = seen.len();
    assert!(n >= 3, "{n}");
    let mut joined = String::new();
    for (i, s) in seen.iter().enumerate() {
        check_signature(s, SECRET);
        assert!(
            s.body.len() <= BODY_MAX,
            "part {} is {} bytes",
            i + 1,
            s.body.len()
        );
        let body = s.json();
        assert_eq!(
            body["markdown"]["title"],
            format!("【故障】订单服务接口 ({}/{n})", i + 1)
        );
        let text = body["markdown"]["text"].as_str().unwrap();
        // Each part starts with the title: a keyword-secured robot accepts every one.
        let marker = format!("【故障】订单服务接口 ({}/{n})\n", i + 1);
        let mut piece = text.strip_prefix(&marker).expect("numbered").to_string();
        if i == 0 {
            // Only the first part @-mentions.
            assert_eq!(
                body["at"],
                json!({"atMobiles": ["13800001111"], "isAtAll": false})
            );
            piece = piece
                .strip_suffix("\n\n@13800001111")
                .expect("mention")
                .to_string();
        } else {
            assert_eq!(body["at"], json!({"atMobiles": [], "isAtAll": false}));
        }
        joined.push_str(&piece);
    }
    assert_eq!(joined, whole);
    for i in 0..200 {
        assert!(joined.contains(&location_name(i)), "{i}");
    }
}

#[tokio::test]
async fn the_21st_message_in_a_minute_is_held_back() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let d = dingtalk(rx.url(PATH), json!({}));
    let a = alert(AlertKind::Down);
    for _ in 0..20 {
        d.send(std::slice::from_ref(&a), Locale::ZhCn)
            .await
            .unwrap();
    }
    assert_eq!(rx.drain().len(), 20);
    let e = d
        .send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.retry_after().is_some(), "{e:?}");
    assert!(
        e.message()
            .starts_with("dingtalk: holding back to stay within 20 messages/minute"),
        "{e}"
    );
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
}

async fn answer(reply: Reply) -> SendError {
    let mut rx = Receiver::start(vec![reply]).await;
    let d = dingtalk(rx.url(PATH), json!({"secret": SECRET}));
    let e = d
        .send(&[alert(AlertKind::Down)], Locale::ZhCn)
        .await
        .unwrap_err();
    rx.next().await;
    e
}

#[tokio::test]
async fn retryable_answers() {
    let e = answer(Reply::json(
        200,
        r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "dingtalk: errcode 130101: send too fast, exceed 20 times per minute".into(),
            retry_after: Some(Duration::from_secs(600)),
        }
    );
    let e = answer(Reply::json(200, r#"{"errcode":-1,"errmsg":"系统繁忙"}"#)).await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "dingtalk: errcode -1: 系统繁忙".into(),
            retry_after: None,
        }
    );
    let e = answer(Reply::status(503, "busy")).await;
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.message(), "dingtalk: HTTP 503 Service Unavailable: busy");
    let e = answer(Reply::status(429, "").header("retry-after", "30")).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn fatal_answers_carry_the_code_and_message() {
    let e = answer(Reply::json(
        200,
        r#"{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Fatal {
            message: "dingtalk: errcode 310000: sign not match, more: \
                      [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
                .into()
        }
    );
    let e = answer(Reply::json(
        200,
        r#"{"errcode":300001,"errmsg":"token is not exist"}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Fatal {
            message: "dingtalk: errcode 300001: token is not exist".into()
        }
    );
}

#[test]
fn config_errors_and_secrets() {
    let e = try_build(json!({"type": "dingtalk",
                         "webhook": "https://oapi.dingtalk.com/robot/send?access_token=SECRETTOKEN",
                         "at_mobiles": ["138000011112222333"]}))
    .unwrap_err();
    assert!(
        e.0.starts_with("dingtalk: at_mobiles: \"138000011112222333\" is not a mobile number"),
        "{e}"
    );
    let e =
        try_build(json!({"type": "dingtalk", "webhook": "ftp://oapi.dingtalk.com/SECRETTOKEN"}))
            .unwrap_err();
    assert!(e.0.starts_with("dingtalk: webhook: scheme \"ftp\""), "{e}");
    assert!(!e.0.contains("SECRET"), "{e}");
    let e = try_build(json!({"type": "dingtalk", "webhook": "https://x/", "at_all": "yes"}))
        .unwrap_err();
    assert!(e.0.contains("invalid type"), "{e}");

    let config = ChannelConfig::from_value(json!({
        "type": "dingtalk",
        "webhook": "https://oapi.dingtalk.com/robot/send?access_token=SECRETTOKEN",
        "secret": "SECRETSIGNINGKEY",
    }))
    .unwrap();
    assert_eq!(config.kind(), "dingtalk");
    let shown = format!("{config:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("secret: Some(\"<redacted>\")"), "{shown}");
    let channel = config.build().unwrap();
    assert_eq!(channel.kind(), "dingtalk");
    assert!(!format!("{channel:?}").contains("SECRET"));
}
