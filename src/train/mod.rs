//! Training and using a colorizer. `config` (the `[train]` keys) is always compiled, so
//! pipeline.toml parses the same in every build, and so are `metrics` (the image-quality
//! measures `evaluate` and `validation` report) and `run_record` (which `gc` reads too); the rest needs libtorch and the `train`
//! cargo feature:
//! - data: `loader` (shards to batches, center crops);
//! - models: `nets` (the networks of both recipes);
//! - training: `recipes` (a step of each recipe), `schedule` (phases, learning rates,
//!   budgets), `trainer` (the loop), `validation`, `checkpoint`, `metrics_log`, `figures`,
//!   `adam`, `ema`, `diffaugment`, `dist` (data-parallel ranks over torch's c10d);
//! - inference: `colorizer` (a run's generator at a checkpoint), `colorize`, `evaluate`;
//! - `device`, `error`.

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
