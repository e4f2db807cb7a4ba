#!/usr/bin/env bash
# Worst time and peak memory per hostile record: every class of scripts/gen_hostile.py at
# ~1 MiB, one record per process, through `newsflow enrich` pinned to one core.
#   scripts/hostile_bench.sh [BINARY]     (default target/release/newsflow, built if missing)
# Prints one line per class: name, seconds, peak RSS (KB), outcome (event or rejection class).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${1:-target/release/newsflow}"
[[ -x "$bin" ]] || cargo build --release --locked
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 scripts/gen_hostile.py "$dir/in" >/dev/null
printf '%-36s %8s %10s  %s\n' class seconds peak_kb outcome
for f in "$dir"/in/*.json; do
  name=$(basename "$f" .json)
  /usr/bin/time -f '%e %M' -o "$dir/time" taskset -c 0 timeout 60 \
    "$bin" enrich --input "$f" --output "$dir/out.jsonl" 2>"$dir/err" || true
  read -r secs kb <"$dir/time" || { secs=timeout; kb=-; }
  if [[ -s "$dir/out.jsonl" ]]; then
    outcome="event $(wc -c <"$dir/out.jsonl") bytes"
  else
    outcome="rejected: $(grep -o '"reason":"[a-z_]*"' "$dir/err" | head -1)"
  fi
  printf '%-36s %8s %10s  %s\n' "$name" "$secs" "$kb" "$outcome"
done
