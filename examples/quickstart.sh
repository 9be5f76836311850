#!/usr/bin/env bash
# The quick start (README "Run"): builds watchpost, starts a local target on 127.0.0.1:18181,
# runs `watchpost run` with examples/quickstart.yaml, then takes the target down and brings it
# back: you see the checks, one DOWN alert and one RESOLVED alert. No internet needed; ~40 s.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building watchpost (release; the first build takes a few minutes)"
cargo build --release --quiet -p watchpost -p watchpost-testkit
bin=target/release
rm -rf target/quickstart && mkdir -p target/quickstart
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

target_up() {
  "$bin/watchpost-testserver" http --listen 127.0.0.1:18181 >target/quickstart/target.log 2>&1 &
  target_pid=$!
  pids+=("$target_pid")
}

"$bin/watchpost" validate -c examples/quickstart.yaml
target_up
echo "==> watchpost run -v -c examples/quickstart.yaml   (the target is up)"
"$bin/watchpost" run -v -c examples/quickstart.yaml --listen 127.0.0.1:18180 &
wp=$!
pids+=("$wp")
sleep 8
echo; echo "==> taking the target down: two failing checks in a row open an incident"; echo
kill "$target_pid"
sleep 10
echo; echo "==> bringing the target back: the next passing check resolves it"; echo
target_up
sleep 8
echo; echo "==> /healthz says: $(curl -s http://127.0.0.1:18180/healthz || echo unavailable)"
echo "==> stopping watchpost (SIGTERM: finishes checks in flight, flushes the outbox)"
kill -TERM "$wp"
wait "$wp" || true
echo; echo "==> watchpost status -c examples/quickstart.yaml   (uptime and percentiles from the store)"
"$bin/watchpost" status -c examples/quickstart.yaml
echo; echo "==> done. State and history are in target/quickstart/watchpost.db; edit examples/quickstart.yaml to watch your own site."
