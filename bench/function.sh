#!/usr/bin/env bash
# `watchpost function` on the original function's workload: 8 HTTP monitors whose targets each
# answer after 300 ms (bench/function_target.py, one threaded Python server on 127.0.0.1, paths
# /m1 .. /m8). Side by side in the same run, interleaved, REPS times each:
#   python    the original approach: bench/function_original.py, sequential urllib of the 8 URLs
#   once      `watchpost once -c CONFIG`, a new process (the one-shot path an invocation runs)
#   function  one `POST /` (an SCF timer event) to a running `watchpost function --runtime http`
# For each: wall time, peak RSS (GNU time's max RSS for a process that exits; VmHWM from
# /proc/PID/status for the function's server) and the time to the first request the targets
# receive (from just before the process is started; for the function, from just before the
# POST is written on an open connection, bench/function_invoke.py).
# Also the binary's size. Only 127.0.0.1 is used. See BENCHMARKS.md section 7.
#
#   bench/function.sh                                              # builds target/release/watchpost
#   WATCHPOST=/path/to/watchpost REPS=10 bench/function.sh
#
# Raw output: bench/results/function-*.txt
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-5}
DELAY=${DELAY:-0.3}
N=8

for tool in python3 curl /usr/bin/time; do
    command -v "$tool" >/dev/null || { log "missing: $tool (apt-get install python3 curl time)"; exit 1; }
done
if [ -z "${WATCHPOST:-}" ]; then
    WATCHPOST="$ROOT/target/release/watchpost"
    if [ ! -x "$WATCHPOST" ]; then
        log "building watchpost (release)"
        (cd "$ROOT" && cargo build --release -q -p watchpost)
    fi
fi
"$WATCHPOST" function --help >/dev/null 2>&1 || { log "$WATCHPOST has no 'function' command"; exit 1; }

WORK=$(mktemp -d /tmp/wpbench-function.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$RESULTS/function-$STAMP.txt"
{
    echo "# function run $STAMP"
    machine_info
    echo "watchpost=$WATCHPOST"
    echo "binary_bytes=$(stat -c %s "$WATCHPOST")"
    echo "monitors=$N target_delay_s=$DELAY reps=$REPS python=$(python3 --version 2>&1)"
} >"$RAW"

# --- the targets ------------------------------------------------------------------------------
TARGET_PORT=$(free_port)
HITS="$WORK/hits.log"
: >"$HITS"
python3 "$ROOT/bench/function_target.py" "$TARGET_PORT" "$HITS" "$DELAY" &
PIDS+=($!)
wait_tcp "$TARGET_PORT"
URLS=()
for i in $(seq $N); do URLS+=("http://127.0.0.1:$TARGET_PORT/m$i"); done

CONFIG="$WORK/watchpost.yaml"
{
    echo "storage: sqlite://$WORK/state.db"
    echo "monitors:"
    for i in $(seq $N); do
        echo "  - {name: m$i, type: http, url: \"${URLS[$((i - 1))]}\", timeout: 10s, conditions: [\"status == 200\"]}"
    done
} >"$CONFIG"

# Milliseconds from epoch-seconds $1 to $2 (EPOCHREALTIME or the targets' log).
ms() { python3 -c "import sys; print(f'{(float(sys.argv[2]) - float(sys.argv[1])) * 1000:.1f}')" "$1" "$2"; }
first_hit() { sort -n "$HITS" | head -1 | cut -d' ' -f1; }

# One run of a process that exits: tool, rep, then the command. Prints a result row.
measure_process() {
    local tool=$1 rep=$2 t0 t1 code=0
    shift 2
    : >"$HITS"
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || code=$?
    t1=$EPOCHREALTIME
    printf '%-8s %3d %9s %9s %9s %4d %4d\n' "$tool" "$rep" "$(ms "$t0" "$t1")" \
        "$(tail -1 "$WORK/time.txt")" "$(ms "$t0" "$(first_hit)")" "$(wc -l <"$HITS")" "$code"
}

# --- watchpost function, HTTP runtime: one server for every invocation --------------------------
FUNCTION_PORT=$(free_port)
t_spawn=$EPOCHREALTIME
PORT=$FUNCTION_PORT "$WATCHPOST" function -c "$CONFIG" --runtime http --deadline 20s \
    >/dev/null 2>"$WORK/function.err" &
FUNCTION_PID=$!
PIDS+=($FUNCTION_PID)
until curl -sf "http://127.0.0.1:$FUNCTION_PORT/healthz" >/dev/null 2>&1; do sleep 0.002; done
t_ready=$EPOCHREALTIME
echo "function_start_to_healthz_ms=$(ms "$t_spawn" "$t_ready")" >>"$RAW"
echo "function_rss_kib_idle=$(proc_rss_kib $FUNCTION_PID)" >>"$RAW"

# Each invocation is a timer firing a minute after the previous one (from half an hour ago),
# so each finds every monitor due, as a one-minute timer trigger would.
BASE=$(( $(date +%s) / 60 * 60 - 30 * 60 ))
measure_invocation() {
    local rep=$1 t0 t1 code time body
    time=$(date -u -d "@$((BASE + rep * 60))" +%Y-%m-%dT%H:%M:%SZ)
    body="{\"Type\":\"Timer\",\"TriggerName\":\"every-minute\",\"Time\":\"$time\",\"Message\":\"\"}"
    : >"$HITS"
    # The client reads the clock just before it writes the request (curl's own start-up,
    # ~10 ms, would otherwise count as the function's).
    read -r t0 t1 code < <(python3 "$ROOT/bench/function_invoke.py" "$FUNCTION_PORT" "$body" \
        "$WORK/answer.json")
    printf '%-8s %3d %9s %9s %9s %4d %4s\n' function "$rep" "$(ms "$t0" "$t1")" \
        "$(proc_hwm_kib $FUNCTION_PID)" "$(ms "$t0" "$(first_hit)")" "$(wc -l <"$HITS")" "$code"
    python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); assert a["monitors_run"]==8 and a["passed"]==8, a' \
        "$WORK/answer.json" || { log "unexpected answer: $(cat "$WORK/answer.json")"; exit 1; }
}

# --- interleaved runs -----------------------------------------------------------------------------
ROWS="$WORK/rows.txt"
printf '%-8s %3s %9s %9s %9s %4s %4s\n' tool rep wall_ms rss_kib first_ms hits exit | tee -a "$RAW"
for rep in $(seq "$REPS"); do
    log "rep $rep/$REPS"
    measure_process python "$rep" python3 "$ROOT/bench/function_original.py" "${URLS[@]}" | tee -a "$ROWS"
    measure_process once "$rep" "$WATCHPOST" once -c "$CONFIG" | tee -a "$ROWS"
    measure_invocation "$rep" | tee -a "$ROWS"
done
cat "$ROWS" >>"$RAW"

# --- min / median per tool ------------------------------------------------------------------------
{
    echo
    echo "# min / median over $REPS runs"
    python3 - "$ROWS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(f"{'tool':8} {'wall_ms min/med':>18} {'rss_MiB min/med':>18} {'first_ms min/med':>18}")
for tool in ("python", "once", "function"):
    r = [x for x in rows if x[0] == tool]
    def mm(i, scale=1.0):
        v = [float(x[i]) * scale for x in r]
        return f"{min(v):.1f} / {statistics.median(v):.1f}"
    print(f"{tool:8} {mm(2):>18} {mm(3, 1 / 1024):>18} {mm(4):>18}")
PY
} | tee -a "$RAW"
log "raw: $RAW"
