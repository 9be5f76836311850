//! Every rendering shows times in the alert's zone with the offset and watchpost's own notes
//! as a separate `Note:` / `注意：` line, while machine fields (the webhook payload's `at` and
//! `since`, Alertmanager's `startsAt`/`endsAt`, the e-mail `Date`) stay UTC. One test per
//! renderer; nothing is sent (the renderings are the channels' public functions).

mod common;

use chrono::Utc;
use common::{alert, build};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use watchpost_channels::{
    Alert, AlertKind, Channel, Console, Locale, WebhookPayload, digest_markdown_lite, email,
    feishu, slack, telegram,
};

const NOTE: &str =
    "watchpost could not run 12 checks since 2026-01-02 10:50:00 +08:00: too many open files";
/// The sample alert's `at` (03:00:00 UTC) and `since` (02:55:00 UTC) in Asia/Shanghai.
const AT_LOCAL: &str = "2026-01-02 11:00:00 +08:00";
const SINCE_LOCAL: &str = "2026-01-02 10:55:00 +08:00";

/// A down alert in Asia/Shanghai carrying a note.
fn noted() -> Alert {
    let mut a = alert(AlertKind::Down);
    assert_eq!(a.timezone.as_deref(), Some("Asia/Shanghai"));
    a.notes = vec![NOTE.to_string()];
    a
}

/// No UTC form of the alert's times in a human rendering.
#[track_caller]
fn no_utc_times(text: &str) {
    for utc in [
        "2026-01-02T03:00:00Z",
        "2026-01-02T02:55:00Z",
        "03:00:00 +00:00",
    ] {
        assert!(!text.contains(utc), "{utc} in {text}");
    }
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn console() {
    let sink = Sink::default();
    let console = Console::with_sink(sink.clone());
    console.send(&noted(), Locale::En).await.unwrap();
    let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        out.contains(&format!("homepage is DOWN. Failing at 1 of 2 reporting locations: 广东佛山[电信].\n\nNote: {NOTE}\n\nTime:")),
        "{out}"
    );
    assert!(out.contains(&format!("Time:        {AT_LOCAL}\n")), "{out}");
    assert!(
        out.contains(&format!("Down since:  {SINCE_LOCAL}\n")),
        "{out}"
    );
    no_utc_times(&out);
}

#[test]
fn plain_markdown_and_digest() {
    let a = noted();
    let zh = a.plain(Locale::ZhCn);
    assert!(zh.contains(&format!("\n\n注意：{NOTE}\n\n")), "{zh}");
    assert!(zh.contains(&format!("时间：{AT_LOCAL}\n")), "{zh}");
    no_utc_times(&zh);
    let md = a.markdown(Locale::En);
    assert!(md.contains(&format!("\n\n**Note:** {NOTE}\n\n")), "{md}");
    assert!(
        md.contains(&format!("- **Down since:** {SINCE_LOCAL}\n")),
        "{md}"
    );
    no_utc_times(&md);
    let digest = digest_markdown_lite(&[a.clone(), a], Locale::ZhCn);
    assert_eq!(
        digest.matches(&format!("**注意：** {NOTE}")).count(),
        2,
        "{digest}"
    );
    assert_eq!(digest.matches(AT_LOCAL).count(), 2, "{digest}");
    no_utc_times(&digest);
}

#[test]
fn webhook_payload_and_template() {
    let a = noted();
    let body = serde_json::to_value(WebhookPayload::new(&a, Locale::En)).unwrap();
    assert_eq!(body["at"], "2026-01-02T03:00:00Z", "machine field in UTC");
    assert_eq!(
        body["since"], "2026-01-02T02:55:00Z",
        "machine field in UTC"
    );
    assert_eq!(body["notes"], json!([NOTE]));
    let text = body["text"].as_str().unwrap();
    assert!(text.contains(&format!("Note: {NOTE}\n")), "{text}");
    assert!(text.contains(AT_LOCAL), "{text}");
    let markdown = body["markdown"].as_str().unwrap();
    assert!(
        markdown.contains(&format!("**Note:** {NOTE}")),
        "{markdown}"
    );

    let Channel::Webhook(w) = build(json!({
        "type": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "template": r#"{"at": {{ at_local|tojson }}, "since": {{ since_local|tojson }},
                        "utc": {{ at|tojson }}, "notes": {{ notes|tojson }}}"#,
    })) else {
        panic!("a webhook")
    };
    let out: Value = serde_json::from_slice(&w.body(&a, Locale::En).unwrap()).unwrap();
    assert_eq!(
        out,
        json!({"at": AT_LOCAL, "since": SINCE_LOCAL, "utc": "2026-01-02T03:00:00Z",
               "notes": [NOTE]})
    );
}

#[test]
fn email_text_html_and_date() {
    let a = noted();
    let html = email::html(&a, Locale::En);
    assert!(
        html.contains(&format!(
            "<strong>Note:</strong> {}</p>",
            email::escape(NOTE)
        )),
        "{html}"
    );
    assert!(html.contains(&format!("{AT_LOCAL}</td>")), "{html}");
    no_utc_times(&html);
    let html = email::html(&a, Locale::ZhCn);
    assert!(
        html.contains("<strong>注意：</strong> watchpost could not run"),
        "{html}"
    );

    let Channel::Email(mail) = build(json!({
        "type": "email",
        "server": "smtp+insecure://127.0.0.1:2525",
        "from": "svc@example.com",
        "to": "owner@example.com",
    })) else {
        panic!("an e-mail channel")
    };
    let raw = String::from_utf8(mail.message(&a, Locale::En).unwrap().formatted()).unwrap();
    // The Date header is for machines: numeric offset of UTC.
    let date = raw
        .lines()
        .find(|l| l.starts_with("Date: "))
        .expect("a Date header");
    assert!(date.ends_with("+0000"), "{date}");
}

#[test]
fn slack() {
    let payloads = slack::payloads(&[noted()], Locale::En);
    let text = payloads[0]["blocks"].to_string();
    assert!(text.contains(&format!("*Note:* {NOTE}")), "{text}");
    assert!(text.contains(&format!("*Time:* {AT_LOCAL}")), "{text}");
    no_utc_times(&text);
}

#[test]
fn telegram() {
    let texts = telegram::texts(&[noted()], Locale::ZhCn);
    assert!(
        texts[0].contains(&format!("\n\n<b>注意：</b> {NOTE}\n\n")),
        "{}",
        texts[0]
    );
    assert!(
        texts[0].contains(&format!("<b>时间：</b> {AT_LOCAL}")),
        "{}",
        texts[0]
    );
    no_utc_times(&texts[0]);
}

#[test]
fn feishu_card() {
    let md = feishu::card_markdown(&[noted()], Locale::ZhCn);
    assert!(md.contains(&format!("**注意：** {NOTE}\n")), "{md}");
    assert!(md.contains(&format!("- **时间：** {AT_LOCAL}\n")), "{md}");
    no_utc_times(&md);
}

#[test]
fn dingtalk() {
    let Channel::Dingtalk(d) = build(json!({
        "type": "dingtalk",
        "webhook": "https://oapi.dingtalk.com/robot/send?access_token=t",
    })) else {
        panic!("a dingtalk channel")
    };
    let text = d.messages(&[noted()], Locale::En)[0]["markdown"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&format!("**Note:** {NOTE}\n")), "{text}");
    assert!(text.contains(AT_LOCAL), "{text}");
    no_utc_times(&text);
}

#[test]
fn wecom() {
    let Channel::Wecom(w) = build(json!({
        "type": "wecom",
        "webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
    })) else {
        panic!("a wecom channel")
    };
    let content = w.messages(&[noted()], Locale::ZhCn)[0]["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        content.contains(&format!("**注意：** {NOTE}\n")),
        "{content}"
    );
    assert!(content.contains(SINCE_LOCAL), "{content}");
    no_utc_times(&content);
}

#[test]
fn alertmanager() {
    let Channel::Alertmanager(am) = build(json!({
        "type": "alertmanager",
        "url": "http://127.0.0.1:9093",
    })) else {
        panic!("an alertmanager channel")
    };
    let body = am.body(&[noted()], Locale::En, Utc::now());
    let annotations = &body[0]["annotations"];
    assert_eq!(annotations["notes"], format!("Note: {NOTE}"));
    assert_eq!(
        body[0]["startsAt"], "2026-01-02T02:55:00Z",
        "machine field in UTC"
    );
    // Without notes, no annotation.
    let plain = am.body(&[alert(AlertKind::Down)], Locale::En, Utc::now());
    assert!(plain[0]["annotations"].get("notes").is_none());
}

#[test]
fn tencent_sms_params() {
    let Channel::TencentSms(sms) = build(json!({
        "type": "tencent_sms",
        "secret_id": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "secret_key": "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        "sdk_app_id": "1400006666",
        "sign_name": "腾讯云",
        "template_id": "1110",
        "phones": ["+8613800000000"],
        "params": ["{{ at_local }}", "{{ notes|length }}"],
        "param_max_chars": 40,
    })) else {
        panic!("a tencent_sms channel")
    };
    assert_eq!(
        sms.params(&noted(), Locale::ZhCn).unwrap(),
        [AT_LOCAL.to_string(), "1".to_string()]
    );
}
