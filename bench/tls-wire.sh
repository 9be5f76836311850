#!/usr/bin/env bash
# Diagnostic for the accuracy benchmark: the `tls` phase against the wire. In a network
# namespace of its own (lo only), curl and watchpost take turns probing the TLS test server
# while tcpdump records lo. Per connection, from the packets:
#   wire tls       = client's TCP handshake ACK -> client's Finished (first client data after the
#                    server's first flight): what both tools call the TLS phase
#   ack->hello     = client-side set-up before the ClientHello (inside the tls phase)
#   hello->reply   = ClientHello -> server's first flight (the server's delay + its work)
# and each tool's own tls value minus the wire's. Scenarios: TLS delay 0 and 100 ms via
# --resolve, and the accuracy script's "all" URL (DNS 50 ms, TLS 100, wait 200, download 300).
#
#   bench/tls-wire.sh            # REPS=10 per scenario
#
# Raw output: bench/results/tls-wire-*.txt
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-10}
[ "$(id -u)" = 0 ] || { log "needs root (ip netns)"; exit 1; }
command -v tcpdump >/dev/null || { log "missing tcpdump (apt-get install tcpdump)"; exit 1; }

log "building (release)"
(cd "$ROOT" && cargo build --release -q -p watchpost-testkit --bin watchpost-testserver \
    && cargo build --release -q -p watchpost-probes --example timings)
SERVER="$ROOT/target/release/watchpost-testserver"
EXAMPLE="$ROOT/target/release/examples/timings"

NS="wpbenchw$$"
WORK=$(mktemp -d /tmp/wpbench-wire.XXXXXX)
SRV=()
cleanup() {
    local pid
    for pid in "${SRV[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SRV[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "/etc/netns/$NS" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p "/etc/netns/$NS"
echo "nameserver 127.0.0.1" >"/etc/netns/$NS/resolv.conf"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$RESULTS/tls-wire-$STAMP.txt"
{ echo "# tls wire check $STAMP"; machine_info; echo "reps=$REPS"; } >"$OUT"

# run_scenario NAME TLS_DELAY URL [flags for both tools...]
run_scenario() {
    local name=$1 delay=$2 url=$3 rep out port c ac
    shift 3
    local pid
    for pid in "${SRV[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    SRV=()
    rm -f "$WORK"/*.out
    ip netns exec "$NS" "$SERVER" dns --listen 127.0.0.1:53 --record bench.test=127.0.0.1 --delay-ms 50 >"$WORK/dns.out" 2>&1 &
    SRV+=($!)
    ip netns exec "$NS" "$SERVER" http --listen 127.0.0.1:8443 --tls-dir "$WORK/tls" --name localhost \
        --name bench.test --tls-delay-ms "$delay" >"$WORK/https.out" 2>&1 &
    SRV+=($!)
    for _ in $(seq 100); do grep -q '^listening on' "$WORK/https.out" 2>/dev/null && grep -q '^listening on' "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done
    ip netns exec "$NS" tcpdump -i lo -n -tt -l -U 'tcp port 8443' >"$WORK/pcap.txt" 2>"$WORK/tcpdump.err" &
    SRV+=($!)
    sleep 1
    log "scenario $name: $url x $REPS"
    : >"$WORK/tools.txt"
    for rep in $(seq "$REPS"); do
        out=$(ip netns exec "$NS" curl -sS -o /dev/null -w '%{local_port} %{time_connect} %{time_appconnect}' \
            --cacert "$WORK/tls/ca.pem" "$@" "$url")
        read -r port c ac <<<"$out"
        echo "curl $port $(python3 -c "print(f'{($ac-$c)*1000:.3f}')")" >>"$WORK/tools.txt"
        # The JSON report has no local port: the watchpost connection is the next one seen.
        out=$(ip netns exec "$NS" "$EXAMPLE" --cacert "$WORK/tls/ca.pem" "$@" "$url")
        echo "watchpost - $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["timings_ms"]["tls"])' "$out")" >>"$WORK/tools.txt"
    done
    sleep 1
    kill "${SRV[2]}" 2>/dev/null || true
    wait "${SRV[2]}" 2>/dev/null || true
    echo "## $name ($url)" >>"$OUT"
    python3 - "$WORK/pcap.txt" "$WORK/tools.txt" <<'EOF2' | tee -a "$OUT"
import re, statistics, sys
pkt = re.compile(r"^(\d+\.\d+) IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): Flags \[([^\]]*)\].*length (\d+)")
conns, order = {}, []
for line in open(sys.argv[1]):
    m = pkt.match(line)
    if not m:
        continue
    t, sport, dport, flags, length = float(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    client = sport if dport == 8443 else dport
    c = conns.setdefault(client, {})
    if client not in order:
        order.append(client)
    if dport == 8443:
        if flags == "." and length == 0 and "ack" not in c:
            c["ack"] = t                    # third packet of the TCP handshake
        elif length > 0 and "hello" not in c:
            c["hello"] = t                  # ClientHello
        elif length > 0 and "reply" in c and "fin" not in c:
            c["fin"] = t                    # client's Finished (after the server's flight)
    elif length > 0 and "reply" not in c:
        c["reply"] = t                      # ServerHello ... flight
tools = [l.split() for l in open(sys.argv[2])]
if len(order) != len(tools):
    sys.exit(f"{len(order)} connections captured, {len(tools)} checks run")
rows = {"curl": [], "watchpost": []}
for client, (tool, port, tls) in zip(order, tools):
    if tool == "curl" and int(port) != client:
        sys.exit(f"connection order mismatch: curl port {port} vs capture {client}")
    c = conns[client]
    wire = (c["fin"] - c["ack"]) * 1e3
    rows[tool].append(((c["hello"] - c["ack"]) * 1e3, (c["reply"] - c["hello"]) * 1e3, wire,
                       float(tls), float(tls) - wire))
print("tool       ack->hello  hello->reply  wire tls  tool's tls  tool-wire   (medians, ms)")
for tool, r in rows.items():
    med = [statistics.median(x[i] for x in r) for i in range(5)]
    print(f"{tool:10} {med[0]:10.3f} {med[1]:13.3f} {med[2]:9.3f} {med[3]:11.3f} {med[4]:+10.3f}   n={len(r)}")
EOF2
}

RES=(--resolve localhost:8443:127.0.0.1)
run_scenario tls0 0 https://localhost:8443/ "${RES[@]}"
run_scenario tls100 100 https://localhost:8443/ "${RES[@]}"
run_scenario all 100 "https://bench.test:8443/?wait=200&download=300&size=100000"
log "raw: $OUT"
