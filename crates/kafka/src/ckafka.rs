//! Lag through Tencent Cloud's CKafka API (`source: ckafka`), for watchpost instances that
//! can't reach the brokers: `DescribeGroupOffsets` (API 3.0, version 2019-08-19, signed with
//! TC3-HMAC-SHA256) returns, per topic and partition of a group, the committed offset and the
//! log-end offset. The API pages over topics, 50 at a time; every page is asked for within the
//! deadline. A partition the API reports with an error code, or with a negative committed
//! offset (no commit), has no known committed offset: its lag is unknown, never zero.
//!
//! Request: `POST /` to `https://ckafka.tencentcloudapi.com` (or the configured endpoint)
//! with `X-TC-Action: DescribeGroupOffsets`, `X-TC-Version: 2019-08-19`, `X-TC-Region`,
//! `X-TC-Timestamp`, and the body `{"InstanceId","Group","Topics"?,"Offset","Limit":50}`.
//! Answer: `{"Response":{"Result":{"TotalCount","TopicList":[{"Topic","Partitions":
//! [{"Partition","Offset","LogEndOffset","Lag","ErrorCode","Metadata"}]}]},"RequestId"}`, or
//! `{"Response":{"Error":{"Code","Message"},"RequestId"}}`.

use crate::lag::{GroupLag, LagReport, PartitionLag, TopicLag};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Url;
use watchpost_net::{AbortOnDrop, tc3};

const SERVICE: &str = "ckafka";
const ACTION: &str = "DescribeGroupOffsets";
const VERSION: &str = "2019-08-19";
const CONTENT_TYPE_VALUE: &str = "application/json; charset=utf-8";
/// The most topics one page may hold (the API's limit).
const PAGE: usize = 50;
/// The most pages read for one group (10,000 topics): a bound on a misbehaving endpoint.
const MAX_PAGES: usize = 200;
/// The most bytes of one answer read.
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// Where and as whom to ask.
#[derive(Clone)]
pub struct CkafkaSource {
    /// `https://ckafka.tencentcloudapi.com` unless set (a private endpoint, tests).
    pub endpoint: Url,
    pub region: String,
    pub instance_id: String,
    pub secret_id: String,
    pub secret_key: String,
    /// CA certificates trusted besides the webpki roots (https endpoints).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl std::fmt::Debug for CkafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CkafkaSource")
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .field("instance_id", &self.instance_id)
            .field("secret_id", &"<hidden>")
            .field("secret_key", &"<hidden>")
            .finish()
    }
}

/// One partition's offsets as the API reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: i32,
    /// `None`: no commit (or the API reported an error for this partition).
    pub committed: Option<i64>,
    pub end: i64,
}

/// Why the API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CkafkaError {
    #[error("ckafka: {0}")]
    Network(String),
    #[error("ckafka: no answer before the deadline")]
    Timeout,
    #[error("ckafka: HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("ckafka: {code}: {message}")]
    Api { code: String, message: String },
    #[error("ckafka: the answer is not the API's JSON: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    response: Answer,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    result: Option<Page>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiError {
    code: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    topic_list: Option<Vec<TopicOffsets>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TopicOffsets {
    topic: String,
    #[serde(default)]
    partitions: Option<Vec<PartitionAnswer>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PartitionAnswer {
    partition: i64,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    log_end_offset: Option<i64>,
    #[serde(default)]
    error_code: Option<i64>,
}

/// The request body of one page.
fn body(instance: &str, group: &str, topics: Option<&[String]>, offset: usize) -> Vec<u8> {
    let mut body = serde_json::json!({
        "InstanceId": instance,
        "Group": group,
        "Offset": offset,
        "Limit": PAGE,
    });
    if let Some(topics) = topics {
        body["Topics"] = serde_json::json!(topics);
    }
    body.to_string().into_bytes()
}

/// Every partition of `group` (of `topics`, or all it commits to), read page by page.
pub async fn group_offsets(
    source: &CkafkaSource,
    group: &str,
    topics: Option<&[String]>,
    deadline: Instant,
) -> Result<Vec<PartitionOffsets>, CkafkaError> {
    let client = Client::new(source)?;
    let mut out = Vec::new();
    let mut seen_topics = 0usize;
    for page in 0..MAX_PAGES {
        let body = body(&source.instance_id, group, topics, page * PAGE);
        let answer = tokio::time::timeout_at(deadline, client.post(source, &body))
            .await
            .map_err(|_| CkafkaError::Timeout)??;
        let envelope: Envelope =
            serde_json::from_slice(&answer).map_err(|e| CkafkaError::Malformed(e.to_string()))?;
        if let Some(e) = envelope.response.error {
            return Err(CkafkaError::Api {
                code: e.code,
                message: e.message,
            });
        }
        let result = envelope
            .response
            .result
            .ok_or_else(|| CkafkaError::Malformed("no Result".into()))?;
        let list = result.topic_list.unwrap_or_default();
        let got = list.len();
        seen_topics += got;
        for topic in list {
            for p in topic.partitions.unwrap_or_default() {
                let Ok(partition) = i32::try_from(p.partition) else {
                    continue;
                };
                let failed = p.error_code.is_some_and(|c| c != 0);
                out.push(PartitionOffsets {
                    topic: topic.topic.clone(),
                    partition,
                    committed: p.offset.filter(|o| *o >= 0 && !failed),
                    end: p.log_end_offset.unwrap_or(0).max(0),
                });
            }
        }
        let total = result.total_count.unwrap_or(seen_topics as u64) as usize;
        if got == 0 || seen_topics >= total {
            return Ok(out);
        }
    }
    Ok(out)
}

/// The lag of `group` as the CKafka API reports it, in the same report as the broker path
/// (`lag()`): per partition `max(0, end − committed)`, unknown without a commit. The API says
/// nothing of the group's state or members: `state` is `Unknown` and `members` 0.
pub async fn ckafka_lag(
    source: &CkafkaSource,
    group: &str,
    topics: Option<&[String]>,
    deadline: Instant,
) -> Result<LagReport, CkafkaError> {
    let offsets = group_offsets(source, group, topics, deadline).await?;
    let mut by_topic: BTreeMap<String, Vec<PartitionLag>> = BTreeMap::new();
    for p in offsets {
        by_topic.entry(p.topic).or_default().push(PartitionLag::new(
            p.partition,
            p.committed,
            p.end,
        ));
    }
    let topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| TopicLag::new(topic, partitions))
        .collect();
    Ok(LagReport {
        groups: vec![GroupLag::new(
            group.to_string(),
            "Unknown".into(),
            0,
            topics,
        )],
    })
}

/// One HTTP/1.1 POST per page on a fresh connection (a handful of pages per tick).
struct Client {
    tls: Option<tokio_rustls::TlsConnector>,
    host: String,
    port: u16,
    authority: String,
}

impl Client {
    fn new(source: &CkafkaSource) -> Result<Client, CkafkaError> {
        let url = &source.endpoint;
        let host = url
            .host_str()
            .ok_or_else(|| CkafkaError::Network("the endpoint has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let https = url.scheme() == "https";
        let port = url.port_or_known_default().unwrap_or(443);
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let tls = if https {
            let config = watchpost_net::verified_config(&source.extra_roots, &[b"http/1.1"])
                .map_err(|e| CkafkaError::Network(e.reason))?;
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Client {
            tls,
            host,
            port,
            authority,
        })
    }

    async fn post(&self, source: &CkafkaSource, body: &[u8]) -> Result<Vec<u8>, CkafkaError> {
        let timestamp = chrono::Utc::now().timestamp();
        let signed = tc3::sign(
            &source.secret_id,
            &source.secret_key,
            SERVICE,
            timestamp,
            &[
                ("content-type", CONTENT_TYPE_VALUE),
                ("host", &self.authority),
            ],
            body,
        );
        let net = |e: std::io::Error| CkafkaError::Network(e.to_string());
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(net)?;
        let _ = tcp.set_nodelay(true);
        let header = |v: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| CkafkaError::Network("a request header is not valid".into()))
        };
        let mut authorization = header(&signed.authorization)?;
        authorization.set_sensitive(true);
        let request = Request::post("/")
            .header(HOST, header(&self.authority)?)
            .header(CONTENT_TYPE, CONTENT_TYPE_VALUE)
            .header(AUTHORIZATION, authorization)
            .header("x-tc-action", ACTION)
            .header("x-tc-version", VERSION)
            .header("x-tc-timestamp", timestamp.to_string())
            .header("x-tc-region", header(&source.region)?)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| CkafkaError::Network(e.to_string()))?;
        match &self.tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| CkafkaError::Network(e.to_string()))?;
                let stream = tls.connect(name, tcp).await.map_err(net)?;
                exchange(stream, request).await
            }
            None => exchange(tcp, request).await,
        }
    }
}

async fn exchange<S>(io: S, request: Request<Full<Bytes>>) -> Result<Vec<u8>, CkafkaError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| CkafkaError::Network(format!("HTTP: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http)?;
    let _driver = AbortOnDrop::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status();
    let mut body = response.into_body();
    let mut answer = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(http)?;
        if let Ok(data) = frame.into_data() {
            answer.extend_from_slice(&data);
            if answer.len() > MAX_ANSWER {
                return Err(CkafkaError::Malformed(format!(
                    "the answer is larger than {MAX_ANSWER} bytes"
                )));
            }
        }
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        return Err(CkafkaError::Http {
            status: status.as_u16(),
            body: text,
        });
    }
    Ok(answer)
}
