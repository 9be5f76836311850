//! `watchpost lag` through the real binary against a real broker (Tansu on 127.0.0.1, filled
//! and committed by confluent-kafka, whose own lag computation is the ground truth).

mod common;

use common::watchpost;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use watchpost_testkit::kafka::Broker;

/// `watchpost lag ARGS`: (exit code, stdout, stderr).
async fn lag(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["lag"];
    all.extend_from_slice(args);
    let out = watchpost(&all, &[]).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_json_equals_the_ground_truth_and_the_table_shows_it() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let truth = broker.fixture(&json!({
        "topics": {"orders": [5, 3, 2], "payments": [4]},
        "commits": {"billing": {"orders": {"0": 2, "1": 3}, "payments": {"0": 1}}}
    }));
    let b = broker.bootstrap();
    let (code, stdout, stderr) = lag(&["--bootstrap", &b, "--group", "billing", "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let group = &report["groups"][0];
    assert_eq!(group["group"], "billing");
    assert_eq!(group["members"], 0, "a group without members still appears");
    assert!(group["state"].is_string());
    let mut group_sum = 0;
    for topic in group["topics"].as_array().unwrap() {
        let name = topic["topic"].as_str().unwrap();
        let mut sum = 0;
        for p in topic["partitions"].as_array().unwrap() {
            let want = &truth["billing"][name][p["partition"].to_string()];
            assert_eq!(p["committed"], want["committed"], "{name}/{p}");
            assert_eq!(p["end"], want["end"], "{name}/{p}");
            assert_eq!(p["lag"], want["lag"], "{name}/{p}");
            sum += p["lag"].as_i64().unwrap_or(0);
        }
        assert_eq!(topic["lag"], sum, "{name}");
        group_sum += sum;
    }
    assert_eq!(group["lag"], group_sum);
    // orders/2 has no commit: unknown, not zero.
    let orders = group["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "orders")
        .unwrap();
    assert_eq!(orders["partitions"][2]["committed"], Value::Null);
    assert_eq!(orders["partitions"][2]["lag"], Value::Null);

    // The table says the same for people.
    let (code, stdout, _) = lag(&["--bootstrap", &b, "--group", "billing"]).await;
    assert_eq!(code, Some(0));
    assert!(stdout.contains("group billing"), "{stdout}");
    assert!(stdout.contains(&format!("lag {group_sum}")), "{stdout}");
    assert!(stdout.contains("orders"), "{stdout}");
    assert!(
        stdout.contains('—'),
        "the partition without a commit: {stdout}"
    );

    // --topic narrows the report.
    let (code, stdout, _) = lag(&[
        "--bootstrap",
        &b,
        "--group",
        "billing",
        "--topic",
        "payments",
        "--json",
    ])
    .await;
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let topics: Vec<&str> = report["groups"][0]["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["payments"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_group_and_an_unreachable_cluster_exit_1_with_a_clear_message() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.fixture(&json!({"topics": {"t": [1]}, "commits": {"g": {"t": {"0": 1}}}}));
    let b = broker.bootstrap();
    let (code, _, stderr) = lag(&["--bootstrap", &b, "--group", "no-such-group"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no-such-group"), "{stderr}");

    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let (code, _, stderr) = lag(&[
        "--bootstrap",
        &format!("127.0.0.1:{port}"),
        "--timeout",
        "3s",
    ])
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&port.to_string()),
        "names the broker: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_lying_about_an_array_length_is_an_error_not_an_abort() {
    // It passes for a broker, then claims i32::MAX brokers in its Metadata answer and sends
    // none: the codec reserves that many up front.
    let peer = watchpost_testkit::kafka::LyingPeer::start(i32::MAX.to_be_bytes().to_vec());
    let (code, stdout, stderr) = lag(&["--bootstrap", &peer.bootstrap(), "--timeout", "5s"]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains(&peer.bootstrap()), "{stderr}");
    assert!(stderr.contains("Kafka protocol"), "{stderr}");
    assert!(!stderr.contains("memory allocation"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sasl_login_and_a_web_server_exit_1_naming_the_broker() {
    use watchpost_testkit::kafka::BrokerOptions;
    let Some(broker) = Broker::start_with(BrokerOptions {
        args: vec!["--authentication"],
        ..BrokerOptions::default()
    }) else {
        return;
    };
    let b = broker.bootstrap();
    let password = "wrong-password-7f3a";
    let out = watchpost(
        &[
            "lag",
            "-b",
            &b,
            "--sasl",
            "SCRAM-SHA-512",
            "--username",
            "watchpost",
            "--timeout",
            "5s",
        ],
        &[("WATCHPOST_SASL_PASSWORD", password.to_string())],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("authentication with Kafka broker {b} failed")),
        "{stderr}"
    );
    assert!(!stderr.contains(password), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(password));

    // An HTTP server (hyper, which answers a malformed request with 400) where a broker
    // should be.
    let receiver =
        watchpost_testkit::Receiver::start(vec![watchpost_testkit::Reply::json(200, "{}")]).await;
    let web = receiver
        .plain_url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (code, _, stderr) = lag(&["-b", &web, "--timeout", "5s"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{web} does not speak the Kafka protocol")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_exits_2() {
    for args in [
        vec!["--group", "g"],
        vec!["--bootstrap", "kafka-without-port"],
        vec![
            "--bootstrap",
            "127.0.0.1:9092",
            "--sasl",
            "GSSAPI",
            "--username",
            "u",
        ],
        vec!["--bootstrap", "127.0.0.1:9092", "--cacert", "/tmp/ca.pem"],
    ] {
        let (code, _, stderr) = lag(&args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("watchpost: "), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ckafka_reads_the_lag_through_the_cloud_api_with_the_key_from_the_environment() {
    use watchpost_testkit::{Receiver, Reply};
    let answer = json!({"Response": {"Result": {"TotalCount": 1, "TopicList": [
        {"Topic": "orders", "Partitions": [
            {"Partition": 0, "Offset": 40, "LogEndOffset": 52, "Lag": 12, "ErrorCode": 0},
            {"Partition": 1, "Offset": -1, "LogEndOffset": 9, "Lag": 9, "ErrorCode": 0}]}]},
        "RequestId": "r"}});
    let mut api = Receiver::start(vec![Reply::json(200, &answer.to_string())]).await;
    let endpoint = api.plain_url("/");
    let envs = [
        ("TENCENTCLOUD_SECRET_ID", "AKIDtest".to_string()),
        ("TENCENTCLOUD_SECRET_KEY", "very-secret-key".to_string()),
    ];
    let out = watchpost(
        &[
            "lag",
            "--ckafka",
            "ckafka-1",
            "--region",
            "ap-shanghai",
            "--group",
            "billing",
            "--endpoint",
            &endpoint,
            "--json",
        ],
        &envs,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let topic = &report["groups"][0]["topics"][0];
    assert_eq!(topic["topic"], "orders");
    assert_eq!(
        topic["lag"], 12,
        "the partition without a commit is not counted: {topic}"
    );
    assert_eq!(topic["partitions"][1]["lag"], Value::Null);
    let seen = api.next().await;
    assert_eq!(seen.header("x-tc-action"), "DescribeGroupOffsets");
    assert_eq!(seen.header("x-tc-region"), "ap-shanghai");
    assert!(
        seen.header("authorization")
            .contains("Credential=AKIDtest/")
    );
    assert_eq!(seen.json()["InstanceId"], "ckafka-1");

    // The API refuses the key: exit 1, the API's code named, the key never shown.
    api.script(vec![Reply::json(
        200,
        &json!({"Response": {"Error": {"Code": "AuthFailure.SecretIdNotFound",
                                        "Message": "The SecretId is not found."},
                              "RequestId": "r"}})
        .to_string(),
    )]);
    let out = watchpost(
        &[
            "lag",
            "--ckafka",
            "ckafka-1",
            "--region",
            "ap-shanghai",
            "--group",
            "billing",
            "--endpoint",
            &endpoint,
        ],
        &envs,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("AuthFailure.SecretIdNotFound"), "{stderr}");
    assert!(!stderr.contains("very-secret-key"), "{stderr}");
}
