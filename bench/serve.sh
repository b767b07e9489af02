#!/usr/bin/env bash
# `pipeline serve` under load against a bare forward pass of the same model in PyTorch:
# one real photo of 512 x 512 (a brown bear, center-cropped), POST /v1/colorize at 1 and at
# 4 concurrent clients (Apache Bench, `ab`: requests/s, p50 and p95 latency), then the
# same colorization in PyTorch 2.11 (.engines/python): the exported colorizer.pt (the
# whole path serve runs: squash to the trained side, network, colours back to 512 x 512)
# on the photo's gray 512 x 512, one image at a time, on the same cores. The server's
# overhead is its extra time over that. Needs a trained run: examples/bears.sh trains
# bears-pre into store-bears/.
# Usage: bench/serve.sh            STORE=store-bears RUN=bears-pre REQUESTS=100 ROUNDS=5 bench/serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
store=${STORE:-store-bears}
run=${RUN:-bears-pre}
requests=${REQUESTS:-100}
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
${SERVE_ENV:-} "$bin" --store "$store" serve --run "$run" --addr 127.0.0.1:0 --device cpu >"$work/serve.log" 2>&1 &
server=$!
until grep -q "serving" "$work/serve.log" 2>/dev/null; do sleep 0.2; done
addr=$(sed -n 's|.*http://\([^/]*\)/.*|\1|p' "$work/serve.log")
url="http://$addr/v1/colorize?run=$run"
ab -q -n 10 -c 1 -p "$work/photo.jpg" -T image/jpeg "$url" >/dev/null   # warm-up
# Round-robin, so that both sides meet the same machine (a shared 2-core VM drifts by a
# third from minute to minute): each round runs ab at 1 client, ab at 4, then the bare
# forward pass in PyTorch, REQUESTS times each.
"$python" - "$work" "$url" "$requests" "${ROUNDS:-5}" <<'PY'
import csv, re, statistics, subprocess, sys, time
import numpy, torch
from PIL import Image
work, url, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
module = torch.jit.load(f"{work}/model/colorizer.pt")
pixels = numpy.asarray(Image.open(f"{work}/photo.jpg").convert("L"), dtype=numpy.float32) / 255
gray = torch.from_numpy(pixels)[None, None]

def ab(clients):
    out = subprocess.run(["ab", "-q", "-n", str(n), "-c", str(clients), "-p", f"{work}/photo.jpg",
                          "-T", "image/jpeg", "-e", f"{work}/ab.csv", url],
                         check=True, capture_output=True, text=True).stdout
    field = lambda name: next(l.split(":")[1].split()[0] for l in out.splitlines() if l.startswith(name))
    # ab counts a body whose length differs from the first one's as failed ("Length"): a
    # photo colorized in a batch may differ by one level in a few pixels, so its PNG's
    # length does. Failures are the other kinds and non-2xx answers.
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", out)
    bad = sum(int(k) for k in kinds.groups()) if kinds else int(field("Failed requests"))
    bad += int(next((l.split(":")[1] for l in out.splitlines() if l.startswith("Non-2xx")), "0"))
    percent = {int(row[0]): float(row[1]) for row in list(csv.reader(open(f"{work}/ab.csv")))[1:]}
    return {"rps": float(field("Requests per second")), "p50": percent[50], "p95": percent[95], "bad": bad}

def forward():
    times = []
    with torch.no_grad():
        for i in range(n + 5):
            start = time.perf_counter()
            module(gray)
            if i >= 5:
                times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return {"rps": 1000 / statistics.mean(times), "p50": statistics.median(times),
            "p95": times[int(0.95 * len(times))]}

results = {"1": [], "4": [], "torch": []}
for r in range(rounds):
    results["1"].append(ab(1))
    results["4"].append(ab(4))
    results["torch"].append(forward())
    one, four, bare = (results[k][-1] for k in ("1", "4", "torch"))
    print(f"round {r + 1}: serve p50 {one['p50']:.1f} ms, {four['rps']:.1f} req/s at 4; "
          f"PyTorch p50 {bare['p50']:.1f} ms, {bare['rps']:.1f}/s", flush=True)
med = lambda k, f: statistics.median(x[f] for x in results[k])
for clients in ("1", "4"):
    bad = sum(x["bad"] for x in results[clients])
    print(f"serve, {clients} client(s): {med(clients, 'rps'):.1f} requests/s, p50 {med(clients, 'p50'):.1f} ms, "
          f"p95 {med(clients, 'p95'):.1f} ms, failed or non-2xx {bad} of {rounds * n}")
print(f"PyTorch {torch.__version__}, colorizer.pt at {gray.shape[-1]} x {gray.shape[-2]}, "
      f"{torch.get_num_threads()} threads: p50 {med('torch', 'p50'):.1f} ms, p95 {med('torch', 'p95'):.1f} ms, "
      f"{med('torch', 'rps'):.1f} forward passes/s")
latency = statistics.median(x["p50"] / y["p50"] - 1 for x, y in zip(results["1"], results["torch"]))
throughput = statistics.median(y["rps"] / x["rps"] - 1 for x, y in zip(results["4"], results["torch"]))
print(f"serve's overhead over the bare forward pass (median of the rounds' ratios): "
      f"latency at 1 client {100 * latency:+.1f} %, throughput at 4 clients {100 * throughput:+.1f} %")
PY
