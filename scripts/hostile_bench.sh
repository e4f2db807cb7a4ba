#!/usr/bin/env bash
# Worst time and peak memory per hostile record: every class of scripts/gen_hostile.py at
# ~1 MiB, one record per process, through `newsflow enrich` pinned to one core.
#   scripts/hostile_bench.sh [BINARY [LIMIT_SECONDS]]
#     BINARY defaults to target/release/newsflow (built if missing); each record is killed
#     after LIMIT_SECONDS (default 60), so an older binary can be measured too.
# Prints one line per class: name, seconds, peak RSS (KB), outcome (event, rejection class,
# or killed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${1:-target/release/newsflow}"
limit="${2:-60}"
[[ -x "$bin" ]] || cargo build --release --locked
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 scripts/gen_hostile.py "$dir/in" >/dev/null
printf '%-36s %8s %10s  %s\n' class seconds peak_kb outcome
for f in "$dir"/in/*.json; do
  name=$(basename "$f" .json)
  rm -f "$dir/out.jsonl"
  status=0
  # Address space capped (6 GB) so a binary without the bounds fails instead of taking the
  # machine down.
  ( ulimit -v 6000000
    exec /usr/bin/time -f '%e %M' -o "$dir/time" taskset -c 0 timeout "$limit" \
      "$bin" enrich --input "$f" --output "$dir/out.jsonl" ) 2>"$dir/err" || status=$?
  # time(1) prefixes a line when the command failed: the figures are on the last line.
  read -r secs kb < <(tail -n 1 "$dir/time")
  if ((status == 124)); then
    outcome="killed after ${limit} s"
  elif ((status != 0)); then
    outcome="failed (exit $status; out of the 6 GB address space?)"
  elif [[ -s "$dir/out.jsonl" ]]; then
    outcome="event $(wc -c <"$dir/out.jsonl") bytes"
  else
    outcome="rejected: $(grep -o '"reason":"[a-z_]*"' "$dir/err" | head -1 || true)"
  fi
  printf '%-36s %8s %10s  %s\n' "$name" "$secs" "$kb" "$outcome"
done
