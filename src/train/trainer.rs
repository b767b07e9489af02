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
//! from (seed, epoch) and, within an epoch, (seed, epoch, batch), so a resumed run computes
//! exactly what the uninterrupted run would have (for a run measured in epochs), whether
//! it goes on from an epoch's checkpoint or from one a signal made mid-epoch
//! (`checkpoints/interrupted/`: SIGINT or SIGTERM stop the run at the next step boundary,
//! every rank at the same one).
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

use super::checkpoint::{self, CheckpointState, Unfinished};
use super::config::TrainConfig;
use super::dist::{Group, Rendezvous};
use super::error::TrainError;
use super::loader::{self, CenterCrops, LoaderConfig, Pairs};
use super::metrics_log::{EpochRecord, MetricsLog, Opened, StepLine};
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
    /// A distributed run's rendezvous: the ranks agree on what they train, then form
    /// its process group.
    pub dist: Option<Rendezvous>,
    pub on_epoch: &'a mut dyn FnMut(&EpochReport),
    /// Asked at every step boundary: whether to stop there, and the status the stop asks
    /// for (a signal's: 130 for SIGINT, 143 for SIGTERM), passed on to every rank.
    pub stop: &'a dyn Fn() -> Option<u8>,
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

/// What the ranks of a distributed run must agree on before they train together.
fn settings(request: &Request, record: &RunRecord) -> serde_json::Value {
    serde_json::json!({
        "run": request.run,
        "resume": request.resume,
        "dataset": record.dataset,
        "version": record.version,
        "train": record.config,
        "pipeline": env!("CARGO_PKG_VERSION"),
    })
}

/// How a call to [`train`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trained {
    pub dir: PathBuf,
    /// Stopped before its end, checkpointed (`checkpoints/interrupted/`) for `--resume`;
    /// `None`: the run reached its end.
    pub stopped: Option<Stopped>,
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

/// Trains (or resumes) a run to its end, or until `request.stop` says so at a step
/// boundary (every rank at the same one): then the run is checkpointed where it is.
pub fn train(mut request: Request) -> Result<Trained, TrainError> {
    let run_dir = request.store.join("runs").join(request.run);
    let (mut record, built) = open_run(&request, &run_dir)?;
    let group = match request.dist.take() {
        Some(rendezvous) => Some(Rc::new(rendezvous.agree(&settings(&request, &record))?)),
        None => None,
    };
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
    config.check().map_err(|e| TrainError::Invalid(e.to_string()))?;
    let Data { pairs, val, samples } = open_data(&built, &config)?;
    let resumed = if request.resume { checkpoint::resume_point(&run_dir)? } else { None };
    let mut recipe =
        recipes::start(&config, request.device, resumed.as_ref().map(|(dir, _)| dir.as_path()))?;
    if let Some(group) = &group {
        recipe.distribute(group)?;
    }
    if leader {
        fs::create_dir_all(run_dir.join("checkpoints")).map_err(crate::durable::at(&run_dir))?;
        record.write(request.store, request.run)?;
    }
    let start = Start::of(resumed.as_ref().map(|(_, state)| state));
    let mut step = start.step;
    let mut log = match leader {
        true => Some(MetricsLog::open(&run_dir, start.epoch, start.step)?),
        false => None,
    };

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
    for epoch in start.epoch.. {
        let resuming = epoch == start.epoch;
        let epoch_started = match start.unfinished {
            Some(unfinished) if resuming => Duration::from_secs_f64(unfinished.epoch_started_s),
            _ => agreed(group.as_deref(), start.before + started.elapsed())?,
        };
        let plan = schedule.plan(epoch, epoch_started);
        recipe.begin_epoch(&plan);
        let clock = Instant::now();
        let skip = if resuming { start.unfinished.map_or(0, |u| u.batches) } else { 0 };
        let batches = loader::epoch_from(pairs.clone(), loader_config, epoch, skip);
        let mut steps = Steps {
            device: request.device,
            plan: &plan,
            seed: config.seed,
            first_batch: skip,
            step: &mut step,
            group: group.as_deref(),
            stop: request.stop,
        };
        let ran = steps.run(recipe.as_mut(), batches, log.as_mut().map(|o| &mut o.log))?;
        let mut losses = match (&mut log, resuming) {
            (Some(opened), true) => std::mem::take(&mut opened.partial),
            _ => Vec::new(),
        };
        losses.extend(ran.losses);
        let elapsed = agreed(group.as_deref(), start.before + started.elapsed())?;
        if let Some(status) = ran.stopped {
            let batches = skip + ran.batches;
            if leader {
                let state = CheckpointState {
                    epoch,
                    step,
                    g_l1: Losses::mean(&losses).g_l1,
                    val: None,
                    elapsed_s: elapsed.as_secs_f64(),
                    unfinished: Some(Unfinished {
                        batches,
                        epoch_started_s: epoch_started.as_secs_f64(),
                    }),
                };
                checkpoint::write_interrupted(&run_dir, &state, |dir| recipe.save(dir))?;
            }
            if let Some(group) = &group {
                group.barrier()?;
            }
            let stopped = Stopped { epoch, batches, status };
            return Ok(Trained { dir: run_dir, stopped: Some(stopped) });
        }
        let images_per_s = (ran.images * ranks) as f64 / clock.elapsed().as_secs_f64();
        let last = schedule.is_last(epoch, elapsed);
        if let Some(group) = &group
            && !recipe.replicas_agree(group)?
        {
            return Err(TrainError::Invalid(format!(
                "rank {} of {}: its weights differ from rank 0's after epoch {epoch}",
                group.rank, group.world
            )));
        }
        let Some(Opened { log, history, .. }) = &mut log else {
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
                unfinished: None,
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
    Ok(Trained { dir: run_dir, stopped: None })
}

/// Where a run (re)starts: its first epoch, the batches of it already done, the step
/// count and training time before.
struct Start {
    epoch: usize,
    unfinished: Option<Unfinished>,
    step: u64,
    before: Duration,
}

impl Start {
    fn of(resumed: Option<&CheckpointState>) -> Start {
        match resumed {
            None => Start { epoch: 1, unfinished: None, step: 0, before: Duration::ZERO },
            Some(state) => Start {
                // An unfinished epoch goes on; a finished one is followed by the next.
                epoch: if state.unfinished.is_some() { state.epoch } else { state.epoch + 1 },
                unfinished: state.unfinished,
                step: state.step,
                before: Duration::from_secs_f64(state.elapsed_s),
            },
        }
    }
}

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
    seed: u64,
    /// The index in the epoch of the first batch given (a resumed epoch skips some).
    first_batch: usize,
    /// The run's step count, over epochs.
    step: &'a mut u64,
    group: Option<&'a Group>,
    stop: &'a dyn Fn() -> Option<u8>,
}

/// What the steps of (part of) an epoch did.
struct Ran {
    losses: Vec<Losses>,
    images: usize,
    batches: usize,
    /// A stop was asked for, with this status: the batches after these were not run.
    stopped: Option<u8>,
}

impl Steps<'_> {
    /// Steps over `batches`, each logged (by rank 0), until they run out or a stop is
    /// asked for (on any rank: they agree after every step). A loss that is not finite
    /// ends the run (the last checkpoint stays intact).
    fn run(
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
