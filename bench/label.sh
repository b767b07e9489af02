#!/usr/bin/env bash
# `pipeline label` of the bench corpus (2007 valid JPEGs, 640-1600 px) against its PyTorch
# twin (bench/torch_twins.py label: the same EfficientNet-Lite0, same weights, same 224 px
# center crop, one process per core with one thread each, batch 1), in the same run,
# alternating. Ours also measures each image's colour statistics and stores the labels in
# the index. The corpus is imported into a store once (untimed); each timed run labels a
# fresh copy of that store, so nothing is reused; the twin reads the same blobs.
# Set-up: ../shared/bench/README.md sections 0 and 1; PyTorch from scripts/engines.
# Usage: bench/label.sh            RUNS=5 PY=/path/python bench/label.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/torch_side.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/pipeline --store "$work/imported" import /tmp/bench-corpus/img --dataset bench >/dev/null
find "$work/imported/blobs" -type f -name '*.jpg' | sort >"$work/files.txt"
images=$(wc -l <"$work/files.txt")
for run in $(seq "${RUNS:-3}"); do
  rm -rf "$work/store" && cp -r "$work/imported" "$work/store"
  start=$(date +%s.%N)
  target/release/pipeline --store "$work/store" label bench >/dev/null
  end=$(date +%s.%N)
  echo "run $run pipeline: $(echo "$images / ($end - $start)" | bc -l | cut -c1-6) images/s"
  "$PY" bench/torch_twins.py label --list "$work/files.txt" \
    --weights .weights/efficientnet-lite0.safetensors --procs "$(nproc)" 2>/dev/null |
    "$PY" -c 'import json, sys; print("run", sys.argv[1], "pytorch: %.2f images/s" % json.load(sys.stdin)["images_per_s"])' "$run"
done
