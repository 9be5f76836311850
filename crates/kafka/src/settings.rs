//! How to reach a cluster: bootstrap addresses, TLS and SASL.

use std::sync::Arc;

/// Everything needed to talk to one cluster.
#[derive(Clone)]
pub struct Settings {
    /// `host:port` of one or more brokers; the first that answers tells the rest.
    pub bootstrap: Vec<String>,
    /// TLS on every connection, when set.
    pub tls: Option<Tls>,
    /// SASL after connecting (and after TLS), when set.
    pub sasl: Option<Sasl>,
    /// The client id brokers log.
    pub client_id: String,
}

impl Settings {
    /// Plaintext, no SASL, client id `watchpost`.
    pub fn new(bootstrap: Vec<String>) -> Settings {
        Settings {
            bootstrap,
            tls: None,
            sasl: None,
            client_id: "watchpost".into(),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bootstrap", &self.bootstrap)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// TLS for broker connections. Build `config` with `watchpost_net::verified_config` (or
/// `insecure_config` when the user said `insecure`).
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
    /// The name to verify instead of each broker's host (none: the host).
    pub server_name: Option<String>,
    /// What `config` trusts, in words (`verified`, `verified+ca:/etc/kafka-ca.pem`,
    /// `insecure`): equal settings have equal ids, so a daemon shares one cluster client
    /// between monitors with the same brokers and TLS settings.
    pub id: String,
}

/// The SASL mechanisms this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// Kafka's name for it (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A SASL login. `Debug` hides the password.
#[derive(Clone)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}
