//! A peer that passes for a broker and then answers with an array length it doesn't back
//! with data: a clean "does not decode" error naming the broker, by the deadline — never an
//! abort of the process (the codec reserves an array's capacity from its length before
//! reading it; see `watchpost_kafka::alloc`).

use std::time::Duration;

// As in the watchpost binary.
#[global_allocator]
static ALLOC: watchpost_kafka::alloc::Lazy = watchpost_kafka::alloc::Lazy;

use tokio::time::Instant;
use watchpost_kafka::{Cluster, KafkaError, Settings, lag};
use watchpost_testkit::kafka::LyingPeer;

#[tokio::test]
async fn an_array_length_of_i32_max_is_a_clean_error() {
    // Metadata v1 begins with the brokers array: i32::MAX brokers, none sent.
    let peer = LyingPeer::start(i32::MAX.to_be_bytes().to_vec());
    let cluster = Cluster::new(Settings::new(vec![peer.bootstrap()]));
    let started = Instant::now();
    let err = lag(&cluster, None, None, started + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, KafkaError::NotKafka { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&peer.bootstrap()), "{text}");
    assert!(
        text.contains("decode") || text.contains("malformed"),
        "{text}"
    );
}
