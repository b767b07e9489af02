#!/usr/bin/env bash
# The seed paper's experiment, end to end: brown bears in, curated, colorizers out, then do
# they paint polar bears brown? Curation (queries/*.toml's [curate]: a brown bear, or an
# ice bear, in the ImageNet classifier's top 5; no gray or sepia photos; no test image
# nearly duplicating a training image) decides what is built. Trains both recipes on the same build with the same budget
# (examples/bears-cpu.toml: 15 minutes each on 2 cores): the paper's pix2pix from scratch,
# and the pretrained one (an ImageNet encoder, colour as classes, L1 then GAN). Writes under $STORE
# (default store-bears/).
#
#   examples/bears.sh                 # the photos in ../shared/data when they are there,
#                                     # else fetched from the engines (it says which)
#   ONLINE=1 examples/bears.sh        # fetch "brown bear" --top 250 from the engines
#   ONLINE=0 examples/bears.sh        # only the offline photos
#   MINUTES=5 examples/bears.sh       # a shorter budget per recipe
set -euo pipefail
cd "$(dirname "$0")/.."
store=${STORE:-store-bears}
config=examples/bears-cpu.toml
photos=../shared/data
pipeline() { scripts/run --store "$store" --config "$config" "$@"; }

# The inputs first, before minutes of downloads and building.
scripts/preflight
offline() { [ -d "$photos/brown_bear" ] && [ -d "$photos/polar_bear" ]; }
online() {
  python3 - <<'PY' 2>/dev/null
import socket
for host in ("www.bing.com", "duckduckgo.com", "api.openverse.org", "commons.wikimedia.org"):
    try:
        socket.create_connection((host, 443), timeout=5).close()
        raise SystemExit(0)
    except OSError:
        pass
raise SystemExit(1)
PY
}
case "${ONLINE:-}" in
  1) mode=online ;;
  0) mode=offline ;;
  *) if offline; then mode=offline; else mode=online; fi ;;
esac
if [ "$mode" = offline ] && ! offline; then
  echo "ONLINE=0, but the offline photos are not there ($photos/brown_bear, $photos/polar_bear)" >&2
  exit 1
fi
if [ "$mode" = online ] && ! online; then
  echo "no image-search engine can be reached (Bing, DuckDuckGo, Openverse, Wikimedia Commons)," >&2
  echo "and the offline photos are not there ($photos/brown_bear, $photos/polar_bear)" >&2
  exit 1
fi
if [ "$mode" = offline ]; then
  echo "== the bears: the offline photos in $photos (ONLINE=1 fetches from the engines instead)"
  pipeline import "$photos/brown_bear" --dataset brown-bear
  pipeline import "$photos/polar_bear" --dataset polar-bear
else
  echo "== the bears: fetched from the image-search engines (queries/*.toml)"
  pipeline fetch --query-file queries/brown-bear.toml
  pipeline fetch --query-file queries/polar-bear.toml
fi
pipeline label                      # top-5 ImageNet classes and color statistics, per image
pipeline curate brown-bear --show   # what the build leaves out, and why
pipeline curate polar-bear --show
pipeline build
pipeline status
budget=(${MINUTES:+--minutes "$MINUTES"})
pipeline train brown-bear --recipe pix2pix --run bears-paper "${budget[@]}"
pipeline train brown-bear --recipe pretrained --run bears-pre "${budget[@]}"

runs=(--run bears-paper --run bears-pre)
echo "== brown bears, test split: the paper's recipe | the pretrained one | gray"
pipeline eval "${runs[@]}" --dataset brown-bear --split test
echo "== polar bears, all: do they come out brown?"
pipeline eval "${runs[@]}" --dataset polar-bear --split all
echo "== the same at each vividness of the pretrained run (its own was chosen on validation)"
pipeline eval --run bears-pre --dataset polar-bear --split all --vividness 1,0.6,0.38,0.2,0.1
# gray | paper | pretrained | original, at each photo's own resolution.
pipeline colorize "${runs[@]}" --dataset polar-bear --out "$store/figures/polar"
pipeline colorize "${runs[@]}" --dataset brown-bear --split test --out "$store/figures/brown"
# The pretrained run at its boldest temperature (the plain mean of its rebalanced classes).
pipeline colorize --run bears-pre --vividness 1 --dataset polar-bear --out "$store/figures/polar-bold"
echo "sheets (gray | paper | pretrained | original): $store/figures/{polar,brown}/; polar-bold/: the pretrained run at vividness 1"
# Everything above in a browser: galleries, curves, samples, scores, runs side by side.
pipeline report "${runs[@]}"
echo "open $store/report/index.html"
# The pretrained run handed on: TorchScript, safetensors, a model card with its scores.
pipeline export-model --run bears-pre --out "$store/model" --cross-domain polar-bear
echo "model: $store/model/ (README.md is its card); to try both runs in a browser:"
echo "  scripts/run --store $store --config $config serve"
