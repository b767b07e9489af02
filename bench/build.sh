#!/usr/bin/env bash
# `pipeline build` of the bench corpus against the OpenCV and Pillow preprocessors of
# ../shared/bench, in the same run. The corpus is imported into a store and built once
# (untimed: the first build also measures each image's colour for curation, once per
# image, about 5 s of CPU here); each timed run is `pipeline build bench --force`: decode,
# resize to 286, gray, write the shards, fsync, publish. Set-up: ../shared/bench/README.md sections 0 and 1.
# Usage: bench/build.sh            RUNS=3 bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps
cargo build --release --quiet
harness=$(mktemp -d)
cp -r ../shared/bench/. "$harness" && chmod -R u+w "$harness"
cp target/release/pipeline "$harness/pipeline"
store="$harness/store"
"$harness/pipeline" --store "$store" import /tmp/bench-corpus/img --dataset bench
"$harness/pipeline" --store "$store" build bench
/tmp/venv-bench/bin/python "$harness/bench.py" -n "${RUNS:-5}" --tag build cv2-2p pil-draft-2p \
  --add "pipeline-build=$harness/pipeline --store $store build bench --force"
