# Sourced by the bench scripts that run a PyTorch twin beside pipeline (label.sh,
# colorize.sh), from the repository root: fetches what both sides need (the weights,
# .engines/python with the torch 2.11.0 wheel libtorch comes from), sets libtorch's
# environment, sets PY (the twin's Python, unless given) and builds the release binary
# with the `train` feature.
scripts/deps
scripts/weights
scripts/engines
torch_env=$(scripts/libtorch)  # a failure here stops the script
eval "$torch_env"
PY=${PY:-.engines/python/bin/python}
cargo build --release --quiet --features train
