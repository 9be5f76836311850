#!/usr/bin/env bash
# `watchpost run` at scale (issue 12, "The store at scale"): the daemon with MONITORS HTTP
# monitors every EVERY against a loopback nginx, its SQLite store on disk, then
# prometheus-blackbox-exporter under the same load (MONITORS/EVERY probes per second through its
# /probe endpoint, same targets, same concurrency) in the same script. For each: checks per
# CPU-second, peak RSS; for watchpost also the store's disk bytes per check (file growth, size
# per row after a checkpoint, bytes written to storage) and whether the scheduler's lateness
# can be read (it can't yet: "not exposed"). Both probers run pinned to
# one core (PROBER_CPU), nginx, the load driver and this script to the other (LOAD_CPU).
# Only 127.0.0.1 is used. See BENCHMARKS.md, section 6.
#
#   bench/run.sh                                  # 1,000 monitors every 1s, 60 s measured after 10 s
#   MONITORS=200 bench/run.sh
#   MONITORS=10000 EVERY=10s bench/run.sh         # the issue's second shape
#   WATCHPOST=/path/to/watchpost LABEL=before bench/run.sh   # another build
#   SKIP_BLACKBOX=1 bench/run.sh                  # watchpost only
#
# Environment: MONITORS (1000), EVERY (1s), DURATION (60, whole seconds measured), WARMUP (10,
# whole seconds from start not measured), STORAGE (sqlite; postgres: not supported by watchpost yet),
# CONCURRENCY (64: watchpost's default `concurrency:`, also the driver's connections),
# PROBER_CPU (0), LOAD_CPU (1), WATCHPOST (a binary; default: build the release one),
# LABEL (watchpost), BLACKBOX, SKIP_BLACKBOX, KEEP_WORK (1: keep the work directory).
#
# Raw output: bench/results/run-*.txt and bench/results/run.csv
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MONITORS=${MONITORS:-1000}
EVERY=${EVERY:-1s}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-10}
STORAGE=${STORAGE:-sqlite}
CONCURRENCY=${CONCURRENCY:-64}
PROBER_CPU=${PROBER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
LABEL=${LABEL:-watchpost}
BLACKBOX=${BLACKBOX:-/usr/bin/prometheus-blackbox-exporter}
SKIP_BLACKBOX=${SKIP_BLACKBOX:-0}

# STORAGE=postgres uses the PostgreSQL on 127.0.0.1 (PG_ADMIN, trust auth: the one the tests
# use), in a database of its own created here and dropped at the end.
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
case $STORAGE in
    sqlite) ;;
    postgres)
        command -v psql >/dev/null || { log "missing: psql (apt-get install postgresql-client)"; exit 1; }
        psql "$PG_ADMIN" -Atqc 'select 1' >/dev/null || { log "no PostgreSQL at $PG_ADMIN"; exit 1; }
        ;;
    *) log "STORAGE must be sqlite or postgres"; exit 2 ;;
esac

for tool in nginx curl python3 taskset; do
    command -v "$tool" >/dev/null || { log "missing: $tool (apt-get install nginx-light curl python3 util-linux)"; exit 1; }
done
if [ "$SKIP_BLACKBOX" != 1 ]; then
    command -v "$BLACKBOX" >/dev/null || { log "missing: $BLACKBOX (apt-get install prometheus-blackbox-exporter)"; exit 1; }
fi

# EVERY in seconds (watchpost's forms used here: 500ms is refused by watchpost, so ≥ 1s).
PERIOD_S=$(python3 -c '
import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", sys.argv[1])
if not m: sys.exit("EVERY: want e.g. 1s, 10s, 1m")
print(float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m[2]])' "$EVERY")
RATE=$(python3 -c "print(round($MONITORS / $PERIOD_S, 3))")

if [ -z "${WATCHPOST:-}" ]; then
    log "building watchpost (release)"
    (cd "$ROOT" && cargo build --release -q -p watchpost)
    WATCHPOST="${CARGO_TARGET_DIR:-$ROOT/target}/release/watchpost"
fi
[ -x "$WATCHPOST" ] || { log "no watchpost binary at $WATCHPOST"; exit 1; }

# Before pinning (nproc counts the CPUs this process may use).
MACHINE=$(machine_info)
# From here on, this script and everything it starts run on LOAD_CPU unless pinned elsewhere
# (the two probers go to PROBER_CPU).
taskset -pc "$LOAD_CPU" $$ >/dev/null

WORK=$(mktemp -d /tmp/wpbench-run.XXXXXX)
chmod 755 "$WORK"
PIDS=()
WP_PID=
BB_PID=
cleanup() {
    local pid
    for pid in "$WP_PID" "$BB_PID" "${PIDS[@]}"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    for pid in "$WP_PID" "$BB_PID" "${PIDS[@]}"; do
        if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
    done
    if [ "${KEEP_WORK:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- nginx: a small static file under N paths, on LOAD_CPU --------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/www/m" "$WORK/tmp"
chmod 755 "$WORK/www" "$WORK/www/m"
printf 'watchpost benchmark: a small static file\n' >"$WORK/www/small.txt"
chmod 644 "$WORK/www/small.txt"
# Each monitor its own URL path, /m/I.txt: hard links to the one small file.
python3 -c '
import os, sys
d = sys.argv[1]
for i in range(1, int(sys.argv[2]) + 1):
    os.link(f"{d}/small.txt", f"{d}/m/{i}.txt")' "$WORK/www" "$MONITORS"
nginx_conf "$WORK" "$NGINX_PORT" >"$WORK/nginx.conf"
nginx -e "$WORK/nginx-error.log" -p "$WORK" -c "$WORK/nginx.conf" -t -q
exec_pinned "$LOAD_CPU" nginx -e "$WORK/nginx-error.log" -p "$WORK" -c "$WORK/nginx.conf" &
PIDS+=($!)
wait_tcp "$NGINX_PORT"
curl -fsS "http://127.0.0.1:$NGINX_PORT/m/1.txt" >/dev/null
log "nginx on 127.0.0.1:$NGINX_PORT (CPU $LOAD_CPU), $MONITORS paths /m/I.txt"

# --- the store ----------------------------------------------------------------------------------
if [ "$STORAGE" = postgres ]; then
    PG_DB="wpbench_$$"
    PG_URL="${PG_ADMIN%/*}/$PG_DB"
    psql "$PG_ADMIN" -Atqc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
    psql "$PG_ADMIN" -Atqc "CREATE DATABASE $PG_DB" >/dev/null
    drop_pg() { psql "$PG_ADMIN" -Atqc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true; }
    trap 'cleanup; drop_pg' EXIT
    storage_url() { echo "$PG_URL"; }
    pg() { psql "$PG_URL" -Atqc "$1" 2>/dev/null; }
    store_sample() {
        local counts size
        counts=$(pg "SELECT coalesce(sum(checks), 0) || ' ' || coalesce(sum(failures), 0) FROM rollups WHERE step = 60" || echo "0 0")
        size=$(pg "SELECT pg_database_size(current_database())" || echo 0)
        echo "checks_total=${counts% *} failures_total=${counts#* } db_bytes=$size wal_bytes=0"
    }
    store_final() {
        pg "CHECKPOINT" >/dev/null || true
        local size; size=$(pg "SELECT pg_database_size(current_database())")
        echo "db_bytes_after_checkpoint=$size"
        python3 -c "print(f'db_bytes_per_check_ever={$size / $1:.1f}' if $1 else 'db_bytes_per_check_ever=nan')"
        pg "SELECT 'bytes_' || relname || '=' || pg_total_relation_size(oid) FROM pg_class WHERE relname IN ('results', 'latest', 'rollups', 'monitor_state', 'outbox')"
    }
else
    DB="$WORK/state.db"
    storage_url() { echo "sqlite://$DB"; }
    # `checks_total=… failures_total=… db_bytes=… wal_bytes=…` while the daemon runs.
    store_sample() { python3 "$ROOT/bench/run_store.py" sample "$DB"; }
    # key=value lines after the daemon stopped: the checkpointed size, per check, per table.
    store_final() { python3 "$ROOT/bench/run_store.py" final "$DB" "$@"; }
fi

# --- the config: MONITORS HTTP monitors, each its own path, every EVERY, no channels ---------
CONFIG="$WORK/watchpost.yaml"
python3 - "$CONFIG" "$(storage_url)" "$CONCURRENCY" "$MONITORS" "$NGINX_PORT" "$EVERY" <<'EOF'
import sys
path, storage, concurrency, n, port, every = sys.argv[1:]
with open(path, "w") as f:
    f.write(f"storage: {storage}\nconcurrency: {concurrency}\nmonitors:\n")
    for i in range(1, int(n) + 1):
        f.write(f'  - {{name: m{i}, type: http, url: "http://127.0.0.1:{port}/m/{i}.txt", every: {every}}}\n')
EOF
"$WATCHPOST" validate -c "$CONFIG" >"$WORK/validate.txt" 2>&1 || { cat "$WORK/validate.txt" >&2; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$RESULTS/run-$STAMP.txt"
CSV="$RESULTS/run.csv"
[ -f "$CSV" ] || echo "date,label,storage,tool,monitors,every_s,rate_per_s,concurrency,window_s,checks,failed,cpu_s,checks_per_cpu_s,checks_per_wall_s,peak_rss_kib,disk_bytes_per_check_growth,db_bytes_per_row_checkpointed,sched_p99_lateness_ms,loadavg_1m_start,loadavg_1m_end,git_head,io_write_bytes_per_check" >"$CSV"
GIT_HEAD=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "# run.sh $STAMP"
    echo "$MACHINE"
    echo "crates_uncommitted_changes=$(git -C "$ROOT" status --porcelain -- crates 2>/dev/null | wc -l)"
    echo "watchpost_binary=$WATCHPOST label=$LABEL"
    echo "monitors=$MONITORS every=$EVERY period_s=$PERIOD_S rate_per_s=$RATE concurrency=$CONCURRENCY"
    echo "warmup_s=$WARMUP duration_s=$DURATION storage=$STORAGE prober_cpu=$PROBER_CPU load_cpu=$LOAD_CPU"
    echo "work_fs=$(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')"
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*version: //')"
} >"$RAW"

loadavg1() { cut -d' ' -f1 /proc/loadavg; }
kv() { awk -F= -v k="$1" '$1 == k { print $2 }' "$2"; }
# key=value pairs, several per line, into one per line.
split_kv() { tr ' ' '\n' | grep '='; }
now_ns() { date +%s%N; }
# Bytes a process caused to be written to storage (/proc/PID/io write_bytes: the WAL, the
# checkpoints into the database file), as opposed to how much the files grew.
proc_write_bytes() { awk '/^write_bytes:/ { print $2 }' "/proc/$1/io"; }
# "user_s sys_s" of a process (/proc/PID/stat fields 14 and 15), to see where its CPU goes.
proc_user_sys() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f %.3f\n", $12 / hz, $13 / hz }' "/proc/$1/stat"; }
sleep_until_ns() { python3 -c 'import sys, time; time.sleep(max(0, int(sys.argv[1]) / 1e9 - time.time()))' "$1"; }

# --- watchpost run ----------------------------------------------------------------------------
WP_PORT=$(free_port)
log "$LABEL run: $MONITORS monitors every $EVERY ($RATE checks/s), CPU $PROBER_CPU, warm-up ${WARMUP}s, measured ${DURATION}s"
exec_pinned "$PROBER_CPU" "$WATCHPOST" run -c "$CONFIG" --listen "127.0.0.1:$WP_PORT" >"$WORK/watchpost.log" 2>&1 &
WP_PID=$!
START_NS=$(now_ns)
wait_tcp "$WP_PORT"
sleep_until_ns $((START_NS + WARMUP * 1000000000))
kill -0 "$WP_PID" || { log "watchpost exited"; cat "$WORK/watchpost.log" >&2; exit 1; }

load0=$(loadavg1)
t0=$(now_ns)
cpu0=$(proc_cpu_s "$WP_PID")
read -r user0 sys0 < <(proc_user_sys "$WP_PID")
wb0=$(proc_write_bytes "$WP_PID")
# /metrics first: a scrape writes what quiet ticks left waiting (see Store::flush), so the
# store's counts are current when sampled.
scrape0=$(curl -sS --max-time 5 -w "%{time_total}" -o "$WORK/metrics0.txt" "http://127.0.0.1:$WP_PORT/metrics" || echo " failed")
store_sample | split_kv >"$WORK/s0.txt"
sleep_until_ns $((t0 + DURATION * 1000000000))
t1=$(now_ns)
cpu1=$(proc_cpu_s "$WP_PID")
read -r user1 sys1 < <(proc_user_sys "$WP_PID")
wb1=$(proc_write_bytes "$WP_PID")
# /metrics first: a scrape writes what quiet ticks left waiting (see Store::flush), so the
# store's counts are current when sampled.
scrape1=$(curl -sS --max-time 5 -w "%{time_total}" -o "$WORK/metrics1.txt" "http://127.0.0.1:$WP_PORT/metrics" || echo " failed")
store_sample | split_kv >"$WORK/s1.txt"
load1=$(loadavg1)
hwm=$(proc_hwm_kib "$WP_PID")
rss=$(proc_rss_kib "$WP_PID")
threads=$(awk '/^Threads:/ { print $2 }' "/proc/$WP_PID/status")
health=$(curl -sS --max-time 5 "http://127.0.0.1:$WP_PORT/healthz" | head -3 | tr '\n' ' ' || true)

# Stop gracefully (checks in flight finish; the last connection closing checkpoints the WAL).
kill -TERM "$WP_PID"
for _ in $(seq 300); do kill -0 "$WP_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$WP_PID" 2>/dev/null; then log "watchpost still running 30 s after SIGTERM: stopping it now"; kill -TERM "$WP_PID"; fi
wp_rc=0
wait "$WP_PID" || wp_rc=$?
WP_PID=

checks=$(( $(kv checks_total "$WORK/s1.txt") - $(kv checks_total "$WORK/s0.txt") ))
failed=$(( $(kv failures_total "$WORK/s1.txt") - $(kv failures_total "$WORK/s0.txt") ))
ok=$((checks - failed))
store_final "$(kv checks_total "$WORK/s1.txt")" | split_kv >"$WORK/final.txt"
# p99 of the scheduler's lateness in the window: the upper bound of the bucket holding it
# (the /metrics histogram, difference of the two scrapes); "not exposed" for older builds.
p99_lateness=$(python3 - "$WORK/metrics0.txt" "$WORK/metrics1.txt" <<'PYEOF'
import re, sys
def buckets(path):
    out = {}
    try:
        for line in open(path):
            m = re.match(r'watchpost_scheduler_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
            if m:
                out[m.group(1)] = float(m.group(2))
    except OSError:
        pass
    return out
a, b = buckets(sys.argv[1]), buckets(sys.argv[2])
if not b:
    print("not exposed")
    sys.exit()
total = b.get("+Inf", 0) - a.get("+Inf", 0)
for le in sorted((k for k in b if k != "+Inf"), key=float) + ["+Inf"]:
    if total and b[le] - a.get(le, 0) >= 0.99 * total:
        print("<= " + (f"{float(le) * 1000:g} ms" if le != "+Inf" else "+Inf"))
        break
else:
    print("no runs")
PYEOF
)
read -r window cpu per_cpu per_wall growth growth_db due < <(python3 -c "
w = ($t1 - $t0) / 1e9; c = $cpu1 - $cpu0; n = $checks
g = ($(kv db_bytes "$WORK/s1.txt") + $(kv wal_bytes "$WORK/s1.txt")) - ($(kv db_bytes "$WORK/s0.txt") + $(kv wal_bytes "$WORK/s0.txt"))
gd = $(kv db_bytes "$WORK/s1.txt") - $(kv db_bytes "$WORK/s0.txt")
f = lambda x: f'{x / n:.1f}' if n else 'nan'
print(f'{w:.3f} {c:.3f} {n / c if c > 0 else float(\"nan\"):.1f} {n / w:.1f} {f(g)} {f(gd)} {$MONITORS * w / $PERIOD_S:.0f}')")
per_row=$(kv db_bytes_per_check_ever "$WORK/final.txt")
io_per_check=$(python3 -c "print(round(($wb1 - $wb0) / $checks, 1) if $checks else 'nan')")
warn_lines=$(grep -c ' WARN ' "$WORK/watchpost.log" || true)
error_lines=$(grep -c ' ERROR ' "$WORK/watchpost.log" || true)
{
    echo
    echo "## $LABEL run ($STORAGE)"
    echo "window_s=$window"
    echo "loadavg_1m_start=$load0 loadavg_1m_end=$load1 loadavg_at_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "cpu_s=$cpu checks=$checks ok=$ok failed=$failed"
    echo "user_s=$(python3 -c "print(round($user1 - $user0, 3))") sys_s=$(python3 -c "print(round($sys1 - $sys0, 3))")"
    echo "checks_per_cpu_s=$per_cpu checks_per_wall_s=$per_wall rate_asked_per_s=$RATE"
    echo "ticks_due_in_window_approx=$due"
    echo "peak_rss_kib=$hwm rss_at_end_kib=$rss threads=$threads"
    echo "window_start: $(tr '\n' ' ' <"$WORK/s0.txt")"
    echo "window_end:   $(tr '\n' ' ' <"$WORK/s1.txt")"
    echo "disk_bytes_per_check_db_plus_wal_growth=$growth disk_bytes_per_check_db_growth=$growth_db"
    echo "io_write_bytes=$((wb1 - wb0)) io_write_bytes_per_check=$io_per_check"
    cat "$WORK/final.txt"
    echo "sched_p99_lateness=$p99_lateness (from /metrics watchpost_scheduler_lateness_seconds, the bucket bound)"
    echo "metrics_scrape_s=$scrape0 $scrape1 (GET /metrics at the window's start and end, 5-s limit)"
    echo "healthz_at_end=$health"
    echo "exit_code=$wp_rc warn_lines=$warn_lines error_lines=$error_lines"
    echo "log (first 20 lines):"
    head -20 "$WORK/watchpost.log" | sed 's/^/    /'
} >>"$RAW"
echo "$STAMP,$LABEL,$STORAGE,watchpost,$MONITORS,$PERIOD_S,$RATE,$CONCURRENCY,$window,$checks,$failed,$cpu,$per_cpu,$per_wall,$hwm,$growth,$per_row,$p99_lateness,$load0,$load1,$GIT_HEAD,$io_per_check" >>"$CSV"
WP_SUMMARY="$LABEL ($STORAGE): $checks checks in ${window}s ($failed failed), $cpu CPU-s, $per_cpu checks/CPU-s, peak RSS $hwm KiB, disk $growth B/check (db+wal growth in the window) / $per_row B/check (checkpointed db over every check made), $io_per_check B written/check, p99 lateness $p99_lateness, load $load0→$load1"
log "$WP_SUMMARY"

# --- blackbox_exporter under the same load -----------------------------------------------------
BB_SUMMARY=
if [ "$SKIP_BLACKBOX" != 1 ]; then
    BB_PORT=$(free_port)
    cat >"$WORK/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 10s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
EOF
    BB_VERSION=$("$BLACKBOX" --version 2>&1 | head -1 | awk '{print $3}')
    exec_pinned "$PROBER_CPU" "$BLACKBOX" --config.file="$WORK/blackbox.yml" \
        --web.listen-address="127.0.0.1:$BB_PORT" --log.level=warn >>"$WORK/blackbox.log" 2>&1 &
    BB_PID=$!
    wait_tcp "$BB_PORT"
    url="http://127.0.0.1:$BB_PORT/probe?module=http_2xx&target="
    curl -fsS "${url}http://127.0.0.1:$NGINX_PORT/m/1.txt" | grep -q '^probe_success 1' \
        || { log "blackbox probe fails"; exit 1; }
    log "blackbox_exporter $BB_VERSION: $RATE probes/s over $CONCURRENCY connections, CPU $PROBER_CPU, warm-up ${WARMUP}s, measured ${DURATION}s"
    load0=$(loadavg1)
    python3 "$ROOT/bench/rate_driver.py" --url "$url" --target "http://127.0.0.1:$NGINX_PORT/m/{i}.txt" \
        -n "$MONITORS" --rate "$RATE" --conns "$CONCURRENCY" --warmup "$WARMUP" --duration "$DURATION" \
        --pid "$BB_PID" >"$WORK/bb.txt"
    load1=$(loadavg1)
    hwm=$(proc_hwm_kib "$BB_PID")
    rss=$(proc_rss_kib "$BB_PID")
    kill "$BB_PID" 2>/dev/null || true
    wait "$BB_PID" 2>/dev/null || true
    BB_PID=
    b() { kv "$1" "$WORK/bb.txt"; }
    {
        echo
        echo "## blackbox_exporter $BB_VERSION (no store)"
        echo "loadavg_1m_start=$load0 loadavg_1m_end=$load1"
        cat "$WORK/bb.txt"
        echo "peak_rss_kib=$hwm rss_at_end_kib=$rss"
    } >>"$RAW"
    echo "$STAMP,$LABEL,none,blackbox_exporter,$MONITORS,$PERIOD_S,$RATE,$CONCURRENCY,$(b window_s),$(b checks),$(b failed),$(b cpu_s),$(b checks_per_cpu_s),$(b checks_per_wall_s),$hwm,n/a,n/a,n/a,$load0,$load1,$GIT_HEAD,n/a" >>"$CSV"
    BB_SUMMARY="blackbox_exporter: $(b checks) checks in $(b window_s)s ($(b failed) failed, backlog $(b backlog_at_end)), $(b cpu_s) CPU-s, $(b checks_per_cpu_s) checks/CPU-s, peak RSS $hwm KiB, no store, driver dispatch p99 $(b driver_dispatch_lateness_p99_ms) ms, load $load0→$load1"
    log "$BB_SUMMARY"
fi

# --- summary -----------------------------------------------------------------------------------
{
    echo
    echo "## summary"
    echo "$WP_SUMMARY"
    [ -z "$BB_SUMMARY" ] || echo "$BB_SUMMARY"
    if [ -n "$BB_SUMMARY" ]; then
        python3 -c "
wp, bb = $per_cpu, $(b checks_per_cpu_s)
print(f'ratio checks/CPU-s watchpost/blackbox_exporter = {wp / bb:.2f}x (target >= 5x)')"
    fi
} | tee -a "$RAW"
log "raw results: $RAW, $CSV"
