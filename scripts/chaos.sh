#!/usr/bin/env bash
# Chaos run on the real broker (not part of scripts/test.sh: it runs for many minutes).
# Three workers in one group, a producer writing keyed updates, and for MINUTES minutes
# random SIGKILLs, SIGTERMs, a worker leaving and joining, and broker restarts; then it
# checks that nothing was lost, every key's last event is its last version, and the
# committed offsets equal the end offsets, and prints the duplicate share and the catch-up
# time after each fault (scripts/chaos.py). Exit status 0 only when every check holds.
# Usage: scripts/chaos.sh [MINUTES] [RATE] [SEED]   (defaults 10, 40 records/s, 1)
# Check a finished run again (its broker storage and logs stay in the printed directory):
#   ~/.cache/newsflow/venv/bin/python scripts/chaos.py --tansu ~/.cargo/bin/tansu --workdir DIR --check-only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/broker.sh
source scripts/broker.sh

MINUTES="${1:-10}"
RATE="${2:-40}"
SEED="${3:-1}"
ensure_debian_packages
ensure_tansu

log "Building the release binary"
cargo build --release --locked

VENV="${NEWSFLOW_VENV:-$HOME/.cache/newsflow/venv}"
if ! "$VENV/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  log "Installing confluent-kafka (the chaos run's producer and checker) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'confluent-kafka==2.*'
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/newsflow-chaos.XXXXXX")
log "Chaos run for $MINUTES minutes (logs in $WORK)"
"$VENV/bin/python" scripts/chaos.py --tansu "$TANSU_BIN" --newsflow target/release/newsflow \
  --workdir "$WORK" --minutes "$MINUTES" --rate "$RATE" --seed "$SEED"
