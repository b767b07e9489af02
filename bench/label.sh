#!/usr/bin/env bash
# `pipeline label` of the bench corpus (2007 valid JPEGs, 640-1600 px): decode a 224 px
# center crop, color statistics, EfficientNet-Lite0's top 5, stored in the index. The
# corpus is imported into a store once (untimed); each timed run labels a fresh copy of
# that store, so nothing is reused. Set-up: ../shared/bench/README.md sections 0 and 1.
# Usage: bench/label.sh            RUNS=3 bench/label.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps
scripts/weights
torch_env=$(scripts/libtorch)  # a failure here stops the script
eval "$torch_env"
cargo build --release --quiet --features train
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/pipeline --store "$work/imported" import /tmp/bench-corpus/img --dataset bench >/dev/null
for run in $(seq "${RUNS:-3}"); do
  rm -rf "$work/store" && cp -r "$work/imported" "$work/store"
  start=$(date +%s.%N)
  target/release/pipeline --store "$work/store" label bench
  end=$(date +%s.%N)
  echo "run $run: $(echo "$end - $start" | bc) s wall"
done
