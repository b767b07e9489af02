#!/usr/bin/env bash
# `pipeline train --dist` with 2 CPU ranks against 1 process at the same global batch, on
# this machine: setting c of bench/train.sh (64 px, ngf = ndf = 32, 300 brown bears at
# load size 72), global batch 8: one process of batch 8 on 2 threads, or 2 ranks of batch 4
# on 1 thread each (Gloo over a loopback TCPStore, launched as torchrun would). Prints the
# median step time over one epoch (warm-up steps skipped) and, for the ranks, the median
# time a step spent in collectives (the gradient all-reduces and buffer broadcasts).
# Usage: bench/dist.sh            EPOCHS=2 WARMUP=3 bench/dist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP=${WARMUP:-3}
torch_env=$(scripts/libtorch)  # a failure here stops the script
eval "$torch_env"
cargo build --release --features train --quiet
bin=$PWD/target/release/pipeline
work=$(mktemp -d /tmp/bench-dist.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/photos"
find ../shared/data/brown_bear -type f -iname '*.jpg' | sort | head -300 | while read -r photo; do
  cp "$photo" "$work/photos/$(basename "$(dirname "$photo")")-$(basename "$photo")"
done
config() {
  cat >"$work/$1.toml" <<CONF
[build]
size = 72

[train]
ngf = 32
ndf = 32
crop = 64
batch_size = $2
epochs = ${EPOCHS:-1}
epochs_decay = 0
checkpoint_every = 1000
CONF
}
config one 8
config ranks 4
"$bin" --store "$work/store" --config "$work/one.toml" import "$work/photos" --dataset bench >/dev/null
"$bin" --store "$work/store" --config "$work/one.toml" build bench >/dev/null

OMP_NUM_THREADS=2 "$bin" --store "$work/store" --config "$work/one.toml" \
  train bench --run one --device cpu >/dev/null 2>&1
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for rank in 0 1; do
  RANK=$rank WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1 \
    "$bin" --store "$work/store" --config "$work/ranks.toml" \
    train bench --run ranks --device cpu --dist >/dev/null 2>&1 &
done
wait

python3 - "$work/store/runs" "$WARMUP" <<'PY'
import json, statistics, sys
runs, warmup = sys.argv[1], int(sys.argv[2])
def steps(run):
    rows = [json.loads(l) for l in open(f"{runs}/{run}/metrics.jsonl")]
    return [r for r in rows if "step" in r][warmup:-1]
one, ranks = steps("one"), steps("ranks")
t1 = statistics.median(8 / r["images_per_s"] for r in one)
t2 = statistics.median(8 / r["images_per_s"] for r in ranks)
comm = statistics.median(r["collectives_ms"] for r in ranks) / 1000
print(f"1 process, batch 8, 2 threads:       {t1:.3f} s a step ({len(one)} steps)")
print(f"2 ranks, batch 4 each, 1 thread each: {t2:.3f} s a step ({len(ranks)} steps), of which "
      f"{comm:.3f} s ({100 * comm / t2:.0f}%) in collectives; {t1 / t2:.2f}x the single process's rate")
PY
