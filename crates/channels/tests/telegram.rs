//! The Telegram channel against a real HTTP receiver on 127.0.0.1 standing in for the Bot API
//! (`api_base`): the exact `sendMessage` request, HTML escaping, splitting long texts, merging,
//! the rate limit, how each answer is classified, and that the bot token never leaks.

mod common;

use common::{at, build, down_with_query, try_build};
use serde_json::json;
use std::time::Duration;
use watchpost_channels::{
    AlertKind, Channel, ChannelConfig, Delivery, FailedCondition, Locale, LocationRow, SendError,
    Telegram,
};
use watchpost_testkit::{Receiver, Reply, Seen};

const TOKEN: &str = "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-bs";
const SECRET: &str = "AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-bs";
const OK: &str = r#"{"ok":true,"result":{"message_id":7,"chat":{"id":-1001234567890,"type":"supergroup"},"date":1767322800,"text":"..."}}"#;

fn telegram(settings: serde_json::Value) -> Telegram {
    match build(settings) {
        Channel::Telegram(t) => t,
        other => panic!("{other:?}"),
    }
}

fn to(rx: &Receiver) -> Telegram {
    telegram(json!({
        "type": "telegram",
        "bot_token": TOKEN,
        "chat_id": "-1001234567890",
        "api_base": rx.url(""),
    }))
}

/// The visible text of Telegram HTML: tags removed, the three entities decoded.
fn visible(html: &str) -> String {
    let no_tags: String = {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    };
    no_tags
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn text_of(seen: &Seen) -> String {
    seen.json()["text"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn posts_send_message_with_html_in_english() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let t = to(&rx);
    let delivery = t.send(&[down_with_query()], Locale::En).await.unwrap();
    assert_eq!(delivery.status, Some(200));
    assert!(delivery.body.starts_with("{\"ok\":true"), "{delivery:?}");

    let seen = rx.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(seen.header("content-type"), "application/json");
    let text = "<b>[DOWN] homepage</b>\n\
        homepage is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信].\n\
        \n\
        <b>Time:</b> 2026-01-02 11:00:00 +08:00\n\
        <b>Down since:</b> 2026-01-02 10:55:00 +08:00\n\
        <b>URL:</b> https://www.example.com/?a=1&amp;b=2\n\
        <b>Incident:</b> <code>homepage:1767322800000</code>\n\
        \n\
        <b>Failing conditions</b>\n\
        • 广东佛山[电信]: total 1430ms &gt; 1000ms\n\
        \n\
        <b>Locations</b>\n\
        <pre>Location        Result  Status     DNS  Connect     TLS    Wait  Download   Total\n\
        local           OK         200   1.2ms  0.080ms   3.4ms   140ms     100ms   251ms\n\
        广东佛山[电信]  FAIL       200  12.0ms   27.0ms  55.0ms  1319ms    17.0ms  1430ms</pre>";
    assert_eq!(
        seen.json(),
        json!({
            "chat_id": -1001234567890i64,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
            "disable_notification": false,
        })
    );
    assert!(rx.drain().is_empty());
}

#[tokio::test]
async fn chinese_reminder_to_a_channel_topic_silently() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let t = telegram(json!({
        "type": "telegram",
        "bot_token": TOKEN,
        "chat_id": "@ops_alerts",
        "api_base": rx.url("/"),
        "message_thread_id": 42,
        "disable_notification": true,
    }));
    let mut a = down_with_query();
    a.kind = AlertKind::Reminder;
    a.at = at(3, 25, 0);
    a.locations.clear();
    t.send(&[a], Locale::ZhCn).await.unwrap();
    let seen = rx.next().await;
    assert_eq!(seen.uri, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(
        seen.json(),
        json!({
            "chat_id": "@ops_alerts",
            "text": "<b>【提醒】homepage</b>\n\
                     监控 homepage 仍处于故障状态（已持续 30分钟）。\n\
                     \n\
                     <b>时间：</b> 2026-01-02 11:25:00 +08:00\n\
                     <b>故障开始：</b> 2026-01-02 10:55:00 +08:00\n\
                     <b>持续时长：</b> 30分钟\n\
                     <b>地址：</b> https://www.example.com/?a=1&amp;b=2\n\
                     <b>事件编号：</b> <code>homepage:1767322800000</code>\n\
                     \n\
                     <b>失败条件</b>\n\
                     • 广东佛山[电信]: total 1430ms &gt; 1000ms",
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
            "disable_notification": true,
            "message_thread_id": 42,
        })
    );
}

#[tokio::test]
async fn integer_chat_ids_are_sent_as_numbers() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let t = telegram(json!({
        "type": "telegram", "bot_token": TOKEN, "chat_id": 123456, "api_base": rx.url(""),
    }));
    t.send(&[down_with_query()], Locale::En).await.unwrap();
    assert_eq!(rx.next().await.json()["chat_id"], json!(123456));
}

#[tokio::test]
async fn html_is_escaped() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let t = to(&rx);
    let mut a = down_with_query();
    a.monitor = "<b>&\"x\"".into();
    a.failures = vec![FailedCondition::from_text("body contains \"</pre>\" & <i>")];
    a.locations[0].location = "<pre>&".into();
    t.send(&[a], Locale::En).await.unwrap();
    let text = text_of(&rx.next().await);
    assert!(
        text.starts_with("<b>[DOWN] &lt;b&gt;&amp;\"x\"</b>\n&lt;b&gt;&amp;\"x\" is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信].\n"),
        "{text}"
    );
    assert!(
        text.contains("• body contains \"&lt;/pre&gt;\" &amp; &lt;i&gt;\n"),
        "{text}"
    );
    assert!(
        text.contains("\n&lt;pre&gt;&amp;          OK         200"),
        "{text}"
    );
    // Only our own tags remain.
    let tags: Vec<&str> = text
        .match_indices('<')
        .map(|(i, _)| &text[i..i + text[i..].find('>').unwrap() + 1])
        .collect();
    assert!(
        tags.iter()
            .all(|t| ["<b>", "</b>", "<code>", "</code>", "<pre>", "</pre>"].contains(t)),
        "{tags:?}"
    );
    assert!(visible(&text).contains("[DOWN] <b>&\"x\""));
}

#[tokio::test]
async fn long_texts_go_as_several_messages_within_the_limit() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let t = to(&rx);
    let mut a = down_with_query();
    a.failures = (0..30)
        .map(|i| FailedCondition::from_text(format!("condition {i}: total 1430ms > 1000ms")))
        .collect();
    a.locations = (0..300)
        .map(|i| LocationRow {
            location: format!("探测点-{i:03}"),
            ok: i % 2 == 0,
            metrics: common::http_metrics(
                200,
                [
                    1.0,
                    27.0,
                    30.0,
                    900.0 + f64::from(i),
                    17.0,
                    1000.0 + f64::from(i),
                ],
            ),
            error: None,
            ..LocationRow::default()
        })
        .collect();
    let delivery = t
        .send(std::slice::from_ref(&a), Locale::ZhCn)
        .await
        .unwrap();
    let seen = rx.drain();
    let n = seen.len();
    assert!(n >= 4, "{n} messages");
    assert!(
        delivery.body.starts_with(&format!("{n} messages; last: ")),
        "{delivery:?}"
    );

    let mut all = String::new();
    for (i, s) in seen.iter().enumerate() {
        let text = text_of(s);
        let v = visible(&text);
        assert!(
            v.encode_utf16().count() <= 4096,
            "{}",
            v.encode_utf16().count()
        );
        assert_eq!(
            text.matches("<pre>").count(),
            text.matches("</pre>").count()
        );
        assert_eq!(text.matches("<b>").count(), text.matches("</b>").count());
        if i > 0 {
            let head = format!("<b>【故障】homepage ({}/{n})</b>\n", i + 1);
            assert!(text.starts_with(&head), "{text}");
            all.push_str(&v[visible(&head).len()..]);
        } else {
            all.push_str(&v);
        }
        all.push('\n');
    }
    // Nothing lost: every row of the plain table, in order, and every failure once.
    let mut rest = all.as_str();
    for row in a.plain_table(Locale::ZhCn).lines() {
        let at = rest
            .find(&format!("{row}\n"))
            .unwrap_or_else(|| panic!("{row:?} missing or out of order"));
        rest = &rest[at + row.len()..];
    }
    for i in 0..30 {
        assert_eq!(
            all.matches(&format!("• condition {i}: ")).count(),
            1,
            "condition {i}"
        );
    }
}

#[tokio::test]
async fn several_alerts_make_one_message() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let channel = Channel::Telegram(to(&rx));
    assert!(channel.merges());
    let mut b = down_with_query();
    b.monitor = "api".into();
    b.kind = AlertKind::Resolved;
    channel
        .send_many(&[down_with_query(), b, down_with_query()], Locale::En)
        .await
        .unwrap();
    let seen = rx.next().await;
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
    let text = text_of(&seen);
    assert!(
        text.starts_with("<b>[watchpost] 3 alerts: 2 DOWN, 1 RESOLVED</b>\n\n"),
        "{text}"
    );
    assert_eq!(text.matches("<b>[DOWN] homepage</b>").count(), 2);
    assert_eq!(text.matches("<b>[RESOLVED] api</b>").count(), 1);
    assert_eq!(text.matches("<pre>").count(), 3);
}

#[tokio::test]
async fn the_rate_limit_holds_back_without_a_request() {
    let mut rx = Receiver::start(vec![Reply::json(200, OK)]).await;
    let t = to(&rx);
    t.send(&[down_with_query()], Locale::En).await.unwrap();
    let e = t.send(&[down_with_query()], Locale::En).await.unwrap_err();
    assert!(e.is_retryable());
    assert!(e.message().starts_with("telegram: holding back"), "{e}");
    let wait = e.retry_after().unwrap();
    assert!(wait <= Duration::from_secs(2), "{wait:?}");
    rx.next().await;
    assert!(rx.next_within(Duration::from_millis(200)).await.is_none());
}

async fn answer(reply: Reply) -> SendError {
    let mut rx = Receiver::start(vec![reply]).await;
    let t = to(&rx);
    let e = t.send(&[down_with_query()], Locale::En).await.unwrap_err();
    rx.next().await;
    assert!(!e.message().contains(SECRET), "{e}");
    e
}

#[tokio::test]
async fn flood_control_honours_retry_after() {
    let e = answer(Reply::json(
        429,
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 13","parameters":{"retry_after":13}}"#,
    ))
    .await;
    assert_eq!(
        e,
        SendError::Retryable {
            message: "telegram: 429 Too Many Requests: retry after 13".into(),
            retry_after: Some(Duration::from_secs(13)),
        }
    );
    // Without parameters, the header.
    let e = answer(
        Reply::json(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests"}"#,
        )
        .header("retry-after", "9"),
    )
    .await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let e = answer(Reply::json(
        502,
        r#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#,
    ))
    .await;
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.message(), "telegram: 502 Bad Gateway");
    // A proxy's HTML page.
    let e = answer(Reply::status(503, "<html>down</html>")).await;
    assert!(e.is_retryable(), "{e}");
    assert!(e.message().starts_with("telegram: HTTP 503"), "{e}");
}

#[tokio::test]
async fn refusals_are_fatal_with_the_description() {
    for (code, description, hint) in [
        (400, "Bad Request: chat not found", "check chat_id"),
        (
            400,
            "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 3",
            "watchpost bug",
        ),
        (401, "Unauthorized", "token is wrong or was revoked"),
        (403, "Forbidden: bot was blocked by the user", "blocked"),
        (
            403,
            "Forbidden: bot was kicked from the supergroup chat",
            "removed",
        ),
        (404, "Not Found", "check bot_token and api_base"),
    ] {
        let body = json!({"ok": false, "error_code": code, "description": description});
        let e = answer(Reply::json(code, &body.to_string())).await;
        assert!(!e.is_retryable(), "{e}");
        assert!(
            e.message()
                .starts_with(&format!("telegram: {code} {description} (")),
            "{e}"
        );
        assert!(e.message().contains(hint), "{e}");
    }
    let e = answer(Reply::json(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876543210}}"#,
    ))
    .await;
    assert!(
        e.message()
            .ends_with("(the group is now a supergroup: set chat_id to -1009876543210)"),
        "{e}"
    );
}

#[tokio::test]
async fn the_token_never_shows_in_errors() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = telegram(json!({
        "type": "telegram", "bot_token": TOKEN, "chat_id": 1,
        "api_base": format!("http://127.0.0.1:{port}"),
    }));
    let e = t.send(&[down_with_query()], Locale::En).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(
        e.message()
            .starts_with(&format!("http://127.0.0.1:{port}: ")),
        "{e}"
    );
    assert!(
        !e.message().contains(SECRET) && !e.message().contains("123456789"),
        "{e}"
    );
    assert!(!format!("{t:?}").contains(SECRET), "{t:?}");
    // An answer that is neither JSON nor a success.
    let mut rx = Receiver::start(vec![Reply::status(404, "404 page not found")]).await;
    let e = to(&rx)
        .send(&[down_with_query()], Locale::En)
        .await
        .unwrap_err();
    rx.next().await;
    assert_eq!(
        e,
        SendError::fatal("telegram: HTTP 404 Not Found: 404 page not found")
    );
}

#[test]
fn config_errors_and_debug() {
    let c = ChannelConfig::from_value(json!({
        "type": "telegram", "bot_token": TOKEN, "chat_id": "-1001234567890",
    }))
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("api.telegram.org:443"), "{shown}");
    let channel = c.build().unwrap();
    assert!(!format!("{channel:?}").contains(SECRET));
    assert!(
        format!("{channel:?}").contains("https://api.telegram.org:443"),
        "{channel:?}"
    );

    for token in [
        "AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-bs",
        "123456789:short-SECRET",
        "123456789:AAEhBOweik6ad9r QXMENQjcrGbqCr4K-bs",
        "${TG_TOKEN}",
    ] {
        let e =
            try_build(json!({"type": "telegram", "bot_token": token, "chat_id": 1})).unwrap_err();
        assert!(
            e.0.starts_with("telegram: bot_token: not a bot token"),
            "{e}"
        );
        assert!(!e.0.contains("SECRET") && !e.0.contains("AAEh"), "{e}");
    }
    for chat in [
        json!("ops"),
        json!("@a b"),
        json!(""),
        json!(1.5),
        json!(true),
    ] {
        let e = try_build(json!({"type": "telegram", "bot_token": TOKEN, "chat_id": chat}))
            .unwrap_err();
        assert!(e.0.contains("chat_id"), "{e}");
    }
    let e = try_build(json!({
        "type": "telegram", "bot_token": TOKEN, "chat_id": 1, "api_base": "ftp://h",
    }))
    .unwrap_err();
    assert!(e.0.starts_with("telegram: api_base: scheme \"ftp\""), "{e}");
    let e = try_build(json!({
        "type": "telegram", "bot_token": TOKEN, "chat_id": 1, "api_base": "https://h/?x=1",
    }))
    .unwrap_err();
    assert!(e.0.contains("must not have a query"), "{e}");
    let e = try_build(json!({
        "type": "telegram", "bot_token": TOKEN, "chat_id": 1, "parse_mode": "MarkdownV2",
    }))
    .unwrap_err();
    assert!(e.0.contains("unknown field `parse_mode`"), "{e}");
    let e = try_build(json!({"type": "telegram", "chat_id": 1})).unwrap_err();
    assert!(e.0.contains("missing field `bot_token`"), "{e}");
}

#[tokio::test]
async fn a_delivery_records_the_answer() {
    let mut rx = Receiver::start(vec![Reply::json(200, r#"{"ok":true,"result":{}}"#)]).await;
    let d = to(&rx)
        .send(&[down_with_query()], Locale::En)
        .await
        .unwrap();
    rx.next().await;
    assert_eq!(
        d,
        Delivery {
            status: Some(200),
            body: r#"{"ok":true,"result":{}}"#.into()
        }
    );
}
