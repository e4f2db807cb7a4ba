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

# shellcheck source=scripts/broker.sh
source scripts/broker.sh

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
  # The ConfigMap is checked with the binary this run just built, not a stale release build.
  NEWSFLOW_BIN=target/debug/newsflow bash scripts/check-deploy.sh
  log "All checks passed in $((SECONDS - started)) s"
}

main "$@"
