#!/usr/bin/env bash
# `pipeline import` of local photos at 10,000 and at 100,000, to show that the dedup stage
# (exact and near duplicates through `photo::near`'s index) no longer grows with the store:
# the time an image should stay flat from one size to the other. The photos are 160 x 160
# JPEG crops of the bench corpus's real photos (../shared/bench; each crop a random
# window of a random photo, so their perceptual hashes are real photos' and some crops
# nearly duplicate others; the corpus's broken files are passed over), generated once into /tmp/import-scale (about 1 GB).
# Usage: bench/import_scale.sh            SIZES="10000 100000" bench/import_scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-10000 100000}
largest=$(printf '%s\n' $sizes | sort -n | tail -1)
photos=/tmp/import-scale
scripts/engines
cargo build --release --quiet
bin=$PWD/target/release/pipeline
python=$PWD/.engines/python/bin/python
[ -d /tmp/bench-corpus/img ] || { echo "the bench corpus is missing: ../shared/bench/README.md" >&2; exit 1; }
if [ "$(find "$photos" -name '*.jpg' 2>/dev/null | wc -l)" -lt "$largest" ]; then
  "$python" - "$photos" "$largest" <<'PY'
import os, random, sys
from concurrent.futures import ProcessPoolExecutor
from PIL import Image
out, count = sys.argv[1], int(sys.argv[2])
sources = sorted(os.path.join("/tmp/bench-corpus/img", f) for f in os.listdir("/tmp/bench-corpus/img"))

def make(first):
    rng = random.Random(first)
    for n in range(first, min(first + 1000, count)):
        photo = None
        while photo is None or min(photo.size) < 160:
            try:  # the corpus keeps some broken files, as the web has them
                photo = Image.open(sources[rng.randrange(len(sources))]).convert("RGB")
            except OSError:
                pass
        w, h = photo.size
        side = rng.randint(min(w, h) // 3, min(w, h))
        x, y = rng.randint(0, w - side), rng.randint(0, h - side)
        folder = os.path.join(out, f"{n // 1000:03d}")
        os.makedirs(folder, exist_ok=True)
        crop = photo.crop((x, y, x + side, y + side)).resize((160, 160), Image.BICUBIC)
        crop.save(os.path.join(folder, f"{n:06d}.jpg"), quality=85)

with ProcessPoolExecutor() as pool:
    list(pool.map(make, range(0, count, 1000)))
PY
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for size in $sizes; do
  mkdir -p "$work/in-$size"
  # The first SIZE photos, as folders of 1,000 hard-linked in.
  for k in $(seq 0 $((size / 1000 - 1))); do cp -al "$photos/$(printf %03d "$k")" "$work/in-$size/"; done
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss-$size" \
    "$bin" --store "$work/store-$size" import "$work/in-$size" --dataset scale --json >"$work/out-$size.json"
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  "$python" - "$work/out-$size.json" "$size" "$seconds" "$(cat "$work/rss-$size")" <<'PY'
import json, sys
summary, size, seconds, rss = json.load(open(sys.argv[1])), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f"{size} photos: {seconds:.1f} s, {1000 * seconds / size:.2f} ms a photo, {summary['images']} images, "
      f"{summary['duplicates']} duplicates, peak RSS {rss / 1024:.0f} MB")
PY
  rm -rf "$work/store-$size"
done
