//! Consumer-group lag: committed offsets against end offsets, per partition, summed per topic
//! and group. A partition with no committed offset has unknown lag (`null`): it is never
//! counted, neither as lag nor as zero.

use crate::cluster::{Cluster, TopicPartition};
use crate::error::KafkaError;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

/// The lag of every group asked for (the `{"groups":[...]}` document of `watchpost lag --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LagReport {
    pub groups: Vec<GroupLag>,
}

/// One group's lag. When the group could not be read, `error` says why and the rest is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupLag {
    pub group: String,
    pub state: String,
    pub members: usize,
    /// The sum of its topics' known lag; `null` when no partition's lag is known.
    pub lag: Option<i64>,
    pub topics: Vec<TopicLag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One topic's lag within a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicLag {
    pub topic: String,
    /// The sum of its partitions' known lag; `null` when none is known.
    pub lag: Option<i64>,
    pub partitions: Vec<PartitionLag>,
}

/// One partition: the group's committed offset (`null`: none), the end offset (the high
/// watermark) and `max(0, end − committed)` (`null` without a committed offset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub partition: i32,
    pub committed: Option<i64>,
    pub end: i64,
    pub lag: Option<i64>,
}

impl PartitionLag {
    pub fn new(partition: i32, committed: Option<i64>, end: i64) -> PartitionLag {
        PartitionLag {
            partition,
            committed,
            end,
            lag: committed.map(|c| end.saturating_sub(c).max(0)),
        }
    }
}

/// The sum of the known values; `None` when none is known.
fn known_sum(values: impl Iterator<Item = Option<i64>>) -> Option<i64> {
    values
        .flatten()
        .fold(None, |acc, v| Some(acc.unwrap_or(0i64).saturating_add(v)))
}

impl TopicLag {
    /// A topic's entry from its partitions (sorted by partition); `lag` is their known sum.
    pub fn new(topic: String, mut partitions: Vec<PartitionLag>) -> TopicLag {
        partitions.sort_by_key(|p| p.partition);
        TopicLag {
            lag: known_sum(partitions.iter().map(|p| p.lag)),
            topic,
            partitions,
        }
    }

    /// The largest known partition lag.
    pub fn max_partition_lag(&self) -> Option<i64> {
        self.partitions.iter().filter_map(|p| p.lag).max()
    }
}

impl GroupLag {
    /// A group's entry from its topics (sorted by name); `lag` is their known sum.
    pub fn new(
        group: String,
        state: String,
        members: usize,
        mut topics: Vec<TopicLag>,
    ) -> GroupLag {
        topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        GroupLag {
            lag: known_sum(topics.iter().map(|t| t.lag)),
            group,
            state,
            members,
            topics,
            error: None,
        }
    }

    /// A group that could not be read.
    pub fn failed(group: String, error: &KafkaError) -> GroupLag {
        GroupLag {
            group,
            state: String::new(),
            members: 0,
            lag: None,
            topics: Vec::new(),
            error: Some(error.to_string()),
        }
    }

    /// The largest known partition lag over all its topics.
    pub fn max_partition_lag(&self) -> Option<i64> {
        self.topics
            .iter()
            .filter_map(|t| t.max_partition_lag())
            .max()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicLag> {
        self.topics.iter().find(|t| t.topic == name)
    }
}

impl LagReport {
    pub fn group(&self, name: &str) -> Option<&GroupLag> {
        self.groups.iter().find(|g| g.group == name)
    }
}

/// What was read of one group before end offsets.
struct Read {
    state: String,
    members: usize,
    committed: BTreeMap<TopicPartition, i64>,
}

/// The lag of `groups` (none: every group the cluster lists) on `topics` (none: every topic
/// each group has committed offsets for; given: those of them the group commits to, and, for
/// groups asked for by name, all of them, committed or not), all before `deadline`.
///
/// Each partition of a topic in the report is listed: the partitions a group never committed
/// have `committed` and `lag` null. A group with no members is reported from its committed
/// offsets. A group that can't be read (no coordinator, not found, its broker down) carries
/// the error in its entry; the whole report fails only when the cluster itself can't be read
/// (no bootstrap broker answers, listing groups fails, the deadline passes).
pub async fn lag(
    cluster: &Cluster,
    groups: Option<&[String]>,
    topics: Option<&[String]>,
    deadline: Instant,
) -> Result<LagReport, KafkaError> {
    let names: Vec<String> = match groups {
        Some(g) => g.to_vec(),
        None => cluster
            .list_groups(deadline)
            .await?
            .into_iter()
            .map(|g| g.group)
            .collect(),
    };
    let wanted: Option<BTreeSet<&str>> = topics.map(|t| t.iter().map(String::as_str).collect());

    let mut reads = read_groups(cluster, &names, deadline).await?;
    // A group nobody is in and nothing is committed for exists only if the cluster lists it
    // (brokers describe an unknown group as `Dead`, some as `Empty`); the list is read once,
    // and only when such a group was asked for by name.
    let looks_absent = |read: &Result<Read, KafkaError>| matches!(read, Ok(r) if r.members == 0 && r.committed.is_empty());
    if groups.is_some() && reads.iter().any(|(_, r)| looks_absent(r)) {
        let listed: BTreeSet<String> = cluster
            .list_groups(deadline)
            .await?
            .into_iter()
            .map(|g| g.group)
            .collect();
        for (name, read) in &mut reads {
            if looks_absent(read) && !listed.contains(name.as_str()) {
                *read = Err(KafkaError::GroupNotFound {
                    group: name.clone(),
                });
            }
        }
    }

    // The topics each group is reported on, and every partition of those topics.
    let mut report_topics: BTreeSet<String> = BTreeSet::new();
    for (_, read) in &reads {
        if let Ok(r) = read {
            report_topics.extend(
                r.committed
                    .keys()
                    .map(|(t, _)| t.clone())
                    .filter(|t| wanted.as_ref().is_none_or(|w| w.contains(t.as_str()))),
            );
        }
    }
    if let Some(w) = &wanted {
        report_topics.extend(w.iter().map(|t| t.to_string()));
    }
    let topic_list: Vec<String> = report_topics.iter().cloned().collect();
    let metadata = if topic_list.is_empty() {
        Default::default()
    } else {
        cluster.metadata(Some(&topic_list), deadline).await?
    };
    let mut all_partitions: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut topic_errors: BTreeMap<String, String> = BTreeMap::new();
    for topic in &topic_list {
        match metadata.topics.get(topic) {
            Some(Ok(ps)) => all_partitions.extend(ps.keys().map(|p| (topic.clone(), *p))),
            Some(Err(e)) => {
                topic_errors.insert(topic.clone(), e.clone());
            }
            None => {
                topic_errors.insert(topic.clone(), "not in the cluster's metadata".into());
            }
        }
    }
    let ends = cluster.end_offsets(&all_partitions, deadline).await?;

    let mut out = Vec::new();
    for (name, read) in reads {
        let read = match read {
            Ok(r) => r,
            Err(e) => {
                out.push(GroupLag::failed(name, &e));
                continue;
            }
        };
        let mut problems: Vec<String> = Vec::new();
        let mut group_topics: BTreeSet<&str> = read
            .committed
            .keys()
            .map(|(t, _)| t.as_str())
            .filter(|t| wanted.as_ref().is_none_or(|w| w.contains(t)))
            .collect();
        // Groups asked for by name get every topic asked for; groups found by listing only
        // those they commit to (not every group of the cluster with every topic empty).
        if let (Some(w), Some(_)) = (&wanted, groups) {
            group_topics.extend(w.iter().copied());
        }
        let mut entries = Vec::new();
        for topic in group_topics {
            if let Some(e) = topic_errors.get(topic) {
                problems.push(format!("topic {topic}: {e}"));
                continue;
            }
            let mut partitions = Vec::new();
            for (_, p) in
                all_partitions.range((topic.to_string(), i32::MIN)..=(topic.to_string(), i32::MAX))
            {
                let key = (topic.to_string(), *p);
                match ends.offsets.get(&key) {
                    Some(end) => partitions.push(PartitionLag::new(
                        *p,
                        read.committed.get(&key).copied(),
                        *end,
                    )),
                    None => {
                        let why = ends.failed.get(&key).map_or("no answer", String::as_str);
                        problems.push(format!("end offset of {topic}/{p}: {why}"));
                    }
                }
            }
            entries.push(TopicLag::new(topic.to_string(), partitions));
        }
        let mut group = GroupLag::new(name, read.state, read.members, entries);
        if !problems.is_empty() {
            group.error = Some(problems.join("; "));
        }
        out.push(group);
    }
    Ok(LagReport { groups: out })
}

/// State, members and committed offsets of one group, from its coordinator.
/// State, members and committed offsets of each of `names`, in that order: coordinators
/// found in batched FindCoordinator requests, then each coordinator asked for all its groups
/// at once (DescribeGroups, OffsetFetch), the coordinators concurrently. A failure of one
/// coordinator is each of its groups' error; running out of time fails the whole.
async fn read_groups(
    cluster: &Cluster,
    names: &[String],
    deadline: Instant,
) -> Result<Vec<(String, Result<Read, KafkaError>)>, KafkaError> {
    let mut found = cluster.coordinators(names, deadline).await?;
    let mut by_coordinator: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (group, coordinator) in &found {
        if let Ok(c) = coordinator {
            by_coordinator
                .entry(c.clone())
                .or_default()
                .push(group.clone());
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (coordinator, groups) in by_coordinator {
        let cluster = cluster.clone();
        tasks.spawn(async move {
            let read = read_at(&cluster, &coordinator, &groups, deadline).await;
            (groups, read)
        });
    }
    let mut reads: BTreeMap<String, Result<Read, KafkaError>> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (groups, read) = done.map_err(|e| KafkaError::Config(format!("a read failed: {e}")))?;
        match read {
            Ok(read) => reads.extend(read),
            Err(e @ KafkaError::Timeout { .. }) => return Err(e),
            Err(e) => reads.extend(groups.into_iter().map(|g| (g, Err(e.clone())))),
        }
    }
    Ok(crate::cluster::unique(names)
        .into_iter()
        .map(|name| {
            let read = match found.remove(&name) {
                Some(Err(e)) => Err(e),
                _ => reads.remove(&name).unwrap_or_else(|| {
                    Err(KafkaError::GroupNotFound {
                        group: name.clone(),
                    })
                }),
            };
            (name, read)
        })
        .collect())
}

/// [`read_groups`] for the groups one `coordinator` coordinates.
async fn read_at(
    cluster: &Cluster,
    coordinator: &str,
    groups: &[String],
    deadline: Instant,
) -> Result<BTreeMap<String, Result<Read, KafkaError>>, KafkaError> {
    let mut described = cluster
        .describe_groups(groups, coordinator, deadline)
        .await?;
    let mut committed = cluster
        .committed_offsets(groups, coordinator, deadline)
        .await?;
    Ok(groups
        .iter()
        .map(|g| {
            let read = match (described.remove(g), committed.remove(g)) {
                (Some(Ok(d)), Some(Ok(committed))) => Ok(Read {
                    state: d.state,
                    members: d.members,
                    committed,
                }),
                (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
                _ => Err(KafkaError::GroupNotFound { group: g.clone() }),
            };
            (g.clone(), read)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_arithmetic() {
        assert_eq!(PartitionLag::new(0, Some(3), 10).lag, Some(7));
        // The end read before a newer commit: clamped, never negative.
        assert_eq!(PartitionLag::new(0, Some(12), 10).lag, Some(0));
        assert_eq!(PartitionLag::new(0, None, 10).lag, None);
    }

    #[test]
    fn sums_count_only_known_lag() {
        let t = TopicLag::new(
            "t".into(),
            vec![
                PartitionLag::new(2, None, 9),
                PartitionLag::new(0, Some(1), 5),
                PartitionLag::new(1, Some(2), 8),
            ],
        );
        assert_eq!(t.lag, Some(10));
        assert_eq!(t.max_partition_lag(), Some(6));
        assert_eq!(t.partitions[0].partition, 0);
        let unknown = TopicLag::new("u".into(), vec![PartitionLag::new(0, None, 9)]);
        assert_eq!(unknown.lag, None);
        let g = GroupLag::new("g".into(), "Empty".into(), 0, vec![unknown.clone(), t]);
        assert_eq!(g.lag, Some(10));
        assert_eq!(g.max_partition_lag(), Some(6));
        assert_eq!(g.topics[0].topic, "t");
        let none = GroupLag::new("g".into(), "Empty".into(), 0, vec![unknown]);
        assert_eq!(none.lag, None);
    }

    #[test]
    fn json_shape() {
        let report = LagReport {
            groups: vec![GroupLag::new(
                "g".into(),
                "Stable".into(),
                2,
                vec![TopicLag::new(
                    "t".into(),
                    vec![
                        PartitionLag::new(0, Some(1), 4),
                        PartitionLag::new(1, None, 2),
                    ],
                )],
            )],
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"groups":[{"group":"g","state":"Stable","members":2,"lag":3,
                "topics":[{"topic":"t","lag":3,"partitions":[
                    {"partition":0,"committed":1,"end":4,"lag":3},
                    {"partition":1,"committed":null,"end":2,"lag":null}]}]}]})
        );
    }
}
