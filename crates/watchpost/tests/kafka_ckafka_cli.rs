//! The `kafka_lag` monitor with `source: ckafka` through the real binary: each `once` reads
//! the group's offsets with a TC3-signed `DescribeGroupOffsets` call to a local receiver in
//! the API's shape (the signature recomputed on the receiving side), judges the lag per topic,
//! alerts naming the topic, and resolves when the API reports the consumer caught up. The
//! secret key, given as `${VAR}`, shows nowhere.

mod common;

use common::{alerts, server, watchpost, write_config};
use serde_json::{Value, json};
use watchpost_testkit::{Receiver, Reply, Seen};

const ID: &str = "AKIDwatchpostCKAFKA000000000000";
const KEY: &str = "ckafka-secret-key-never-shown";

/// One page of `DescribeGroupOffsets`: `orders` (partitions 0 and 1) and `payments`.
fn offsets(orders_committed: i64) -> Reply {
    let partition = |p: i64, committed: i64, end: i64| {
        json!({"Partition": p, "Offset": committed, "LogEndOffset": end,
               "Lag": end - committed, "ErrorCode": 0, "Metadata": ""})
    };
    Reply::json(
        200,
        &json!({"Response": {"Result": {"TotalCount": 2, "TopicList": [
            {"Topic": "orders", "Partitions": [partition(0, orders_committed, 900),
                                               partition(1, 500, 500)]},
            {"Topic": "payments", "Partitions": [partition(0, 40, 50)]}
        ]}, "RequestId": "r-1"}})
        .to_string(),
    )
}

/// The request is the one the API expects, signed with the key the config names.
fn assert_signed(seen: &Seen, host: &str) {
    assert_eq!(seen.header("x-tc-action"), "DescribeGroupOffsets");
    assert_eq!(seen.header("x-tc-version"), "2019-08-19");
    assert_eq!(seen.header("x-tc-region"), "ap-shanghai");
    assert_eq!(seen.header("host"), host);
    seen.assert_tc3_signed("ckafka", ID, KEY);
    assert_eq!(
        seen.json(),
        json!({"InstanceId": "ckafka-7x3k", "Group": "billing", "Offset": 0, "Limit": 50})
    );
}

async fn once(config: &std::path::Path) -> (Value, Option<i32>, String) {
    let c = config.display().to_string();
    let out = watchpost(
        &["once", "--json", "-c", &c],
        &[("CK_KEY", KEY.to_string())],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("once --json printed no JSON ({e}): {stdout}{stderr}"));
    (report, out.status.code(), format!("{stdout}{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_read_through_the_ckafka_api_alerts_per_topic_and_resolves() {
    // orders: 400 behind on partition 0; then caught up.
    let mut api = Receiver::start(vec![offsets(500), offsets(900)]).await;
    let host = api
        .plain_url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let hook = server(200).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: billing-lag\n    type: kafka_lag\n    source: ckafka\n    ckafka: {{instance_id: ckafka-7x3k, region: ap-shanghai, secret_id: {ID}, secret_key: \"${{CK_KEY}}\", endpoint: \"{}\"}}\n    group: billing\n    conditions: [\"lag < 100\"]\n    alert: {{channels: [hook], failure_threshold: 1}}\n",
            hook.addr,
            api.plain_url("/"),
        ),
    );

    let (report, code, output) = once(&config).await;
    assert_eq!(code, Some(1), "{output}");
    assert_signed(&api.next().await, &host);
    let check = &report[0]["observations"][0]["check"];
    assert_eq!(check["kind"], "kafka_lag", "{check}");
    assert_eq!(check["url"], "ckafka://ckafka-7x3k/billing", "{check}");
    assert_eq!(check["lag"], 410, "{check}");
    assert_eq!(check["partition_lag"], 400.0, "{check}");
    let topics: Vec<(String, i64)> = check["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["topic"].as_str().unwrap().into(),
                t["lag"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        topics,
        [("orders".to_string(), 400), ("payments".to_string(), 10)]
    );
    let sent = alerts(&hook);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["kind"], "down");
    let failures = sent[0]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "only orders is over: {failures:?}");
    assert_eq!(failures[0]["topic"], "orders");
    assert_eq!(failures[0]["actual"], "400");

    let (report, code, output2) = once(&config).await;
    assert_eq!(code, Some(0), "{output2}");
    assert_signed(&api.next().await, &host);
    assert_eq!(report[0]["observations"][0]["check"]["lag"], 10);
    let sent = alerts(&hook);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["kind"], "resolved");

    // The key reached the receiver only as a signature.
    for text in [output, output2, serde_json::to_string(&sent).unwrap()] {
        assert!(!text.contains(KEY), "{text}");
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the key is stored"
        );
    }
}
