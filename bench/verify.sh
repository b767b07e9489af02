#!/usr/bin/env bash
# `pipeline verify` and `pipeline gc` on a store holding the bench corpus (2160 real-photo
# JPEGs imported, then built once): how long a full check (every blob read and hashed,
# every record and shard checked) and a collection pass take. Needs hyperfine and the
# corpus of ../shared/bench (README sections 0 and 1).
# Usage: bench/verify.sh            RUNS=10 bench/verify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps
command -v hyperfine >/dev/null || sudo apt-get install -y hyperfine
cargo build --release --quiet
store=$(mktemp -d)/store
bin=target/release/pipeline
"$bin" --store "$store" import /tmp/bench-corpus/img --dataset bench >/dev/null
"$bin" --store "$store" build bench >/dev/null
"$bin" --store "$store" verify
du -sh "$store/blobs" "$store/datasets"
hyperfine --warmup 1 --runs "${RUNS:-10}" \
  "$bin --store $store verify" \
  "$bin --store $store gc"
