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

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tch::Device;

use super::checkpoint::{self, CheckpointState};
use super::config::TrainConfig;
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
        };
        Ok((record, built))
    }
}

/// Trains (or resumes) a run to its end; returns the run folder.
pub fn train(request: Request) -> Result<PathBuf, TrainError> {
    let run_dir = request.store.join("runs").join(request.run);
    let (mut record, built) = open_run(&request, &run_dir)?;
    record.device = Some(device::name(request.device));
    let config = record.config.clone();
    config.check().map_err(TrainError::Invalid)?;
    let Data { pairs, val, samples } = open_data(&built, &config)?;
    let resumed = if request.resume { checkpoint::latest(&run_dir)? } else { None };
    let mut recipe =
        recipes::start(&config, request.device, resumed.as_ref().map(|(dir, _)| dir.as_path()))?;
    fs::create_dir_all(run_dir.join("checkpoints")).map_err(io(&run_dir))?;
    record.write(request.store, request.run)?;
    let (first_epoch, mut step, before) = match &resumed {
        Some((_, state)) => (state.epoch + 1, state.step, Duration::from_secs_f64(state.elapsed_s)),
        None => (1, 0, Duration::ZERO),
    };
    let (mut log, mut history) = MetricsLog::open(&run_dir, first_epoch)?;

    let schedule = Schedule::new(&config);
    let shape = config.data_shape();
    let loader_config = LoaderConfig {
        batch_size: shape.batch_size,
        crop: shape.crop,
        flip: config.flip,
        color: shape.color,
        seed: config.seed,
        prefetch: 4,
    };
    let started = Instant::now();
    for epoch in first_epoch.. {
        let plan = schedule.plan(epoch, before + started.elapsed());
        tch::manual_seed(config.seed as i64 + epoch as i64);
        recipe.begin_epoch(&plan, config.seed);
        let epoch_started = Instant::now();
        let batches = loader::epoch(pairs.clone(), loader_config, epoch);
        let (losses, images) =
            train_epoch(recipe.as_mut(), batches, request.device, &plan, &mut step, &mut log)?;
        let images_per_s = images as f64 / epoch_started.elapsed().as_secs_f64();
        let val_score = (!val.is_empty())
            .then(|| validation::score(&val, &|a| recipe.colorize(a), request.device));
        log.end_epoch(epoch, val_score)?;
        let mean = Losses::mean(&losses);
        history.insert(epoch, EpochRecord { losses: mean, val: val_score });
        figures::loss_curve(&run_dir.join("loss.svg"), &history)
            .map_err(|e| TrainError::Invalid(format!("loss.svg: {e}")))?;
        let grid = run_dir.join("samples").join(format!("epoch-{epoch:05}.png"));
        figures::sample_grid(&grid, &samples, &|a| recipe.colorize(a), request.device)?;

        let elapsed = before + started.elapsed();
        let last = schedule.is_last(epoch, elapsed);
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
    Ok(run_dir)
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

/// One epoch of steps, each logged: the losses of every step and the images seen. A loss
/// that is not finite ends the run (the last checkpoint stays intact).
fn train_epoch(
    recipe: &mut dyn Trainer,
    batches: impl IntoIterator<Item = loader::Batch>,
    device: Device,
    plan: &EpochPlan,
    step: &mut u64,
    log: &mut MetricsLog,
) -> Result<(Vec<Losses>, usize), TrainError> {
    let (mut losses, mut images) = (Vec::new(), 0usize);
    for batch in batches {
        let step_started = Instant::now();
        let (a, b) = (batch.a.to_device(device), batch.b.to_device(device));
        let step_losses = recipe.step(&a, &b);
        *step += 1;
        if !step_losses.is_finite() {
            return Err(TrainError::Invalid(format!(
                "training diverged: a loss is not finite at epoch {}, step {step} \
                 ({step_losses:?}); the last checkpoint is intact",
                plan.epoch
            )));
        }
        let n = a.size()[0] as usize;
        images += n;
        log.step(&StepLine {
            epoch: plan.epoch,
            step: *step,
            plan,
            losses: step_losses,
            images_per_s: n as f64 / step_started.elapsed().as_secs_f64(),
            loader: batch.assembly,
        })?;
        losses.push(step_losses);
    }
    Ok((losses, images))
}
