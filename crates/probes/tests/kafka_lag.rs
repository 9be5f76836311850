//! The `kafka_lag` kind's judging and report, on observations built by hand (the check itself
//! runs against a real broker in crates/watchpost/tests/kafka_lag_cli.rs).

use watchpost_conditions::Condition;
use watchpost_probes::kafka::window::WindowStatus;
use watchpost_probes::kafka::{KafkaLagDetail, TopicDetail};
use watchpost_probes::{CheckKind, Detail, Observation};
use watchpost_units::{Metric, Unit};

fn observation() -> Observation {
    let topic = |name: &str, lag: Option<i64>, status| TopicDetail {
        topic: name.to_string(),
        lag,
        status,
        time_lag_secs: None,
    };
    Observation {
        kind: CheckKind::KafkaLag,
        url: "kafka://127.0.0.1:9092/billing".into(),
        metrics: vec![
            Metric::new("group_lag", 1530.0, Unit::Count),
            Metric::new("partition_lag", 1200.0, Unit::Count),
            Metric::new("time_lag", 42_000.0, Unit::Ms),
            Metric::new("members", 0.0, Unit::Count),
        ],
        error: None,
        detail: Detail::KafkaLag(Box::new(KafkaLagDetail {
            group: "billing".into(),
            state: Some("Empty".into()),
            members: Some(0),
            lag: Some(1530),
            status: Some(WindowStatus::Stall),
            time_lag_secs: Some(42.0),
            topics: vec![
                topic("audit", None, WindowStatus::Unknown),
                topic("orders", Some(1523), WindowStatus::Stall),
                topic("payments", Some(7), WindowStatus::Ok),
            ],
        })),
    }
}

fn conditions(texts: &[&str]) -> Vec<Condition> {
    texts
        .iter()
        .map(|t| Condition::parse(t, CheckKind::KafkaLag.operands()).unwrap())
        .collect()
}

#[test]
fn a_lag_condition_fails_once_per_topic_over_it_naming_the_topic() {
    let o = observation();
    let failures = o.judge(&conditions(&["lag < 1000"]));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].operand, "lag");
    assert_eq!(failures[0].actual, "1523");
    assert!(
        failures[0].text.starts_with("lag orders 1523"),
        "{}",
        failures[0].text
    );

    let failures = o.judge(&conditions(&["lag < 5"]));
    let texts: Vec<&str> = failures.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].contains("orders") && texts[1].contains("payments"),
        "{texts:?}"
    );
    // A topic without commits has no lag and is not judged.
    assert!(!texts.iter().any(|t| t.contains("audit")), "{texts:?}");
}

#[test]
fn the_other_operands_are_judged_on_the_group() {
    let o = observation();
    assert!(
        o.judge(&conditions(&["group_lag < 2000", "members == 0"]))
            .is_empty()
    );
    let failures = o.judge(&conditions(&[
        "status != \"STALL\"",
        "time_lag < 30s",
        "partition_lag < 100",
    ]));
    let operands: Vec<&str> = failures.iter().map(|f| f.operand.as_str()).collect();
    assert_eq!(operands, ["status", "time_lag", "partition_lag"]);
    assert_eq!(failures[0].actual, "STALL");
}

#[test]
fn the_report_carries_the_kinds_fields() {
    let r = observation().report(false);
    assert_eq!(r["kind"], "kafka_lag");
    assert_eq!(r["group"], "billing");
    assert_eq!(r["state"], "Empty");
    assert_eq!(r["lag"], 1530);
    assert_eq!(r["status"], "STALL");
    assert_eq!(r["time_lag_secs"], 42.0);
    assert_eq!(r["topics"][1]["topic"], "orders");
    assert_eq!(r["topics"][1]["lag"], 1523);
    assert_eq!(r["topics"][1]["status"], "STALL");
    assert_eq!(r["topics"][0]["lag"], serde_json::Value::Null);
}
