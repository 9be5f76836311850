//! One connection to one broker: TCP (optionally TLS), Kafka's size-prefixed frames with
//! correlation ids, ApiVersions negotiation and SASL. Every step runs under the caller's
//! deadline; an answer that is not a Kafka frame is [`KafkaError::NotKafka`], never a panic.

use crate::error::KafkaError;
use crate::scram::{Scram, ScramHash, random_nonce};
use crate::settings::{Sasl, SaslMechanism, Settings};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, ListGroupsRequest, ListGroupsResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetFetchRequest,
    OffsetFetchResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes, VersionRange};
use std::collections::HashMap;
use std::future::Future;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// The largest answer accepted (a Metadata answer for tens of thousands of partitions fits).
/// Anything announcing more is not a Kafka answer to our requests.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// The ApiVersions version asked first (v3 is the first flexible one, Kafka 2.4+); older
/// brokers answer it with an error in v0's layout, and v0 is asked then.
const API_VERSIONS_FIRST: i16 = 3;

/// A request this client sends, tied to its API key and answer.
pub(crate) trait Api: Encodable + Message {
    const KEY: ApiKey;
    const NAME: &'static str;
    type Response: Decodable;
}

macro_rules! api {
    ($req:ty, $resp:ty, $key:ident) => {
        impl Api for $req {
            const KEY: ApiKey = ApiKey::$key;
            const NAME: &'static str = stringify!($key);
            type Response = $resp;
        }
    };
}

api!(ApiVersionsRequest, ApiVersionsResponse, ApiVersions);
api!(MetadataRequest, MetadataResponse, Metadata);
api!(
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    FindCoordinator
);
api!(ListGroupsRequest, ListGroupsResponse, ListGroups);
api!(
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    DescribeGroups
);
api!(OffsetFetchRequest, OffsetFetchResponse, OffsetFetch);
api!(ListOffsetsRequest, ListOffsetsResponse, ListOffsets);
api!(SaslHandshakeRequest, SaslHandshakeResponse, SaslHandshake);
api!(
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslAuthenticate
);

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// An open, negotiated (and authenticated) connection.
pub(crate) struct Conn {
    broker: String,
    stream: Box<dyn Stream>,
    next_id: i32,
    client_id: StrBytes,
    /// The broker's version range per API key.
    versions: HashMap<i16, VersionRange>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("broker", &self.broker)
            .finish()
    }
}

/// `fut` under `deadline`; its timeout names the broker and what was awaited.
async fn within<T>(
    deadline: Instant,
    broker: &str,
    during: impl FnOnce() -> String,
    fut: impl Future<Output = Result<T, KafkaError>>,
) -> Result<T, KafkaError> {
    match timeout_at(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(KafkaError::Timeout {
            broker: broker.to_string(),
            during: during(),
        }),
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(broker: &str) -> &str {
    let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

impl Conn {
    /// Connect to `broker` (`host:port`), shake hands (TLS), negotiate versions and log in
    /// (SASL) as `settings` say, all before `deadline`.
    pub(crate) async fn open(
        broker: &str,
        settings: &Settings,
        deadline: Instant,
    ) -> Result<Conn, KafkaError> {
        let tcp = within(deadline, broker, || "connecting".into(), async {
            TcpStream::connect(broker)
                .await
                .map_err(|e| KafkaError::Unreachable {
                    broker: broker.to_string(),
                    reason: e.to_string(),
                })
        })
        .await?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &settings.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let name = tls
                    .server_name
                    .clone()
                    .unwrap_or_else(|| host_of(broker).to_string());
                let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|_| KafkaError::Config(format!("bad TLS server name {name:?}")))?;
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                let tls_stream = within(deadline, broker, || "TLS handshake".into(), async {
                    connector
                        .connect(server_name, tcp)
                        .await
                        .map_err(|e| KafkaError::Tls {
                            broker: broker.to_string(),
                            reason: e.to_string(),
                        })
                })
                .await?;
                Box::new(tls_stream)
            }
        };
        let mut conn = Conn {
            broker: broker.to_string(),
            stream,
            next_id: 1,
            client_id: StrBytes::from_string(settings.client_id.clone()),
            versions: HashMap::new(),
        };
        conn.negotiate(deadline).await?;
        if let Some(sasl) = &settings.sasl {
            conn.authenticate(sasl, deadline).await?;
        }
        Ok(conn)
    }

    /// Ask the broker which API versions it serves.
    async fn negotiate(&mut self, deadline: Instant) -> Result<(), KafkaError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("watchpost"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut answer = self
            .exchange(&request, API_VERSIONS_FIRST, deadline)
            .await?;
        if answer.error_code == 35 {
            // UNSUPPORTED_VERSION: a pre-2.4 broker; it listed its versions in v0's layout.
            answer = self
                .exchange(&ApiVersionsRequest::default(), 0, deadline)
                .await?;
        }
        if answer.error_code != 0 {
            return Err(KafkaError::broker(
                &self.broker,
                "ApiVersions",
                answer.error_code,
                None,
            ));
        }
        self.versions = answer
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        Ok(())
    }

    /// The highest version of `R` both sides support.
    pub(crate) fn version<R: Api>(&self) -> Result<i16, KafkaError> {
        let unsupported = |reason: String| KafkaError::Unsupported {
            broker: self.broker.clone(),
            api: R::NAME,
            reason,
        };
        let theirs = self
            .versions
            .get(&(R::KEY as i16))
            .ok_or_else(|| unsupported("the broker does not list it in ApiVersions".into()))?;
        let both = theirs.intersect(&R::VERSIONS);
        if both.is_empty() {
            return Err(unsupported(format!(
                "the broker serves versions {theirs}, this client {}",
                R::VERSIONS
            )));
        }
        Ok(both.max)
    }

    /// Send `build(version)` at the negotiated version and read its answer.
    pub(crate) async fn send<R: Api>(
        &mut self,
        build: impl FnOnce(i16) -> R,
        deadline: Instant,
    ) -> Result<(i16, R::Response), KafkaError> {
        let version = self.version::<R>()?;
        let request = build(version);
        let answer = self.exchange(&request, version, deadline).await?;
        Ok((version, answer))
    }

    /// One request and its answer at `version`. Any failure leaves the connection unusable
    /// (the caller drops it).
    async fn exchange<R: Api>(
        &mut self,
        request: &R,
        version: i16,
        deadline: Instant,
    ) -> Result<R::Response, KafkaError> {
        let correlation_id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0);
        let encoded = header
            .encode(&mut frame, R::KEY.request_header_version(version))
            .and_then(|_| request.encode(&mut frame, version));
        if let Err(e) = encoded {
            return Err(KafkaError::Unsupported {
                broker: self.broker.clone(),
                api: R::NAME,
                reason: format!("cannot encode version {version}: {e}"),
            });
        }
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        let broker = self.broker.clone();
        let io = |e: std::io::Error| KafkaError::Io {
            broker: broker.clone(),
            reason: e.to_string(),
        };
        let body = within(
            deadline,
            &self.broker,
            || format!("waiting for the answer to {}", R::NAME),
            async {
                self.stream.write_all(&frame).await.map_err(io)?;
                self.stream.flush().await.map_err(io)?;
                let mut size = [0u8; 4];
                if let Err(e) = self.stream.read_exact(&mut size).await {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        return Err(KafkaError::Io {
                            broker: broker.clone(),
                            reason: format!(
                                "the connection was closed without an answer to {}",
                                R::NAME
                            ),
                        });
                    }
                    return Err(io(e));
                }
                let size = i32::from_be_bytes(size);
                if size < 4 || size as usize > MAX_FRAME {
                    return Err(KafkaError::NotKafka {
                        broker: broker.clone(),
                        reason: format!(
                            "the answer starts with {:02x?}, not a frame size of 4..{MAX_FRAME} bytes",
                            size.to_be_bytes()
                        ),
                    });
                }
                let mut body = vec![0u8; size as usize];
                self.stream.read_exact(&mut body).await.map_err(io)?;
                Ok(Bytes::from(body))
            },
        )
        .await?;
        decode_answer::<R>(&self.broker, body, version, correlation_id)
    }

    /// Log in with SASL: SaslHandshake names the mechanism, SaslAuthenticate carries its
    /// messages (one for PLAIN, two for SCRAM, whose last answer proves the server too).
    async fn authenticate(&mut self, sasl: &Sasl, deadline: Instant) -> Result<(), KafkaError> {
        // A broker that doesn't like the login may just hang up: that is a refusal too.
        self.sasl_exchange(sasl, deadline)
            .await
            .map_err(|e| match e {
                KafkaError::Io { broker, reason } => KafkaError::AuthenticationFailed {
                    broker,
                    reason: format!(
                        "the broker hung up during SASL {} ({reason})",
                        sasl.mechanism.name()
                    ),
                },
                other => other,
            })
    }

    async fn sasl_exchange(&mut self, sasl: &Sasl, deadline: Instant) -> Result<(), KafkaError> {
        let broker = self.broker.clone();
        let failed = |reason: String| KafkaError::AuthenticationFailed {
            broker: broker.clone(),
            reason,
        };
        let mechanism = sasl.mechanism.name();
        let (_, answer) = self
            .send(
                |_| {
                    SaslHandshakeRequest::default()
                        .with_mechanism(StrBytes::from_static_str(mechanism))
                },
                deadline,
            )
            .await?;
        if answer.error_code != 0 {
            let enabled: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(failed(format!(
                "the broker does not offer SASL mechanism {mechanism} (it offers: {})",
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(", ")
                }
            )));
        }
        match sasl.mechanism {
            SaslMechanism::Plain => {
                let mut token = Vec::new();
                token.push(0);
                token.extend_from_slice(sasl.username.as_bytes());
                token.push(0);
                token.extend_from_slice(sasl.password.as_bytes());
                self.sasl_step(token, deadline).await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let hash = if sasl.mechanism == SaslMechanism::ScramSha256 {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                let nonce = random_nonce().map_err(&failed)?;
                let mut scram = Scram::new(hash, &sasl.username, &sasl.password, &nonce);
                let server_first = self
                    .sasl_step(scram.client_first().into_bytes(), deadline)
                    .await?;
                let client_final = scram.client_final(&server_first).map_err(&failed)?;
                let server_final = self.sasl_step(client_final.into_bytes(), deadline).await?;
                scram.verify_server(&server_final).map_err(&failed)?;
            }
        }
        Ok(())
    }

    async fn sasl_step(&mut self, token: Vec<u8>, deadline: Instant) -> Result<Bytes, KafkaError> {
        let (_, answer) = self
            .send(
                |_| SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
                deadline,
            )
            .await?;
        if answer.error_code != 0 {
            let message = answer
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| crate::error::code_name(answer.error_code));
            return Err(KafkaError::AuthenticationFailed {
                broker: self.broker.clone(),
                reason: message,
            });
        }
        Ok(answer.auth_bytes)
    }
}

/// Decode one answer frame: its header must carry `correlation_id`, the rest must decode as
/// `R`'s answer at `version`. A decoder panic (the codec trusts lengths it reads) is caught.
fn decode_answer<R: Api>(
    broker: &str,
    mut body: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<R::Response, KafkaError> {
    let not_kafka = |reason: String| KafkaError::NotKafka {
        broker: broker.to_string(),
        reason,
    };
    // A broker answers an ApiVersions version it doesn't serve with UNSUPPORTED_VERSION (35)
    // in v0's layout (the error code comes right after the correlation id in every version).
    let version =
        if R::KEY == ApiKey::ApiVersions && body.get(4..6) == Some(&35i16.to_be_bytes()[..]) {
            0
        } else {
            version
        };
    let header_version = R::KEY.response_header_version(version);
    // The correlation id is the frame's first 4 bytes in every header version: checked
    // before anything else is decoded.
    if body.len() < 4 || body[..4] != correlation_id.to_be_bytes() {
        return Err(not_kafka(format!(
            "the answer to {} starts with {:02x?}, not correlation id {correlation_id}",
            R::NAME,
            &body[..body.len().min(4)]
        )));
    }
    let decoded = std::panic::catch_unwind(move || {
        ResponseHeader::decode(&mut body, header_version).map_err(|e| e.to_string())?;
        R::Response::decode(&mut body, version).map_err(|e| e.to_string())
    });
    match decoded {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(not_kafka(format!(
            "the answer to {} v{version} does not decode: {e}",
            R::NAME
        ))),
        Err(_) => Err(not_kafka(format!(
            "the answer to {} v{version} is malformed",
            R::NAME
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_api_versions_answer_is_read_in_v0_layout() {
        // correlation id 7, error 35, one API: ApiVersions 0..=2 (v0 layout: int32 array).
        let body = Bytes::from_static(&[0, 0, 0, 7, 0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 2]);
        let answer = decode_answer::<ApiVersionsRequest>("b:1", body, 3, 7).unwrap();
        assert_eq!(answer.error_code, 35);
        assert_eq!(answer.api_keys.len(), 1);
        assert_eq!(answer.api_keys[0].max_version, 2);
    }

    #[test]
    fn short_or_foreign_frames_are_not_kafka() {
        for body in [&b""[..], b"\x00\x00", b"\x00\x00\x00\x08rest"] {
            let err = decode_answer::<MetadataRequest>("b:1", Bytes::from(body.to_vec()), 12, 7)
                .unwrap_err();
            assert!(matches!(err, KafkaError::NotKafka { .. }), "{err:?}");
        }
    }
}
