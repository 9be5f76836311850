//! The `kafka_lag` monitor kind through the real binary against a real broker (Tansu on
//! 127.0.0.1, filled and committed by confluent-kafka): it goes DOWN when a topic's lag passes
//! the limit, naming the topic with its lag, and RESOLVED after the commits catch up; and the
//! window, kept in the store between separate `once` processes, sees a stalled consumer.

mod common;

use common::{alerts, once_report, server, write_config};
use serde_json::json;
use std::time::Duration;
use watchpost_testkit::kafka::Broker;
use watchpost_testkit::{Receiver, Reply};

/// Tencent's answer to a SendSms that reached one number.
const SMS_OK: &str = r#"{"Response":{"SendStatusSet":[{"SerialNo":"5000:1","PhoneNumber":"+8613800000000","Fee":1,"SessionContext":"","Code":"Ok","Message":"send success","IsoCode":"CN"}],"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_over_its_limit_alerts_with_its_name_and_lag_and_resolves_after_commits() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.fixture(&json!({
        "topics": {"orders": [10], "payments": [2]},
        "commits": {"billing": {"orders": {"0": 8}, "payments": {"0": 2}}}
    }));
    let hook = server(200).await;
    let mut sms = Receiver::start(vec![Reply::json(200, SMS_OK)]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "locale: zh-CN\nchannels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\n  sms: {{type: tencent_sms, secret_id: AKIDwatchpostTEST0000000000000000, secret_key: test-key-0123456789, sdk_app_id: 1400006666, sign_name: 腾讯云, template_id: 1110, phones: [\"+8613800000000\"], template_text: \"您的监控{{1}}当前状态：{{2}}，请及时处理。\", endpoint: \"{}\"}}\nmonitors:\n  - name: billing-lag\n    type: kafka_lag\n    bootstrap: \"{}\"\n    group: billing\n    conditions: [\"lag < 5\"]\n    alert: {{channels: [hook, sms], failure_threshold: 1}}\n",
            hook.addr,
            sms.url("/"),
            broker.bootstrap()
        ),
    );
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    let check = &report[0]["observations"][0]["check"];
    assert_eq!(check["kind"], "kafka_lag");
    assert_eq!(check["group"], "billing");
    assert_eq!(check["lag"], 2);
    assert!(alerts(&hook).is_empty());

    // Ten more records on orders, nothing committed: orders' lag 12 passes 5.
    broker.fixture(&json!({"topics": {"orders": [10]}, "commits": {}}));
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    let sent = alerts(&hook);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let down = &sent[0];
    assert_eq!(down["kind"], "down");
    assert_eq!(down["failures"].as_array().unwrap().len(), 1, "{down}");
    assert_eq!(down["failures"][0]["operand"], "lag");
    assert_eq!(down["failures"][0]["actual"], "12");
    let text = down["failures"][0]["text"].as_str().unwrap();
    assert!(text.contains("orders"), "{text}");
    assert!(!text.contains("payments"), "{text}");
    assert_eq!(down["failures"][0]["topic"], "orders", "{down}");
    // The SMS's default parameters carry the topic and its lag.
    assert_eq!(
        sms.next().await.json()["TemplateParamSet"],
        json!(["orders", "积压12"])
    );

    // The consumer catches up: RESOLVED.
    broker.fixture(&json!({"commits": {"billing": {"orders": {"0": 20}}}}));
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    let sent = alerts(&hook);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["kind"], "resolved");
    // The recovered tick has no topic over its limit: the SMS names the monitor.
    assert_eq!(
        sms.next().await.json()["TemplateParamSet"],
        json!(["billing-lag", "恢复"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_is_seen_across_separate_once_processes_then_stops() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.fixture(&json!({
        "topics": {"events": [10]},
        "commits": {"stuck": {"events": {"0": 4}}}
    }));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - name: stuck-lag\n    type: kafka_lag\n    bootstrap: \"{}\"\n    group: stuck\n    topics: [events]\n    window: {{samples: 2, min_samples: 2, min_distance: 0s}}\n    conditions: [\"status != \\\"STALL\\\"\", \"status != \\\"STOP\\\"\"]\n",
            broker.bootstrap()
        ),
    );
    // One sample: too few to judge a trend.
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report[0]["observations"][0]["check"]["status"], "UNKNOWN");

    // A second process, the committed offset where it was, lag 6: STALL.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    let check = &report[0]["observations"][0]["check"];
    assert_eq!(check["status"], "STALL", "{check}");
    assert_eq!(check["topics"][0]["status"], "STALL", "{check}");
    let failures = report[0]["observations"][0]["failures"].to_string();
    assert!(failures.contains("STALL"), "{failures}");

    // A third right after: stuck since the first sample, more than twice the window's span
    // (the last two samples): STOP.
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report[0]["observations"][0]["check"]["status"], "STOP");

    // The consumer commits again and catches up: OK.
    broker.fixture(&json!({"commits": {"stuck": {"events": {"0": 10}}}}));
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report[0]["observations"][0]["check"]["status"], "OK");
}
