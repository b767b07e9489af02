#!/usr/bin/env bash
# Near-duplicate lookups per second, photo::near's multi-index against the linear scan it
# replaced, on N synthetic hashes whose bits are set as often as in the real photos'
# perceptual hashes (../shared/data), 1 % of them with a planted near copy; each query is a
# member with one bit flipped. Also prints the index's build time and the process's peak RSS.
# Usage: bench/near.sh            N=10000000 QUERIES=20000 DISTANCE=16 bench/near.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example near --quiet
exec target/release/examples/near "${N:-10000000}" "${QUERIES:-20000}" "${DISTANCE:-16}" ../shared/data
