//! A run's `metrics.jsonl`: one line per training step (epoch, step, phase, G_GAN, G_L1,
//! D_real, D_fake (the GAN terms absent in an L1 phase), lr, images_per_s, loader_ms, and
//! distributed, collectives_ms) and
//! one per epoch's validation (`{"epoch": N, "val": {...}}`); and the per-epoch history read
//! back from it, for the figure and the best epoch after a resume.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::TrainError;
use super::recipes::Losses;
use super::schedule::{EpochPlan, Phase};
use super::validation::ValScore;

/// One epoch of a run's history: its mean losses and its validation scores.
#[derive(Debug, Clone, Copy)]
pub struct EpochRecord {
    pub losses: Losses,
    pub val: Option<ValScore>,
}

/// What one step logs.
pub struct StepLine<'a> {
    pub epoch: usize,
    pub step: u64,
    pub plan: &'a EpochPlan,
    pub losses: Losses,
    pub images_per_s: f64,
    /// Time the loader spent assembling the batch.
    pub loader: Duration,
    /// Distributed: time the step spent in collectives (gradients, buffers).
    pub collectives: Option<Duration>,
}

pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::L1 => "L1",
        Phase::Gan => "GAN",
    }
}

/// The open log of a run.
pub struct MetricsLog {
    path: PathBuf,
    file: fs::File,
}

/// A log opened for a run going on: the log, the history of the epochs before the first
/// it trains, and the losses already logged of that epoch (resuming mid-epoch).
pub struct Opened {
    pub log: MetricsLog,
    pub history: BTreeMap<usize, EpochRecord>,
    pub partial: Vec<Losses>,
}

impl MetricsLog {
    /// Opens `metrics.jsonl` of the run in `run_dir` for a run going on from `first_epoch`
    /// after step `step` (the run's step count at its checkpoint). A killed run may have
    /// logged steps after its checkpoint: they are trained again, so their lines go.
    pub fn open(run_dir: &Path, first_epoch: usize, step: u64) -> Result<Opened, TrainError> {
        let path = run_dir.join("metrics.jsonl");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let kept: String = text
            .lines()
            .filter(|line| match position(line) {
                // A step's line: kept up to the checkpoint's step.
                Some((_, Some(s))) => s <= step,
                // An epoch's validation: kept for the epochs before.
                Some((e, None)) => e < first_epoch,
                None => false,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        if kept.len() != text.len() {
            fs::write(&path, &kept).map_err(crate::durable::at(&path))?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(crate::durable::at(&path))?;
        let mut history = history(&kept);
        let partial = steps(&kept).remove(&first_epoch).unwrap_or_default();
        history.remove(&first_epoch);
        Ok(Opened { log: MetricsLog { path, file }, history, partial })
    }

    pub fn step(&mut self, line: &StepLine) -> Result<(), TrainError> {
        let mut json = serde_json::json!({
            "epoch": line.epoch, "step": line.step, "phase": phase_name(line.plan.phase),
            "lr": line.plan.lr_g, "images_per_s": line.images_per_s,
            "loader_ms": line.loader.as_secs_f64() * 1000.0,
        });
        if let (Some(json), serde_json::Value::Object(losses)) =
            (json.as_object_mut(), serde_json::to_value(line.losses).expect("losses serialize"))
        {
            json.extend(losses);
        }
        if let Some(spent) = line.collectives {
            json["collectives_ms"] = serde_json::json!(spent.as_secs_f64() * 1000.0);
        }
        Ok(writeln!(self.file, "{json}").map_err(crate::durable::at(&self.path))?)
    }

    /// Logs the epoch's validation scores, if any, and flushes.
    pub fn end_epoch(&mut self, epoch: usize, val: Option<ValScore>) -> Result<(), TrainError> {
        if let Some(score) = val {
            writeln!(self.file, "{}", serde_json::json!({ "epoch": epoch, "val": score }))
                .map_err(crate::durable::at(&self.path))?;
        }
        Ok(self.file.flush().map_err(crate::durable::at(&self.path))?)
    }
}

/// The epoch of a line, and its step when it is a step's.
fn position(line: &str) -> Option<(usize, Option<u64>)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some((v["epoch"].as_u64()? as usize, v["step"].as_u64()))
}

/// The per-epoch history of the run in `run_dir` (empty when it logged nothing yet).
pub fn read_history(run_dir: &Path) -> Result<BTreeMap<usize, EpochRecord>, TrainError> {
    let path = run_dir.join("metrics.jsonl");
    match fs::read_to_string(&path) {
        Ok(text) => Ok(history(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(crate::durable::at(&path)(e).into()),
    }
}

/// The per-epoch history in the text of a `metrics.jsonl`.
fn history(text: &str) -> BTreeMap<usize, EpochRecord> {
    let mut vals: BTreeMap<usize, ValScore> = BTreeMap::new();
    for (epoch, v) in lines(text) {
        if let Ok(score) = serde_json::from_value::<ValScore>(v["val"].clone()) {
            vals.insert(epoch, score);
        }
    }
    steps(text)
        .into_iter()
        .map(|(epoch, losses)| {
            (epoch, EpochRecord { losses: Losses::mean(&losses), val: vals.get(&epoch).copied() })
        })
        .collect()
}

/// Every step's losses in the text of a `metrics.jsonl`, by epoch.
fn steps(text: &str) -> BTreeMap<usize, Vec<Losses>> {
    let mut steps: BTreeMap<usize, Vec<Losses>> = BTreeMap::new();
    for (epoch, v) in lines(text) {
        if let Some(g_l1) = v["G_L1"].as_f64() {
            let get = |k: &str| v[k].as_f64();
            let losses = Losses {
                g_gan: get("G_GAN"),
                g_l1,
                g_ce: get("G_CE"),
                d_real: get("D_real"),
                d_fake: get("D_fake"),
            };
            steps.entry(epoch).or_default().push(losses);
        }
    }
    steps
}

/// The lines of a `metrics.jsonl` that parse and name their epoch.
fn lines(text: &str) -> impl Iterator<Item = (usize, serde_json::Value)> + '_ {
    text.lines().filter_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        Some((v["epoch"].as_u64()? as usize, v))
    })
}
