#!/usr/bin/env bash
# Scheduler soak: 10,000 monitors on @every 10s plus 1,000 on @every 1s (both spread), each tick
# a real HTTP check with a fresh connection to a local target, for 150 s. Reports start-lateness
# percentiles, overruns, missed ticks, CPU and peak RSS. Loopback only; stops by itself.
#
#   bash bench/scheduler.sh [SECONDS] [SLOW] [FAST]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-150}
slow=${2:-10000}
fast=${3:-1000}
mkdir -p bench/results
out=bench/results/scheduler.txt

echo "==> building (release)"
cargo build --release --quiet -p watchpost-testkit -p watchpost-scheduler --example soak

log=$(mktemp)
target/release/watchpost-testserver http --listen 127.0.0.1:0 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q '^listening on ' "$log" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$log")
[ -n "$addr" ] || { echo "target did not start: $(cat "$log")" >&2; exit 1; }

echo "==> soak: $slow monitors @every 10s + $fast @every 1s against http://$addr/ for ${seconds}s"
{
  echo "# bench/scheduler.sh $seconds $slow $fast — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
  echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  target/release/examples/soak --target "http://$addr/" --slow "$slow" --fast "$fast" --seconds "$seconds"
} | tee "$out"
echo "==> written to $out"
