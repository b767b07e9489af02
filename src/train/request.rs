//! What `trainer::train` is asked to do (`Request`), what it reports after each epoch
//! (`EpochReport`) and how it ends (`Trained`): the loop's interface, below both the loop
//! and the opening of a run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tch::Device;

use super::config::TrainConfig;
use super::dist::Rendezvous;
use super::recipes::Losses;
use super::schedule::Phase;
use super::validation::ValScore;

/// What `train` is asked to do.
pub struct Request<'a> {
    pub store: &'a Path,
    pub dataset: &'a str,
    pub run: &'a str,
    pub resume: bool,
    /// The settings to train with: a new run's, or a resumed run's own with the length
    /// the command gave.
    pub config: TrainConfig,
    pub device: Device,
    /// A distributed run's rendezvous: the ranks agree on what they train, then form
    /// its process group.
    pub dist: Option<Rendezvous>,
    pub on_epoch: &'a mut dyn FnMut(&EpochReport),
    /// Told after every step where the run is, for a progress bar.
    pub on_step: &'a dyn Fn(StepReport),
    /// Asked at every step boundary: whether to stop there, and the status the stop asks
    /// for (a signal's: 130 for SIGINT, 143 for SIGTERM), passed on to every rank.
    pub stop: &'a dyn Fn() -> Option<u8>,
}

/// Where a run is after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    pub epoch: usize,
    /// Batches of `epoch` done, and in all.
    pub batch: usize,
    pub batches: usize,
}

/// What one epoch did, for the progress report.
#[derive(Debug, Clone)]
pub struct EpochReport {
    pub epoch: usize,
    /// The run's length: epochs, or a budget.
    pub total_epochs: Option<usize>,
    pub budget: Option<Duration>,
    pub elapsed: Duration,
    pub phase: Phase,
    pub losses: Losses,
    pub val: Option<ValScore>,
    /// Whether the epoch is the new best (and was checkpointed).
    pub best: bool,
    pub images_per_s: f64,
}

/// How a call to [`train`](super::trainer::train) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trained {
    pub dir: PathBuf,
    pub ended: Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The run reached its end.
    Finished,
    /// Resumed, the run had trained its whole length already (these epochs): nothing done.
    Complete { epochs: usize },
    /// Stopped before its end, checkpointed (`checkpoints/interrupted/`) for `--resume`.
    Stopped(Stopped),
}

/// Where a run stopped, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub epoch: usize,
    /// The batches of `epoch` done.
    pub batches: usize,
    /// The status the stop asked for (on whichever rank it was asked).
    pub status: u8,
}
