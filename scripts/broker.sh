#!/usr/bin/env bash
# Shared by scripts/test.sh and scripts/bench.sh (sourced, not run): installs missing Debian
# build packages and the Tansu broker, and starts/stops Tansu on a free loopback port.
# After start_broker, NEWSFLOW_TEST_BROKERS holds its address.

TANSU_VERSION=0.6.0
TANSU_BIN="${TANSU_BIN:-$HOME/.cargo/bin/tansu}"
log() { printf '\n==> %s\n' "$*" >&2; }

ensure_debian_packages() {
  local missing=()
  for pkg in build-essential pkg-config zlib1g-dev python3 python3-venv curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "Installing Debian packages: ${missing[*]}"
    local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

ensure_tansu() {
  if [[ -x "$TANSU_BIN" ]] && "$TANSU_BIN" --version 2>/dev/null | grep -q "tansu $TANSU_VERSION"; then
    return
  fi
  log "Installing tansu $TANSU_VERSION (one-time build, about 30 minutes on 2 cores)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
  TANSU_BIN="$HOME/.cargo/bin/tansu"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

BROKER_PID=""
BROKER_DIR=""
stop_broker() {
  if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  [[ -n "$BROKER_DIR" ]] && rm -rf "$BROKER_DIR"
}

start_broker() {
  local port; port=$(free_port)
  BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/newsflow-broker.XXXXXX")
  log "Starting tansu on 127.0.0.1:$port (storage $BROKER_DIR/broker.db)"
  # Tansu reads the SQLite path relative to its working directory.
  (cd "$BROKER_DIR" && exec "$TANSU_BIN" broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "sqlite://broker.db" >broker.log 2>&1) &
  BROKER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      export NEWSFLOW_TEST_BROKERS="127.0.0.1:$port"
      export NEWSFLOW_TEST_TANSU="$TANSU_BIN"
      export NEWSFLOW_REQUIRE_BROKER=1
      return
    fi
    kill -0 "$BROKER_PID" 2>/dev/null || { cat "$BROKER_DIR/broker.log" >&2; echo "tansu exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "tansu did not start listening" >&2; exit 1
}

