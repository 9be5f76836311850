//! A provider that echoes the request (its URL, headers and body) in its answer must not get
//! the channel's secrets quoted into a `SendError` message or a `Delivery` body — which
//! `watchpost notify` prints and the outbox stores. Each channel is sent to a receiver on
//! 127.0.0.1 scripted to echo, as text or inside the provider's JSON error, with 200, 400
//! and 500; no secret appears in what the send returns, as written, percent-encoded or
//! JSON-escaped, and the echo is seen to have been masked (`<redacted>` is there).

mod common;

use common::{alert, build};
use serde_json::{Value, json};
use watchpost_channels::{Alert, AlertKind, Channel, Delivery, Locale, SendError};
use watchpost_testkit::{Receiver, Reply, Seen};

const MASK: &str = "<redacted>";

/// The forms an echo may show `secret` in.
fn forms(secret: &str) -> Vec<String> {
    let mut encoded = String::new();
    for b in secret.bytes() {
        if b.is_ascii_alphanumeric() {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_string(),
        encoded.to_lowercase(),
        encoded,
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        json[1..json.len() - 1].to_string(),
        json[1..json.len() - 1].replace('/', "\\/"),
    ]
}

#[track_caller]
fn assert_masked(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{what}: the secret {secret:?} (as {form:?}) is shown: {text}"
            );
        }
    }
    assert!(
        text.contains(MASK),
        "{what}: nothing was masked, so the echo did not quote a secret: {text}"
    );
}

/// The text a send returns: the delivery's body, or the error's message.
fn outcome(r: &Result<Delivery, SendError>) -> String {
    match r {
        Ok(d) => d.body.clone(),
        Err(e) => e.message().to_string(),
    }
}

/// Send through the channel itself (not `Channel::send`, whose last pass would hide a
/// missed mask): the texts must be masked where they are read.
async fn send_inner(channel: &Channel, a: &Alert) -> Result<Delivery, SendError> {
    let one = std::slice::from_ref(a);
    match channel {
        Channel::Webhook(c) => c.send(a, Locale::En).await,
        Channel::TencentSms(c) => c.send(a, Locale::En).await,
        Channel::Wecom(c) => c.send(one, Locale::En).await,
        Channel::Dingtalk(c) => c.send(one, Locale::En).await,
        Channel::Feishu(c) => c.send(one, Locale::En).await,
        Channel::Slack(c) => c.send(one, Locale::En).await,
        Channel::Telegram(c) => c.send(one, Locale::En).await,
        Channel::Alertmanager(c) => c.send(one, Locale::En).await,
        other => panic!("not an HTTP channel: {other:?}"),
    }
}

/// The plain echo: `POST http://host/path?query`, the headers, the body.
fn raw(status: u16) -> Reply {
    Reply::echo(status, Seen::echo)
}

/// The echo with the headers first (the `Authorization` one ahead of the others).
fn headers_first(status: u16) -> Reply {
    Reply::echo(status, |seen: &Seen| {
        let mut out = String::new();
        if let Some(v) = seen.headers.get("authorization") {
            out.push_str(&format!("authorization: {} ", v.to_str().unwrap()));
        }
        for (name, value) in &seen.headers {
            out.push_str(&format!(
                "{name}: {} ",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        out
    })
}

/// The request as `{"url": ..., "decoded": ...}`: the URL as sent and percent-decoded.
fn url_json(seen: &Seen) -> Value {
    let host = seen.header("host").to_string();
    let decoded: String = url::form_urlencoded::parse(seen.uri.as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    json!({"url": format!("http://{host}{}", seen.uri), "decoded": decoded})
}

/// Start a receiver answering `reply`, build a channel from `settings(receiver)` (a new one
/// each time: rate limits are per channel), send the down alert; the outcome's text, the
/// outcome, and the request seen.
async fn exchange(
    reply: Reply,
    settings: impl FnOnce(&Receiver) -> Value,
) -> (String, Result<Delivery, SendError>, Seen) {
    let mut rx = Receiver::start(vec![reply]).await;
    let channel = build(settings(&rx));
    let result = send_inner(&channel, &alert(AlertKind::Down)).await;
    let seen = rx.next().await;
    // The last pass in `Channel::send` changes nothing that was already masked.
    if let Some(r) = channel.redact() {
        assert_eq!(r.result(result.clone()), result);
    }
    (outcome(&result), result, seen)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------

const HOOK_PATH: &str = "/hooks/T0KEN-PATH-1234567";
const HOOK_QUERY_KEY: &str = "WEBHOOK-QUERY-KEY-42";
const HOOK_BEARER: &str = "Bearer webhook/bearer+secret=9";
const HOOK_API_KEY: &str = "x-api-key-secret-77";

fn webhook(rx: &Receiver) -> Value {
    json!({
        "type": "webhook",
        "url": rx.url(&format!("{HOOK_PATH}?key={HOOK_QUERY_KEY}&team=ops")),
        "headers": {"Authorization": HOOK_BEARER, "X-Api-Key": HOOK_API_KEY},
    })
}

#[tokio::test]
async fn webhook_echo() {
    let secrets = strings(&[
        HOOK_PATH,
        "T0KEN-PATH-1234567",
        HOOK_QUERY_KEY,
        HOOK_BEARER,
        HOOK_API_KEY,
    ]);
    for reply in [
        raw(400),
        raw(500),
        raw(200),
        headers_first(400),
        headers_first(200),
    ] {
        let (text, result, seen) = exchange(reply, webhook).await;
        assert_eq!(
            seen.header("x-api-key"),
            HOOK_API_KEY,
            "the request carried it"
        );
        assert_masked(&format!("webhook {result:?}"), &text, &secrets);
    }
    let json_echo = Reply::echo(422, |seen: &Seen| {
        json!({"error": "bad request", "request": url_json(seen),
               "authorization": seen.header("authorization")})
        .to_string()
    });
    let (text, _, _) = exchange(json_echo, webhook).await;
    assert_masked("webhook JSON echo", &text, &secrets);
}

const WECOM_KEY: &str = "693a91f6-7b2c-4bc4-97a0-0ec2f1fa5aaa";

fn wecom(rx: &Receiver) -> Value {
    json!({"type": "wecom", "webhook": rx.url(&format!("/cgi-bin/webhook/send?key={WECOM_KEY}"))})
}

#[tokio::test]
async fn wecom_echo() {
    let secrets = strings(&[WECOM_KEY]);
    for reply in [raw(400), raw(500), raw(200)] {
        let (text, result, _) = exchange(reply, wecom).await;
        assert!(result.is_err());
        assert_masked("wecom raw", &text, &secrets);
    }
    // WeCom's own error quotes the URL in errmsg.
    let errcode = Reply::echo(200, |seen: &Seen| {
        json!({"errcode": 93000, "errmsg": format!(
            "invalid webhook url, hint: [1700000000_1], url: {}, key: {WECOM_KEY}",
            url_json(seen)["url"].as_str().unwrap())})
        .to_string()
    });
    let (text, result, _) = exchange(errcode, wecom).await;
    assert!(
        text.starts_with("wecom: errcode 93000: invalid webhook url"),
        "{text}"
    );
    assert!(!result.unwrap_err().is_retryable());
    assert_masked("wecom errmsg", &text, &secrets);
}

const DING_TOKEN: &str = "a4f8c9d2e1b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1";
const DING_SECRET: &str = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc";

fn dingtalk(rx: &Receiver) -> Value {
    json!({
        "type": "dingtalk",
        "webhook": rx.url(&format!("/robot/send?access_token={DING_TOKEN}")),
        "secret": DING_SECRET,
    })
}

#[tokio::test]
async fn dingtalk_echo() {
    for reply in [raw(400), raw(500)] {
        let (text, _, seen) = exchange(reply, dingtalk).await;
        let sign = seen.query_param("sign").expect("a signed request");
        assert_masked(
            "dingtalk raw",
            &text,
            &[DING_TOKEN.into(), DING_SECRET.into(), sign],
        );
    }
    let errcode = Reply::echo(200, |seen: &Seen| {
        json!({"errcode": 310000, "errmsg": format!(
            "sign not match, sign: {}, url: {}",
            seen.query_param("sign").unwrap(),
            url_json(seen)["decoded"].as_str().unwrap())})
        .to_string()
    });
    let (text, _, seen) = exchange(errcode, dingtalk).await;
    assert!(
        text.starts_with("dingtalk: errcode 310000: sign not match"),
        "{text}"
    );
    let sign = seen.query_param("sign").unwrap();
    assert_masked("dingtalk errmsg", &text, &[DING_TOKEN.into(), sign]);
}

const FEISHU_HOOK: &str = "2f1e7a9c-3b4d-4e5f-8a6b-7c8d9e0f1a2b";
const FEISHU_SECRET: &str = "fs-signing-secret-4711";

fn feishu(rx: &Receiver) -> Value {
    json!({
        "type": "feishu",
        "webhook": rx.url(&format!("/open-apis/bot/v2/hook/{FEISHU_HOOK}")),
        "secret": FEISHU_SECRET,
    })
}

#[tokio::test]
async fn feishu_echo() {
    for reply in [raw(400), raw(500), raw(200)] {
        let (text, _, _) = exchange(reply, feishu).await;
        assert_masked("feishu raw", &text, &strings(&[FEISHU_HOOK]));
    }
    // The signature is in the body: an error quoting it.
    let code = Reply::echo(200, |seen: &Seen| {
        let body = seen.json();
        json!({"code": 19021, "msg": format!(
            "sign match fail or timestamp is not within one hour from current time, sign: {},              timestamp: {}, hook: {}",
            body["sign"].as_str().unwrap(), body["timestamp"].as_str().unwrap(),
            url_json(seen)["url"].as_str().unwrap())})
        .to_string()
    });
    let (text, _, seen) = exchange(code, feishu).await;
    assert!(
        text.starts_with("feishu: errcode 19021: sign match fail"),
        "{text}"
    );
    let sign = seen.json()["sign"].as_str().unwrap().to_string();
    assert_masked("feishu msg", &text, &[FEISHU_HOOK.into(), sign]);
}

const SLACK_PATH: &str = "/services/T0000AAAA/B0000BBBB/xoxSecretHookPart24chars";

fn slack(rx: &Receiver) -> Value {
    json!({"type": "slack", "webhook": rx.url(SLACK_PATH)})
}

#[tokio::test]
async fn slack_echo() {
    let secrets = strings(&[SLACK_PATH, "xoxSecretHookPart24chars"]);
    for reply in [raw(400), raw(500), raw(200)] {
        let (text, _, _) = exchange(reply, slack).await;
        assert_masked("slack raw", &text, &secrets);
    }
    let refused = Reply::echo(200, |seen: &Seen| {
        json!({"ok": false, "error": format!("invalid_token for {}",
            url_json(seen)["url"].as_str().unwrap())})
        .to_string()
    });
    let (text, _, _) = exchange(refused, slack).await;
    assert_masked("slack error code", &text, &secrets);
}

const TG_TOKEN: &str = "123456789:AAEhBP0av28dB5Qq2wq0WbgKaN-XYZ_abcd";

fn telegram(rx: &Receiver) -> Value {
    json!({"type": "telegram", "bot_token": TG_TOKEN, "chat_id": -1001234567890i64,
           "api_base": rx.url("")})
}

#[tokio::test]
async fn telegram_echo() {
    let secrets = strings(&[TG_TOKEN, "AAEhBP0av28dB5Qq2wq0WbgKaN-XYZ_abcd"]);
    for reply in [raw(400), raw(500), raw(200)] {
        let (text, _, seen) = exchange(reply, telegram).await;
        assert!(seen.path().contains(TG_TOKEN), "the token is in the path");
        assert_masked("telegram raw", &text, &secrets);
    }
    for (status, code) in [(401, 401), (400, 400), (429, 429)] {
        let described = Reply::echo(status, move |seen: &Seen| {
            json!({"ok": false, "error_code": code, "description": format!(
                "Unauthorized: {} token={TG_TOKEN}", url_json(seen)["url"].as_str().unwrap())})
            .to_string()
        });
        let (text, _, _) = exchange(described, telegram).await;
        assert!(
            text.starts_with(&format!("telegram: {code} Unauthorized")),
            "{text}"
        );
        assert_masked("telegram description", &text, &secrets);
    }
}

const TC_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const TC_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

fn tencent(rx: &Receiver) -> Value {
    json!({
        "type": "tencent_sms",
        "secret_id": TC_ID,
        "secret_key": TC_KEY,
        "sdk_app_id": "1400006666",
        "sign_name": "腾讯云",
        "template_id": "1110",
        "phones": ["+8613800000000"],
        "endpoint": rx.url(""),
    })
}

#[tokio::test]
async fn tencent_sms_echo() {
    for reply in [headers_first(400), headers_first(500), headers_first(200)] {
        let (text, _, seen) = exchange(reply, tencent).await;
        let authorization = seen.header("authorization").to_string();
        assert!(
            authorization.contains(TC_ID),
            "the request carried the SecretId"
        );
        assert_masked("tencent raw", &text, &[TC_ID.into(), authorization]);
    }
    let error = Reply::echo(200, |seen: &Seen| {
        json!({"Response": {
            "Error": {"Code": "AuthFailure.SignatureFailure",
                      "Message": format!("The provided credentials could not be validated: {}                                           key {TC_KEY}", seen.header("authorization"))},
            "RequestId": TC_ID}})
        .to_string()
    });
    let (text, _, seen) = exchange(error, tencent).await;
    assert!(
        text.starts_with("tencent_sms: SendSms failed: AuthFailure.SignatureFailure"),
        "{text}"
    );
    let authorization = seen.header("authorization").to_string();
    assert_masked(
        "tencent error",
        &text,
        &[TC_ID.into(), TC_KEY.into(), authorization],
    );
}

const AM_TOKEN: &str = "AM-QUERY-TOKEN-5";
const AM_BEARER: &str = "Bearer am-bearer-secret";

fn alertmanager(rx: &Receiver) -> Value {
    json!({
        "type": "alertmanager",
        "url": rx.url(&format!("/am/api/v2/alerts?token={AM_TOKEN}")),
        "headers": {"Authorization": AM_BEARER},
    })
}

#[tokio::test]
async fn alertmanager_echo() {
    let secrets = strings(&[AM_TOKEN, AM_BEARER]);
    for reply in [raw(500), headers_first(400), raw(200)] {
        let (text, _, _) = exchange(reply, alertmanager).await;
        assert_masked("alertmanager raw", &text, &secrets);
    }
    let string = Reply::echo(400, |seen: &Seen| {
        Value::String(format!(
            "bad request to {} with {}",
            url_json(seen)["url"],
            seen.header("authorization")
        ))
        .to_string()
    });
    let (text, _, _) = exchange(string, alertmanager).await;
    assert!(
        text.starts_with("alertmanager: HTTP 400 Bad Request: bad request to"),
        "{text}"
    );
    assert_masked("alertmanager message", &text, &secrets);
}

#[tokio::test]
async fn through_channel_send_too() {
    let mut rx = Receiver::start(vec![raw(503)]).await;
    let channel = build(webhook(&rx));
    let e = channel
        .send(&alert(AlertKind::Down), Locale::En)
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    let _ = rx.next().await;
    assert_masked(
        "Channel::send",
        e.message(),
        &strings(&[HOOK_QUERY_KEY, HOOK_BEARER, HOOK_API_KEY]),
    );
}
