#!/usr/bin/env bash
# Builds what `terraform apply` deploys:
# - every Lambda function as target/lambda/<binary>/bootstrap.zip (the paths
#   terraform/modules/functions reads through var.artifacts_dir = "<repo>/target/lambda"),
#   cross-compiled for arm64 (provided.al2023) with cargo-lambda + zig from PyPI in a venv;
# - the runner image (`docker build -f runner/Dockerfile .`), skipped with the reason when no
#   Docker engine answers.
#
# The equivalent by hand:
#   python3 -m venv ~/.cache/openwa/cargo-lambda
#   ~/.cache/openwa/cargo-lambda/bin/pip install cargo-lambda ziglang
#   PATH=~/.cache/openwa/cargo-lambda/bin:$PATH cargo lambda build --profile lambda --arm64 \
#     --output-format zip -p openwa-lambda
#   docker build -f runner/Dockerfile -t openwa-runner .
#
# Usage: scripts/build-artifacts.sh [--functions-only | --runner-only]
# Environment: RUNNER_IMAGE (default openwa-runner:latest), RUNNER_PLATFORM (e.g. linux/arm64,
# passed to `docker buildx build --platform` when set).
set -euo pipefail
cd "$(dirname "$0")/.."

FUNCTIONS=(openwa-api openwa-authorizer openwa-fanout openwa-deliver openwa-ingress openwa-outbox)
CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"
ZIGLANG_VERSION="${ZIGLANG_VERSION:-0.17.0}"
VENV="${OPENWA_CACHE:-$HOME/.cache/openwa}/cargo-lambda-${CARGO_LAMBDA_VERSION}"
RUNNER_IMAGE="${RUNNER_IMAGE:-openwa-runner:latest}"

log() { printf '\n==> %s\n' "$*"; }

build_functions() {
  log "Lambda functions (arm64, cargo-lambda ${CARGO_LAMBDA_VERSION})"
  if [ ! -x "$VENV/bin/cargo-lambda" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "cargo-lambda==${CARGO_LAMBDA_VERSION}" "ziglang==${ZIGLANG_VERSION}"
  fi
  local bins=()
  for f in "${FUNCTIONS[@]}"; do bins+=(--bin "$f"); done
  # cargo-lambda finds zig as `python -m ziglang` from the venv's python.
  PATH="$VENV/bin:$PATH" cargo lambda build --profile lambda --arm64 --output-format zip \
    -p openwa-lambda "${bins[@]}"
  for f in "${FUNCTIONS[@]}"; do
    local zip="target/lambda/$f/bootstrap.zip"
    [ -f "$zip" ] || { echo "missing $zip" >&2; exit 1; }
    printf '%s  %s\n' "$(du -h "$zip" | cut -f1)" "$zip"
  done
}

build_runner() {
  log "runner image ${RUNNER_IMAGE}"
  if ! command -v docker >/dev/null 2>&1; then
    echo "runner image skipped: no docker command on PATH"
    return
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "runner image skipped: no Docker engine answers (docker info failed)"
    return
  fi
  if [ -n "${RUNNER_PLATFORM:-}" ]; then
    docker buildx build --platform "$RUNNER_PLATFORM" --load -f runner/Dockerfile -t "$RUNNER_IMAGE" .
  else
    docker build -f runner/Dockerfile -t "$RUNNER_IMAGE" .
  fi
}

case "${1:-}" in
  --functions-only) build_functions ;;
  --runner-only) build_runner ;;
  "") build_functions; build_runner ;;
  *) echo "usage: $0 [--functions-only | --runner-only]" >&2; exit 2 ;;
esac
