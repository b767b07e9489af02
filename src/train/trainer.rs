//! The training loop, for either recipe: epochs of steps (`steps`), validation, figures,
//! checkpoints, on a run opened by `run`.
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

use std::time::{Duration, Instant};

use tch::Tensor;

use super::checkpoint::{self, CheckpointState, Unfinished};
use super::dist::Group;
use super::error::TrainError;
use super::figures;
use super::loader;
use super::metrics_log::{EpochRecord, Opened};
use super::nets::ab_classes::VIVIDNESS_CHOICES;
use super::recipes::Losses;
pub use super::request::{Ended, EpochReport, Request, StepReport, Stopped, Trained};
use super::run::Run;
use super::schedule::EpochPlan;
use super::steps::{Ran, Steps};
use super::validation;

/// Trains (or resumes) a run to its end, or until `request.stop` says so at a step
/// boundary (every rank at the same one): then the run is checkpointed where it is.
pub fn train(mut request: Request) -> Result<Trained, TrainError> {
    let mut run = Run::open(&mut request)?;
    if let Some(epochs) = run.complete() {
        return Ok(Trained { dir: run.dir, ended: Ended::Complete { epochs } });
    }
    let clock = Instant::now();
    let mut step = run.start.step;
    for epoch in run.start.epoch.. {
        let done = run_epoch(&mut run, &request, epoch, &mut step, &clock)?;
        if let Some(status) = done.ran.stopped {
            let stopped = stop_here(&mut run, epoch, &done, step, status)?;
            return Ok(Trained { dir: run.dir, ended: Ended::Stopped(stopped) });
        }
        if end_epoch(&mut run, &mut request, epoch, done, step)? {
            break;
        }
    }
    // The ranks end together, once rank 0's last checkpoint is written: a rank that says
    // it is done is done.
    if let Some(group) = &run.group {
        group.barrier()?;
    }
    Ok(Trained { dir: run.dir, ended: Ended::Finished })
}

/// What one epoch's steps did, and when.
struct EpochDone {
    plan: EpochPlan,
    /// The run's training time when the epoch began (its plan's clock) and ended.
    started: Duration,
    elapsed: Duration,
    /// Batches skipped (resuming mid-epoch), then what the steps did.
    skipped: usize,
    ran: Ran,
    /// Every step's losses of the epoch, those logged before a resume included.
    losses: Vec<Losses>,
    seconds: f64,
}

/// Runs the steps of `epoch` (what is left of it, resuming mid-epoch).
fn run_epoch(
    run: &mut Run,
    request: &Request,
    epoch: usize,
    step: &mut u64,
    clock: &Instant,
) -> Result<EpochDone, TrainError> {
    let group = run.group.clone();
    let resuming = epoch == run.start.epoch;
    let started = match run.start.unfinished {
        Some(unfinished) if resuming => Duration::from_secs_f64(unfinished.epoch_started_s),
        _ => agreed(group.as_deref(), run.start.before + clock.elapsed())?,
    };
    let plan = run.schedule.plan(epoch, started);
    run.recipe.begin_epoch(&plan);
    let epoch_clock = Instant::now();
    let skipped = if resuming { run.start.unfinished.map_or(0, |u| u.batches) } else { 0 };
    let batches = loader::epoch_from(run.data.pairs.clone(), run.loader, epoch, skipped);
    let mut steps = Steps {
        device: request.device,
        plan: &plan,
        seed: run.config.seed,
        first_batch: skipped,
        step,
        group: group.as_deref(),
        stop: request.stop,
        on_step: request.on_step,
        batches: run.data.pairs.batches_per_epoch(&run.loader),
    };
    let ran = steps.run(run.recipe.as_mut(), batches, run.log.as_mut().map(|o| &mut o.log))?;
    let mut losses = match (&mut run.log, resuming) {
        (Some(opened), true) => std::mem::take(&mut opened.partial),
        _ => Vec::new(),
    };
    losses.extend(ran.losses.iter().copied());
    let elapsed = agreed(group.as_deref(), run.start.before + clock.elapsed())?;
    let seconds = epoch_clock.elapsed().as_secs_f64();
    Ok(EpochDone { plan, started, elapsed, skipped, ran, losses, seconds })
}

/// Checkpoints a run stopped in `epoch` (rank 0), once every rank is there.
fn stop_here(
    run: &mut Run,
    epoch: usize,
    done: &EpochDone,
    step: u64,
    status: u8,
) -> Result<Stopped, TrainError> {
    let batches = done.skipped + done.ran.batches;
    if run.log.is_some() {
        let state = CheckpointState {
            epoch,
            step,
            g_l1: Losses::mean(&done.losses).g_l1,
            val: None,
            elapsed_s: done.elapsed.as_secs_f64(),
            unfinished: Some(Unfinished { batches, epoch_started_s: done.started.as_secs_f64() }),
        };
        checkpoint::write_interrupted(&run.dir, &state, |dir| run.recipe.save(dir))?;
    }
    if let Some(group) = &run.group {
        group.barrier()?;
    }
    Ok(Stopped { epoch, batches, status })
}

/// Ends `epoch`: the replicas' check, then (rank 0) validation, the figures, the
/// checkpoint and the report. Whether it was the run's last.
fn end_epoch(
    run: &mut Run,
    request: &mut Request,
    epoch: usize,
    done: EpochDone,
    step: u64,
) -> Result<bool, TrainError> {
    let last = run.schedule.is_last(epoch, done.elapsed);
    if let Some(group) = &run.group
        && !run.recipe.replicas_agree(group)?
    {
        return Err(TrainError::Invalid(format!(
            "rank {} of {}: its weights differ from rank 0's after epoch {epoch}",
            group.rank, group.world
        )));
    }
    let Some(Opened { log, history, .. }) = &mut run.log else { return Ok(last) };
    let recipe = &run.recipe;
    let colorfulness = run.config.best_colorfulness;
    let val_score = (!run.data.val.is_empty()).then(|| {
        let colorize = |a: &Tensor| recipe.colorize_each(a, &VIVIDNESS_CHOICES);
        validation::score(&run.data.val, &colorize, request.device, colorfulness)
    });
    log.end_epoch(epoch, val_score)?;
    let mean = Losses::mean(&done.losses);
    history.insert(epoch, EpochRecord { losses: mean, val: val_score });
    figures::loss_curve(&run.dir.join("loss.svg"), history, colorfulness)
        .map_err(|e| TrainError::Invalid(format!("loss.svg: {e}")))?;
    let grid = run.dir.join("samples").join(format!("epoch-{epoch:05}.png"));
    // At the temperature validation chose (the configured one without validation).
    let shown = [val_score.and_then(|v| v.vividness).unwrap_or(run.config.pretrained.vividness)];
    let colorize = |a: &Tensor| recipe.colorize_each(a, &shown).swap_remove(0).1;
    figures::sample_grid(&grid, &run.data.samples, &colorize, request.device)?;
    let best =
        validation::best(history.iter().map(|(e, r)| (*e, r.val)), colorfulness) == Some(epoch);
    if epoch.is_multiple_of(run.config.checkpoint_every.max(1)) || last || best {
        let state = CheckpointState {
            epoch,
            step,
            g_l1: mean.g_l1,
            val: val_score,
            elapsed_s: done.elapsed.as_secs_f64(),
            unfinished: None,
        };
        let keep = (run.config.keep_last, colorfulness);
        checkpoint::write(&run.dir, &state, keep, |dir| recipe.save(dir))?;
    }
    let images = done.ran.images * run.ranks();
    (request.on_epoch)(&EpochReport {
        epoch,
        total_epochs: run.schedule.budget().is_none().then(|| run.schedule.total_epochs()),
        budget: run.schedule.budget(),
        elapsed: done.elapsed,
        phase: done.plan.phase,
        losses: mean,
        val: val_score,
        best,
        images_per_s: images as f64 / done.seconds,
    });
    Ok(last)
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
