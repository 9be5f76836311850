#!/usr/bin/env bash
# Builds the release binary dist/watchpost for x86_64 Linux with glibc 2.17 or newer (CentOS 7,
# Tencent SCF, Amazon Linux 2/2023, Alibaba FC, any distroless/glibc image) and checks it:
#   - no dynamic symbol needs a glibc version above 2.17 (objdump -T),
#   - the only shared libraries it loads are glibc's own (readelf -d), none of OpenSSL,
#   - it runs: --version, and validate on an example config.
# The cross toolchain (zig, through cargo-zigbuild) is installed from PyPI into .venv-release/
# on the first run and reused afterwards. Exits non-zero, saying why, if any step fails.
#
# Environment: CARGO_TARGET_DIR (as cargo), CARGO_BUILD_JOBS (as cargo; e.g. 1 on a busy
# machine), RELEASE_SKIP_BUILD=1 to check an existing dist/watchpost again without building.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

GLIBC_MAX="2.17"                      # the oldest glibc we promise to run on
TARGET="x86_64-unknown-linux-gnu"     # what rustc builds for
ZIG_TARGET="$TARGET.$GLIBC_MAX"       # what zig links against (glibc 2.17's symbol versions)
ZIGLANG_VERSION="0.15.2"
ZIGBUILD_VERSION="0.24.1"
VENV="$ROOT/.venv-release"
OUT="$ROOT/dist/watchpost"
EXAMPLE="examples/quickstart.yaml"
# glibc's own libraries: anything else in NEEDED is a dependency the target machine may lack.
GLIBC_LIBS="libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libutil.so.1 ld-linux-x86-64.so.2"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'release: FAILED: %s\n' "$*" >&2; exit 1; }

step "tools"
command -v cargo >/dev/null || fail "cargo not found: install Rust (rustup) first"
for tool in objdump readelf; do
  command -v "$tool" >/dev/null || fail "$tool not found: install binutils (apt-get install binutils)"
done
cargo --version

if [ "${RELEASE_SKIP_BUILD:-}" != 1 ]; then
  step "zig $ZIGLANG_VERSION and cargo-zigbuild $ZIGBUILD_VERSION (PyPI, in .venv-release/)"
  if ! "$VENV/bin/python" -c 'import ziglang' 2>/dev/null \
    || [ "$("$VENV/bin/python" -m ziglang version 2>/dev/null)" != "$ZIGLANG_VERSION" ] \
    || ! "$VENV/bin/cargo-zigbuild" --version 2>/dev/null | grep -qF " $ZIGBUILD_VERSION"; then
    command -v python3 >/dev/null || fail "python3 not found: the cross toolchain installs from PyPI"
    if [ ! -x "$VENV/bin/pip" ]; then
      rm -rf "$VENV"
      python3 -m venv "$VENV" || {
        rm -rf "$VENV"
        fail "python3 -m venv failed: install the venv module (apt-get install python3-venv)"
      }
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION" \
      || fail "pip could not install ziglang and cargo-zigbuild from PyPI"
  fi
  # cargo-zigbuild runs `python3 -m ziglang` when no `zig` is on PATH: the venv's python first.
  export PATH="$VENV/bin:$PATH"
  printf 'zig %s, %s\n' "$(python3 -m ziglang version)" "$(cargo-zigbuild --version)"

  # The Rust standard library for the target (already there on an x86_64 Linux host).
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET" || fail "rustup could not add the target $TARGET"
  fi

  # Position-dependent (not PIE), as the Go binaries of blackbox_exporter and Gatus are: the
  # loader applies none of the ~67,000 relocations a PIE build carries, so neither the 1.6 MiB
  # relocation table nor the 1.6 MiB of relocated read-only data is paged in: a one-shot run
  # stays under 20 MB resident (BENCHMARKS.md section 7) and starts sooner. The cost: the
  # executable's own code is at a fixed address (the shared libraries are still randomized).
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:--C relocation-model=static}"
  step "build: cargo zigbuild --release --locked --target $ZIG_TARGET -p watchpost ($CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS)"
  # ring and SQLite (bundled by rusqlite) are C, compiled by `zig cc` against glibc 2.17's
  # headers; TLS is rustls on ring everywhere (no aws-lc-rs, no OpenSSL in Cargo.lock).
  cargo zigbuild --release --locked --target "$ZIG_TARGET" -p watchpost \
    || fail "cargo zigbuild failed (above)"
  BUILT="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/watchpost"
  [ -x "$BUILT" ] || fail "the build reported success but $BUILT is missing"
  mkdir -p dist
  cp "$BUILT" "$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
fi
[ -x "$OUT" ] || fail "$OUT is missing: run without RELEASE_SKIP_BUILD"

step "check: what kind of file"
readelf -h "$OUT" | grep -E '^\s+(Class|Machine|Type):' || fail "$OUT is not an ELF file"
readelf -h "$OUT" | grep -q 'X86-64' || fail "$OUT is not an x86-64 binary"

step "check: glibc symbol versions (objdump -T), none above GLIBC_$GLIBC_MAX"
versions="$(objdump -T "$OUT" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/^GLIBC_//' | sort -u -t. -k1,1n -k2,2n -k3,3n)"
[ -n "$versions" ] || fail "objdump -T found no GLIBC_ symbol versions in $OUT (is it dynamic?)"
highest="$(printf '%s\n' "$versions" | tail -n 1)"
printf 'symbol versions used: %s\n' "$(echo $versions)"
printf 'highest: GLIBC_%s\n' "$highest"
# Compare numerically, component by component (2.17 < 2.2 is false as text; true here: 17 > 2).
too_new=""
for v in $versions; do
  if [ "$(printf '%s\n%s\n' "$v" "$GLIBC_MAX" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)" != "$GLIBC_MAX" ]; then
    too_new="$too_new $v"
  fi
done
if [ -n "$too_new" ]; then
  objdump -T "$OUT" | grep -E "GLIBC_($(printf '%s' "${too_new# }" | tr ' ' '|' | sed 's/\./\\./g'))[^0-9.]" >&2 || true
  fail "symbols need glibc newer than $GLIBC_MAX:$too_new (listed above)"
fi
if objdump -T "$OUT" | grep -q 'GLIBC_PRIVATE'; then
  fail "$OUT uses GLIBC_PRIVATE symbols, which differ between glibc builds"
fi
other="$(objdump -T "$OUT" | grep -oE '\b[A-Z]+_[0-9]+(\.[0-9]+)+\b' | grep -v '^GLIBC_' | sort -u || true)"
[ -z "$other" ] || fail "symbol versions from outside glibc: $(echo $other)"

step "check: shared libraries (readelf -d NEEDED): glibc's own only"
needed="$(readelf -d "$OUT" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
printf 'NEEDED: %s\n' "$(echo $needed)"
interp="$(readelf -l "$OUT" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')"
printf 'interpreter: %s\n' "${interp:-none}"
for lib in $needed; do
  case "$lib" in
    libssl* | libcrypto*) fail "$OUT links OpenSSL ($lib): TLS must be rustls only" ;;
    libgcc_s*) fail "$OUT needs $lib (GCC's unwinder), which minimal images lack" ;;
  esac
  case " $GLIBC_LIBS " in
    *" $lib "*) ;;
    *) fail "$OUT needs $lib, which is not part of glibc" ;;
  esac
done
if objdump -T "$OUT" | grep -qiE '\b(SSL_|EVP_|OPENSSL_)'; then
  fail "$OUT has OpenSSL symbols"
fi

step "check: it runs"
size_bytes="$(stat -c %s "$OUT")"
printf 'size: %s bytes (%s MiB)\n' "$size_bytes" "$(awk -v b="$size_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
"$OUT" --version || fail "$OUT --version failed"
"$OUT" validate -c "$EXAMPLE" || fail "$OUT validate -c $EXAMPLE failed"

step "ok: $OUT: x86_64 Linux, glibc >= $GLIBC_MAX (highest symbol version GLIBC_$highest), NEEDED: $(echo $needed), $size_bytes bytes"
