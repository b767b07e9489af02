//! Training a colorizer. Always compiled, so pipeline.toml parses the same in every build:
//! `config` (the `[train]` keys), `choice` (which checkpoint) and `run_record` (a run's
//! record and folders, which `gc` reads too); the rest needs libtorch and the `train`
//! cargo feature:
//! - data: `loader` (shards to batches, center crops);
//! - models: `nets` (the networks of both recipes);
//! - training: `recipes` (a step of each recipe), `schedule` (phases, learning rates,
//!   budgets), `trainer` (the loop; `request` its interface, `run` opening a run, `steps`
//!   an epoch's steps), `validation`, `checkpoint`, `metrics_log`, `figures`, `adam`,
//!   `ema`, `diffaugment`, `dist` (data-parallel ranks over torch's c10d);
//! - `device`, `error`. Using a trained colorizer is `eval`'s.
//!
//! Imports `dataset`, `store`, `photo`, `durable`, `setting`.

pub mod choice;
pub mod config;
pub mod run_record;

#[cfg(feature = "train")]
mod adam;
#[cfg(feature = "train")]
pub mod checkpoint;
#[cfg(feature = "train")]
pub mod device;
#[cfg(feature = "train")]
mod diffaugment;
#[cfg(feature = "train")]
pub mod dist;
#[cfg(feature = "train")]
mod ema;
#[cfg(feature = "train")]
pub mod error;
#[cfg(feature = "train")]
mod figures;
#[cfg(feature = "train")]
pub mod loader;
#[cfg(feature = "train")]
pub mod metrics_log;
#[cfg(feature = "train")]
pub mod nets;
#[cfg(feature = "train")]
pub mod recipes;
#[cfg(feature = "train")]
mod request;
#[cfg(feature = "train")]
mod run;
#[cfg(feature = "train")]
pub mod schedule;
#[cfg(feature = "train")]
mod steps;
#[cfg(feature = "train")]
pub mod trainer;
#[cfg(feature = "train")]
pub mod validation;
