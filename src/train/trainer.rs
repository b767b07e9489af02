//! The training loop, for either recipe: epochs of steps, validation, figures, checkpoints.
//!
//! A run lives in `store/runs/NAME/`:
//! ```text
//! config.json          the resolved TrainConfig, the dataset and its built version
//! metrics.jsonl        a line per step and one per epoch's validation (`metrics_log`)
//! loss.svg             per-epoch mean losses and validation scores, redrawn each epoch
//! samples/epoch-NNNNN.png   gray | colorized | original for the first test images
//! checkpoints/epoch-NNNNN/  see `checkpoint`
//! ```
//! Randomness (weights, dropout, the loader's order, crops and flips, DiffAugment) is seeded
//! from (seed, epoch), and checkpoints fall on epoch ends, so a resumed run computes exactly
//! what the uninterrupted run would have (for a run measured in epochs).
//!
//! Distributed (`--dist`, see `dist`): every rank runs this loop on its slice of each
//! epoch's order, its optimizers averaging gradients over the ranks; rank 0 alone writes
//! the run (record, metrics, figures, validation, checkpoints) and its clock is everyone's,
//! so the ranks agree on the schedule and the last epoch. At each epoch's end the ranks
//! check that their weights are still identical.

use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tch::Device;

use super::checkpoint::{self, CheckpointState};
use super::config::TrainConfig;
use super::dist::Group;
use super::error::{TrainError, io};
use super::loader::{self, CenterCrops, LoaderConfig, Pairs};
use super::metrics_log::{EpochRecord, MetricsLog, StepLine};
use super::recipes::{self, Losses, Trainer};
use super::run_record::{RunRecord, RunRecordError};
use super::schedule::{EpochPlan, Phase, Schedule};
use super::validation::{self, ValScore};
use super::{device, figures};
use crate::dataset::{Built, Split};

/// Images in each epoch's sample grid.
const SAMPLES: usize = 4;

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

/// What `train` is asked to do.
pub struct Request<'a> {
    pub store: &'a Path,
    pub dataset: &'a str,
    pub run: &'a str,
    pub resume: bool,
    pub config: TrainConfig,
    pub device: Device,
    /// The process group of a distributed run.
    pub dist: Option<Rc<Group>>,
    pub on_epoch: &'a mut dyn FnMut(&EpochReport),
}

/// The record of the run `request` names and the build it trains on: the saved ones of a
/// run to resume, or new ones on the dataset's latest build.
fn open_run(request: &Request, run_dir: &Path) -> Result<(RunRecord, Built), TrainError> {
    if request.resume {
        let record = RunRecord::read(request.store, request.run).map_err(|e| match e {
            RunRecordError::Missing { .. } => {
                TrainError::Invalid(format!("no run named {:?} to resume", request.run))
            }
            other => other.into(),
        })?;
        let built = Built::open(
            &crate::dataset::dataset_dir(request.store, &record.dataset).join(&record.version),
        )?;
        Ok((record, built))
    } else {
        if run_dir.exists() {
            return Err(TrainError::Invalid(format!(
                "run {:?} exists already: continue it with --resume {0}, or choose another --run",
                request.run
            )));
        }
        let built = Built::latest(request.store, request.dataset)?;
        let record = RunRecord {
            dataset: request.dataset.to_owned(),
            version: built.manifest.version.clone(),
            config: request.config.clone(),
            device: None,
            ranks: None,
        };
        Ok((record, built))
    }
}

/// Trains (or resumes) a run to its end; returns the run folder.
pub fn train(request: Request) -> Result<PathBuf, TrainError> {
    let run_dir = request.store.join("runs").join(request.run);
    let (mut record, built) = open_run(&request, &run_dir)?;
    let group = request.dist.clone();
    let leader = group.as_ref().is_none_or(|g| g.is_leader());
    let ranks = group.as_ref().map_or(1, |g| g.world);
    if request.resume && record.ranks.unwrap_or(1) != ranks && leader {
        eprintln!(
            "note: run {} trained on {} rank(s) and goes on with {ranks}: each step now sees \
             {ranks} batches of {}",
            request.run,
            record.ranks.unwrap_or(1),
            record.config.data_shape().batch_size
        );
    }
    record.device = Some(device::name(request.device));
    record.ranks = Some(ranks);
    let config = record.config.clone();
    config.check().map_err(TrainError::Invalid)?;
    let Data { pairs, val, samples } = open_data(&built, &config)?;
    let resumed = if request.resume { checkpoint::latest(&run_dir)? } else { None };
    let mut recipe =
        recipes::start(&config, request.device, resumed.as_ref().map(|(dir, _)| dir.as_path()))?;
    if let Some(group) = &group {
        recipe.distribute(group)?;
    }
    if leader {
        fs::create_dir_all(run_dir.join("checkpoints")).map_err(io(&run_dir))?;
        record.write(request.store, request.run)?;
    }
    let (first_epoch, mut step, before) = match &resumed {
        Some((_, state)) => (state.epoch + 1, state.step, Duration::from_secs_f64(state.elapsed_s)),
        None => (1, 0, Duration::ZERO),
    };
    let mut log = if leader { Some(MetricsLog::open(&run_dir, first_epoch)?) } else { None };

    let schedule = Schedule::new(&config);
    let shape = config.data_shape();
    let loader_config = LoaderConfig {
        batch_size: shape.batch_size,
        crop: shape.crop,
        flip: config.flip,
        color: shape.color,
        seed: config.seed,
        prefetch: 4,
        rank: group.as_ref().map_or((0, 1), |g| (g.rank, g.world)),
    };
    let started = Instant::now();
    for epoch in first_epoch.. {
        let plan = schedule.plan(epoch, agreed(group.as_deref(), before + started.elapsed())?);
        tch::manual_seed(config.seed as i64 + epoch as i64);
        recipe.begin_epoch(&plan, config.seed);
        let epoch_started = Instant::now();
        let batches = loader::epoch(pairs.clone(), loader_config, epoch);
        let mut steps =
            Steps { device: request.device, plan: &plan, step: &mut step, group: group.as_deref() };
        let (losses, images) = steps.run(recipe.as_mut(), batches, log.as_mut().map(|(l, _)| l))?;
        let images_per_s = (images * ranks) as f64 / epoch_started.elapsed().as_secs_f64();
        let elapsed = agreed(group.as_deref(), before + started.elapsed())?;
        let last = schedule.is_last(epoch, elapsed);
        if let Some(group) = &group
            && !recipe.replicas_agree(group)?
        {
            return Err(TrainError::Invalid(format!(
                "rank {} of {}: its weights differ from rank 0's after epoch {epoch}",
                group.rank, group.world
            )));
        }
        let Some((log, history)) = &mut log else {
            if last {
                break;
            }
            continue;
        };
        let val_score = (!val.is_empty())
            .then(|| validation::score(&val, &|a| recipe.colorize(a), request.device));
        log.end_epoch(epoch, val_score)?;
        let mean = Losses::mean(&losses);
        history.insert(epoch, EpochRecord { losses: mean, val: val_score });
        figures::loss_curve(&run_dir.join("loss.svg"), history)
            .map_err(|e| TrainError::Invalid(format!("loss.svg: {e}")))?;
        let grid = run_dir.join("samples").join(format!("epoch-{epoch:05}.png"));
        figures::sample_grid(&grid, &samples, &|a| recipe.colorize(a), request.device)?;

        let best = validation::best(history.iter().map(|(e, r)| (*e, r.val))) == Some(epoch);
        if epoch % config.checkpoint_every.max(1) == 0 || last || best {
            let state = CheckpointState {
                epoch,
                step,
                g_l1: mean.g_l1,
                val: val_score,
                elapsed_s: elapsed.as_secs_f64(),
            };
            checkpoint::write(&run_dir, &state, config.keep_last, |dir| recipe.save(dir))?;
        }
        (request.on_epoch)(&EpochReport {
            epoch,
            total_epochs: schedule.budget().is_none().then(|| schedule.total_epochs()),
            budget: schedule.budget(),
            elapsed,
            phase: plan.phase,
            losses: mean,
            val: val_score,
            best,
            images_per_s,
        });
        if last {
            break;
        }
    }
    // The ranks end together, once rank 0's last checkpoint is written: a rank that says
    // it is done is done.
    if let Some(group) = &group {
        group.barrier()?;
    }
    Ok(run_dir)
}

/// Rank 0's value of `elapsed` on every rank (itself when not distributed): the clock
/// the schedule and the budget read, so that every rank takes the same plan and stops
/// after the same epoch.
fn agreed(group: Option<&Group>, elapsed: Duration) -> Result<Duration, TrainError> {
    let Some(group) = group else { return Ok(elapsed) };
    let seconds = tch::Tensor::from_slice(&[elapsed.as_secs_f64()]);
    group.broadcast(std::slice::from_ref(&seconds), 0)?;
    Ok(Duration::from_secs_f64(f64::try_from(&seconds)?.max(0.0)))
}

/// What a run trains on (the train split less the held-out validation share), validates
/// on (center crops of that share) and shows in its sample grids.
struct Data {
    pairs: Arc<Pairs>,
    val: CenterCrops,
    samples: CenterCrops,
}

fn open_data(built: &Built, config: &TrainConfig) -> Result<Data, TrainError> {
    let shape = config.data_shape();
    let held_out = |id: &str| Split::is_validation(id, config.val_fraction);
    let pairs = Arc::new(Pairs::open_where(built, Split::Train, |id| !held_out(id))?);
    if pairs.is_empty() {
        return Err(TrainError::Invalid(format!(
            "dataset {} has no training images",
            built.manifest.dataset
        )));
    }
    if shape.crop > pairs.size() {
        return Err(TrainError::Invalid(format!(
            "the crop {} is larger than the dataset's stored size {}: rebuild with --size",
            shape.crop,
            pairs.size()
        )));
    }
    let val_pairs = Pairs::open_where(built, Split::Train, held_out)?;
    let val = CenterCrops::new(&val_pairs, 0..val_pairs.len(), shape.crop, shape.color);
    let samples = {
        let mut shown = Pairs::open(built, Split::Test)?;
        if shown.is_empty() {
            shown = Pairs::open(built, Split::Train)?;
        }
        CenterCrops::new(&shown, 0..shown.len().min(SAMPLES), shape.crop, shape.color)
    };
    Ok(Data { pairs, val, samples })
}

/// Where the steps of an epoch run.
struct Steps<'a> {
    device: Device,
    plan: &'a EpochPlan,
    /// The run's step count, over epochs.
    step: &'a mut u64,
    group: Option<&'a Group>,
}

impl Steps<'_> {
    /// One epoch of steps, each logged (by rank 0): the losses of every step and the
    /// images seen. A loss that is not finite ends the run (the last checkpoint stays
    /// intact).
    fn run(
        &mut self,
        recipe: &mut dyn Trainer,
        batches: impl IntoIterator<Item = loader::Batch>,
        mut log: Option<&mut MetricsLog>,
    ) -> Result<(Vec<Losses>, usize), TrainError> {
        let (mut losses, mut images) = (Vec::new(), 0usize);
        let ranks = self.group.map_or(1, |g| g.world);
        for batch in batches {
            let step_started = Instant::now();
            let collectives = self.group.map(Group::time_in_collectives);
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
            images += n;
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
            losses.push(step_losses);
        }
        Ok((losses, images))
    }
}
