//! Lag through the CKafka API (`DescribeGroupOffsets`), against a local receiver that checks
//! the exact request — action, version, region, the TC3 signature recomputed on the receiving
//! side — and answers in the API's shape, over two pages.

use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;
use watchpost_kafka::ckafka::{CkafkaError, CkafkaSource, ckafka_lag};
use watchpost_testkit::{Receiver, Reply};

const ID: &str = "AKIDexampleexampleexample";
const KEY: &str = "secret-key-never-shown";

fn source(receiver: &Receiver) -> CkafkaSource {
    CkafkaSource {
        endpoint: Url::parse(&receiver.plain_url("/")).unwrap(),
        region: "ap-guangzhou".into(),
        instance_id: "ckafka-abc123".into(),
        secret_id: ID.into(),
        secret_key: KEY.into(),
        extra_roots: Vec::new(),
    }
}

fn page(total: u64, topics: serde_json::Value) -> Reply {
    Reply::json(
        200,
        &json!({"Response": {"Result": {"TotalCount": total, "TopicList": topics},
                              "RequestId": "r-1"}})
        .to_string(),
    )
}

/// The receiver's view of one request is what the API expects, signature included.
fn assert_signed(seen: &watchpost_testkit::Seen, host: &str) {
    assert_eq!(seen.uri, "/");
    assert_eq!(seen.header("x-tc-action"), "DescribeGroupOffsets");
    assert_eq!(seen.header("x-tc-version"), "2019-08-19");
    assert_eq!(seen.header("x-tc-region"), "ap-guangzhou");
    assert_eq!(seen.header("host"), host);
    seen.assert_tc3_signed("ckafka", ID, KEY);
}

#[tokio::test]
async fn offsets_are_read_page_by_page_and_signed() {
    let first: Vec<serde_json::Value> = (0..50)
        .map(|i| {
            json!({"Topic": format!("t{i:02}"),
                   "Partitions": [{"Partition": 0, "Offset": 5, "LogEndOffset": 8, "Lag": 3,
                                   "ErrorCode": 0, "Metadata": ""}]})
        })
        .collect();
    let second = json!([
        {"Topic": "orders", "Partitions": [
            {"Partition": 1, "Offset": 10, "LogEndOffset": 25, "Lag": 15, "ErrorCode": 0},
            {"Partition": 0, "Offset": -1, "LogEndOffset": 7, "Lag": 7, "ErrorCode": 0},
            {"Partition": 2, "Offset": 9, "LogEndOffset": 4, "Lag": 0, "ErrorCode": 0}
        ]}
    ]);
    let mut receiver = Receiver::start(vec![page(51, json!(first)), page(51, second)]).await;
    let host = receiver
        .plain_url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = ckafka_lag(&source(&receiver), "billing", None, deadline)
        .await
        .unwrap();

    let one = receiver.next().await;
    assert_signed(&one, &host);
    assert_eq!(
        one.json(),
        json!({"InstanceId": "ckafka-abc123", "Group": "billing", "Offset": 0, "Limit": 50})
    );
    let two = receiver.next().await;
    assert_signed(&two, &host);
    assert_eq!(two.json()["Offset"], 50);

    let group = report.group("billing").unwrap();
    assert_eq!(group.topics.len(), 51);
    let orders = group.topic("orders").unwrap();
    let lags: Vec<(i32, Option<i64>, i64, Option<i64>)> = orders
        .partitions
        .iter()
        .map(|p| (p.partition, p.committed, p.end, p.lag))
        .collect();
    // Sorted by partition; no commit (-1) is unknown, never the API's "Lag 7"; an end behind
    // the commit is no lag.
    assert_eq!(
        lags,
        [
            (0, None, 7, None),
            (1, Some(10), 25, Some(15)),
            (2, Some(9), 4, Some(0))
        ]
    );
    assert_eq!(orders.lag, Some(15));
    assert_eq!(group.lag, Some(50 * 3 + 15));
}

#[tokio::test]
async fn a_topic_filter_is_sent_and_api_errors_are_named_without_the_key() {
    let error = Reply::json(
        200,
        &json!({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
                                        "Message": "The provided credentials could not be validated."},
                              "RequestId": "r-2"}})
        .to_string(),
    );
    let mut receiver = Receiver::start(vec![error]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let topics = vec!["orders".to_string()];
    let err = ckafka_lag(&source(&receiver), "billing", Some(&topics), deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, CkafkaError::Api { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("AuthFailure.SignatureFailure"), "{text}");
    assert!(!text.contains(KEY), "{text}");
    assert!(!format!("{:?}", source(&receiver)).contains(KEY));
    assert_eq!(receiver.next().await.json()["Topics"], json!(["orders"]));
}

#[tokio::test]
async fn garbage_http_errors_and_silence_are_classified() {
    let mut receiver = Receiver::start(vec![Reply::status(200, "<html>not json</html>")]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = ckafka_lag(&source(&receiver), "g", None, deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, CkafkaError::Malformed(_)), "{err:?}");
    receiver.next().await;

    receiver.script(vec![Reply::status(503, "busy")]);
    let err = ckafka_lag(&source(&receiver), "g", None, deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CkafkaError::Http { status: 503, .. }),
        "{err:?}"
    );

    receiver.script(vec![Reply::json(200, "{}").delayed(Duration::from_secs(5))]);
    let started = std::time::Instant::now();
    let err = ckafka_lag(
        &source(&receiver),
        "g",
        None,
        Instant::now() + Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CkafkaError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
