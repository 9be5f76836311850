#!/usr/bin/env bash
# Probe throughput: HTTP checks with full phase timing per CPU-second, a fresh connection
# each, against a loopback nginx; watchpost (crates/probes/examples/throughput.rs) side by
# side with prometheus-blackbox-exporter (its /probe endpoint driven by wrk at the same
# concurrency). Only 127.0.0.1 is used. See BENCHMARKS.md.
#
#   bench/throughput.sh                      # defaults below
#   CONCURRENCY="16 32" DURATION=15 SCHEMES="http https" bench/throughput.sh
#
# Raw output: bench/results/throughput-*.txt and bench/results/throughput.csv
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CONCURRENCY=${CONCURRENCY:-"16 32"}
DURATION=${DURATION:-15}          # seconds per measured run (each tool, each setting)
MAX_CHECKS=${MAX_CHECKS:-2000000} # count bound for the watchpost driver
SCHEMES=${SCHEMES:-"http https"}
BLACKBOX=${BLACKBOX:-/usr/bin/prometheus-blackbox-exporter}

for tool in nginx wrk "$BLACKBOX" openssl python3; do
    command -v "$tool" >/dev/null || { log "missing: $tool (apt-get install nginx-light wrk prometheus-blackbox-exporter openssl)"; exit 1; }
done

log "building the watchpost throughput driver (release)"
(cd "$ROOT" && cargo build --release -q -p watchpost-probes --example throughput)
DRIVER="$ROOT/target/release/examples/throughput"

WORK=$(mktemp -d /tmp/wpbench-tp.XXXXXX)
chmod 755 "$WORK"   # nginx workers run as nobody and must read www/
PIDS=()
cleanup() {
    local pid
    [ -z "${BB_PID:-}" ] || { kill "$BB_PID" 2>/dev/null || true; wait "$BB_PID" 2>/dev/null || true; }
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- nginx: its own minimal config, foreground, loopback only ----------------------------
NGINX_PORT=$(free_port)
NGINX_TLS_PORT=$(free_port)
mkdir -p "$WORK/www" "$WORK/tmp"
chmod 755 "$WORK/www"
printf 'watchpost benchmark: a small static file\n' >"$WORK/www/small.txt"
chmod 644 "$WORK/www/small.txt"
# A self-signed certificate for the https runs (both probers skip verification: the
# handshake, key exchange and signature check are still done and timed).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
nginx_conf "$WORK" "$NGINX_PORT" "$NGINX_TLS_PORT" >"$WORK/nginx.conf"
nginx -e "$WORK/nginx-error.log" -p "$WORK" -c "$WORK/nginx.conf" -t -q
nginx -e "$WORK/nginx-error.log" -p "$WORK" -c "$WORK/nginx.conf" &
PIDS+=($!)
wait_tcp "$NGINX_PORT"
wait_tcp "$NGINX_TLS_PORT"
log "nginx on 127.0.0.1:$NGINX_PORT (http) and :$NGINX_TLS_PORT (https)"

# --- blackbox_exporter: its own config, loopback only ------------------------------------
BB_PORT=$(free_port)
cat >"$WORK/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config:
        insecure_skip_verify: true
EOF
# A fresh exporter process for each measured run, so its VmHWM is that run's peak.
BB_PID=
start_blackbox() {
    "$BLACKBOX" --config.file="$WORK/blackbox.yml" --web.listen-address="127.0.0.1:$BB_PORT" \
        --log.level=warn >>"$WORK/blackbox.log" 2>&1 &
    BB_PID=$!
    wait_tcp "$BB_PORT"
}
stop_blackbox() {
    [ -n "$BB_PID" ] || return 0
    kill "$BB_PID" 2>/dev/null || true
    wait "$BB_PID" 2>/dev/null || true
    BB_PID=
}
log "blackbox_exporter $("$BLACKBOX" --version 2>&1 | head -1 | awk '{print $3}'), port 127.0.0.1:$BB_PORT"

# wrk counts HTTP responses; the Lua script also counts probes that failed (probe_success 0).
cat >"$WORK/count.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body:find("\nprobe_success 1", 1, true) then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("probes_ok=%d\nprobes_failed=%d\n", o, b))
end
EOF

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$RESULTS/throughput-$STAMP.txt"
CSV="$RESULTS/throughput.csv"
[ -f "$CSV" ] || echo "date,scheme,tool,concurrency,checks,errors,wall_s,cpu_s,checks_per_cpu_s,checks_per_wall_s,peak_rss_kib,loadavg_1m" >"$CSV"
{ echo "# throughput run $STAMP"; machine_info; echo "duration_s=$DURATION"; } >"$RAW"

kv() { awk -F= -v k="$1" '$1 == k { print $2 }' "$2"; }

for scheme in $SCHEMES; do
    case $scheme in
        http) TARGET="http://127.0.0.1:$NGINX_PORT/small.txt"; WP_FLAGS=() ;;
        https) TARGET="https://127.0.0.1:$NGINX_TLS_PORT/small.txt"; WP_FLAGS=(--insecure) ;;
        *) log "unknown scheme $scheme"; exit 1 ;;
    esac
    for c in $CONCURRENCY; do
        # watchpost
        log "watchpost: $scheme, concurrency $c, ${DURATION}s"
        out="$WORK/wp-$scheme-$c.txt"
        load=$(cut -d' ' -f1 /proc/loadavg)
        "$DRIVER" --url "$TARGET" -n "$MAX_CHECKS" -c "$c" --max-seconds "$DURATION" "${WP_FLAGS[@]}" >"$out"
        { echo; echo "## watchpost $scheme c=$c"; cat "$out"; } >>"$RAW"
        echo "$STAMP,$scheme,watchpost,$c,$(kv checks "$out"),$(kv errors "$out"),$(kv wall_s "$out"),$(kv cpu_s "$out"),$(kv checks_per_cpu_s "$out"),$(kv checks_per_wall_s "$out"),$(kv peak_rss_kib "$out"),$load" >>"$CSV"
        sed 's/^/    /' "$out" >&2

        # blackbox_exporter, driven by wrk at the same concurrency
        log "blackbox_exporter: $scheme, concurrency $c, ${DURATION}s"
        url="http://127.0.0.1:$BB_PORT/probe?module=http_2xx&target=$TARGET"
        start_blackbox
        curl -fsS "$url" | grep -q '^probe_success 1' || { log "blackbox probe of $TARGET fails"; curl -sS "$url" >&2; exit 1; }
        out="$WORK/bb-$scheme-$c.txt"
        load=$(cut -d' ' -f1 /proc/loadavg)
        cpu0=$(proc_cpu_s "$BB_PID")
        t0=$(date +%s.%N)
        wrk -t 2 -c "$c" -d "${DURATION}s" --timeout 10s -s "$WORK/count.lua" "$url" >"$out"
        t1=$(date +%s.%N)
        cpu1=$(proc_cpu_s "$BB_PID")
        hwm=$(proc_hwm_kib "$BB_PID")
        stop_blackbox
        ok=$(kv probes_ok "$out"); bad=$(kv probes_failed "$out")
        checks=$((ok + bad))
        read -r wall cpu per_cpu per_wall < <(python3 -c "
w=$t1-$t0; c=$cpu1-$cpu0
print(f'{w:.3f} {c:.3f} {$checks/c:.1f} {$checks/w:.1f}')")
        {
            echo; echo "## blackbox_exporter $scheme c=$c"; cat "$out"
            echo "checks=$checks"; echo "errors=$bad"; echo "wall_s=$wall"; echo "cpu_s=$cpu"
            echo "checks_per_cpu_s=$per_cpu"; echo "checks_per_wall_s=$per_wall"; echo "peak_rss_kib=$hwm"
        } >>"$RAW"
        echo "$STAMP,$scheme,blackbox_exporter,$c,$checks,$bad,$wall,$cpu,$per_cpu,$per_wall,$hwm,$load" >>"$CSV"
        log "    checks=$checks errors=$bad cpu_s=$cpu checks_per_cpu_s=$per_cpu peak_rss_kib=$hwm"
    done
done

# Summary: ratio watchpost / blackbox per setting, from this run's rows.
log "summary (this run)"
python3 - "$CSV" "$STAMP" <<'EOF' | tee -a "$RAW"
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["date"] == sys.argv[2]]
print("scheme  conc  tool               checks   errors  cpu_s    checks/cpu-s  peak_rss_MiB  ratio")
by = {}
for r in rows:
    by.setdefault((r["scheme"], r["concurrency"]), {})[r["tool"]] = r
for (scheme, c), tools in by.items():
    bb = float(tools["blackbox_exporter"]["checks_per_cpu_s"]) if "blackbox_exporter" in tools else None
    for name in ("watchpost", "blackbox_exporter"):
        r = tools.get(name)
        if not r:
            continue
        ratio = f"{float(r['checks_per_cpu_s']) / bb:.2f}x" if bb and name == "watchpost" else ""
        print(f"{scheme:7} {c:5} {name:18} {r['checks']:>8} {r['errors']:>7}  {float(r['cpu_s']):7.2f}  "
              f"{float(r['checks_per_cpu_s']):12.1f}  {int(r['peak_rss_kib'])/1024:12.1f}  {ratio}")
EOF
log "raw results: $RAW, $CSV"
