#!/usr/bin/env bash
# A quick look at watchpost with no internet: builds it, starts a local test server on
# 127.0.0.1 (HTTP and HTTPS with a throwaway CA), and runs real checks against it: a healthy
# page, a slow one that breaks an expectation, a dead port, and HTTPS with a certificate check.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building (release)"
cargo build --release --quiet -p watchpost -p watchpost-testkit
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start() { # start NAME ARGS... ; prints the address the server listens on
  local log="$work/$1.log"; shift
  "$bin/watchpost-testserver" "$@" >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    if grep -q '^listening on ' "$log"; then sed -n 's/^listening on //p' "$log"; return; fi
    sleep 0.1
  done
  echo "test server did not start: $(cat "$log")" >&2; exit 1
}
http=$(start http http)
https=$(start https http --tls-dir "$work/tls" --name demo.test --tls-delay-ms 40)
port=${https##*:}

run() { echo; echo "\$ watchpost $*"; "$bin/watchpost" "$@" && echo "(exit 0)" || echo "(exit $?)"; }

echo; echo "==> 1. a healthy page: 120 ms of server time, 20 KB trickled over 80 ms"
run check "http://$http/?wait=120&download=80&size=20000"
echo; echo "==> 2. the same site turns slow: the expectation fails, exit code 1"
run check "http://$http/?wait=700" --expect 'status == 200' --expect 'total < 500ms'
echo; echo "==> 3. nothing listens on the port: a classified failure (connect/refused)"
run check "http://127.0.0.1:9/"
echo; echo "==> 4. HTTPS with our own CA, the name pinned like curl --resolve; JSON for machines"
run check --json "https://demo.test:$port/" --resolve "demo.test:$port:127.0.0.1" --cacert "$work/tls/ca.pem"
echo; echo "==> 5. the same server without trusting the CA: rejected in the tls phase"
run check "https://demo.test:$port/" --resolve "demo.test:$port:127.0.0.1"
