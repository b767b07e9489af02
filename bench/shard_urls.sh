#!/usr/bin/env bash
# `shard-urls` of a generated list of N URLs (default 100 M, about 5 GB) into SeaweedFS
# (scripts/cluster), from a file and from standard input: wall time and peak RSS
# (/usr/bin/time). The list streams through: memory stays that of one line and one
# multipart buffer, whatever N.
# Usage: bench/shard_urls.sh            N=10000000 SHARDS=10000 bench/shard_urls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-100000000}
shards=${SHARDS:-10000}
scripts/engines
cargo build --release --quiet
bin=$PWD/target/release/pipeline
work=$(mktemp -d /tmp/bench-shard-urls.XXXXXX)
trap 'scripts/cluster stop "$work/s3"; rm -rf "$work"' EXIT
scripts/cluster s3 "$work/s3"
. "$work/s3/env"
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "https://images.example/%02d/%09d.jpg\n", i % 97, i }' >"$work/urls.txt"
echo "$n URLs, $(du -h "$work/urls.txt" | cut -f1)"
for from in file stdin; do
  case $from in
    file) args=("$work/urls.txt"); input=/dev/null ;;
    stdin) args=(-); input=$work/urls.txt ;;
  esac
  /usr/bin/time -f "%e s, peak RSS %M KiB" -o "$work/time" \
    "$bin" --store "s3://bench/shard-urls-$from" shard-urls "${args[@]}" --dataset bench --shards "$shards" <"$input"
  echo "from $from: $(cat "$work/time")"
done
