//! TLS and SASL against the real broker.
//!
//! TLS: this Tansu build can't be given a certificate and a key together (its `--cert` and
//! `--key` flags exclude each other), so TLS is terminated by the testkit's `tls_forwarder` in
//! front of the broker, which advertises the forwarder's port: every connection, bootstrap and
//! broker, goes through TLS with a certificate from a test CA — confluent-kafka's too.
//!
//! SASL: Tansu with `--authentication` runs real SCRAM exchanges, but users can only be
//! created by an authenticated client, so no login can succeed there: these tests check the
//! refusals. Successful logins are tested against the test's own SASL server
//! (tests/sasl.rs) and RFC 7677's published SCRAM example (`src/scram.rs`).

use serde_json::json;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use watchpost_kafka::{Cluster, KafkaError, Sasl, SaslMechanism, Settings, Tls, lag};
use watchpost_testkit::kafka::{Broker, BrokerOptions};
use watchpost_testkit::{TestCa, tls_forwarder};

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn tls(config: rustls::ClientConfig) -> Option<Tls> {
    Some(Tls {
        config: Arc::new(config),
        server_name: None,
        id: "test".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_over_tls_verified_with_the_ca() {
    let broker_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ca = TestCa::new("watchpost kafka test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let (proxy, _guard) = tls_forwarder(
        "127.0.0.1:0".parse().unwrap(),
        leaf.server_config(&[]),
        ([127, 0, 0, 1], broker_port).into(),
    )
    .await;
    let Some(broker) = Broker::start_with(BrokerOptions {
        port: Some(broker_port),
        advertised_port: Some(proxy.port()),
        ..BrokerOptions::default()
    }) else {
        return;
    };
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(ca.cert_pem.as_bytes()).unwrap();
    let spec = json!({
        "topics": {"secure": [3, 2]},
        "commits": {"vault": {"secure": {"0": 1}}},
        "client": {"security.protocol": "SSL", "ssl.ca.location": ca_file.path()}
    });
    // The blocking fixture runs beside the forwarder, which needs this runtime to relay.
    let truth = {
        let bootstrap = proxy.to_string();
        tokio::task::block_in_place(|| broker.fixture_via(&bootstrap, &spec))
    };
    assert_eq!(truth["vault"]["secure"]["0"]["lag"], 2, "{truth}");

    let mut settings = Settings::new(vec![proxy.to_string()]);
    settings.tls =
        tls(watchpost_net::verified_config(std::slice::from_ref(&ca.cert_der), &[]).unwrap());
    let report = lag(&Cluster::new(settings), None, None, deadline())
        .await
        .unwrap();
    let vault = report.group("vault").unwrap();
    assert_eq!(vault.lag, Some(2), "{report:#?}");
    let p = &vault.topic("secure").unwrap().partitions;
    assert_eq!((p[0].committed, p[0].end, p[0].lag), (Some(1), 3, Some(2)));
    assert_eq!((p[1].committed, p[1].end, p[1].lag), (None, 2, None));

    // Without the test CA the certificate is refused, and says why.
    let mut settings = Settings::new(vec![proxy.to_string()]);
    settings.tls = tls(watchpost_net::verified_config(&[], &[]).unwrap());
    let err = lag(&Cluster::new(settings), None, None, deadline())
        .await
        .unwrap_err();
    assert!(matches!(err, KafkaError::Tls { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // `insecure`: any certificate.
    let mut settings = Settings::new(vec![proxy.to_string()]);
    settings.tls = tls(watchpost_net::insecure_config(&[]));
    let report = lag(&Cluster::new(settings), None, None, deadline())
        .await
        .unwrap();
    assert_eq!(report.group("vault").unwrap().lag, Some(2));

    // TLS spoken to the plaintext port fails as TLS, by the deadline.
    let mut settings = Settings::new(vec![broker.bootstrap()]);
    settings.tls = tls(watchpost_net::insecure_config(&[]));
    let started = Instant::now();
    let err = lag(
        &Cluster::new(settings),
        None,
        None,
        started + Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(3500));
    assert!(
        matches!(err, KafkaError::Tls { .. } | KafkaError::Timeout { .. }),
        "{err:?}"
    );
}

async fn login(broker: &Broker, mechanism: SaslMechanism) -> KafkaError {
    let mut settings = Settings::new(vec![broker.bootstrap()]);
    settings.sasl = Some(Sasl {
        mechanism,
        username: "alice".into(),
        password: "not-her-password".into(),
    });
    let started = Instant::now();
    let err = lag(
        &Cluster::new(settings),
        None,
        None,
        started + Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(6));
    err
}

#[tokio::test]
async fn refused_sasl_logins_are_authentication_errors() {
    let Some(broker) = Broker::start_with(BrokerOptions {
        args: vec!["--authentication"],
        ..BrokerOptions::default()
    }) else {
        return;
    };
    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        let err = login(&broker, mechanism).await;
        assert!(
            matches!(err, KafkaError::AuthenticationFailed { .. }),
            "{mechanism:?}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "authentication with Kafka broker {} failed",
                broker.bootstrap()
            )),
            "{text}"
        );
        assert!(text.contains("unknown-user"), "{text}");
    }
    // This broker doesn't offer PLAIN: it hangs up, which is a refusal too.
    let err = login(&broker, SaslMechanism::Plain).await;
    assert!(
        matches!(err, KafkaError::AuthenticationFailed { .. }),
        "{err:?}"
    );
}
