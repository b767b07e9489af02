//! The steps of one epoch (or what is left of it, resuming): each seeded by its place in
//! the epoch, logged by rank 0, and followed by the ranks' agreement on whether to stop
//! there (SIGINT, SIGTERM on any rank).

use std::time::Instant;

use tch::Device;

use super::dist::Group;
use super::error::TrainError;
use super::loader;
use super::metrics_log::{MetricsLog, StepLine};
use super::recipes::{Losses, Trainer};
use super::request::StepReport;
use super::schedule::EpochPlan;

/// The seed of torch's and the recipe's random streams for batch `batch` of `epoch`: a
/// step's randomness (dropout, DiffAugment) depends on where it is, not on the steps
/// before, so a run resumed mid-epoch draws what the uninterrupted run drew.
pub fn step_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    let mut hasher = blake3::Hasher::new();
    for part in [seed, epoch as u64, batch as u64] {
        hasher.update(&part.to_le_bytes());
    }
    let bytes = hasher.finalize();
    // torch takes an i64: the top bit stays clear.
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes")) >> 1
}

/// Where the steps of an epoch run.
pub(super) struct Steps<'a> {
    pub device: Device,
    pub plan: &'a EpochPlan,
    pub seed: u64,
    /// The index in the epoch of the first batch given (a resumed epoch skips some).
    pub first_batch: usize,
    /// The run's step count, over epochs.
    pub step: &'a mut u64,
    pub group: Option<&'a Group>,
    pub stop: &'a dyn Fn() -> Option<u8>,
    /// Told after every step; `batches` is the epoch's length.
    pub on_step: &'a dyn Fn(StepReport),
    pub batches: usize,
}

/// What the steps of (part of) an epoch did.
pub(super) struct Ran {
    pub losses: Vec<Losses>,
    pub images: usize,
    pub batches: usize,
    /// A stop was asked for, with this status: the batches after these were not run.
    pub stopped: Option<u8>,
}

impl Steps<'_> {
    /// Steps over `batches`, each logged (by rank 0), until they run out or a stop is
    /// asked for (on any rank: they agree after every step). A loss that is not finite
    /// ends the run (the last checkpoint stays intact).
    pub fn run(
        &mut self,
        recipe: &mut dyn Trainer,
        batches: impl IntoIterator<Item = loader::Batch>,
        mut log: Option<&mut MetricsLog>,
    ) -> Result<Ran, TrainError> {
        let mut ran = Ran { losses: Vec::new(), images: 0, batches: 0, stopped: None };
        let ranks = self.group.map_or(1, |g| g.world);
        for batch in batches {
            let step_started = Instant::now();
            let collectives = self.group.map(Group::time_in_collectives);
            let seed = step_seed(self.seed, self.plan.epoch, self.first_batch + ran.batches);
            tch::manual_seed(seed as i64);
            recipe.seed_step(seed);
            let (a, b) = (batch.a.to_device(self.device), batch.b.to_device(self.device));
            let step_losses = recipe.step(&a, &b)?;
            *self.step += 1;
            if !step_losses.is_finite() {
                return Err(TrainError::Invalid(format!(
                    "training diverged: a loss is not finite at epoch {}, step {} \
                     ({step_losses:?}); the last checkpoint is intact",
                    self.plan.epoch, self.step
                )));
            }
            let n = a.size()[0] as usize;
            ran.images += n;
            ran.batches += 1;
            let (epoch, batches) = (self.plan.epoch, self.batches);
            (self.on_step)(StepReport { epoch, batch: self.first_batch + ran.batches, batches });
            if let Some(log) = log.as_deref_mut() {
                log.step(&StepLine {
                    epoch: self.plan.epoch,
                    step: *self.step,
                    plan: self.plan,
                    losses: step_losses,
                    images_per_s: (n * ranks) as f64 / step_started.elapsed().as_secs_f64(),
                    loader: batch.assembly,
                    collectives: self
                        .group
                        .zip(collectives)
                        .map(|(g, before)| g.time_in_collectives() - before),
                })?;
            }
            ran.losses.push(step_losses);
            ran.stopped = self.stop_agreed()?;
            if ran.stopped.is_some() {
                break;
            }
        }
        Ok(ran)
    }

    /// Whether a stop was asked for here or, distributed, on any rank (every rank learns
    /// it at the same step, with the status asked for: the mean over the ranks that asked).
    fn stop_agreed(&self) -> Result<Option<u8>, TrainError> {
        let here = (self.stop)();
        let Some(group) = self.group else { return Ok(here) };
        let status = f64::from(here.unwrap_or(0));
        let asked = tch::Tensor::from_slice(&[status, f64::from(u8::from(here.is_some()))]);
        group.all_reduce_mean(std::slice::from_ref(&asked))?;
        let [sum, ranks] = [0, 1].map(|i| asked.double_value(&[i]) * group.world as f64);
        Ok((ranks > 0.5).then(|| (sum / ranks).round() as u8))
    }
}
