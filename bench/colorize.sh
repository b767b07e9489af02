#!/usr/bin/env bash
# `pipeline colorize` against its PyTorch twin (bench/torch_twins.py colorize: the same
# generator, the same weights, loaded from the run's export, the same path), on photos of
# 512 x 512, batch 1, on the CPU with the same threads, in the same run, alternating. A
# small pretrained run is trained first (untimed: 40 brown bears, one epoch at the recipe's
# 256 px; speed does not depend on how well it colours) and exported; the photos are the
# 21 polar bears, resized to 512 x 512. Both sides are timed end to end (read the photo,
# gray, the network at 256, a*b* back at 512, Lab -> sRGB, write a PNG); the twin also
# times the forward pass alone, at 256 and at 512.
# Set-up: scripts/engines (its .engines/python has the torch 2.11.0 wheel libtorch comes from).
# Usage: bench/colorize.sh            RUNS=5 THREADS=2 bench/colorize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/torch_side.sh
THREADS=${THREADS:-2}
bin=$PWD/target/release/pipeline
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/config.toml" <<TOML
[train]
recipe = "pretrained"
[train.pretrained]
weights = "$PWD/.weights/efficientnet-lite0.safetensors"
TOML
mkdir -p "$work/train" "$work/in"
find ../shared/data/brown_bear -type f -iname '*.jpg' | sort | head -40 |
  while read -r photo; do cp "$photo" "$work/train/$(basename "$(dirname "$photo")")-$(basename "$photo")"; done
run() { "$bin" --store "$work/store" --config "$work/config.toml" "$@"; }
run import "$work/train" --dataset bears >/dev/null
run build bears >/dev/null 2>&1
run train bears --run small --epochs 1 >/dev/null 2>&1
run export-model --run small --out "$work/model" >/dev/null 2>&1
"$PY" - "$work/in" ../shared/data/polar_bear <<'PYTHON'
import pathlib, sys
from PIL import Image
out, source = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for i, path in enumerate(sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))):
    Image.open(path).convert("RGB").resize((512, 512), Image.BICUBIC).save(out / f"polar-{i:02}.png")
PYTHON
photos=("$work"/in/*.png)
for round in $(seq "${RUNS:-3}"); do
  rm -rf "$work/out-pipeline" "$work/out-torch" && mkdir -p "$work/out-torch"
  start=$(date +%s.%N)
  OMP_NUM_THREADS=$THREADS run colorize --run small --out "$work/out-pipeline" "${photos[@]}" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "run $round pipeline: $(echo "${#photos[@]} / ($end - $start)" | bc -l | cut -c1-6) images/s end to end"
  OMP_NUM_THREADS=$THREADS "$PY" bench/torch_twins.py colorize --model "$work/model" \
    --out "$work/out-torch" --threads "$THREADS" "${photos[@]}" |
    "$PY" -c 'import json, sys; r = json.load(sys.stdin); print("run", sys.argv[1], "pytorch: %.2f images/s end to end; forward alone %.3f s at %d, %.3f s at 512" % (r["end_to_end_images_per_s"], r["forward_s"], r["side"], r["forward_512_s"]))' "$round"
done
