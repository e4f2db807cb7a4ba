#!/usr/bin/env bash
# Benchmarks that print figures (nothing here asserts a time):
#   1. enrichment engine: criterion bench of the whole enrichment vs the vader_sentiment crate;
#   2. `newsflow enrich` on a generated JSON Lines file (no Kafka);
#   3. the worker and a replay through a real broker (Tansu on loopback);
#   4. instructions per article under callgrind (scripts/instructions.py), which repeat exactly.
# Usage: scripts/bench.sh [ARTICLES]   (default 5000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/broker.sh
source scripts/broker.sh

ARTICLES="${1:-5000}"
ensure_debian_packages
ensure_tansu
trap stop_broker EXIT

log "Building release binaries"
cargo build --release --locked
WORK=$(mktemp -d)
log "Generating $ARTICLES articles from samples/"
python3 scripts/gen_articles.py "$ARTICLES" >"$WORK/articles.jsonl"

log "newsflow enrich (file mode, no Kafka)"
target/release/newsflow enrich --input "$WORK/articles.jsonl" --output /dev/null

log "Worker and replay through the broker"
start_broker
NEWSFLOW_BENCH_INPUT="$WORK/articles.jsonl" \
  cargo bench --locked --bench pipeline

log "Enrichment engine (criterion)"
cargo bench --locked --bench enrich

# Instruction counts: the figures that repeat exactly, whatever else the machine is doing.
if ! command -v valgrind >/dev/null; then
  log "Installing valgrind (Debian package) for the instruction counts"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends valgrind
fi
log "Instructions per article (callgrind)"
python3 scripts/instructions.py target/release/newsflow "$WORK/articles.jsonl"
rm -rf "$WORK"
