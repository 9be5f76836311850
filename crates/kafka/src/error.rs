//! What can go wrong talking to a Kafka cluster, in words an operator can act on.

use kafka_protocol::error::ResponseError;

/// A failure of one Kafka operation. `broker` is always the `host:port` that was talked to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KafkaError {
    /// The settings can't work (no bootstrap address, an unusable TLS server name...).
    #[error("invalid Kafka settings: {0}")]
    Config(String),
    /// No TCP connection (refused, no route, name not resolved).
    #[error("cannot reach Kafka broker {broker}: {reason}")]
    Unreachable { broker: String, reason: String },
    /// The peer answered, but not in Kafka's protocol (an HTTP server, SSH, garbage).
    #[error("{broker} does not speak the Kafka protocol: {reason}")]
    NotKafka { broker: String, reason: String },
    /// The TLS handshake failed (certificate, protocol, plaintext port).
    #[error("TLS with Kafka broker {broker} failed: {reason}")]
    Tls { broker: String, reason: String },
    /// SASL was refused: wrong user or password, mechanism not enabled.
    #[error("authentication with Kafka broker {broker} failed: {reason}")]
    AuthenticationFailed { broker: String, reason: String },
    /// The broker lacks an API (or every version of it) this client needs.
    #[error("Kafka broker {broker} does not support {api}: {reason}")]
    Unsupported {
        broker: String,
        api: &'static str,
        reason: String,
    },
    /// The consumer group does not exist (no members and no committed offsets).
    #[error("consumer group {group:?} not found")]
    GroupNotFound { group: String },
    /// No broker could be found coordinating the group (cluster starting, or unhealthy).
    #[error("no coordinator available for consumer group {group:?}: {reason}")]
    CoordinatorNotAvailable { group: String, reason: String },
    /// The deadline passed while waiting for `during`.
    #[error("timed out talking to Kafka broker {broker} ({during})")]
    Timeout { broker: String, during: String },
    /// The connection broke while a request was in flight.
    #[error("connection to Kafka broker {broker} failed: {reason}")]
    Io { broker: String, reason: String },
    /// The broker answered a request with an error code.
    #[error("Kafka broker {broker} answered {api} with error {code} ({name}){detail}")]
    Broker {
        broker: String,
        api: &'static str,
        code: i16,
        name: String,
        detail: String,
    },
}

impl KafkaError {
    /// An error code from `api`'s answer as an error; `message` is the broker's own text, if any.
    pub(crate) fn broker(
        broker: &str,
        api: &'static str,
        code: i16,
        message: Option<&str>,
    ) -> Self {
        KafkaError::Broker {
            broker: broker.to_string(),
            api,
            code,
            name: code_name(code),
            detail: match message {
                Some(m) if !m.is_empty() => format!(": {m}"),
                _ => String::new(),
            },
        }
    }

    /// Whether the connection this error came from must be dropped (it may hold a late answer
    /// or be broken), rather than reused.
    pub(crate) fn breaks_connection(&self) -> bool {
        !matches!(
            self,
            KafkaError::Broker { .. }
                | KafkaError::GroupNotFound { .. }
                | KafkaError::CoordinatorNotAvailable { .. }
                | KafkaError::Config(_)
        )
    }
}

/// The protocol's name for an error code (`COORDINATOR_NOT_AVAILABLE` style is Kafka's Java
/// spelling; kafka-protocol names it `CoordinatorNotAvailable`).
pub(crate) fn code_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "none".into(),
        Some(ResponseError::Unknown(c)) => format!("unknown error code {c}"),
        Some(e) => e.to_string(),
    }
}
