//! The tencent_sms channel against a recording HTTP receiver on 127.0.0.1: the exact request
//! (every header, the body byte for byte), the TC3 signature recomputed on the receiving side
//! from the bytes that arrived, and how each kind of answer is classified.

mod common;

use chrono::Utc;
use common::{at, build, try_build, with};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;
use watchpost_channels::{
    Alert, AlertKind, Channel, ChannelConfig, FailedCondition, Locale, LocationRow, SendError,
    TencentSms,
};
use watchpost_testkit::{Receiver, Reply, Seen};

const ID: &str = "AKIDwatchpostTEST0000000000000000";
const KEY: &str = "watchpost-test-secret-key-0123456789";

/// The tencentcloud-cli example answer to SendSms (two numbers delivered).
const TCCLI_OK: &str = r#"{"Response":{"SendStatusSet":[{"SerialNo":"5000:1045710669157053657849499619","PhoneNumber":"+8618511122233","Fee":1,"SessionContext":"test","Code":"Ok","Message":"send success","IsoCode":"CN"},{"SerialNo":"5000:1045710669157053657849499880","PhoneNumber":"+8618511122266","Fee":1,"SessionContext":"test","Code":"Ok","Message":"send success","IsoCode":"CN"}],"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}"#;

/// The shared down alert with a two-line Chinese name, a long Chinese failure from one
/// location without timings, and no URL.
fn alert() -> Alert {
    let mut a = common::alert(AlertKind::Down);
    a.monitor = "订单服务\n主站".into();
    a.incident_id = "orders:1767322800000".into();
    a.failures = vec![FailedCondition {
        location: "广东佛山[电信]".into(),
        operand: "lag".into(),
        op: ">".into(),
        expected: "10000".into(),
        actual: "12000".into(),
        text: "lag 12000 > 10000，消费组 billing 积压严重".into(),
        topic: None,
    }];
    a.locations = vec![LocationRow {
        location: "广东佛山[电信]".into(),
        ok: false,
        metrics: Vec::new(),
        error: None,
        ..LocationRow::default()
    }];
    a.url = None;
    a
}

fn settings(endpoint: &str) -> serde_json::Value {
    json!({
        "type": "tencent_sms",
        "secret_id": ID,
        "secret_key": KEY,
        "sdk_app_id": 1400006666u64,
        "sign_name": "腾讯云",
        "template_id": "1110",
        "phones": ["+8618511122233", "+8618511122266"],
        "params": ["{{ monitor }}", "{{ status }}", "{{ failures[0] if failures else '' }}"],
        "template_text": "监控{1}状态{2}，详情：{3}",
        "endpoint": endpoint,
        "timeout": "5s",
    })
}

fn channel(endpoint: &str) -> TencentSms {
    match build(settings(endpoint)) {
        Channel::TencentSms(c) => c,
        other => panic!("{other:?}"),
    }
}

/// TC3-HMAC-SHA256 written out again, for the receiving side: the Authorization a server
/// holding `KEY` expects for `seen` (signing content-type and host as they arrived).
fn expected_authorization(seen: &Seen) -> String {
    fn mac(key: &[u8], msg: &str) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(msg.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
    let ts: i64 = seen.header("x-tc-timestamp").parse().unwrap();
    let date = chrono::DateTime::from_timestamp(ts, 0)
        .unwrap()
        .date_naive()
        .to_string();
    let canonical = [
        "POST".to_string(),
        "/".into(),
        String::new(),
        format!(
            "content-type:{}",
            seen.header("content-type").to_lowercase()
        ),
        format!("host:{}", seen.header("host").to_lowercase()),
        String::new(),
        "content-type;host".into(),
        hex::encode(Sha256::digest(&seen.body)),
    ]
    .join("\n");
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{ts}\n{date}/sms/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = mac(format!("TC3{KEY}").as_bytes(), &date);
    let k = mac(&k, "sms");
    let k = mac(&k, "tc3_request");
    format!(
        "TC3-HMAC-SHA256 Credential={ID}/{date}/sms/tc3_request, SignedHeaders=content-type;host, Signature={}",
        hex::encode(mac(&k, &to_sign))
    )
}

#[tokio::test]
async fn posts_a_signed_send_sms_and_reads_the_tccli_answer() {
    let mut rx = Receiver::start(vec![Reply::json(200, TCCLI_OK)]).await;
    let sms = channel(&rx.url("/"));
    let before = Utc::now().timestamp();
    let delivery = sms.send(&alert(), Locale::ZhCn).await.unwrap();
    assert_eq!(delivery.status, Some(200));
    assert_eq!(
        delivery.body,
        "SendSms ok: 2 numbers (RequestId a0aabda6-cf91-4f3e-a81f-9198114a2279)"
    );

    let seen = rx.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/");
    assert_eq!(seen.header("host"), rx.addr.to_string());
    assert_eq!(
        seen.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(seen.header("x-tc-action"), "SendSms");
    assert_eq!(seen.header("x-tc-version"), "2021-01-11");
    assert_eq!(seen.header("x-tc-region"), "ap-guangzhou");
    let ts: i64 = seen.header("x-tc-timestamp").parse().unwrap();
    assert!(ts >= before && ts <= Utc::now().timestamp(), "{ts}");
    assert_eq!(seen.header("user-agent"), "watchpost/0.1.0");
    assert_eq!(seen.header("content-length"), seen.body.len().to_string());
    assert_eq!(seen.headers.len(), 9, "{:?}", seen.headers);

    // The body, byte for byte: compact, UTF-8 (not \u-escaped), keys in Tencent's order.
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        r#"{"PhoneNumberSet":["+8618511122233","+8618511122266"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1110","TemplateParamSet":["订单服务 主站","故障","广东佛山[电信]: l…"],"SessionContext":"orders:1767322800000:down:1767322800000"}"#
    );

    // The receiving side recomputes the signature from what arrived...
    let authorization = seen.header("authorization");
    assert_eq!(authorization, expected_authorization(&seen));
    // ...and the public signer agrees on the same bytes.
    let again = watchpost_channels::tc3::sign(
        ID,
        KEY,
        "sms",
        ts,
        &[
            ("content-type", seen.header("content-type")),
            ("host", seen.header("host")),
        ],
        &seen.body,
    );
    assert_eq!(authorization, again.authorization);
    assert!(!authorization.contains(KEY));
}

#[tokio::test]
async fn a_fixed_clock_signs_the_same_request_the_same_way() {
    let mut rx = Receiver::start(vec![Reply::json(200, TCCLI_OK)]).await;
    let sms = channel(&rx.url("/"));
    let now = at(23, 30, 0); // 07:30 next day in UTC+8
    sms.send_at(&alert(), Locale::ZhCn, now).await.unwrap();
    let seen = rx.next().await;
    assert_eq!(seen.header("x-tc-timestamp"), now.timestamp().to_string());
    let auth = seen.header("authorization");
    assert!(
        auth.starts_with(&format!(
            "TC3-HMAC-SHA256 Credential={ID}/2026-01-02/sms/tc3_request, "
        )),
        "{auth}"
    );
    assert_eq!(auth, expected_authorization(&seen));
    let (headers, body) = sms.request(&alert(), Locale::ZhCn, now).unwrap();
    assert_eq!(headers["authorization"], auth);
    assert_eq!(body, seen.body);
}

#[tokio::test]
async fn the_english_alert_params() {
    let mut rx = Receiver::start(vec![Reply::json(200, TCCLI_OK)]).await;
    let sms = channel(&rx.url("/"));
    let mut a = alert();
    a.kind = AlertKind::Resolved;
    a.monitor = "orders-lag".into();
    a.failures.clear();
    sms.send(&a, Locale::En).await.unwrap();
    let seen = rx.next().await;
    assert_eq!(
        seen.json()["TemplateParamSet"],
        json!(["orders-lag", "RESOLVED", "-"])
    );
}

fn error_reply(code: &str, message: &str) -> Reply {
    Reply::json(
        200,
        &json!({"Response": {"Error": {"Code": code, "Message": message},
                             "RequestId": "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6"}})
        .to_string(),
    )
}

#[tokio::test]
async fn a_signature_failure_is_fatal_and_names_the_code() {
    let mut rx = Receiver::start(vec![error_reply(
        "AuthFailure.SignatureFailure",
        "The provided credentials could not be validated. Please check your signature is correct.",
    )])
    .await;
    let e = channel(&rx.url("/"))
        .send(&alert(), Locale::ZhCn)
        .await
        .unwrap_err();
    let SendError::Fatal { message } = &e else {
        panic!("{e:?}")
    };
    assert!(
        message.starts_with(
            "tencent_sms: SendSms failed: AuthFailure.SignatureFailure: The provided credentials"
        ),
        "{message}"
    );
    assert!(message.contains("RequestId ed93f3cb-f35e-473f-b9f3-0d451b8b79c6"));
    assert!(message.contains("check secret_id and secret_key"));
    assert!(
        !message.contains(KEY) && !message.contains("TC3-HMAC"),
        "{message}"
    );
    rx.next().await;
}

#[tokio::test]
async fn rate_limits_and_internal_errors_are_retryable() {
    let mut rx = Receiver::start(vec![
        error_reply("RequestLimitExceeded", "请求的次数超过了频率限制。"),
        error_reply("InternalError.Timeout", "请求下发短信超时"),
        error_reply(
            "LimitExceeded.PhoneNumberThirtySecondLimit",
            "30秒内下发短信条数超过上限",
        ),
    ])
    .await;
    let sms = channel(&rx.url("/"));
    let e = sms.send(&alert(), Locale::ZhCn).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().contains("RequestLimitExceeded"), "{e}");
    assert_eq!(e.retry_after(), None);
    let e = sms.send(&alert(), Locale::ZhCn).await.unwrap_err();
    assert!(
        e.is_retryable() && e.message().contains("InternalError.Timeout"),
        "{e}"
    );
    let e = sms.send(&alert(), Locale::ZhCn).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(rx.drain().len(), 3);
}

#[tokio::test]
async fn a_partial_delivery_is_not_retried_and_names_the_masked_number() {
    let reply = r#"{"Response":{"SendStatusSet":[
        {"SerialNo":"5000:1","PhoneNumber":"+8618511122233","Fee":1,"SessionContext":"","Code":"Ok","Message":"send success","IsoCode":"CN"},
        {"SerialNo":"","PhoneNumber":"+8618511122266","Fee":0,"SessionContext":"","Code":"LimitExceeded.PhoneNumberDailyLimit","Message":"单个手机号日下发短信条数超过设定的上限","IsoCode":"CN"}],
        "RequestId":"b1c2"}}"#;
    let rx = Receiver::start(vec![Reply::json(200, reply)]).await;
    let e = channel(&rx.url("/"))
        .send(&alert(), Locale::ZhCn)
        .await
        .unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
    let m = e.message();
    assert!(m.contains("reached 1 of 2 numbers; not retried"), "{m}");
    assert!(
        m.contains("+86185****2266: LimitExceeded.PhoneNumberDailyLimit (单个手机号日下发短信条数超过设定的上限)"),
        "{m}"
    );
    assert!(!m.contains("+8618511122266") && !m.contains("2233"), "{m}");
    assert!(m.ends_with("(RequestId b1c2)"), "{m}");
}

#[tokio::test]
async fn http_errors_by_status() {
    let rx = Receiver::start(vec![
        Reply::status(500, "upstream broke"),
        Reply::status(404, "no such path"),
    ])
    .await;
    let sms = channel(&rx.url("/"));
    let e = sms.send(&alert(), Locale::ZhCn).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(
        e.message(),
        "tencent_sms: HTTP 500 Internal Server Error: upstream broke"
    );
    let e = sms.send(&alert(), Locale::ZhCn).await.unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
}

#[tokio::test]
async fn nothing_listening_is_retryable() {
    let rx = Receiver::start(vec![Reply::status(200, "")]).await;
    let url = rx.url("/");
    drop(rx);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = channel(&url)
        .send(&alert(), Locale::ZhCn)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        e.message().starts_with("tencent_sms: http://127.0.0.1:"),
        "{e}"
    );
}

#[test]
fn config_errors_are_clear_and_keep_secrets() {
    let patched =
        |patch: serde_json::Value| try_build(with(settings("http://127.0.0.1:9/"), patch));
    let e = patched(json!({"phones": ["+86 185 1112 2233"]})).unwrap_err();
    assert!(e.0.starts_with("tencent_sms: phones[0]: "), "{e}");
    assert!(e.0.contains("E.164"), "{e}");
    let e = patched(json!({"phones": []})).unwrap_err();
    assert!(e.0.contains("phones: empty"), "{e}");
    let e = patched(json!({"template_text": "监控{1}状态{2}时间{3}", "params": ["{{ monitor }}", "{{ status }}"]}))
        .unwrap_err();
    assert_eq!(
        e.0,
        "tencent_sms: template_text has 3 placeholders ({1} {2} {3}) but params has 2"
    );
    let e = patched(json!({"params": ["{{ monitor }", "{{ status }}", "x"]})).unwrap_err();
    assert!(
        e.0.starts_with("tencent_sms: params[0]: line 1: syntax error"),
        "{e}"
    );
    let e = patched(json!({"params": ["{{ monitor }}", "{{ statuss }}", "x"]})).unwrap_err();
    assert!(
        e.0.starts_with("tencent_sms: params[1]: line 1: undefined variable `statuss`"),
        "{e}"
    );
    let e = patched(json!({"sdk_app_id": "app-1"})).unwrap_err();
    assert!(e.0.contains("sdk_app_id"), "{e}");
    let e = patched(json!({"sdk_app_id": true})).unwrap_err();
    assert!(e.0.contains("expected a string of digits"), "{e}");
    let e = patched(json!({"secret_key": ""})).unwrap_err();
    assert!(e.0.contains("secret_key: empty"), "{e}");
    let e = patched(json!({"phone": ["+8618511122233"]})).unwrap_err();
    assert!(e.0.contains("unknown field `phone`"), "{e}");

    // Debug of the config and of the channel never shows the key.
    let config = ChannelConfig::from_value(settings("http://127.0.0.1:9/")).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains(KEY) && !shown.contains(ID), "{shown}");
    let shown = format!("{:?}", config.build().unwrap());
    assert!(!shown.contains(KEY) && !shown.contains(ID), "{shown}");
}

#[test]
fn defaults_and_notes() {
    let c = ChannelConfig::from_value(json!({
        "type": "tencent_sms", "secret_id": ID, "secret_key": KEY, "sdk_app_id": "1400006666",
        "sign_name": "腾讯云", "template_id": 1110, "phones": ["+8613800000000"],
    }))
    .unwrap();
    assert_eq!(c.kind(), "tencent_sms");
    let ChannelConfig::TencentSms(s) = &c else {
        panic!("{c:?}")
    };
    assert_eq!(s.endpoint, "https://sms.tencentcloudapi.com");
    assert_eq!(s.region, "ap-guangzhou");
    assert_eq!(s.params, None);
    assert_eq!(s.param_max_chars, 12);
    assert_eq!(s.timeout, Duration::from_secs(10));
    assert_eq!(s.template_id, "1110");
    assert_eq!(
        c.notes(),
        [
            "tencent_sms: the parameter count of template 1110 can't be checked offline \
          (2 param(s) configured); add template_text or run `watchpost notify`"
        ]
    );
    let channel = c.build().unwrap();
    assert_eq!(channel.kind(), "tencent_sms");
    assert!(!channel.merges());
}

#[tokio::test]
async fn a_parameter_can_carry_the_actual_value_of_a_failed_condition() {
    let mut rx =
        Receiver::start(vec![Reply::json(200, TCCLI_OK), Reply::json(200, TCCLI_OK)]).await;
    let mut s = settings(&rx.url("/"));
    s["params"] = json!([
        "{{ monitor }}",
        "{{ failures[0].operand if failures else '-' }}",
        "{{ failures[0].actual if failures else '-' }}"
    ]);
    s["template_text"] = json!("监控{1}的{2}为{3}，请及时处理。");
    let sms = match build(s) {
        Channel::TencentSms(c) => c,
        other => panic!("{other:?}"),
    };
    // The HTTP alert: the total time that broke the condition.
    let a = common::alert(AlertKind::Down);
    sms.send(&a, Locale::ZhCn).await.unwrap();
    assert_eq!(
        rx.next().await.json()["TemplateParamSet"],
        json!(["homepage", "total", "1430ms"])
    );
    // A tls alert: the certificate's days left.
    sms.send(&common::tls_alert(), Locale::En).await.unwrap();
    assert_eq!(
        rx.next().await.json()["TemplateParamSet"],
        json!(["smtps", "cert_days", "9.5d"])
    );
}

/// A kafka_lag alert whose topics' lag broke the limit: `payments` at 900 and
/// `orders.created.v2` at `orders_lag`.
fn kafka_alert(kind: AlertKind, orders_lag: &str) -> Alert {
    let mut a = common::alert(kind);
    a.monitor = "billing-lag".into();
    a.check = Some("kafka_lag".into());
    a.url = None;
    let topic = |topic: &str, lag: &str| FailedCondition {
        location: "local".into(),
        operand: "lag".into(),
        op: "<".into(),
        expected: "500".into(),
        actual: lag.into(),
        text: format!("lag {topic} {lag} >= 500"),
        topic: Some(topic.into()),
    };
    a.failures = vec![
        topic("payments", "900"),
        topic("orders.created.v2", orders_lag),
    ];
    a
}

#[tokio::test]
async fn default_parameters_of_a_kafka_lag_alert_carry_the_topic_and_its_lag_in_12_chars() {
    let mut rx = Receiver::start(vec![Reply::json(200, TCCLI_OK)]).await;
    let mut s = settings(&rx.url("/"));
    s.as_object_mut().unwrap().remove("params");
    s["template_text"] = json!("您的监控{1}当前状态：{2}，请及时处理。");
    let sms = match build(s) {
        Channel::TencentSms(c) => c,
        other => panic!("{other:?}"),
    };
    // DOWN, sent: the topic with the largest lag first (cut to leave room for "+1"), its lag
    // in 万.
    sms.send(&kafka_alert(AlertKind::Down, "1234567"), Locale::ZhCn)
        .await
        .unwrap();
    assert_eq!(
        rx.next().await.json()["TemplateParamSet"],
        json!(["orders.cr…+1", "积压123.5万"])
    );

    let one = {
        let mut a = kafka_alert(AlertKind::Down, "700");
        a.failures.remove(1);
        a
    };
    let stalled = {
        let mut a = kafka_alert(AlertKind::Down, "0");
        a.failures = vec![FailedCondition {
            location: "local".into(),
            operand: "status".into(),
            op: "!=".into(),
            expected: "STALL".into(),
            actual: "STALL".into(),
            text: "status STALL == STALL".into(),
            topic: None,
        }];
        a
    };
    for (alert, locale, want, why) in [
        (
            kafka_alert(AlertKind::Down, "1234567"),
            Locale::En,
            ["orders.cr…+1", "lag 1.2M"],
            "en",
        ),
        (
            kafka_alert(AlertKind::Reminder, "90000"),
            Locale::ZhCn,
            ["orders.cr…+1", "仍积压90000"],
            "a reminder says it is still piling up; a small lag is shown whole",
        ),
        (
            kafka_alert(AlertKind::Resolved, "1234567"),
            Locale::ZhCn,
            ["orders.cr…+1", "恢复"],
            "a resolved alert that names the topic: the status word",
        ),
        (
            one,
            Locale::ZhCn,
            ["payments", "积压900"],
            "one topic alone is named whole",
        ),
        (
            stalled,
            Locale::ZhCn,
            ["billing-lag", "故障"],
            "no topic (a stalled consumer): [monitor, status]",
        ),
    ] {
        assert_eq!(sms.params(&alert, locale).unwrap(), want, "{why}");
    }
}

#[test]
fn configured_parameters_win_over_the_kafka_defaults_and_can_name_the_topic() {
    let mut s = settings("http://127.0.0.1:9/");
    s["params"] = json!(["{{ monitor }}", "{{ failures[0].topic }}"]);
    s["template_text"] = json!("监控{1}的{2}积压");
    let sms = match build(s) {
        Channel::TencentSms(c) => c,
        other => panic!("{other:?}"),
    };
    let a = kafka_alert(AlertKind::Down, "12");
    assert_eq!(
        sms.params(&a, Locale::ZhCn).unwrap(),
        ["billing-lag", "payments"]
    );
}

#[test]
fn counts_are_compacted_per_locale() {
    use watchpost_channels::tencent_sms::compact_count;
    for (n, zh, en) in [
        (0, "0", "0"),
        (99_999, "99999", "99999"),
        (100_000, "10万", "100k"),
        (1_234_567, "123.5万", "1.2M"),
        (987_654_321, "9.9亿", "987.7M"),
        (12_000_000_000, "120亿", "12G"),
    ] {
        assert_eq!(compact_count(n, Locale::ZhCn), zh, "{n}");
        assert_eq!(compact_count(n, Locale::En), en, "{n}");
    }
}
