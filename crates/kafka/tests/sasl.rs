//! Successful (and refused) SASL logins against a small Kafka server of the test's own: it
//! speaks the real framing with kafka-protocol's broker side, offers PLAIN and SCRAM-SHA-256/512
//! for one user, and runs the server half of SCRAM independently of the client (PBKDF2 from
//! the `pbkdf2` crate). Before a login succeeds it answers nothing but ApiVersions and SASL;
//! after, Metadata and ListGroups, so `lag()` completes with an empty report.
//! (Tansu, the real broker of the other tests, can't have users without an authenticated
//! client: see tests/security.rs.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, ListGroupsResponse, MetadataRequest, MetadataResponse,
    ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, decode_request_header_from_buffer};
use sha2::{Digest, Sha256, Sha512};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use watchpost_kafka::{Cluster, KafkaError, Sasl, SaslMechanism, Settings, lag};

const USER: &str = "svc,lag=watch";
const PASSWORD: &str = "pa55-wörd";
const SALT: &[u8] = b"watchpost-test-salt";
const ITERATIONS: u32 = 4096;

fn hmac_of(mechanism: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    if mechanism == "SCRAM-SHA-256" {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = Hmac::<Sha512>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
}

fn hash_of(mechanism: &str, data: &[u8]) -> Vec<u8> {
    if mechanism == "SCRAM-SHA-256" {
        Sha256::digest(data).to_vec()
    } else {
        Sha512::digest(data).to_vec()
    }
}

fn salted(mechanism: &str) -> Vec<u8> {
    if mechanism == "SCRAM-SHA-256" {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(PASSWORD.as_bytes(), SALT, ITERATIONS, &mut out);
        out.to_vec()
    } else {
        let mut out = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(PASSWORD.as_bytes(), SALT, ITERATIONS, &mut out);
        out.to_vec()
    }
}

/// The server half of one login.
#[derive(Default)]
struct Login {
    mechanism: String,
    /// SCRAM: client-first-bare and server-first, once sent.
    scram: Option<(String, String)>,
    done: bool,
}

impl Login {
    /// One SaslAuthenticate token in, the answer out (error code, message, bytes).
    fn step(&mut self, token: &[u8]) -> (i16, Option<String>, Vec<u8>) {
        let refuse = |why: &str| (58, Some(why.to_string()), Vec::new());
        if self.mechanism == "PLAIN" {
            let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
            if parts.len() == 3 && parts[1] == USER.as_bytes() && parts[2] == PASSWORD.as_bytes() {
                self.done = true;
                return (0, None, Vec::new());
            }
            return refuse("Invalid username or password");
        }
        let text = String::from_utf8_lossy(token).to_string();
        match self.scram.take() {
            None => {
                let bare = text
                    .strip_prefix("n,,")
                    .expect("gs2 header n,,")
                    .to_string();
                let user = bare
                    .strip_prefix("n=")
                    .unwrap()
                    .split(",r=")
                    .next()
                    .unwrap();
                // RFC 5802 escaping of `,` and `=`.
                assert_eq!(user, "svc=2Clag=3Dwatch");
                let nonce = bare.split(",r=").nth(1).unwrap().to_string();
                let first = format!("r={nonce}SERVER,s={},i={ITERATIONS}", B64.encode(SALT));
                self.scram = Some((bare, first.clone()));
                (0, None, first.into_bytes())
            }
            Some((bare, first)) => {
                let (without_proof, proof) = text.rsplit_once(",p=").unwrap();
                let auth = format!("{bare},{first},{without_proof}");
                let salted = salted(&self.mechanism);
                let client_key = hmac_of(&self.mechanism, &salted, b"Client Key");
                let stored_key = hash_of(&self.mechanism, &client_key);
                let signature = hmac_of(&self.mechanism, &stored_key, auth.as_bytes());
                let proof = B64.decode(proof).unwrap_or_default();
                let recovered: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
                if hash_of(&self.mechanism, &recovered) != stored_key {
                    return refuse(
                        "Authentication failed during authentication due to invalid credentials with SASL mechanism",
                    );
                }
                let server_key = hmac_of(&self.mechanism, &salted, b"Server Key");
                let v = hmac_of(&self.mechanism, &server_key, auth.as_bytes());
                self.done = true;
                (0, None, format!("v={}", B64.encode(v)).into_bytes())
            }
        }
    }
}

fn answer<T: Encodable>(api: ApiKey, version: i16, id: i32, body: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(id)
        .encode(&mut buf, api.response_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

async fn serve(mut sock: TcpStream, me: SocketAddr) {
    let mut login = Login::default();
    loop {
        let mut size = [0u8; 4];
        if sock.read_exact(&mut size).await.is_err() {
            return;
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        sock.read_exact(&mut body).await.unwrap();
        let mut body = Bytes::from(body);
        let header = decode_request_header_from_buffer(&mut body).unwrap();
        let (id, version) = (header.correlation_id, header.request_api_version);
        let api = ApiKey::try_from(header.request_api_key).unwrap();
        let out = match api {
            ApiKey::ApiVersions => {
                let keys = [
                    (ApiKey::ApiVersions, 0, 3),
                    (ApiKey::SaslHandshake, 0, 1),
                    (ApiKey::SaslAuthenticate, 0, 2),
                    (ApiKey::Metadata, 0, 12),
                    (ApiKey::ListGroups, 0, 4),
                ];
                let r = ApiVersionsResponse::default().with_api_keys(
                    keys.iter()
                        .map(|(k, min, max)| {
                            ApiVersion::default()
                                .with_api_key(*k as i16)
                                .with_min_version(*min)
                                .with_max_version(*max)
                        })
                        .collect(),
                );
                answer(api, version, id, &r)
            }
            ApiKey::SaslHandshake => {
                let req = SaslHandshakeRequest::decode(&mut body, version).unwrap();
                let offered = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
                let code = if offered.contains(&req.mechanism.as_str()) {
                    login.mechanism = req.mechanism.to_string();
                    0
                } else {
                    33
                };
                let r = SaslHandshakeResponse::default()
                    .with_error_code(code)
                    .with_mechanisms(
                        offered
                            .iter()
                            .map(|m| StrBytes::from_static_str(m))
                            .collect(),
                    );
                answer(api, version, id, &r)
            }
            ApiKey::SaslAuthenticate => {
                let req = SaslAuthenticateRequest::decode(&mut body, version).unwrap();
                let (code, message, bytes) = login.step(&req.auth_bytes);
                let r = SaslAuthenticateResponse::default()
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
                    .with_auth_bytes(Bytes::from(bytes));
                let out = answer(api, version, id, &r);
                sock.write_all(&out).await.unwrap();
                if code != 0 {
                    return;
                }
                continue;
            }
            _ if !login.done => return,
            ApiKey::Metadata => {
                MetadataRequest::decode(&mut body, version).unwrap();
                let r = MetadataResponse::default().with_brokers(vec![
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(1))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(me.port() as i32),
                ]);
                answer(api, version, id, &r)
            }
            ApiKey::ListGroups => answer(api, version, id, &ListGroupsResponse::default()),
            other => panic!("unexpected {other:?}"),
        };
        sock.write_all(&out).await.unwrap();
    }
}

async fn broker() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock, me));
        }
    });
    me
}

async fn login(
    addr: SocketAddr,
    mechanism: SaslMechanism,
    password: &str,
) -> Result<(), KafkaError> {
    let mut settings = Settings::new(vec![addr.to_string()]);
    settings.sasl = Some(Sasl {
        mechanism,
        username: USER.into(),
        password: password.into(),
    });
    let report = lag(
        &Cluster::new(settings),
        None,
        None,
        Instant::now() + Duration::from_secs(5),
    )
    .await?;
    assert!(report.groups.is_empty());
    Ok(())
}

#[tokio::test]
async fn plain_and_scram_logins_succeed_with_the_password() {
    let addr = broker().await;
    for mechanism in [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ] {
        login(addr, mechanism, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("{mechanism:?}: {e}"));
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error() {
    let addr = broker().await;
    for mechanism in [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ] {
        let err = login(addr, mechanism, "guess").await.unwrap_err();
        assert!(
            matches!(err, KafkaError::AuthenticationFailed { .. }),
            "{mechanism:?}: {err:?}"
        );
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(
            !err.to_string().contains("guess"),
            "the password leaks: {err}"
        );
    }
}
