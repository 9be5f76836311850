//! What the client says about peers that are not a working Kafka broker: a closed port, a
//! server answering garbage, one that never answers, one that answers a frame of junk. Each
//! gives its own error, naming the broker, by the deadline.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use watchpost_kafka::{Cluster, KafkaError, Settings, lag};

/// A server on 127.0.0.1 that reads what the client sends and answers `reply` (empty: says
/// nothing), keeping the connection open.
async fn server(reply: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                if !reply.is_empty() {
                    let _ = sock.write_all(reply).await;
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    (addr, task)
}

/// `lag` of every group at `addr` with a 2 s deadline: its error, after checking it came in
/// time.
async fn lag_error(addr: SocketAddr) -> KafkaError {
    let cluster = Cluster::new(Settings::new(vec![addr.to_string()]));
    let started = Instant::now();
    let err = lag(&cluster, None, None, started + Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}: {err}",
        started.elapsed()
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    err
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = lag_error(addr).await;
    assert!(matches!(err, KafkaError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("cannot reach Kafka broker"),
        "{err}"
    );
}

#[tokio::test]
async fn an_http_server_is_not_kafka() {
    let (addr, _server) = server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
    let err = lag_error(addr).await;
    assert!(matches!(err, KafkaError::NotKafka { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("does not speak the Kafka protocol"),
        "{err}"
    );
}

#[tokio::test]
async fn a_junk_frame_is_not_kafka() {
    // A well-sized frame whose correlation id is not the one asked.
    let (addr, _server) = server(b"\x00\x00\x00\x08\x7f\x7f\x7f\x7f\x00\x00\x00\x00").await;
    let err = lag_error(addr).await;
    assert!(matches!(err, KafkaError::NotKafka { .. }), "{err:?}");
    assert!(err.to_string().contains("correlation id"), "{err}");
    // The right correlation id (1, the first request) but a body that doesn't decode.
    let (addr, _server) = server(b"\x00\x00\x00\x06\x00\x00\x00\x01\xff\xff").await;
    let err = lag_error(addr).await;
    assert!(matches!(err, KafkaError::NotKafka { .. }), "{err:?}");
}

#[tokio::test]
async fn a_silent_server_times_out_by_the_deadline() {
    let (addr, _server) = server(b"").await;
    let err = lag_error(addr).await;
    assert!(matches!(err, KafkaError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("ApiVersions"), "{err}");
}

#[tokio::test]
async fn a_server_closing_at_once_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(async move {
        loop {
            if let Ok((sock, _)) = listener.accept().await {
                drop(sock);
            }
        }
    });
    let err = lag_error(addr).await;
    assert!(matches!(err, KafkaError::Io { .. }), "{err:?}");
}

#[tokio::test]
async fn no_bootstrap_is_a_settings_error() {
    let cluster = Cluster::new(Settings::new(vec![]));
    let err = lag(
        &cluster,
        None,
        None,
        Instant::now() + Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, KafkaError::Config(_)), "{err:?}");
}
