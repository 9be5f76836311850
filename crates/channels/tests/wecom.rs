//! The WeCom robot against a local receiver standing in for qyapi.weixin.qq.com: the exact
//! requests, splitting at 4096 bytes, merging, the rate limit and how answers are classified.

mod common;

use common::{alert, build, location_name, many_locations, three, try_build, with};
use serde_json::{Value, json};
use std::time::Duration;
use watchpost_channels::{
    AlertKind, Channel, ChannelConfig, Delivery, FailedCondition, Locale, SendError, Wecom,
    digest_markdown_lite,
};
use watchpost_testkit::{Receiver, Reply, Seen};

const OK: &str = r#"{"errcode":0,"errmsg":"ok"}"#;
const PATH: &str = "/cgi-bin/webhook/send?key=k3y";

fn wecom(url: String, extra: Value) -> Wecom {
    match build(with(json!({"type": "wecom", "webhook": url}), extra)) {
        Channel::Wecom(w) => w,
        other => panic!("{other:?}"),
    }
}

/// The Markdown text of a request.
fn markdown_of(seen: &Seen) -> String {
    seen.json()["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn one_alert_is_one_markdown_message_zh() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let w = wecom(rx.url(PATH), json!({}));
    let a = alert(AlertKind::Down);
    let d = w
        .send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();
    assert_eq!(
        d,
        Delivery {
            status: Some(200),
            body: OK.into()
        }
    );
    let seen = rx.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, PATH);
    assert_eq!(seen.header("content-type"), "application/json");
    let content = "\
### 【故障】homepage

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
    assert_eq!(
        seen.json(),
        json!({"msgtype": "markdown", "markdown": {"content": content}})
    );
    assert!(rx.drain().is_empty());
}

#[tokio::test]
async fn one_alert_in_english() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let w = wecom(rx.url(PATH), json!({}));
    let a = alert(AlertKind::Resolved);
    w.send(std::slice::from_ref(&a), Locale::En).await.unwrap();
    let body = rx.next().await.json();
    assert_eq!(
        body,
        json!({"msgtype": "markdown", "markdown": {"content": a.markdown_lite(Locale::En)}})
    );
    let content = body["markdown"]["content"].as_str().unwrap();
    assert!(
        content
            .starts_with("### [RESOLVED] homepage\n\nhomepage has RECOVERED (was down for 5m).\n"),
        "{content}"
    );
    assert!(
        content.contains(
            "- **local**: OK · Status 200 · DNS 1.2ms · Connect 0.080ms · TLS 3.4ms · Wait 140ms · \
             Download 100ms · Total 251ms\n"
        ),
        "{content}"
    );
}

#[tokio::test]
async fn mentions_follow_as_a_text_message() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let w = wecom(
        rx.url(PATH),
        json!({"mentions": ["13800001111", "@all"], "mentioned_users": ["wangqing"]}),
    );
    let a = alert(AlertKind::Down);
    w.send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();
    let markdown = rx.next().await.json();
    assert_eq!(markdown["msgtype"], "markdown");
    let text = rx.next().await;
    assert_eq!(text.uri, PATH);
    assert_eq!(
        text.json(),
        json!({"msgtype": "text", "text": {
            "content": "【故障】homepage",
            "mentioned_list": ["wangqing"],
            "mentioned_mobile_list": ["13800001111", "@all"],
        }})
    );
    assert!(rx.drain().is_empty());
}

#[tokio::test]
async fn several_alerts_go_out_as_one_message() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let w = wecom(rx.url(PATH), json!({}));
    let alerts = three();
    w.send(&alerts, Locale::ZhCn).await.unwrap();
    let body = rx.next().await.json();
    let content = body["markdown"]["content"].as_str().unwrap().to_string();
    assert_eq!(
        body,
        json!({"msgtype": "markdown", "markdown": {
            "content": digest_markdown_lite(&alerts, Locale::ZhCn)
        }})
    );
    assert!(
        content.starts_with("## 【watchpost】3 条告警：故障 2，恢复 1\n\n### 【故障】homepage\n"),
        "{content}"
    );
    for a in &alerts {
        assert!(
            content.contains(&a.markdown_lite(Locale::ZhCn)),
            "{content}"
        );
    }
    assert_eq!(content.matches("\n---\n").count(), 2, "{content}");
    assert!(rx.drain().is_empty(), "one request for three alerts");

    // Through the Channel enum: wecom merges.
    let channel = build(json!({"type": "wecom", "webhook": rx.url(PATH)}));
    assert!(channel.merges());
    channel.send_many(&alerts, Locale::En).await.unwrap();
    let content = markdown_of(&rx.next().await);
    assert!(
        content.starts_with("## [watchpost] 3 alerts: 2 DOWN, 1 RESOLVED\n"),
        "{content}"
    );
    assert!(rx.drain().is_empty());
}

#[tokio::test]
async fn long_chinese_content_is_split_by_bytes() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let w = wecom(rx.url(PATH), json!({"mentions": ["13800001111"]}));
    let a = many_locations(40);
    let whole = a.markdown_lite(Locale::ZhCn);
    assert!(whole.len() > 2 * 4096, "{}", whole.len());
    w.send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();

    let seen = rx.drain();
    let parts: Vec<String> = seen
        .iter()
        .filter(|s| s.json()["msgtype"] == "markdown")
        .map(markdown_of)
        .collect();
    let n = parts.len();
    assert!(n >= 3, "{n}");
    // Then the mention text, last.
    assert_eq!(seen.len(), n + 1);
    assert_eq!(seen[n].json()["msgtype"], "text");
    assert_eq!(seen[n].json()["text"]["content"], "【故障】订单服务接口");

    let mut joined = String::new();
    for (i, part) in parts.iter().enumerate() {
        // Byte limit, valid UTF-8 (it came through JSON as a string), numbered.
        assert!(part.len() <= 4096, "part {} is {} bytes", i + 1, part.len());
        let marker = format!("({}/{n})\n", i + 1);
        assert!(part.starts_with(&marker), "{part}");
        joined.push_str(&part[marker.len()..]);
    }
    // Nothing lost, nothing added.
    assert_eq!(joined, whole);
    for i in 0..40 {
        assert!(
            joined.contains(&format!("- **{}**：", location_name(i))),
            "{i}"
        );
    }
    // Parts end at line ends when lines fit.
    assert!(parts[..n - 1].iter().all(|p| p.ends_with('\n')));
}

#[tokio::test]
async fn a_single_over_long_line_is_cut_between_characters() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let w = wecom(rx.url(PATH), json!({}));
    let mut a = alert(AlertKind::Down);
    a.failures = vec![FailedCondition::from_text("响应内容不符合预期".repeat(300))];
    let whole = a.markdown_lite(Locale::ZhCn);
    w.send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();
    let parts: Vec<String> = rx.drain().iter().map(markdown_of).collect();
    let n = parts.len();
    assert!(n >= 2);
    let mut joined = String::new();
    for (i, p) in parts.iter().enumerate() {
        assert!(p.len() <= 4096);
        joined.push_str(p.strip_prefix(&format!("({}/{n})\n", i + 1)).unwrap());
    }
    assert_eq!(joined, whole);
}

#[tokio::test]
async fn the_21st_message_in_a_minute_is_held_back() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let w = wecom(rx.url(PATH), json!({}));
    let a = alert(AlertKind::Down);
    for _ in 0..20 {
        w.send(std::slice::from_ref(&a), Locale::En).await.unwrap();
    }
    assert_eq!(rx.drain().len(), 20);
    let e = w
        .send(std::slice::from_ref(&a), Locale::En)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    let wait = e.retry_after().expect("a wait");
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_secs(4),
        "{wait:?}"
    );
    assert!(
        e.message()
            .starts_with("wecom: holding back to stay within 20 messages/minute"),
        "{e}"
    );
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn all_parts_are_taken_from_the_allowance_at_once() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let w = wecom(rx.url(PATH), json!({}));
    let small = alert(AlertKind::Down);
    for _ in 0..18 {
        w.send(std::slice::from_ref(&small), Locale::ZhCn)
            .await
            .unwrap();
    }
    rx.drain();
    // 2 left; a message in 3 parts doesn't fit, and not a single part goes out.
    let big = many_locations(40);
    assert_eq!(
        w.messages(std::slice::from_ref(&big), Locale::ZhCn).len(),
        3
    );
    let e = w
        .send(std::slice::from_ref(&big), Locale::ZhCn)
        .await
        .unwrap_err();
    assert!(e.is_retryable() && e.retry_after().is_some(), "{e:?}");
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
}

async fn answer(reply: Reply) -> SendError {
    let mut rx = Receiver::start(vec![reply]).await;
    let w = wecom(rx.url(PATH), json!({}));
    let e = w
        .send(&[alert(AlertKind::Down)], Locale::En)
        .await
        .unwrap_err();
    rx.next().await;
    e
}

#[tokio::test]
async fn retryable_answers() {
    let e = answer(Reply::json(
        200,
        r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "wecom: errcode 45009: api freq out of limit".into(),
            retry_after: Some(Duration::from_secs(60)),
        }
    );
    let e = answer(Reply::json(200, r#"{"errcode":-1,"errmsg":"system busy"}"#)).await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "wecom: errcode -1: system busy".into(),
            retry_after: None,
        }
    );
    let e = answer(Reply::status(429, "slow down").header("retry-after", "7")).await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "wecom: HTTP 429 Too Many Requests: slow down".into(),
            retry_after: Some(Duration::from_secs(7)),
        }
    );
    let e = answer(Reply::json(500, OK)).await;
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().starts_with("wecom: HTTP 500"), "{e}");
    // 200 but not WeCom's JSON: something else answered.
    let e = answer(Reply::status(200, "<html>portal</html>")).await;
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().contains("unexpected body"), "{e}");
}

#[tokio::test]
async fn fatal_answers_carry_the_code_and_message() {
    let e = answer(Reply::json(
        200,
        r#"{"errcode":93000,"errmsg":"invalid webhook url, hint: [123]"}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Fatal {
            message: "wecom: errcode 93000: invalid webhook url, hint: [123]".into()
        }
    );
    let e = answer(Reply::json(
        200,
        r#"{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}"#,
    ))
    .await;
    assert!(!e.is_retryable());
    assert!(
        e.message()
            .starts_with("wecom: errcode 40058: markdown.content"),
        "{e}"
    );
    let e = answer(Reply::status(404, "not found")).await;
    assert_eq!(
        e,
        SendError::Fatal {
            message: "wecom: HTTP 404 Not Found: not found".into()
        }
    );
}

#[tokio::test]
async fn a_failed_later_part_says_what_was_delivered() {
    let mut rx = Receiver::start(vec![
        Reply::json(200, OK),
        Reply::json(200, r#"{"errcode":-1,"errmsg":"system busy"}"#),
    ])
    .await;
    let w = wecom(rx.url(PATH), json!({}));
    let a = many_locations(40);
    let n = w.messages(std::slice::from_ref(&a), Locale::ZhCn).len();
    let e = w.send(&[a], Locale::ZhCn).await.unwrap_err();
    assert_eq!(rx.drain().len(), 2, "stops at the failing part");
    assert_eq!(
        e,
        SendError::Retryable {
            message: format!(
                "wecom: message 2 of {n}: errcode -1: system busy \
                 (message 1 of {n} was delivered; a retry sends all {n} again)"
            ),
            retry_after: None,
        }
    );
}

#[test]
fn config_errors_and_secrets() {
    let e =
        try_build(json!({"type": "wecom", "webhook": "qyapi.weixin.qq.com/send?key=SECRETKEY"}))
            .unwrap_err();
    assert!(e.0.starts_with("wecom: webhook: not a valid URL"), "{e}");
    assert!(!e.0.contains("SECRET"), "{e}");
    let e = try_build(
        json!({"type": "wecom", "webhook": "https://qyapi.weixin.qq.com/x?key=k",
                         "mentions": ["+86 138 0000 1111"]}),
    )
    .unwrap_err();
    assert!(
        e.0.starts_with("wecom: mentions: \"+86 138 0000 1111\" is not a mobile number"),
        "{e}"
    );
    let e = try_build(json!({"type": "wecom"})).unwrap_err();
    assert!(e.0.contains("missing field `webhook`"), "{e}");
    let e =
        try_build(json!({"type": "wecom", "webhook": "https://x/", "mention": []})).unwrap_err();
    assert!(e.0.contains("unknown field `mention`"), "{e}");

    let config = ChannelConfig::from_value(json!({
        "type": "wecom",
        "webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY",
        "timeout": "3s",
    }))
    .unwrap();
    assert_eq!(config.kind(), "wecom");
    let shown = format!("{config:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(
        shown.contains("https://qyapi.weixin.qq.com:443/<redacted>"),
        "{shown}"
    );
    let channel = config.build().unwrap();
    assert_eq!(channel.kind(), "wecom");
    assert!(!format!("{channel:?}").contains("SECRET"));
}
