//! The pix2pix trainer. `config` (the `[train]` keys) is always compiled, so pipeline.toml
//! parses the same in every build; the rest needs libtorch and the `train` cargo feature:
//! `model` (the networks), `loader` (shards to batches), `adam`, `trainer` (the loop,
//! checkpoints), `figures` (loss curves, sample grids), `infer` (colorize, eval), `device`.

pub mod config;

#[cfg(feature = "train")]
mod adam;
#[cfg(feature = "train")]
pub mod device;
#[cfg(feature = "train")]
mod figures;
#[cfg(feature = "train")]
pub mod infer;
#[cfg(feature = "train")]
pub mod loader;
#[cfg(feature = "train")]
pub mod nets;
#[cfg(feature = "train")]
pub mod trainer;
