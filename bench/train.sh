#!/usr/bin/env bash
# `pipeline train` against our own PyTorch port of the same step (bench/train_torch.py, the
# same torch 2.11.0 wheel from PyPI), in the same run, same config, on the CPU, for the three
# settings of the PyTorch baseline quoted in the issue (2-core machine):
#   a: 256 px, batch 1, ngf = ndf = 64   (quoted: 0.745 s/step)
#   b: 128 px, batch 4, ngf = ndf = 64   (quoted: 0.74 s/step)
#   c:  64 px, batch 8, ngf = ndf = 32   (quoted: 0.12 s/step)
#   e: 256 px, batch 16, ngf = ndf = 64   (for a GPU: DEVICE=cuda)
# and the pretrained recipe against its PyTorch twin (bench/torch_twins.py step):
#   d: 128 px, batch 8, encoder frozen: two epochs of L1 alone, one of GAN (ndf = 32); the
#      L1 figure is from the second epoch (the first also converts each pair to Lab once).
# The goal for d's L1 step: no slower than c's.
# The Rust side trains one epoch on a temporary store holding the first PHOTOS photos of
# ../shared/data/brown_bear, built at the setting's load size; its per-step seconds are
# batch / images_per_s from metrics.jsonl (the step alone: the trainer's wait for the next
# batch is not in it), and loader_ms is the time the background loader spent assembling
# that batch (an upper bound of the loader's share: it runs on its own thread, prefetched).
# The first WARMUP steps are skipped on both sides; PyTorch times as many steps as Rust did.
# Both sides run with THREADS intra-op threads (2 = libtorch's default on this machine), on
# DEVICE (cpu, or cuda: each step of both sides ends reading its losses, so it is synced).
# On a GPU machine with PyTorch and no cargo: carry target/release/pipeline, then
# NO_BUILD=1 PY=python3 DEVICE=cuda bench/train.sh a e   (scripts/libtorch uses its torch).
#
# Set-up: scripts/engines (its .engines/python has the same torch 2.11.0 wheel)
# Usage:  bench/train.sh                 all three settings
#         bench/train.sh c d             settings c and d only (any of a b c d e)
#         PY=/path/python THREADS=2 WARMUP=2 NO_BUILD=1 KEEP=1 bench/train.sh
#         NO_TORCH=1 bench/train.sh c d  pipeline alone (no torch needed; PY = python3)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${NO_TORCH:-}" ]; then PY=${PY:-python3}; else PY=${PY:-.engines/python/bin/python}; fi
THREADS=${THREADS:-2}
DEVICE=${DEVICE:-cpu}
WARMUP=${WARMUP:-2}
DATA=${DATA:-../shared/data/brown_bear}

# name crop batch ngf(=ndf) load-size photos
SETTINGS=(
  "a 256 1 64 286 11"
  "b 128 4 64 144 46"
  "c 64 8 32 72 300"
  "e 256 16 64 286 300"
)
declare -A QUOTED=([a]=0.745 [b]=0.74 [c]=0.12 [e]=-)
wanted=${*:-a b c d}

[ -n "${NO_TORCH:-}" ] || "$PY" -c 'import torch, sys; v = torch.__version__.split("+")[0]; sys.exit(0 if v == "2.11.0" else f"torch {v}, expected 2.11.0")'
torch_env=$(scripts/libtorch)  # a failure here stops the script
eval "$torch_env"
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --features train --quiet
fi
bin=$PWD/target/release/pipeline

work=$(mktemp -d /tmp/bench-train.XXXXXX)
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "keeping $work" >&2; fi
store=$work/store
mapfile -t photos < <(find "$DATA" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort)

# Median per-step seconds in a run's metrics.jsonl: all steps, or those of one phase (L1,
# GAN) and maybe of one epoch.
rust_steps() {
  "$PY" - "$1" "$2" "$WARMUP" "${3:-}" "${4:-0}" <<'EOF'
import json, statistics, sys
path, batch, warmup, phase, epoch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rows = [json.loads(line) for line in open(path)]
rows = [r for r in rows if "step" in r and phase in ("", r["phase"]) and epoch in (0, r["epoch"])]
timed = rows[warmup:]
if batch > 1 and len(timed) > 1:
    timed = timed[:-1]  # the last batch of an epoch may be short: batch / rate would be wrong
s = [batch / r["images_per_s"] for r in timed]
loader = [r["loader_ms"] for r in timed]
share = [l / 1000 / t for l, t in zip(loader, s)]
print(json.dumps({"impl": "pipeline", "steps": len(s), "all_steps": len(rows),
                  "s_per_step": statistics.median(s), "s_min": min(s), "s_max": max(s),
                  "loader_ms": statistics.median(loader), "loader_share": statistics.median(share),
                  "loader_ms_max": max(loader)}))
EOF
}

[ -n "${NO_TORCH:-}" ] || "$PY" bench/train_torch.py --counts
rows=()
for setting in "${SETTINGS[@]}"; do
  read -r name crop batch ngf size count <<<"$setting"
  [[ " $wanted " == *" $name "* ]] || continue
  echo "== setting $name: ${crop} px, batch $batch, ngf = ndf = $ngf (load size $size, $count photos)" >&2

  # Rust: import the photos, build at the load size, train one epoch.
  folder=$work/photos-$name
  mkdir -p "$folder"
  for photo in "${photos[@]:0:$count}"; do
    cp "$photo" "$folder/$(basename "$(dirname "$photo")")-$(basename "$photo")"
  done
  cfg=$work/pipeline-$name.toml
  cat >"$cfg" <<EOF
[build]
size = $size

[train]
ngf = $ngf
ndf = $ngf
crop = $crop
batch_size = $batch
epochs = 1
epochs_decay = 0
checkpoint_every = 1000
EOF
  dataset=bench-$name
  "$bin" --store "$store" --config "$cfg" import "$folder" --dataset "$dataset" >&2
  "$bin" --store "$store" --config "$cfg" build "$dataset" --size "$size" >&2
  OMP_NUM_THREADS=$THREADS "$bin" --store "$store" --config "$cfg" \
    train "$dataset" --run "bench-$name" --device "$DEVICE" --epochs 1 >&2
  rust=$(rust_steps "$store/runs/bench-$name/metrics.jsonl" "$batch")
  echo "$rust"
  steps=$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["steps"])' "$rust")

  # PyTorch: the same step, as many timed steps, same threads.
  torch=-
  if [ -z "${NO_TORCH:-}" ]; then
    torch=$("$PY" bench/train_torch.py --crop "$crop" --batch "$batch" --ngf "$ngf" --ndf "$ngf" \
      --steps "$steps" --warmup "$WARMUP" --threads "$THREADS" --device "$DEVICE" \
      2>"$work/torch-$name.log") \
      || { cat "$work/torch-$name.log" >&2; exit 1; }
    grep '^params' "$work/torch-$name.log" >&2
    echo "$torch"
  fi
  rows+=("$name|$crop|$batch|$ngf|${QUOTED[$name]}|$torch|$rust")
done

if [[ " $wanted " == *" d "* ]]; then
  echo "== setting d: the pretrained recipe, 128 px, batch 8, encoder frozen (load size 144)" >&2
  folder=$work/photos-d
  mkdir -p "$folder"
  for photo in "${photos[@]}"; do
    cp "$photo" "$folder/$(basename "$(dirname "$photo")")-$(basename "$photo")"
  done
  cfg=$work/pipeline-d.toml
  cat >"$cfg" <<EOF
[build]
size = 144

[train]
recipe = "pretrained"
checkpoint_every = 1000

[train.pretrained]
crop = 128
batch_size = 8
freeze_epochs = 3
ndf = 32
weights = "$PWD/.weights/efficientnet-lite0.safetensors"
EOF
  "$bin" --store "$store" --config "$cfg" import "$folder" --dataset bench-d >&2
  "$bin" --store "$store" --config "$cfg" build bench-d >&2
  OMP_NUM_THREADS=$THREADS "$bin" --store "$store" --config "$cfg" \
    train bench-d --run bench-d --device "$DEVICE" --epochs 3 >&2
  for phase in "L1 2" "GAN 3"; do
    read -r name epoch <<<"$phase"
    rust=$(rust_steps "$store/runs/bench-d/metrics.jsonl" 8 "$name" "$epoch")
    echo "$rust"
    torch=-
    if [ -z "${NO_TORCH:-}" ]; then
      steps=$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["steps"])' "$rust")
      torch=$(OMP_NUM_THREADS=$THREADS "$PY" bench/torch_twins.py step --phase "${name,,}" \
        --crop 128 --batch 8 --ndf 32 --steps "$steps" --warmup "$WARMUP" --threads "$THREADS")
      echo "$torch"
    fi
    rows+=("d, $name|128|8|-|-|$torch|$rust")
  done
fi

echo
echo "| setting | PyTorch s/step (quoted) | PyTorch s/step | pipeline s/step | ratio PyTorch/pipeline (>1: we are faster) | loader ms (median) | loader share (median) | timed steps |"
echo "|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  "$PY" - "$row" <<'EOF'
import json, sys
name, crop, batch, ngf, quoted, torch, rust = sys.argv[1].split("|")
r = json.loads(rust)
what = f"ngf=ndf={ngf}" if ngf != "-" else "pretrained, encoder frozen"
if torch == "-":  # NO_TORCH
    print(f"| {name}: {crop} px, batch {batch}, {what} | {quoted} | - "
          f"| {r['s_per_step']:.3f} | - | {r['loader_ms']:.1f} | {100 * r['loader_share']:.2f}% | {r['steps']} |")
    sys.exit()
t = json.loads(torch)
print(f"| {name}: {crop} px, batch {batch}, {what} | {quoted} | {t['s_per_step']:.3f} "
      f"| {r['s_per_step']:.3f} | {t['s_per_step'] / r['s_per_step']:.2f}x "
      f"| {r['loader_ms']:.1f} | {100 * r['loader_share']:.2f}% | {r['steps']} |")
EOF
done
