#!/usr/bin/env bash
# `pipeline import` of the bench corpus's URL list against img2dataset, in the same run,
# on the same machine, through ../shared/bench's harness and nginx (127.0.0.1:18080).
# Set-up once per machine (about 10 minutes): ../shared/bench/README.md sections 0 and 1
# (apt packages, /tmp/venv-bench, /tmp/venv-i2d, /tmp/bench-corpus).
# Usage: bench/fetch.sh            RUNS=3 bench/fetch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps
cargo build --release --quiet
harness=$(mktemp -d)                      # the shared folder is read-only; results go here
cp -r ../shared/bench/. "$harness" && chmod -R u+w "$harness"
cp target/release/pipeline "$harness/pipeline"
NO_LATENCY=1 bash ../shared/bench/serve.sh start
/tmp/venv-bench/bin/python "$harness/bench.py" -n "${RUNS:-5}" --tag fetch i2d-files-cc-p2-t32 \
  --add "pipeline=$harness/pipeline --config $PWD/bench/http.toml --store {out} import {urls} --dataset bench"
