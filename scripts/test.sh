#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what the tests need, then runs
# formatting, lint and every test. Usage: scripts/test.sh [extra nextest args]
#
# What it provides to the tests:
# - Chromium: Debian packages `chromium-headless-shell` (the runner's default engine binary,
#   exported as CHROMIUM_BIN for the tests) and `chromium` (full Chromium, the runner's
#   fallback). Set CHROMIUM_BIN=/usr/lib/chromium/chromium to run the tests on full Chromium.
# - An AWS-compatible endpoint: moto server (scripts/moto.sh), exported as AWS_ENDPOINT_URL with
#   test credentials, unless AWS_ENDPOINT_URL is already set.
# Environment:
# - OPENWA_SKIP_LINT=1 skips fmt/clippy and the Terraform checks (for quick local runs)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; return 1; fi
}

install_chromium() {
  if [ -x /usr/lib/chromium/chromium ] && [ -x /usr/lib/chromium/chromium-headless-shell ]; then
    return
  fi
  log "installing Chromium (Debian packages chromium, chromium-headless-shell)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    chromium chromium-headless-shell >/dev/null
}

install_chromium
export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/lib/chromium/chromium-headless-shell}"
"$CHROMIUM_BIN" --version

# The AWS-compatible endpoint for the AWS adapter, Lambda and end-to-end tests: a moto server
# (PyPI, in a venv outside the checkout) on a free loopback port, stopped when this script ends.
# Set AWS_ENDPOINT_URL yourself to run those tests against another endpoint (e.g. LocalStack).
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  log "starting moto server"
  eval "$(scripts/moto.sh start)"
  trap 'scripts/moto.sh stop' EXIT
fi

if [ "${OPENWA_SKIP_LINT:-0}" != 1 ]; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  log "Terraform checks"
  scripts/check-terraform.sh
fi

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
