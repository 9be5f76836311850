//! Lag against a real broker: Tansu on 127.0.0.1 (testkit::kafka), filled and committed by the
//! confluent-kafka client, whose own computation of the lag is the ground truth.

use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;
use watchpost_kafka::{Cluster, KafkaError, LagReport, Settings, lag};
use watchpost_testkit::kafka::{Broker, BrokerOptions};

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn cluster(broker: &Broker) -> Cluster {
    Cluster::new(Settings::new(vec![broker.bootstrap()]))
}

/// Every partition of `report`'s group `group` equals confluent-kafka's `truth` for it, the
/// group lists exactly `topics`, and the sums are the sums of the known partition lags.
fn assert_matches(report: &LagReport, truth: &Value, group: &str, topics: &[&str]) {
    let g = report
        .group(group)
        .unwrap_or_else(|| panic!("{group} missing from {report:#?}"));
    assert_eq!(g.error, None, "{g:#?}");
    let names: Vec<&str> = g.topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(names, topics, "{group}'s topics");
    let mut group_sum = None;
    for t in &g.topics {
        let expected = &truth[group][&t.topic];
        let want = expected.as_object().unwrap();
        assert_eq!(t.partitions.len(), want.len(), "{group}/{}", t.topic);
        let mut topic_sum = None;
        for p in &t.partitions {
            let e = &expected[p.partition.to_string()];
            let got = json!({"committed": p.committed, "end": p.end, "lag": p.lag});
            assert_eq!(&got, e, "{group}/{}/{}", t.topic, p.partition);
            if let Some(l) = p.lag {
                topic_sum = Some(topic_sum.unwrap_or(0) + l);
            }
        }
        assert_eq!(t.lag, topic_sum, "{group}/{} sum", t.topic);
        if let Some(l) = topic_sum {
            group_sum = Some(group_sum.unwrap_or(0) + l);
        }
    }
    assert_eq!(g.lag, group_sum, "{group} sum");
}

#[tokio::test]
async fn lag_equals_confluent_kafka_partition_by_partition() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let truth = broker.fixture(&json!({
        "topics": {"orders": [5, 3, 0, 4], "payments": [2, 6]},
        "commits": {
            "billing": {"orders": {"0": 2, "1": 3}, "payments": {"1": 1}},
            "audit": {"orders": {"0": 5, "3": 1}},
            "replay": {"payments": {"0": 0, "1": 6}}
        }
    }));
    let cluster = cluster(&broker);
    let report = lag(&cluster, None, None, deadline()).await.unwrap();

    assert_matches(&report, &truth, "billing", &["orders", "payments"]);
    assert_matches(&report, &truth, "audit", &["orders"]);
    assert_matches(&report, &truth, "replay", &["payments"]);
    // Spot checks of what the truth says, so a wrong fixture can't pass silently.
    let billing = report.group("billing").unwrap();
    assert_eq!(billing.lag, Some(3 + 5));
    let orders = billing.topic("orders").unwrap();
    assert_eq!(orders.partitions[2].committed, None);
    assert_eq!(orders.partitions[2].lag, None);
    assert_eq!(orders.partitions[3].end, 4);
    assert_eq!(billing.max_partition_lag(), Some(5));
    // Offsets committed without joining: groups with no members still appear.
    for g in ["billing", "audit", "replay"] {
        assert_eq!(report.group(g).unwrap().members, 0, "{g}");
    }

    // The same Cluster again (its connections reused), asking for two groups by name.
    let named = vec!["audit".to_string(), "replay".to_string()];
    let again = lag(&cluster, Some(&named), None, deadline()).await.unwrap();
    let names: Vec<&str> = again.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["audit", "replay"]);
    assert_eq!(again.group("audit"), report.group("audit"));
}

#[tokio::test]
async fn topic_filter_and_missing_groups() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let truth = broker.fixture(&json!({
        "topics": {"events": [4, 4, 4], "logs": [3]},
        "commits": {"indexer": {"events": {"0": 1, "1": 4}, "logs": {"0": 2}}}
    }));
    let cluster = cluster(&broker);
    let group = vec!["indexer".to_string()];

    let events = vec!["events".to_string()];
    let report = lag(&cluster, Some(&group), Some(&events), deadline())
        .await
        .unwrap();
    assert_matches(&report, &truth, "indexer", &["events"]);
    assert_eq!(report.groups[0].lag, Some(3));

    // A topic the group never committed to, asked for by name: every partition unknown.
    broker.fixture(&json!({"topics": {"quiet": [2, 0]}}));
    let quiet = vec!["quiet".to_string()];
    let report = lag(&cluster, Some(&group), Some(&quiet), deadline())
        .await
        .unwrap();
    let t = report.groups[0].topic("quiet").unwrap();
    assert_eq!(t.lag, None);
    assert_eq!(report.groups[0].lag, None);
    assert!(
        t.partitions
            .iter()
            .all(|p| p.committed.is_none() && p.lag.is_none())
    );
    assert_eq!(
        t.partitions.iter().map(|p| p.end).collect::<Vec<_>>(),
        [2, 0]
    );
    // Every group (none named): a filtered topic shows only in groups that commit to it.
    let report = lag(&cluster, None, Some(&quiet), deadline()).await.unwrap();
    let indexer = report.group("indexer").unwrap();
    assert!(indexer.topics.is_empty(), "{indexer:#?}");
    assert_eq!(indexer.lag, None);
    let report = lag(&cluster, None, Some(&events), deadline())
        .await
        .unwrap();
    assert_matches(&report, &truth, "indexer", &["events"]);

    // A group that does not exist is reported in its own entry; the others still are.
    let groups = vec!["indexer".to_string(), "no-such-group".to_string()];
    let report = lag(&cluster, Some(&groups), None, deadline())
        .await
        .unwrap();
    assert_matches(&report, &truth, "indexer", &["events", "logs"]);
    let missing = report.group("no-such-group").unwrap();
    let error = missing.error.as_deref().unwrap_or_default();
    assert!(error.contains("not found"), "{missing:#?}");
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["groups"][1]["error"].is_string(), "{json}");
    assert!(json["groups"][0].get("error").is_none(), "{json}");
}

#[tokio::test]
async fn lag_follows_new_records_and_commits_on_kept_connections() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.fixture(&json!({
        "topics": {"jobs": [3]},
        "commits": {"worker": {"jobs": {"0": 1}}}
    }));
    let cluster = cluster(&broker);
    let first = lag(&cluster, None, None, deadline()).await.unwrap();
    assert_eq!(first.group("worker").unwrap().lag, Some(2));
    let truth = broker.fixture(&json!({
        "topics": {"jobs": [4]},
        "commits": {"worker": {"jobs": {"0": 2}}}
    }));
    let second = lag(&cluster, None, None, deadline()).await.unwrap();
    assert_matches(&second, &truth, "worker", &["jobs"]);
    assert_eq!(second.group("worker").unwrap().lag, Some(7 - 2));

    // A dead bootstrap address first: the next one is used.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let fallback = Cluster::new(Settings::new(vec![closed, broker.bootstrap()]));
    let third = lag(&fallback, None, None, deadline()).await.unwrap();
    assert_eq!(third, second);
}

#[tokio::test]
async fn a_stopped_broker_is_an_error_then_reachable_again() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.fixture(&json!({"topics": {"t": [1]}, "commits": {"g": {"t": {"0": 0}}}}));
    let cluster = cluster(&broker);
    lag(&cluster, None, None, deadline()).await.unwrap();
    let addr = broker.addr();
    drop(broker);
    let started = Instant::now();
    let err = lag(
        &cluster,
        None,
        None,
        Instant::now() + Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        matches!(
            err,
            KafkaError::Unreachable { .. } | KafkaError::Io { .. } | KafkaError::Timeout { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");

    // The broker back on the same port: the same Cluster connects again.
    let Some(broker) = Broker::start_with(BrokerOptions {
        port: Some(addr.port()),
        ..BrokerOptions::default()
    }) else {
        return;
    };
    let truth = broker.fixture(&json!({"topics": {"t": [2]}, "commits": {"g": {"t": {"0": 1}}}}));
    let report = lag(&cluster, None, None, deadline()).await.unwrap();
    assert_matches(&report, &truth, "g", &["t"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_a_live_member_reports_its_state_and_members() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let truth = broker.fixture(&json!({
        "topics": {"clicks": [4, 2]},
        "commits": {"live": {"clicks": {"0": 1}}, "idle": {"clicks": {"1": 2}}}
    }));
    let member = tokio::task::block_in_place(|| broker.member("live", &["clicks"]));
    let cluster = cluster(&broker);
    let report = lag(&cluster, None, None, deadline()).await.unwrap();
    let live = report.group("live").unwrap();
    assert_eq!(live.members, 1, "{live:#?}");
    assert_eq!(live.state, "Stable", "{live:#?}");
    assert_matches(&report, &truth, "live", &["clicks"]);
    let idle = report.group("idle").unwrap();
    assert_eq!((idle.members, idle.lag), (0, Some(0)), "{idle:#?}");
    assert_matches(&report, &truth, "idle", &["clicks"]);
    drop(member);
}

#[tokio::test]
async fn a_restarted_broker_is_reconnected_without_an_error() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.fixture(&json!({"topics": {"t": [1]}, "commits": {"g": {"t": {"0": 0}}}}));
    let cluster = cluster(&broker);
    lag(&cluster, None, None, deadline()).await.unwrap();
    let port = broker.addr().port();
    drop(broker);
    let Some(broker) = Broker::start_with(BrokerOptions {
        port: Some(port),
        ..BrokerOptions::default()
    }) else {
        return;
    };
    let truth = broker.fixture(&json!({"topics": {"t": [3]}, "commits": {"g": {"t": {"0": 1}}}}));
    // The kept connection is dead; the call replaces it rather than failing.
    let report = lag(&cluster, None, None, deadline()).await.unwrap();
    assert_matches(&report, &truth, "g", &["t"]);
}
