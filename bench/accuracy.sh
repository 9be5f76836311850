#!/usr/bin/env bash
# Timing accuracy: each phase of a watchpost check against `curl -w` on the same local
# servers (crates/testkit's watchpost-testserver) with injected delays: DNS, TLS handshake,
# server wait, download trickle.
#
# Everything runs inside a network namespace this script creates (only `lo`, 127.0.0.1), whose
# /etc/resolv.conf (bind-mounted by `ip netns exec` from /etc/netns/NAME/resolv.conf) points at
# the delaying DNS server, so curl (glibc resolver) and watchpost both use it.
#
#   bench/accuracy.sh                    # REPS=30 repetitions per scenario
#   REPS=20 WATCHPOST=example bench/accuracy.sh
#
# WATCHPOST=auto (default) uses `target/release/watchpost check --json` if the CLI builds and
# has `check` with --cacert and --resolve, else the probe-library example
# crates/probes/examples/timings.rs (same JSON, same library). WATCHPOST=cli|example forces one.
#
# Raw output: bench/results/accuracy-*.csv (every repetition) and accuracy-*-summary.txt
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-30}   # the server-side delays are bimodal to ~1-3 ms under load: medians need more than 10
WATCHPOST=${WATCHPOST:-auto}
DNS_DELAY_MS=${DNS_DELAY_MS:-50}
TLS_DELAY_MS=${TLS_DELAY_MS:-100}
WAIT_MS=${WAIT_MS:-200}
DOWNLOAD_MS=${DOWNLOAD_MS:-300}
DOWNLOAD_SIZE=${DOWNLOAD_SIZE:-100000}

[ "$(id -u)" = 0 ] || { log "needs root (ip netns)"; exit 1; }
for tool in ip curl python3; do
    command -v "$tool" >/dev/null || { log "missing: $tool"; exit 1; }
done

log "building the test servers and the timings example (release)"
(cd "$ROOT" && cargo build --release -q -p watchpost-testkit --bin watchpost-testserver \
    && cargo build --release -q -p watchpost-probes --example timings)
SERVER="$ROOT/target/release/watchpost-testserver"
EXAMPLE="$ROOT/target/release/examples/timings"
CLI="$ROOT/target/release/watchpost"

use_cli=no
if [ "$WATCHPOST" = cli ] || [ "$WATCHPOST" = auto ]; then
    if (cd "$ROOT" && cargo build --release -q -p watchpost 2>/dev/null) \
        && help=$("$CLI" check --help 2>&1) \
        && grep -q -- --cacert <<<"$help" && grep -q -- --resolve <<<"$help" && grep -q -- --json <<<"$help"; then
        use_cli=yes
    elif [ "$WATCHPOST" = cli ]; then
        log "WATCHPOST=cli but target/release/watchpost has no usable 'check --json --cacert --resolve'"
        exit 1
    fi
fi
if [ $use_cli = yes ]; then
    WP=("$CLI" check --json)
    WP_NAME="watchpost check --json (CLI)"
else
    WP=("$EXAMPLE")
    WP_NAME="crates/probes/examples/timings.rs"
fi
log "watchpost side: $WP_NAME"

NS="wpbench$$"
WORK=$(mktemp -d /tmp/wpbench-acc.XXXXXX)
PIDS=()
stop_servers() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
cleanup() {
    stop_servers
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "/etc/netns/$NS" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "network namespace $NS (lo only; resolv.conf -> 127.0.0.1)"
ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p "/etc/netns/$NS"
echo "nameserver 127.0.0.1" >"/etc/netns/$NS/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$NS/hosts"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip -o link show | awk '{print $2}' | tr -d ':' | grep -qvx lo && { log "namespace has more than lo"; exit 1; }

HTTP_PORT=8080
TLS_PORT=8443
# Wait until a server in the namespace prints its "listening on" line.
started() {
    local file=$1 i
    for i in $(seq 100); do
        grep -q '^listening on' "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    log "server did not start: $(cat "$file")"
    return 1
}
# start_servers DNS_DELAY TLS_DELAY
start_servers() {
    stop_servers
    # Started with `ip netns exec` directly (not through a shell function), so $! is the
    # server itself (ip netns exec execs it) and kill reaches it.
    ip netns exec "$NS" "$SERVER" dns --listen 127.0.0.1:53 --record bench.test=127.0.0.1 --delay-ms "$1" >"$WORK/dns.out" 2>&1 &
    PIDS+=($!)
    ip netns exec "$NS" "$SERVER" http --listen "127.0.0.1:$HTTP_PORT" >"$WORK/http.out" 2>&1 &
    PIDS+=($!)
    ip netns exec "$NS" "$SERVER" http --listen "127.0.0.1:$TLS_PORT" --tls-dir "$WORK/tls" \
        --name bench.test --name localhost --tls-delay-ms "$2" >"$WORK/https.out" 2>&1 &
    PIDS+=($!)
    started "$WORK/dns.out"; started "$WORK/http.out"; started "$WORK/https.out"
}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$RESULTS/accuracy-$STAMP.csv"
SUMMARY="$RESULTS/accuracy-$STAMP-summary.txt"
{ echo "# accuracy run $STAMP"; machine_info; echo "watchpost_side=$WP_NAME"; echo "reps=$REPS"; } >"$SUMMARY"
echo "scenario,injected,rep,tool,dns,connect,tls,wait,download,total,status" >"$RAW"

CURL_FMT='%{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total} %{http_code}'

# measure SCENARIO INJECTED URL [extra flags for both tools...]
measure() {
    local scenario=$1 injected=$2 url=$3
    shift 3
    local rep out
    log "scenario $scenario ($injected): $url x $REPS"
    for rep in $(seq "$REPS"); do
        # curl: phases from its cumulative marks (seconds -> ms)
        out=$(in_ns curl -sS -o /dev/null --max-time 10 -w "$CURL_FMT" "$@" "$url")
        python3 - "$scenario" "$injected" "$rep" "$out" >>"$RAW" <<'EOF'
import sys
scenario, injected, rep, out = sys.argv[1:5]
nl, c, ac, st, tot, code = out.split()
nl, c, ac, st, tot = (float(x) * 1000 for x in (nl, c, ac, st, tot))
tls = ac - c if ac > 0 else None
wait = st - max(ac, c)
f = lambda v: "" if v is None else f"{v:.3f}"
print(",".join([scenario, injected, rep, "curl", f(nl), f(c - nl), f(tls), f(wait), f(tot - st), f(tot), code]))
EOF
        # watchpost
        out=$(in_ns "${WP[@]}" "$@" "$url" || true)
        python3 - "$scenario" "$injected" "$rep" "$out" >>"$RAW" <<'EOF'
import json, sys
scenario, injected, rep, out = sys.argv[1:5]
r = json.loads(out)
if r.get("error"):
    sys.exit(f"watchpost check failed: {r['error']}")
t = r["timings_ms"]
f = lambda v: "" if v is None else f"{v:.3f}"
print(",".join([scenario, injected, rep, "watchpost", f(t["dns"]), f(t["connect"]), f(t["tls"]),
                f(t["wait"]), f(t["download"]), f(t["total"]), str(r["status"])]))
EOF
    done
}

start_servers 0 0
CA=(--cacert "$WORK/tls/ca.pem")
RES_TLS=(--resolve "localhost:$TLS_PORT:127.0.0.1")
measure baseline-http "none" "http://127.0.0.1:$HTTP_PORT/"
measure baseline-https "none" "https://localhost:$TLS_PORT/" "${CA[@]}" "${RES_TLS[@]}"
measure wait "wait=${WAIT_MS}ms" "http://127.0.0.1:$HTTP_PORT/?wait=$WAIT_MS"
measure download "download=${DOWNLOAD_MS}ms/${DOWNLOAD_SIZE}B" \
    "http://127.0.0.1:$HTTP_PORT/?download=$DOWNLOAD_MS&size=$DOWNLOAD_SIZE"

start_servers "$DNS_DELAY_MS" "$TLS_DELAY_MS"
CA=(--cacert "$WORK/tls/ca.pem")
measure dns "dns=${DNS_DELAY_MS}ms" "http://bench.test:$HTTP_PORT/"
measure tls "tls=${TLS_DELAY_MS}ms" "https://localhost:$TLS_PORT/" "${CA[@]}" "${RES_TLS[@]}"
measure all "dns=${DNS_DELAY_MS} tls=${TLS_DELAY_MS} wait=${WAIT_MS} download=${DOWNLOAD_MS}ms" \
    "https://bench.test:$TLS_PORT/?wait=$WAIT_MS&download=$DOWNLOAD_MS&size=$DOWNLOAD_SIZE" "${CA[@]}"
stop_servers

log "summary"
python3 "$ROOT/bench/accuracy_summary.py" "$RAW" | tee -a "$SUMMARY"
log "raw results: $RAW, $SUMMARY"
