//! [`Cluster`]: connections kept per broker and reused across calls (a daemon's ticks), the
//! admin requests lag needs, and their errors per broker or group.

use crate::conn::{Api, Conn};
use crate::error::KafkaError;
use crate::settings::Settings;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestGroup};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, GroupId, ListGroupsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::time::{Duration, Instant};

/// `READ_UNCOMMITTED`: ListOffsets answers the high watermark, the offset after the last
/// record replicated to all in-sync replicas, transactional or not. Consumers' committed
/// offsets move up to it (a `read_committed` consumer also commits past aborted and control
/// records), so it is what lag is measured against — as Kafka's own tools do. The last stable
/// offset (`READ_COMMITTED`) would hide an open transaction's records from the lag.
pub const ISOLATION_READ_UNCOMMITTED: i8 = 0;

/// The timestamp asking ListOffsets for the latest offset.
const LATEST: i64 = -1;

type Slot = Arc<tokio::sync::Mutex<Option<Conn>>>;

/// A Kafka cluster and the open connections to its brokers. Cheap to clone (clones share the
/// connections). A connection that failed is dropped and the next call opens a new one.
#[derive(Clone, Debug)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    /// One connection per `host:port`, used by one request at a time.
    conns: Mutex<HashMap<String, Slot>>,
}

/// The brokers and topics a Metadata answer describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Broker id → `host:port`.
    pub brokers: BTreeMap<i32, String>,
    /// Topic → partition → leader's broker id (−1: no leader), or the topic's error.
    pub topics: BTreeMap<String, Result<BTreeMap<i32, i32>, String>>,
}

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group: String,
    /// `consumer` for consumer groups; empty for groups that only commit offsets.
    pub protocol_type: String,
    /// Empty when the broker's ListGroups is older than v4.
    pub state: String,
}

/// A group as DescribeGroups describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Dead`.
    pub state: String,
    pub members: usize,
}

/// A partition of a topic.
pub type TopicPartition = (String, i32);

impl Cluster {
    /// A cluster reached through `settings.bootstrap`. Nothing is connected until a call.
    pub fn new(settings: Settings) -> Cluster {
        Cluster {
            inner: Arc::new(Inner {
                settings,
                conns: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    fn slot(&self, broker: &str) -> Slot {
        let mut conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.entry(broker.to_string()).or_default().clone()
    }

    /// Send `build(version)` to `broker` on its kept connection (opened when missing). A reused
    /// connection that turns out broken (the broker closed it while idle) is replaced once.
    async fn call<R: Api>(
        &self,
        broker: &str,
        build: impl Fn(i16) -> R,
        deadline: Instant,
    ) -> Result<(i16, R::Response), KafkaError> {
        let slot = self.slot(broker);
        // Another request on this connection may hold it: waiting counts against the deadline.
        let mut guard = match tokio::time::timeout_at(deadline, slot.lock()).await {
            Ok(g) => g,
            Err(_) => {
                return Err(KafkaError::Timeout {
                    broker: broker.to_string(),
                    during: format!("waiting for the connection to send {}", R::NAME),
                });
            }
        };
        let mut fresh = false;
        loop {
            if guard.is_none() {
                *guard = Some(Conn::open(broker, &self.inner.settings, deadline).await?);
                fresh = true;
            }
            let conn = guard.as_mut().expect("just opened");
            match conn.send(&build, deadline).await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    if e.breaks_connection() {
                        tracing::debug!(broker, error = %e, "dropping Kafka connection");
                        *guard = None;
                    }
                    if !fresh && matches!(e, KafkaError::Io { .. }) {
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Send `build(version)` to the first bootstrap broker that can be reached (in order).
    async fn call_any<R: Api>(
        &self,
        build: impl Fn(i16) -> R,
        deadline: Instant,
    ) -> Result<(i16, R::Response), KafkaError> {
        let bootstrap = &self.inner.settings.bootstrap;
        let mut last = KafkaError::Config("no bootstrap broker given".into());
        for broker in bootstrap {
            match self.call(broker, &build, deadline).await {
                Ok(answer) => return Ok(answer),
                // The broker itself failed (not the request): try the next one.
                Err(
                    e @ (KafkaError::Unreachable { .. }
                    | KafkaError::Io { .. }
                    | KafkaError::NotKafka { .. }
                    | KafkaError::Tls { .. }),
                ) => {
                    tracing::debug!(broker, error = %e, "bootstrap broker failed");
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Brokers and topics (`topics` none: every topic), from the first bootstrap broker
    /// that answers.
    pub async fn metadata(
        &self,
        topics: Option<&[String]>,
        deadline: Instant,
    ) -> Result<Metadata, KafkaError> {
        let build = |version: i16| {
            let mut request = MetadataRequest::default();
            request.topics = match topics {
                None if version == 0 => Some(Vec::new()),
                None => None,
                Some(names) => Some(
                    names
                        .iter()
                        .map(|n| {
                            MetadataRequestTopic::default()
                                .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                        })
                        .collect(),
                ),
            };
            if version >= 4 {
                request.allow_auto_topic_creation = false;
            }
            request
        };
        let (_, answer) = self.call_any(build, deadline).await?;
        let brokers = answer
            .brokers
            .iter()
            .map(|b| (b.node_id.0, join_host_port(&b.host, b.port)))
            .collect();
        let topics = answer
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.to_string();
                let value = if t.error_code != 0 {
                    Err(crate::error::code_name(t.error_code))
                } else {
                    Ok(t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.leader_id.0))
                        .collect())
                };
                Some((name, value))
            })
            .collect();
        Ok(Metadata { brokers, topics })
    }

    /// Every group of the cluster: ListGroups sent to every broker (each lists the groups it
    /// coordinates), in name order.
    pub async fn list_groups(&self, deadline: Instant) -> Result<Vec<GroupListing>, KafkaError> {
        let metadata = self.metadata(Some(&[]), deadline).await?;
        let mut groups = BTreeMap::new();
        for broker in metadata.brokers.values() {
            let (_, answer) = self
                .call(broker, |_| ListGroupsRequest::default(), deadline)
                .await?;
            if answer.error_code != 0 {
                return Err(KafkaError::broker(
                    broker,
                    "ListGroups",
                    answer.error_code,
                    None,
                ));
            }
            for g in answer.groups {
                let group = g.group_id.0.to_string();
                groups.insert(
                    group.clone(),
                    GroupListing {
                        group,
                        protocol_type: g.protocol_type.to_string(),
                        state: g.group_state.to_string(),
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// The broker coordinating each of `groups`, as `host:port`: one FindCoordinator request
    /// for up to [`BATCH`] groups when the broker speaks v4 or later (batched keys), one per
    /// group before. Groups whose coordinator is still loading (the offsets topic) are asked
    /// again briefly. A group's own error is in its entry; a failure of the call itself (the
    /// cluster unreachable, the deadline) fails the whole.
    pub async fn coordinators(
        &self,
        groups: &[String],
        deadline: Instant,
    ) -> Result<BTreeMap<String, Result<String, KafkaError>>, KafkaError> {
        let mut out = BTreeMap::new();
        let mut pending: Vec<String> = unique(groups);
        let mut round = 0;
        while !pending.is_empty() {
            round += 1;
            let mut retry: Vec<(String, String)> = Vec::new();
            let mut queue = std::mem::take(&mut pending);
            while !queue.is_empty() {
                let build = |version: i16| {
                    let request = FindCoordinatorRequest::default();
                    if version >= 4 {
                        request.with_coordinator_keys(
                            queue
                                .iter()
                                .take(BATCH)
                                .map(|g| StrBytes::from_string(g.clone()))
                                .collect(),
                        )
                    } else {
                        request.with_key(StrBytes::from_string(queue[0].clone()))
                    }
                };
                let (version, answer) = self.call_any(build, deadline).await?;
                let asked: Vec<String> = if version >= 4 {
                    queue.drain(..queue.len().min(BATCH)).collect()
                } else {
                    queue.drain(..1).collect()
                };
                // (code, message, host, port) per group answered.
                let mut answers: HashMap<String, (i16, Option<String>, String, i32)> =
                    HashMap::new();
                if version >= 4 {
                    for c in answer.coordinators {
                        let message = c.error_message.as_ref().map(|m| m.to_string());
                        answers.insert(
                            c.key.to_string(),
                            (c.error_code, message, c.host.to_string(), c.port),
                        );
                    }
                } else {
                    let message = answer.error_message.as_ref().map(|m| m.to_string());
                    answers.insert(
                        asked[0].clone(),
                        (
                            answer.error_code,
                            message,
                            answer.host.to_string(),
                            answer.port,
                        ),
                    );
                }
                for group in asked {
                    let Some((code, message, host, port)) = answers.remove(&group) else {
                        let reason = "FindCoordinator answered no coordinator".to_string();
                        out.insert(
                            group.clone(),
                            Err(KafkaError::CoordinatorNotAvailable { group, reason }),
                        );
                        continue;
                    };
                    let mut reason = crate::error::code_name(code);
                    if let Some(m) = message.filter(|m| !m.is_empty()) {
                        reason = format!("{reason}: {m}");
                    }
                    match code {
                        0 => {
                            out.insert(group, Ok(join_host_port(&host, port)));
                        }
                        // COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS
                        14 | 15 => retry.push((group, reason)),
                        _ => {
                            out.insert(
                                group.clone(),
                                Err(KafkaError::CoordinatorNotAvailable { group, reason }),
                            );
                        }
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            if round >= 5 || Instant::now() + RETRY_PAUSE >= deadline {
                for (group, reason) in retry {
                    out.insert(
                        group.clone(),
                        Err(KafkaError::CoordinatorNotAvailable { group, reason }),
                    );
                }
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
            pending = retry.into_iter().map(|(g, _)| g).collect();
        }
        Ok(out)
    }

    /// State and member count of each of `groups`, asked of their `coordinator`: one
    /// DescribeGroups request per [`BATCH`] groups. A group's own error is in its entry.
    pub async fn describe_groups(
        &self,
        groups: &[String],
        coordinator: &str,
        deadline: Instant,
    ) -> Result<BTreeMap<String, Result<GroupDescription, KafkaError>>, KafkaError> {
        let mut out = BTreeMap::new();
        for chunk in unique(groups).chunks(BATCH) {
            let build = |_| {
                DescribeGroupsRequest::default().with_groups(
                    chunk
                        .iter()
                        .map(|g| GroupId(StrBytes::from_string(g.clone())))
                        .collect(),
                )
            };
            let (_, answer) = self.call(coordinator, build, deadline).await?;
            let mut answers: HashMap<String, _> = answer
                .groups
                .into_iter()
                .map(|g| (g.group_id.0.to_string(), g))
                .collect();
            for group in chunk {
                let described =
                    match answers.remove(group) {
                        None => Err(KafkaError::GroupNotFound {
                            group: group.clone(),
                        }),
                        Some(g) => group_error(coordinator, group, "DescribeGroups", g.error_code)
                            .map(|()| GroupDescription {
                                group: group.clone(),
                                state: g.group_state.to_string(),
                                members: g.members.len(),
                            }),
                    };
                out.insert(group.clone(), described);
            }
        }
        Ok(out)
    }

    /// Every offset each of `groups` has committed (OffsetFetch with topics = null), from
    /// their `coordinator`: one request per [`BATCH`] groups when the broker speaks v8 or
    /// later (several groups per request), one per group before. A group's own error is in
    /// its entry.
    pub async fn committed_offsets(
        &self,
        groups: &[String],
        coordinator: &str,
        deadline: Instant,
    ) -> Result<BTreeMap<String, Result<BTreeMap<TopicPartition, i64>, KafkaError>>, KafkaError>
    {
        let mut out = BTreeMap::new();
        let mut queue = unique(groups);
        while !queue.is_empty() {
            let build = |version: i16| {
                let request = OffsetFetchRequest::default();
                let id = |g: &String| GroupId(StrBytes::from_string(g.clone()));
                if version >= 8 {
                    request.with_groups(
                        queue
                            .iter()
                            .take(BATCH)
                            .map(|g| {
                                OffsetFetchRequestGroup::default()
                                    .with_group_id(id(g))
                                    .with_topics(None)
                            })
                            .collect(),
                    )
                } else {
                    request.with_group_id(id(&queue[0])).with_topics(None)
                }
            };
            let (version, answer) = self.call(coordinator, build, deadline).await?;
            let asked: Vec<String> = if version >= 8 {
                queue.drain(..queue.len().min(BATCH)).collect()
            } else {
                queue.drain(..1).collect()
            };
            // −1: nothing committed for this partition.
            let offsets = |topics: Vec<FetchedTopic>| {
                let mut offsets = BTreeMap::new();
                for (topic, partitions) in topics {
                    for (partition, offset, code) in partitions {
                        if code == 0 && offset >= 0 {
                            offsets.insert((topic.clone(), partition), offset);
                        }
                    }
                }
                offsets
            };
            if version >= 8 {
                let mut answers: HashMap<String, _> = answer
                    .groups
                    .into_iter()
                    .map(|g| (g.group_id.0.to_string(), g))
                    .collect();
                for group in asked {
                    // A group left out of the answer has committed nothing.
                    let read = match answers.remove(&group) {
                        None => Ok(BTreeMap::new()),
                        Some(g) => group_error(coordinator, &group, "OffsetFetch", g.error_code)
                            .map(|()| {
                                offsets(
                                    g.topics
                                        .into_iter()
                                        .map(|t| {
                                            let ps = t.partitions.into_iter().map(|p| {
                                                (
                                                    p.partition_index,
                                                    p.committed_offset,
                                                    p.error_code,
                                                )
                                            });
                                            (t.name.0.to_string(), ps.collect())
                                        })
                                        .collect(),
                                )
                            }),
                    };
                    out.insert(group, read);
                }
            } else {
                let group = asked.into_iter().next().expect("one group asked");
                let read =
                    group_error(coordinator, &group, "OffsetFetch", answer.error_code).map(|()| {
                        offsets(
                            answer
                                .topics
                                .into_iter()
                                .map(|t| {
                                    let ps = t.partitions.into_iter().map(|p| {
                                        (p.partition_index, p.committed_offset, p.error_code)
                                    });
                                    (t.name.0.to_string(), ps.collect())
                                })
                                .collect(),
                        )
                    });
                out.insert(group, read);
            }
        }
        Ok(out)
    }

    /// The latest offset (high watermark, [`ISOLATION_READ_UNCOMMITTED`]) of each partition,
    /// asked of each partition's leader. A partition whose leader is unknown or answers an
    /// error is in the second map with the reason.
    pub async fn end_offsets(
        &self,
        partitions: &BTreeSet<TopicPartition>,
        deadline: Instant,
    ) -> Result<EndOffsets, KafkaError> {
        let mut result = EndOffsets::default();
        if partitions.is_empty() {
            return Ok(result);
        }
        let topics: Vec<String> = partitions
            .iter()
            .map(|(t, _)| t.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let metadata = self.metadata(Some(&topics), deadline).await?;
        let mut by_leader: BTreeMap<String, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, partition) in partitions {
            let leader = match metadata.topics.get(topic) {
                None => Err("topic not in metadata".to_string()),
                Some(Err(e)) => Err(format!("topic error {e}")),
                Some(Ok(ps)) => match ps.get(partition) {
                    None => Err("partition not in metadata".to_string()),
                    Some(id) => metadata
                        .brokers
                        .get(id)
                        .cloned()
                        .ok_or_else(|| format!("no leader (broker {id})")),
                },
            };
            match leader {
                Ok(broker) => by_leader
                    .entry(broker)
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push(*partition),
                Err(e) => {
                    result.failed.insert((topic.clone(), *partition), e);
                }
            }
        }
        for (broker, topics) in by_leader {
            let build = |version: i16| {
                let mut request = ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(
                        topics
                            .iter()
                            .map(|(t, ps)| {
                                ListOffsetsTopic::default()
                                    .with_name(TopicName(StrBytes::from_string(t.clone())))
                                    .with_partitions(
                                        ps.iter()
                                            .map(|p| {
                                                ListOffsetsPartition::default()
                                                    .with_partition_index(*p)
                                                    .with_timestamp(LATEST)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    );
                if version >= 2 {
                    request.isolation_level = ISOLATION_READ_UNCOMMITTED;
                }
                if version >= 10 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    request.timeout_ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                }
                request
            };
            match self.call(&broker, build, deadline).await {
                Ok((_, answer)) => {
                    for t in answer.topics {
                        for p in t.partitions {
                            let key = (t.name.0.to_string(), p.partition_index);
                            if p.error_code == 0 {
                                result.offsets.insert(key, p.offset);
                            } else {
                                result
                                    .failed
                                    .insert(key, crate::error::code_name(p.error_code));
                            }
                        }
                    }
                }
                Err(e) => {
                    for (t, ps) in topics {
                        for p in ps {
                            result.failed.insert((t.clone(), p), e.to_string());
                        }
                    }
                }
            }
        }
        Ok(result)
    }
}

/// End offsets found, and the partitions whose end offset could not be read (with why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndOffsets {
    pub offsets: BTreeMap<TopicPartition, i64>,
    pub failed: BTreeMap<TopicPartition, String>,
}

const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// One topic of an OffsetFetch answer: its name and `(partition, committed offset, error
/// code)` per partition.
type FetchedTopic = (String, Vec<(i32, i64, i16)>);

/// Groups per batched request (FindCoordinator v4+, DescribeGroups, OffsetFetch v8+).
pub const BATCH: usize = 200;

/// `groups` in order, each once.
pub(crate) fn unique(groups: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    groups
        .iter()
        .filter(|g| seen.insert(g.as_str()))
        .cloned()
        .collect()
}

/// A group-level error code as the error it means.
fn group_error(broker: &str, group: &str, api: &'static str, code: i16) -> Result<(), KafkaError> {
    match code {
        0 => Ok(()),
        69 => Err(KafkaError::GroupNotFound {
            group: group.to_string(),
        }),
        14..=16 => Err(KafkaError::CoordinatorNotAvailable {
            group: group.to_string(),
            reason: crate::error::code_name(code),
        }),
        _ => Err(KafkaError::broker(broker, api, code, None)),
    }
}

/// `host:port`, with brackets around an IPv6 literal.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
