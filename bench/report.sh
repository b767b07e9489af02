#!/usr/bin/env bash
# `pipeline report` of a store holding the bench corpus (2007 valid JPEGs, 640-1600 px,
# one dataset, imported once, untimed): the first report makes every thumbnail (decode at
# a reduced DCT scale, 192 px center crop, JPEG) and 5 gallery pages of 500; the second
# finds them all cached. Each timed run starts from a fresh copy of the imported store
# with no report. Set-up: ../shared/bench/README.md sections 0 and 1.
# Usage: bench/report.sh            RUNS=3 bench/report.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps
torch_env=$(scripts/libtorch)  # a failure here stops the script
eval "$torch_env"
cargo build --release --quiet --features train
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/pipeline --store "$work/imported" import /tmp/bench-corpus/img --dataset bench >/dev/null
seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); echo "$end - $start" | bc; }
for run in $(seq "${RUNS:-3}"); do
  rm -rf "$work/store" && cp -r "$work/imported" "$work/store"
  first=$(seconds target/release/pipeline --store "$work/store" report)
  again=$(seconds target/release/pipeline --store "$work/store" report)
  echo "run $run: first report $first s, again (all cached) $again s wall"
done
du -sh "$work/store/report"
