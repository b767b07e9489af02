//! Checkpoints of a run: `checkpoints/epoch-NNNNN/` holding `nets.safetensors` (every
//! network's variables, named `G:...`, `D:...`, `G_ema:...`), `adam.safetensors` (the
//! optimizers' moments and steps, and other training state) and `state.json` (epoch, step,
//! the epoch's losses and validation scores, the run's elapsed time). A run stopped by a
//! signal mid-epoch writes `checkpoints/interrupted/` (the same files; its state says how
//! many batches of its epoch were done): `--resume` goes on from it while it is newer than
//! the last epoch's, and the next epoch checkpoint removes it. It is never a model to use
//! (`list`, `best`, `last` and `epoch-N` see epoch checkpoints only).
//!
//! Each is written to a `.partial-*` folder, synced, then renamed into place and its
//! folder synced (`durable`). After each
//! write the last `keep_last` stay, plus `best`: the lowest validation ΔE00 among those
//! whose colourfulness passes the guard ([`validation::best`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

use super::adam::Adam;
pub use super::choice::Choice;
use super::error::TrainError;
use super::validation::{self, ValScore};

/// `state.json` of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    pub epoch: usize,
    pub step: u64,
    /// Mean G_L1 of the epoch's training steps.
    pub g_l1: f64,
    /// The epoch's validation scores, when the run holds images out.
    #[serde(default)]
    pub val: Option<ValScore>,
    /// Seconds the run had trained when the epoch ended (a budget continues from it).
    #[serde(default)]
    pub elapsed_s: f64,
    /// Stopped mid-epoch: the batches of `epoch` done (the epoch is unfinished), and the
    /// seconds the run had trained when the epoch began (its plan's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<Unfinished>,
}

/// Where in its epoch an interrupted checkpoint stopped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Unfinished {
    pub batches: usize,
    pub epoch_started_s: f64,
}

/// The folder of the checkpoint of a run stopped mid-epoch.
const INTERRUPTED: &str = "interrupted";

/// Published checkpoints, oldest first.
pub fn list(run_dir: &Path) -> Result<Vec<(PathBuf, CheckpointState)>, TrainError> {
    let root = run_dir.join("checkpoints");
    let entries = match fs::read_dir(&root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries.map_err(crate::durable::at(&root))?,
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("epoch-") {
            continue;
        }
        let path = entry.path().join("state.json");
        let text = fs::read(&path).map_err(crate::durable::at(&path))?;
        let state: CheckpointState = serde_json::from_slice(&text)
            .map_err(|e| TrainError::Checkpoint { path: path.clone(), reason: e.to_string() })?;
        out.push((entry.path(), state));
    }
    out.sort_by_key(|(_, s)| s.epoch);
    Ok(out)
}

/// The newest checkpoint of a run, if any.
pub fn latest(run_dir: &Path) -> Result<Option<(PathBuf, CheckpointState)>, TrainError> {
    Ok(list(run_dir)?.pop())
}

/// The checkpoint `choice` names, and a note when `best` had to fall back to the last one
/// (no validation set, or no checkpoint passing the colourfulness guard).
/// `colorfulness` is the run's `train.best_colorfulness`.
pub fn choose(
    run_dir: &Path,
    choice: Choice,
    colorfulness: f64,
) -> Result<(PathBuf, CheckpointState, Option<String>), TrainError> {
    let mut all = list(run_dir)?;
    let run = run_dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let missing = |what: String| TrainError::Invalid(format!("run {run:?} has no {what}"));
    let (dir, state) = match choice {
        Choice::Last => all.pop().ok_or_else(|| missing("checkpoint yet".into()))?,
        Choice::Epoch(n) => {
            let kept: Vec<String> = all.iter().map(|(_, s)| format!("epoch-{}", s.epoch)).collect();
            let at = all.iter().position(|(_, s)| s.epoch == n).ok_or_else(|| {
                missing(format!("checkpoint of epoch {n} (kept: {})", kept.join(", ")))
            })?;
            all.swap_remove(at)
        }
        Choice::Best => {
            let scored = all.iter().enumerate().map(|(i, (_, s))| (i, s.val));
            let best = validation::best(scored, colorfulness);
            match best {
                Some(i) => all.swap_remove(i),
                None => {
                    let last = all.pop().ok_or_else(|| missing("checkpoint yet".into()))?;
                    let note = format!(
                        "run {run:?}: no checkpoint has a validation score passing the \
                         colourfulness guard (ratio >= {}); using the last, epoch {}",
                        validation::MIN_COLORFULNESS_RATIO,
                        last.1.epoch
                    );
                    return Ok((last.0, last.1, Some(note)));
                }
            }
        }
    };
    Ok((dir, state, None))
}

/// Where `--resume` goes on from: the interrupted checkpoint while it is newer than the
/// last epoch's, else the last epoch's; `None` before the first.
pub fn resume_point(run_dir: &Path) -> Result<Option<(PathBuf, CheckpointState)>, TrainError> {
    let last = latest(run_dir)?;
    let dir = run_dir.join("checkpoints").join(INTERRUPTED);
    let path = dir.join("state.json");
    let interrupted = match fs::read(&path) {
        Ok(text) => serde_json::from_slice::<CheckpointState>(&text)
            .map_err(|e| TrainError::Checkpoint { path: path.clone(), reason: e.to_string() })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(last),
        Err(e) => return Err(crate::durable::at(&path)(e).into()),
    };
    Ok(match last {
        Some((_, state)) if state.step >= interrupted.step => latest(run_dir)?,
        _ => Some((dir, interrupted)),
    })
}

/// Writes the checkpoint of a run stopped mid-epoch (`state.unfinished` set), replacing
/// the one before.
pub fn write_interrupted(
    run_dir: &Path,
    state: &CheckpointState,
    save: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    publish(&run_dir.join("checkpoints"), INTERRUPTED, state, save)
}

/// Writes the checkpoint of an epoch (`save` fills the folder with the networks), then
/// prunes, and removes the interrupted checkpoint it supersedes.
pub fn write(
    run_dir: &Path,
    state: &CheckpointState,
    (keep_last, colorfulness): (usize, f64),
    save: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let root = run_dir.join("checkpoints");
    publish(&root, &format!("epoch-{:05}", state.epoch), state, save)?;
    let interrupted = root.join(INTERRUPTED);
    if interrupted.exists() {
        fs::remove_dir_all(&interrupted).map_err(crate::durable::at(&interrupted))?;
    }
    let all = list(run_dir)?;
    let best = validation::best(all.iter().map(|(d, s)| (d.clone(), s.val)), colorfulness);
    let keep_from = all.len().saturating_sub(keep_last.max(1));
    for (i, (dir, _)) in all.iter().enumerate() {
        if i < keep_from && Some(dir) != best.as_ref() {
            fs::remove_dir_all(dir).map_err(crate::durable::at(dir))?;
        }
    }
    Ok(())
}

/// Fills `.partial-NAME` (the networks by `save`, then `state.json`) and publishes it as
/// `NAME` under `root`, replacing what was there.
fn publish(
    root: &Path,
    name: &str,
    state: &CheckpointState,
    save: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let partial = root.join(format!(".partial-{name}"));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(crate::durable::at(&partial))?;
    save(&partial)?;
    let state_path = partial.join("state.json");
    fs::write(&state_path, serde_json::to_vec_pretty(state).expect("state serializes"))
        .map_err(crate::durable::at(&state_path))?;
    let done = root.join(name);
    let _ = fs::remove_dir_all(&done);
    crate::durable::publish_folder(&partial, &done)?;
    Ok(())
}

/// Tensors with the names a checkpoint gives them.
pub type Named = Vec<(String, Tensor)>;

/// The variables of `vs`, named `{prefix}:{name}`.
pub fn named(prefix: &str, vs: &nn::VarStore) -> Named {
    vs.variables().into_iter().map(|(name, t)| (format!("{prefix}:{name}"), t)).collect()
}

/// Writes a checkpoint's two files into `dir`: the networks' variables (see [`named`]) and
/// the optimizers' states.
pub fn save(dir: &Path, nets: &Named, optimizers: &Named) -> Result<(), TrainError> {
    Tensor::write_safetensors(nets, dir.join(NETS))?;
    Tensor::write_safetensors(optimizers, dir.join(OPTIMIZERS))?;
    Ok(())
}

const NETS: &str = "nets.safetensors";
const OPTIMIZERS: &str = "adam.safetensors";

/// A checkpoint as read back.
pub struct Saved {
    dir: PathBuf,
    nets: BTreeMap<String, Tensor>,
    /// Empty when only the networks were read.
    pub optimizers: BTreeMap<String, Tensor>,
}

impl Saved {
    /// Both files of the checkpoint folder `dir`.
    pub fn read(dir: &Path) -> Result<Saved, TrainError> {
        let mut saved = Saved::read_nets(dir)?;
        saved.optimizers = read_file(&dir.join(OPTIMIZERS))?;
        Ok(saved)
    }

    /// The networks only (inference).
    pub fn read_nets(dir: &Path) -> Result<Saved, TrainError> {
        let nets = read_file(&dir.join(NETS))?;
        Ok(Saved { dir: dir.to_owned(), nets, optimizers: BTreeMap::new() })
    }

    /// Copies the saved `{prefix}:{name}` into each variable `name` of `vs`.
    pub fn restore(&self, prefix: &str, vs: &nn::VarStore) -> Result<(), TrainError> {
        for (name, mut t) in vs.variables() {
            let key = format!("{prefix}:{name}");
            let source = self
                .nets
                .get(&key)
                .filter(|s| s.size() == t.size())
                .ok_or_else(|| self.unusable(NETS, format!("{key} is missing or misshapen")))?;
            tch::no_grad(|| t.copy_(source));
        }
        Ok(())
    }

    /// Restores the optimizer saved under `prefix`.
    pub fn restore_adam(&self, prefix: &str, adam: &mut Adam) -> Result<(), TrainError> {
        if adam.restore(prefix, &self.optimizers) {
            Ok(())
        } else {
            Err(self.unusable(
                OPTIMIZERS,
                format!("the {prefix} optimizer does not match the networks"),
            ))
        }
    }

    /// A problem with one of the checkpoint's files.
    pub fn unusable(&self, file: &str, reason: String) -> TrainError {
        TrainError::Checkpoint { path: self.dir.join(file), reason }
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, Tensor>, TrainError> {
    Ok(Tensor::read_safetensors(path)
        .map_err(|e| TrainError::Checkpoint { path: path.to_owned(), reason: e.to_string() })?
        .into_iter()
        .collect())
}
