"""Ground truth for watchpost's Kafka tests, with the confluent-kafka client (librdkafka).

    kafka_fixture.py BOOTSTRAP SPEC_JSON
    kafka_fixture.py BOOTSTRAP --member GROUP TOPIC...

SPEC_JSON:
    {"topics":  {"TOPIC": [RECORDS_IN_PARTITION_0, RECORDS_IN_PARTITION_1, ...], ...},
     "commits": {"GROUP": {"TOPIC": {"PARTITION": OFFSET, ...}, ...}, ...},
     "truth":   ["GROUP", ...],
     "client":  {LIBRDKAFKA_SETTING: VALUE, ...}}

Creates each topic with one partition per count (when it doesn't exist yet), produces that many
records to each partition -- one record per produce request, flushed each time, since the test
broker's memory engine miscounts multi-record batches -- commits the offsets for each group
(without joining it, so the groups have no members), and prints, as one JSON line, the lag
confluent-kafka computes for every partition of every topic of the spec for each group in
"truth" (default: the groups of "commits"):

    {"GROUP": {"TOPIC": {"PARTITION": {"committed": N or null, "end": N, "lag": N or null}}}}

With --member it joins GROUP as a consumer of the TOPICs, prints `joined` once it has been
assigned partitions, and stays a member, polling without committing, until it is killed.
"""

import json
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT = 20
# librdkafka settings added to every client (TLS to reach a broker through a TLS proxy...).
EXTRA = {}


def create(bootstrap, topics):
    admin = AdminClient({"bootstrap.servers": bootstrap, **EXTRA})
    existing = admin.list_topics(timeout=TIMEOUT).topics
    new = [NewTopic(t, num_partitions=len(c), replication_factor=1)
           for t, c in topics.items() if t not in existing]
    if new:
        for topic, future in admin.create_topics(new, operation_timeout=TIMEOUT).items():
            future.result()


def produce(bootstrap, topics):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0,
                         "batch.num.messages": 1, "enable.idempotence": False, **EXTRA})
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    for topic, counts in topics.items():
        for partition, count in enumerate(counts):
            for i in range(count):
                producer.produce(topic, value=f"{topic}-{partition}-{i}".encode(),
                                 partition=partition, on_delivery=delivered)
                if producer.flush(TIMEOUT) != 0:
                    raise SystemExit(f"produce to {topic}/{partition} did not finish")
    if errors:
        raise SystemExit(f"produce failed: {errors}")


def consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest", **EXTRA})


def commit(bootstrap, commits):
    for group, topics in commits.items():
        c = consumer(bootstrap, group)
        offsets = [TopicPartition(t, int(p), o)
                   for t, parts in topics.items() for p, o in parts.items()]
        c.commit(offsets=offsets, asynchronous=False)
        c.close()


def truth(bootstrap, topics, groups):
    out = {}
    for group in groups:
        c = consumer(bootstrap, group)
        tps = [TopicPartition(t, p) for t, counts in topics.items() for p in range(len(counts))]
        committed = c.committed(tps, timeout=TIMEOUT)
        entry = {}
        for tp in committed:
            if tp.error is not None:
                raise KafkaException(tp.error)
            _low, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                 timeout=TIMEOUT)
            offset = tp.offset if tp.offset >= 0 else None
            entry.setdefault(tp.topic, {})[str(tp.partition)] = {
                "committed": offset,
                "end": high,
                "lag": None if offset is None else max(0, high - offset),
            }
        c.close()
        out[group] = entry
    return out


def member(bootstrap, group, topics):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False, "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 500, **EXTRA})
    c.subscribe(topics)
    announced = False
    while True:
        c.poll(0.2)
        if not announced and c.assignment():
            print("joined", flush=True)
            announced = True


def main():
    if sys.argv[2] == "--member":
        member(sys.argv[1], sys.argv[3], sys.argv[4:])
        return
    bootstrap, spec = sys.argv[1], json.loads(sys.argv[2])
    EXTRA.update(spec.get("client", {}))
    topics = spec.get("topics", {})
    commits = spec.get("commits", {})
    if topics:
        create(bootstrap, topics)
        produce(bootstrap, topics)
    commit(bootstrap, commits)
    print(json.dumps(truth(bootstrap, topics, spec.get("truth", list(commits)))), flush=True)


if __name__ == "__main__":
    main()
