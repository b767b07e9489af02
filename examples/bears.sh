#!/usr/bin/env bash
# The seed paper's experiment, end to end: brown bears in, a colorizer out, then does it
# paint polar bears brown? Writes everything under $STORE (default store-bears/).
#
#   examples/bears.sh                 # import the photos in ../shared/data (offline)
#   ONLINE=1 examples/bears.sh        # fetch "brown bear" --top 250 from the engines instead
#   EPOCHS=60 examples/bears.sh       # a shorter run (default: 300 epochs, ~20 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
store=${STORE:-store-bears}
config=examples/bears-cpu.toml
pipeline() { scripts/run --store "$store" --config "$config" "$@"; }

if [ "${ONLINE:-0}" = 1 ]; then
  pipeline fetch --query-file queries/brown-bear.toml
  pipeline fetch --query-file queries/polar-bear.toml
else
  pipeline import ../shared/data/brown_bear --dataset brown-bear
  pipeline import ../shared/data/polar_bear --dataset polar-bear
fi
pipeline build
pipeline train brown-bear --run bears-cpu ${EPOCHS:+--epochs "$EPOCHS"}
pipeline colorize --run bears-cpu --dataset polar-bear --out "$store/figures/polar"
pipeline colorize --run bears-cpu --dataset brown-bear --out "$store/figures/brown"
pipeline eval --run bears-cpu --dataset brown-bear --split test
pipeline eval --run bears-cpu --dataset polar-bear --split all
echo "loss curve: $store/runs/bears-cpu/loss.svg; side by side: $store/figures/polar/"
