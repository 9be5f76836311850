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

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (cargo test --workspace)"
cargo test --workspace --locked
