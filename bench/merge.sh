#!/usr/bin/env bash
# `merge` at scale: examples/merge_sim writes N synthetic members' shard manifests into
# SeaweedFS (scripts/cluster s3) as SHARDS import workers would leave them, hashes drawn as
# the shared photos' with planted near copies and exact copies; then `pipeline merge` runs
# over them under /usr/bin/time: wall time and peak RSS.
# Usage: bench/merge.sh            N=10000000 SHARDS=1000 bench/merge.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-1000000}
shards=${SHARDS:-100}
scripts/engines
cargo build --release --quiet --example merge_sim
cargo build --release --quiet
bin=$PWD/target/release/pipeline
work=$(mktemp -d /tmp/bench-merge.XXXXXX)
trap 'scripts/cluster stop "$work/s3"; rm -rf "$work"' EXIT
scripts/cluster s3 "$work/s3"
. "$work/s3/env"
start=$(date +%s.%N)
target/release/examples/merge_sim s3://bench/merge sim "$n" "$shards" ../shared/data
echo "written in $(echo "$(date +%s.%N) - $start" | bc) s"
/usr/bin/time -f "%e s, peak RSS %M KiB" -o "$work/time" "$bin" --store s3://bench/merge merge --dataset sim
echo "merge: $(cat "$work/time")"
