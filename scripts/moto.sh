#!/usr/bin/env bash
# A moto server (AWS-compatible endpoint: SQS, DynamoDB, S3, Secrets Manager) for the AWS tests.
#
#   eval "$(scripts/moto.sh start)"   # installs moto in a venv if needed, starts it on a free
#                                     # loopback port, prints the AWS_* exports
#   scripts/moto.sh stop              # stops the server started last
#
# The venv lives outside the checkout (OPENWA_TOOLS_DIR, default ~/.cache/openwa), so a cold
# machine pays the install once (~20 s) and a warm one nothing.
set -euo pipefail

MOTO_VERSION="5.2.5"
tools="${OPENWA_TOOLS_DIR:-$HOME/.cache/openwa}"
venv="$tools/moto-venv"
pidfile="$tools/moto.pid"

install() {
  if [ -x "$venv/bin/moto_server" ] && "$venv/bin/pip" show moto 2>/dev/null | grep -q "^Version: $MOTO_VERSION$"; then
    return
  fi
  echo "installing moto[server]==$MOTO_VERSION into $venv" >&2
  mkdir -p "$tools"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  install
  local port log pid
  port="$(free_port)"
  log="$tools/moto-$port.log"
  # setsid: the server outlives this script but not an explicit stop. moto_server.py is
  # moto's own server with DynamoDB requests serialised (see the script for the race it avoids).
  setsid "$venv/bin/python" "$(cd "$(dirname "$0")" && pwd)/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" >"$pidfile"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
      echo "moto server pid $pid on 127.0.0.1:$port (log $log)" >&2
      cat <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export OPENWA_MOTO_PID=$pid
ENV
      return
    fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "moto server did not start; its log:" >&2
  cat "$log" >&2
  kill "$pid" 2>/dev/null || true
  return 1
}

stop() {
  local pid="${OPENWA_MOTO_PID:-}"
  if [ -z "$pid" ] && [ -f "$pidfile" ]; then pid="$(cat "$pidfile")"; fi
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
