#!/usr/bin/env bash
# `pipeline serve` under load against a bare forward pass of the same model in PyTorch:
# one real photo of 512 x 512 (a brown bear, center-cropped), POST /v1/colorize at 1 and at
# 4 concurrent clients (Apache Bench, `ab`: requests/s, p50 and p95 latency), then the
# exported colorizer.pt timed in PyTorch 2.11 (.engines/python) at the network's input
# size, one image at a time, on the same cores. Needs a trained run: examples/bears.sh
# trains bears-pre into store-bears/.
# Usage: bench/serve.sh            STORE=store-bears RUN=bears-pre REQUESTS=200 bench/serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
store=${STORE:-store-bears}
run=${RUN:-bears-pre}
requests=${REQUESTS:-200}
command -v ab >/dev/null || { echo "ab is missing: apt-get install apache2-utils" >&2; exit 1; }
scripts/engines
export TORCH_PYTHON=${TORCH_PYTHON:-$PWD/.engines/python/bin/python}
torch_env=$(scripts/libtorch)  # a failure here stops the script
eval "$torch_env"
cargo build --release --features train --quiet
bin=$PWD/target/release/pipeline
python=$PWD/.engines/python/bin/python
work=$(mktemp -d /tmp/bench-serve.XXXXXX)
server=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
photo=$(find ../shared/data/brown_bear -type f -iname '*.jpg' | sort | head -1)
"$python" - "$photo" "$work/photo.jpg" <<'PY'
import sys
from PIL import Image, ImageOps
ImageOps.fit(Image.open(sys.argv[1]).convert("RGB"), (512, 512)).save(sys.argv[2], quality=90)
PY
"$bin" --store "$store" export-model --run "$run" --out "$work/model" >/dev/null
"$bin" --store "$store" serve --run "$run" --addr 127.0.0.1:0 --device cpu >"$work/serve.log" 2>&1 &
server=$!
until grep -q "serving" "$work/serve.log" 2>/dev/null; do sleep 0.2; done
addr=$(sed -n 's|.*http://\([^/]*\)/.*|\1|p' "$work/serve.log")
url="http://$addr/v1/colorize?run=$run"
ab -q -n 10 -c 1 -p "$work/photo.jpg" -T image/jpeg "$url" >/dev/null   # warm-up
for clients in 1 4; do
  ab -q -n "$requests" -c "$clients" -p "$work/photo.jpg" -T image/jpeg "$url" >"$work/ab-$clients.txt"
  rps=$(awk '/Requests per second/ {print $4}' "$work/ab-$clients.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/ab-$clients.txt")
  p95=$(awk '$1 == "95%" {print $2}' "$work/ab-$clients.txt")
  failed=$(awk '/Failed requests/ {print $3}' "$work/ab-$clients.txt")
  non2xx=$(awk '/Non-2xx responses/ {print $3}' "$work/ab-$clients.txt")
  echo "serve, $clients client(s): $rps requests/s, p50 $p50 ms, p95 $p95 ms, failed $failed, non-2xx ${non2xx:-0}"
done
side=$(sed -n 's/.*"trained_side": \([0-9]*\).*/\1/p' "$work/model/config.json")
"$python" - "$work/model/colorizer.pt" "$side" "$requests" <<'PY'
import statistics, sys, time
import torch
module = torch.jit.load(sys.argv[1])
side, n = int(sys.argv[2]), int(sys.argv[3])
gray = torch.rand(1, 1, side, side)
times = []
with torch.no_grad():
    for i in range(n + 10):
        start = time.perf_counter()
        module(gray)
        if i >= 10:
            times.append(time.perf_counter() - start)
times.sort()
print(f"PyTorch {torch.__version__}, colorizer.pt at {side} x {side}, {torch.get_num_threads()} threads: "
      f"p50 {1000 * statistics.median(times):.1f} ms, p95 {1000 * times[int(0.95 * len(times))]:.1f} ms, "
      f"{1 / statistics.mean(times):.1f} forward passes/s")
PY
