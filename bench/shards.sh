#!/usr/bin/env bash
# The bench corpus's URL list (2,160 URLs, ../shared/bench, served by nginx on 127.0.0.1)
# imported two ways on this machine: one `pipeline import` into a folder store, and
# `shard-urls` + a Slurm job array of 4 `import` workers into SeaweedFS + `merge`; then
# the merge built two ways: one `build` (its cache pulls every blob) and the job arrays
# `label` then `build` of 4 tasks each. Prints wall times, images/s and what each shard
# spent. Engines from scripts/engines, started
# by scripts/cluster. Set-up once: ../shared/bench/README.md sections 0 and 1 (the corpus
# in /tmp/bench-corpus; nginx).
# Usage: bench/shards.sh            SHARDS=8 bench/shards.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${SHARDS:-4}
scripts/deps
scripts/engines
cargo build --release --quiet
bin=$PWD/target/release/pipeline
urls=/tmp/bench-corpus/urls.txt
work=$(mktemp -d)
trap 'scripts/cluster stop "$work/s3"; scripts/cluster stop "$work/slurm"; rm -rf "$work"' EXIT
NO_LATENCY=1 bash ../shared/bench/serve.sh start >/dev/null
scripts/cluster s3 "$work/s3"
scripts/cluster slurm "$work/slurm"
. "$work/s3/env"
. "$work/slurm/env"
# Shard files of 250 pairs, so that each build task has two of them.
{ cat bench/http.toml; printf '[build]\nshard_size = 250\n'; } >"$work/bench.toml"
config="--config $work/bench.toml"
now() { date +%s.%N; }

start=$(now)
"$bin" $config --store "$work/local" import "$urls" --dataset bench --json >"$work/local.json"
local_s=$(echo "$(now) - $start" | bc)
local_images=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"])' "$work/local.json")

store=s3://bench/run
"$bin" $config --store $store shard-urls "$urls" --dataset bench --shards "$shards" >/dev/null
start=$(now)
job=$(sbatch --parsable --array=0-$((shards - 1)) --chdir "$work" --output "$work/shard-%a.log" \
  --wrap "$bin $config --store $store import --dataset bench --json")
# Polled every 0.1 s (sbatch --wait backs off to many seconds between its own polls).
while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; do sleep 0.1; done
array_s=$(echo "$(now) - $start" | bc)
start=$(now)
"$bin" $config --store $store merge --dataset bench --json >"$work/merge.json"
merge_s=$(echo "$(now) - $start" | bc)

# An array of $shards tasks running "pipeline ARGS"; its wall time.
array() {
  local start job
  start=$(now)
  job=$(sbatch --parsable --array=0-$((shards - 1)) --chdir "$work" --output "$work/$1-%a.log" \
    --export=ALL,XDG_CACHE_HOME="$work/xdg-$1" --wrap "$bin $config --store $store $2")
  while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; do sleep 0.1; done
  echo "$(now) - $start" | bc
}
start=$(now)
XDG_CACHE_HOME="$work/xdg-one" "$bin" $config --store $store build bench >"$work/build-one.log"
build_one_s=$(echo "$(now) - $start" | bc)
label_s=$(array label "label --json")
build_array_s=$(array build "build --json")
echo "one build (pull every blob, build, upload): $build_one_s s: $(grep built "$work/build-one.log")"
echo "$shards-task arrays: label $label_s s, then build $build_array_s s = $(echo "$label_s + $build_array_s" | bc) s"
for i in $(seq 0 $((shards - 1))); do tail -1 "$work/build-$i.log"; done

python3 - "$work" "$shards" "$local_s" "$local_images" "$array_s" "$merge_s" <<'PY'
import json, sys
work, shards = sys.argv[1], int(sys.argv[2])
local_s, local_images, array_s, merge_s = float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
stats = [json.loads(open(f"{work}/shard-{i}.log").read().strip().splitlines()[-1]) for i in range(shards)]
merged = json.load(open(f"{work}/merge.json"))
sharded_s = array_s + merge_s
print(f"one import:        {local_images} images in {local_s:.1f} s = {local_images / local_s:.0f} images/s")
print(f"{shards} Slurm workers: {merged['members']} members in {array_s:.1f} s (array) + {merge_s:.2f} s (merge)"
      f" = {merged['members'] / sharded_s:.0f} images/s")
for s in stats:
    print(f"  shard {s['shard']}: {s['images']} images, {s['seconds']:.1f} s, of which {s['upload_seconds']:.2f} s"
          f" writing {s['blobs_created']} blobs + manifest to S3")
mean = sum(s['seconds'] for s in stats) / shards
print(f"per shard: {mean:.1f} s mean worker time; Slurm's array took {array_s - max(s['seconds'] for s in stats):.1f} s"
      f" beyond the slowest worker"
      f" (scheduling, start-up; {shards} tasks of 1 CPU on this node's CPUs)")
PY
