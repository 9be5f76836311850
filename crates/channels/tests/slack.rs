//! The Slack channel against a real HTTP receiver on 127.0.0.1: the exact Block Kit message,
//! escaping, merging and splitting, the rate limit, and how each of Slack's answers is
//! classified.

mod common;

use common::{at, build, down_with_query, try_build};
use serde_json::{Value, json};
use std::time::Duration;
use watchpost_channels::{
    Alert, AlertKind, Channel, ChannelConfig, Delivery, FailedCondition, Locale, SendError, Slack,
};
use watchpost_testkit::{Receiver, Reply};

const PATH: &str = "/services/T000/B000/XXXXSECRET";

fn slack(url: String) -> Slack {
    match build(json!({"type": "slack", "webhook": url, "timeout": "5s"})) {
        Channel::Slack(s) => s,
        other => panic!("{other:?}"),
    }
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": text}})
}

#[tokio::test]
async fn posts_the_documented_block_kit_message_in_english() {
    let mut rx = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let s = slack(rx.url(PATH));
    let delivery = s.send(&[down_with_query()], Locale::En).await.unwrap();
    assert_eq!(
        delivery,
        Delivery {
            status: Some(200),
            body: "ok".into()
        }
    );
    let seen = rx.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, PATH);
    assert_eq!(seen.header("content-type"), "application/json");
    let table = "```\n\
        Location        Result  Status     DNS  Connect     TLS    Wait  Download   Total\n\
        local           OK         200   1.2ms  0.080ms   3.4ms   140ms     100ms   251ms\n\
        广东佛山[电信]  FAIL       200  12.0ms   27.0ms  55.0ms  1319ms    17.0ms  1430ms\n\
        ```";
    assert_eq!(
        seen.json(),
        json!({
            "text": "[DOWN] homepage\nhomepage is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信].",
            "blocks": [
                header("[DOWN] homepage"),
                section(
                    "homepage is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信].\n\n\
                     *Time:* 2026-01-02 11:00:00 +08:00\n\
                     *Down since:* 2026-01-02 10:55:00 +08:00\n\
                     *URL:* <https://www.example.com/?a=1&amp;b=2|https://www.example.com/?a=1&amp;b=2>\n\
                     *Incident:* `homepage:1767322800000`"
                ),
                section("*Failing conditions*\n• `广东佛山[电信]: total 1430ms &gt; 1000ms`"),
                section(&format!("*Locations*\n{table}")),
            ],
        })
    );
    assert!(rx.drain().is_empty());
}

#[tokio::test]
async fn chinese_resolved_message() {
    let mut rx = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let s = slack(rx.url(PATH));
    let mut a = down_with_query();
    a.kind = AlertKind::Resolved;
    a.at = at(4, 12, 30);
    a.locations.truncate(1);
    s.send(&[a], Locale::ZhCn).await.unwrap();
    let body = rx.next().await.json();
    assert_eq!(
        body,
        json!({
            "text": "【恢复】homepage\n监控 homepage 已恢复（故障持续 1小时17分钟）。",
            "blocks": [
                header("【恢复】homepage"),
                section(
                    "监控 homepage 已恢复（故障持续 1小时17分钟）。\n\n\
                     *时间：* 2026-01-02 12:12:30 +08:00\n\
                     *故障开始：* 2026-01-02 10:55:00 +08:00\n\
                     *持续时长：* 1小时17分钟\n\
                     *地址：* <https://www.example.com/?a=1&amp;b=2|https://www.example.com/?a=1&amp;b=2>\n\
                     *事件编号：* `homepage:1767322800000`"
                ),
                section("*故障原因*\n• `广东佛山[电信]: total 1430ms &gt; 1000ms`"),
                section(
                    "*各地探测*\n```\n\
                     位置   结果  状态码  DNS解析  连接耗时  TLS握手  等待响应  下载耗时  总耗时\n\
                     local  正常     200    1.2ms   0.080ms    3.4ms     140ms     100ms   251ms\n\
                     ```"
                ),
            ],
        })
    );
}

#[tokio::test]
async fn control_characters_are_escaped_and_plain_text_is_literal() {
    let mut rx = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let s = slack(rx.url(PATH));
    let mut a = down_with_query();
    a.monitor = "<b>&\"x\"".into();
    a.failures = vec![FailedCondition::from_text("body contains \"<ok>\" & `x`")];
    a.locations[0].location = "<loc>&".into();
    a.url = Some("https://example.com/a|b".into());
    s.send(&[a], Locale::En).await.unwrap();
    let body = rx.next().await.json();
    // plain_text is shown as written; mrkdwn has & < > as entities.
    assert_eq!(body["blocks"][0], header("[DOWN] <b>&\"x\""));
    assert_eq!(
        body["text"],
        "[DOWN] &lt;b&gt;&amp;\"x\"\n&lt;b&gt;&amp;\"x\" is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信]."
    );
    let facts = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        facts.starts_with(
            "&lt;b&gt;&amp;\"x\" is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信].\n"
        ),
        "{facts}"
    );
    // A URL that can't be a link is text.
    assert!(
        facts.contains("*URL:* https://example.com/a|b\n"),
        "{facts}"
    );
    // A backtick inside: not a code span, still escaped.
    assert_eq!(
        body["blocks"][2]["text"]["text"],
        "*Failing conditions*\n• body contains \"&lt;ok&gt;\" &amp; `x`"
    );
    let table = body["blocks"][3]["text"]["text"].as_str().unwrap();
    // Padded by the decoded width, so the columns line up as Slack shows them.
    assert!(
        table.contains("\n&lt;loc&gt;&amp;          OK         200"),
        "{table}"
    );
    assert!(
        !serde_json::to_string(&body)
            .unwrap()
            .contains("<b>&\\\"x\\\" is")
    );
}

#[tokio::test]
async fn several_alerts_make_one_message() {
    let mut rx = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let s = slack(rx.url(PATH));
    let mut b = down_with_query();
    b.monitor = "api".into();
    b.kind = AlertKind::Resolved;
    let mut c = down_with_query();
    c.monitor = "db".into();
    let channel = Channel::Slack(s);
    assert!(channel.merges());
    channel
        .send_many(&[down_with_query(), b, c], Locale::En)
        .await
        .unwrap();
    let body = rx.next().await.json();
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(
        blocks[0],
        header("[watchpost] 3 alerts: 2 DOWN, 1 RESOLVED")
    );
    assert_eq!(
        body["text"],
        "[watchpost] 3 alerts: 2 DOWN, 1 RESOLVED\nhomepage is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信].\napi has RECOVERED (was down for 5m).\ndb is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信]."
    );
    let dividers = blocks.iter().filter(|b| b["type"] == "divider").count();
    assert_eq!(dividers, 2);
    assert_eq!(blocks.len(), 1 + 3 * 3 + 2);
    let titles: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .filter(|t| t.starts_with("*["))
        .map(|t| t.lines().next().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["*[DOWN] homepage*", "*[RESOLVED] api*", "*[DOWN] db*"]
    );
}

#[tokio::test]
async fn too_many_blocks_spill_into_a_second_message() {
    let mut rx = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let s = slack(rx.url(PATH));
    let alerts: Vec<Alert> = (0..20)
        .map(|i| {
            let mut a = down_with_query();
            a.monitor = format!("site-{i:02}");
            a
        })
        .collect();
    s.send(&alerts, Locale::En).await.unwrap();
    let first = rx.next().await.json();
    let second = rx.next().await.json();
    assert!(rx.drain().is_empty());
    let mut seen = Vec::new();
    for (i, m) in [&first, &second].into_iter().enumerate() {
        let blocks = m["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{}", blocks.len());
        assert_eq!(
            blocks[0],
            header(&format!("[watchpost] 20 alerts: 20 DOWN ({}/2)", i + 1))
        );
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3000);
                if let Some(rest) = t.strip_prefix("*[DOWN] ") {
                    seen.push(rest.split('*').next().unwrap().to_string());
                }
            }
        }
    }
    let want: Vec<String> = (0..20).map(|i| format!("site-{i:02}")).collect();
    assert_eq!(seen, want, "every alert once, in order");
}

#[tokio::test]
async fn the_rate_limit_holds_back_without_a_request() {
    let mut rx = Receiver::start(vec![Reply::status(200, "ok")]).await;
    let s = slack(rx.url(PATH));
    s.send(&[down_with_query()], Locale::En).await.unwrap();
    let e = s.send(&[down_with_query()], Locale::En).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let wait = e.retry_after().unwrap();
    assert!(
        wait >= Duration::from_millis(500) && wait <= Duration::from_secs(2),
        "{wait:?}"
    );
    assert!(e.message().starts_with("slack: holding back"), "{e}");
    rx.next().await;
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
}

async fn answer(reply: Reply) -> SendError {
    let mut rx = Receiver::start(vec![reply]).await;
    let s = slack(rx.url(PATH));
    let e = s.send(&[down_with_query()], Locale::En).await.unwrap_err();
    rx.next().await;
    assert!(!e.message().contains("SECRET"), "{e}");
    e
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let e = answer(Reply::status(429, "rate_limited").header("retry-after", "7")).await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "slack: HTTP 429 Too Many Requests: rate_limited (too many messages)".into(),
            retry_after: Some(Duration::from_secs(7)),
        }
    );
}

#[tokio::test]
async fn server_errors_are_retryable() {
    for code in [500, 502, 503] {
        let e = answer(Reply::status(code, "")).await;
        assert!(e.is_retryable(), "{code}: {e}");
        assert_eq!(e.retry_after(), None);
    }
}

#[tokio::test]
async fn slack_error_codes_are_fatal_and_named() {
    for (status, code, meaning) in [
        (400, "invalid_payload", "watchpost bug"),
        (400, "no_text", "watchpost bug"),
        (403, "invalid_token", "invalid or was revoked"),
        (403, "action_prohibited", "restricted posting"),
        (404, "no_service", "webhook or its app was removed"),
        (404, "channel_not_found", "deleted"),
        (410, "channel_is_archived", "archived"),
        (400, "something_new", ""),
    ] {
        let e = answer(Reply::status(status, code)).await;
        assert!(!e.is_retryable(), "{code}: {e}");
        assert!(
            e.message().starts_with(&format!("slack: HTTP {status} ")),
            "{e}"
        );
        assert!(e.message().contains(code), "{e}");
        assert!(e.message().contains(meaning), "{e}");
    }
}

#[tokio::test]
async fn web_api_style_refusals_in_a_200() {
    let e = answer(Reply::json(
        200,
        r#"{"ok":false,"error":"channel_is_archived"}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::fatal("slack: channel_is_archived (the webhook's channel is archived)")
    );
    let e = answer(Reply::json(200, r#"{"ok":false,"error":"rate_limited"}"#)).await;
    assert!(e.is_retryable(), "{e}");
}

#[tokio::test]
async fn network_errors_are_retryable_and_show_no_secret() {
    // A port nothing listens on (bound, then closed).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = slack(format!("http://127.0.0.1:{port}{PATH}"));
    let e = s.send(&[down_with_query()], Locale::En).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(
        e.message()
            .starts_with(&format!("http://127.0.0.1:{port}: ")),
        "{e}"
    );
    assert!(!e.message().contains("SECRET"), "{e}");
}

#[test]
fn config_errors_and_debug_hide_the_webhook() {
    let c = ChannelConfig::from_value(json!({
        "type": "slack",
        "webhook": "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
    }))
    .unwrap();
    assert!(!format!("{c:?}").contains("SECRET"), "{c:?}");
    assert!(format!("{c:?}").contains("hooks.slack.com:443"), "{c:?}");
    let channel = c.build().unwrap();
    assert!(!format!("{channel:?}").contains("SECRET"), "{channel:?}");
    assert_eq!(channel.kind(), "slack");

    // `url` is accepted for `webhook`.
    let u = ChannelConfig::from_value(json!({
        "type": "slack",
        "url": "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
    }))
    .unwrap();
    assert_eq!(u, c);

    let e = try_build(json!({"type": "slack", "webhook": "ftp://h/XXXXSECRET"})).unwrap_err();
    assert!(e.0.starts_with("slack: webhook: scheme \"ftp\""), "{e}");
    assert!(!e.0.contains("SECRET"), "{e}");
    let e = try_build(json!({"type": "slack", "webhook": "not a url SECRET"})).unwrap_err();
    assert!(e.0.starts_with("slack: webhook: not a valid URL"), "{e}");
    assert!(!e.0.contains("SECRET"), "{e}");
    let e = ChannelConfig::from_value(
        json!({"type": "slack", "webhook": "http://h/", "channel": "#x"}),
    )
    .unwrap_err();
    assert!(e.0.contains("unknown field `channel`"), "{e}");
    let e = ChannelConfig::from_value(json!({"type": "slack"})).unwrap_err();
    assert!(e.0.contains("missing field `webhook`"), "{e}");
}
