#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
#   1. installs what is missing (Debian build packages, the Tansu broker), caching the broker
#      binary in ~/.cargo/bin so later runs skip its ~30 minute build;
#   2. starts a real Kafka-protocol broker (Tansu 0.6.0, SQLite storage) on a free loopback port;
#   3. runs cargo fmt --check, clippy -D warnings, and every test (unit, property, integration
#      against the broker and against librdkafka's mock cluster);
#   4. runs the deployment checks (hadolint, compose schema, Kubernetes schemas, promtool);
#   5. stops the broker, whatever happened.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

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
      export NEWSFLOW_REQUIRE_BROKER=1
      return
    fi
    kill -0 "$BROKER_PID" 2>/dev/null || { cat "$BROKER_DIR/broker.log" >&2; echo "tansu exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "tansu did not start listening" >&2; exit 1
}

main() {
  local started=$SECONDS
  ensure_debian_packages
  ensure_tansu
  trap stop_broker EXIT
  start_broker

  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy --all-targets -- -D warnings"
  cargo clippy --locked --all-targets -- -D warnings
  log "Installing the Prometheus server for the integration test (Debian package prometheus)"
  bash scripts/check-deploy.sh --install-only
  export NEWSFLOW_TEST_PROMETHEUS="${NEWSFLOW_TEST_PROMETHEUS:-$(command -v prometheus)}"
  log "cargo test (unit, property and integration tests; broker $NEWSFLOW_TEST_BROKERS)"
  cargo test --locked -- --test-threads 2
  log "Deployment checks"
  bash scripts/check-deploy.sh
  log "All checks passed in $((SECONDS - started)) s"
}

main "$@"
