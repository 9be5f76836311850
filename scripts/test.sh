#!/usr/bin/env bash
# The project's one test command (README "Test"); .ci/run calls it. It installs what the tests
# need (idempotently, so it passes on a brand-new machine), then runs format, lint and tests.
# Tests only talk to 127.0.0.0/8 and ::1.
set -euo pipefail
cd "$(dirname "$0")/.."

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

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (cargo test --workspace)"
cargo test --workspace --locked
