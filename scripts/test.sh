#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what the tests need, then runs
# formatting, lint and every test. Usage: scripts/test.sh [extra nextest args]
#
# What it provides to the tests:
# - Chromium (Debian package `chromium`), exported as CHROMIUM_BIN
# Environment:
# - OPENWA_SKIP_LINT=1 skips fmt/clippy (for quick local runs)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; return 1; fi
}

install_chromium() {
  if [ -x /usr/lib/chromium/chromium ]; then return; fi
  log "installing Chromium (Debian package chromium)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

install_chromium
export CHROMIUM_BIN=/usr/lib/chromium/chromium
"$CHROMIUM_BIN" --version

if [ "${OPENWA_SKIP_LINT:-0}" != 1 ]; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
