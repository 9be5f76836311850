#!/usr/bin/env bash
# `watchpost once` at scale, as a serverless function or a cron job runs it: N HTTP monitors
# against a loopback nginx under the common `ulimit -n 1024`, two runs in a row (the first
# creates the store, the second is steady state). Reports wall time, peak RSS and failures,
# side by side with prometheus-blackbox-exporter's peak RSS and wall time for the same N probes
# at the same concurrency, also under `ulimit -n 1024`. Only 127.0.0.1 is used. See
# BENCHMARKS.md.
#
#   bench/once.sh                   # N=3000, CONCURRENCY=64 (watchpost's default)
#   N=5000 bench/once.sh
#   WATCHPOST=/path/to/another/watchpost LABEL=before bench/once.sh   # compare another build
#
# Raw output: bench/results/once-*.txt and bench/results/once.csv
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${N:-3000}
CONCURRENCY=${CONCURRENCY:-64}
FD_LIMIT=${FD_LIMIT:-1024}
BLACKBOX=${BLACKBOX:-/usr/bin/prometheus-blackbox-exporter}

for tool in nginx curl xargs "$BLACKBOX" python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { log "missing: $tool (apt-get install nginx-light curl prometheus-blackbox-exporter time)"; exit 1; }
done

LABEL=${LABEL:-watchpost}
if [ -z "${WATCHPOST:-}" ]; then
    log "building watchpost (release)"
    (cd "$ROOT" && cargo build --release -q -p watchpost)
    WATCHPOST="$ROOT/target/release/watchpost"
fi

WORK=$(mktemp -d /tmp/wpbench-once.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- nginx: a small static file on loopback --------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/www" "$WORK/tmp"
chmod 755 "$WORK/www"
printf 'watchpost benchmark: a small static file\n' >"$WORK/www/small.txt"
chmod 644 "$WORK/www/small.txt"
nginx_conf "$WORK" "$NGINX_PORT" >"$WORK/nginx.conf"
nginx -e "$WORK/nginx-error.log" -p "$WORK" -c "$WORK/nginx.conf" &
PIDS+=($!)
wait_tcp "$NGINX_PORT"
log "nginx on 127.0.0.1:$NGINX_PORT"

# --- the config: N monitors, each its own URL ------------------------------------------------
CONFIG="$WORK/watchpost.yaml"
{
    echo "storage: sqlite://$WORK/state.db"
    echo "concurrency: $CONCURRENCY"
    echo "channels:"
    echo "  hook: {type: webhook, url: \"http://127.0.0.1:$NGINX_PORT/alerts\"}"
    echo "monitors:"
    for i in $(seq 1 "$N"); do
        echo "  - {name: m$i, type: http, url: \"http://127.0.0.1:$NGINX_PORT/small.txt?m=$i\", alert: {channels: [hook], failure_threshold: 1}}"
    done
} >"$CONFIG"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$RESULTS/once-$STAMP.txt"
CSV="$RESULTS/once.csv"
[ -f "$CSV" ] || echo "date,tool,run,monitors,concurrency,fd_limit,wall_s,peak_rss_kib,failures" >"$CSV"
{ echo "# once run $STAMP"; machine_info; echo "monitors=$N concurrency=$CONCURRENCY fd_limit=$FD_LIMIT"; } >"$RAW"

# --- watchpost once, twice --------------------------------------------------------------------
for run in 1 2; do
    /usr/bin/time -f "wall_s=%e peak_rss_kib=%M" -o "$WORK/time.txt" \
        bash -c "ulimit -n $FD_LIMIT && exec \"$WATCHPOST\" once --json -c \"$CONFIG\"" \
        >"$WORK/out.json" 2>"$WORK/err.txt" || true
    failures=$(python3 -c '
import json, sys
try:
    rows = json.load(open(sys.argv[1]))
except ValueError:
    rows = []
# A run that printed nothing (it failed as a whole) counts every monitor as failed.
print(sum(1 for r in rows if not r["ok"]) if rows else int(sys.argv[2]))' "$WORK/out.json" "$N")
    wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' "$WORK/time.txt")
    rss=$(sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p' "$WORK/time.txt")
    log "$LABEL once run $run: ${wall}s, peak RSS ${rss} KiB, $failures failure(s) of $N"
    emfile=$(grep -c "Too many open files" "$WORK/err.txt" || true)
    echo "$LABEL run=$run wall_s=$wall peak_rss_kib=$rss failures=$failures emfile_lines=$emfile" >>"$RAW"
    echo "$STAMP,$LABEL,$run,$N,$CONCURRENCY,$FD_LIMIT,$wall,$rss,$failures" >>"$CSV"
done

# --- blackbox_exporter: the same N probes at the same concurrency -------------------------------
BB_PORT=$(free_port)
cat >"$WORK/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
EOF
bash -c "ulimit -n $FD_LIMIT && exec \"$BLACKBOX\" --config.file=\"$WORK/blackbox.yml\" --web.listen-address=127.0.0.1:$BB_PORT --log.level=warn" \
    >>"$WORK/blackbox.log" 2>&1 &
BB_PID=$!
PIDS+=("$BB_PID")
wait_tcp "$BB_PORT"
start=$(date +%s.%N)
seq 1 "$N" | xargs -P "$CONCURRENCY" -I{} \
    curl -s "http://127.0.0.1:$BB_PORT/probe?module=http_2xx&target=http://127.0.0.1:$NGINX_PORT/small.txt%3Fm%3D{}" \
    | grep -c '^probe_success 1' >"$WORK/bb_ok.txt" || true
end=$(date +%s.%N)
bb_ok=$(cat "$WORK/bb_ok.txt")
bb_wall=$(python3 -c "print(round($end - $start, 2))")
bb_rss=$(proc_hwm_kib "$BB_PID")
bb_failures=$((N - bb_ok))
log "blackbox_exporter: ${bb_wall}s for $N probes, peak RSS ${bb_rss} KiB, $bb_failures failure(s)"
echo "blackbox_exporter wall_s=$bb_wall peak_rss_kib=$bb_rss failures=$bb_failures" >>"$RAW"
echo "$STAMP,blackbox_exporter,1,$N,$CONCURRENCY,$FD_LIMIT,$bb_wall,$bb_rss,$bb_failures" >>"$CSV"
log "raw output: $RAW"
