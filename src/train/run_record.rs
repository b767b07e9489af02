//! A run's record, `runs/RUN/config.json`: the dataset and built version it trains on, and
//! its resolved config. `train` writes it before its first step; `train --resume`,
//! `colorize` and `eval` read it whole, and `gc` reads the build it needs.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use crate::store::{StoreError, StoreLock};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub dataset: String,
    pub version: String,
    pub config: TrainConfig,
    /// The device it trained on last (`cpu`, `cuda:0`); absent in records written before.
    #[serde(default)]
    pub device: Option<String>,
    /// The ranks it trained with last (`--dist`); absent in records written before.
    #[serde(default)]
    pub ranks: Option<usize>,
}

/// The dataset and built version a run trains on: the part of its record `gc` needs, read
/// even from a record whose config an older or newer `pipeline` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub struct TrainedOn {
    pub dataset: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunRecordError {
    #[error("no run named {run:?} ({} is missing)", path.display())]
    Missing { run: String, path: PathBuf },
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
    #[error("{}: unreadable run record: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
}

/// The folder of every run under the store at `store`: `runs/` (the one place the
/// layout is spelled).
pub fn runs_dir(store: &Path) -> PathBuf {
    store.join("runs")
}

/// The folder of run `run`: `runs/RUN/`.
pub fn run_dir(store: &Path, run: &str) -> PathBuf {
    runs_dir(store).join(run)
}

/// Locks run `run` of the store at `store` (`runs/RUN.lock`): held by `train` for the
/// whole run, and by `verify` / `gc` while they tidy its checkpoints folder.
pub fn lock(store: &Path, run: &str) -> Result<StoreLock, StoreError> {
    let runs = runs_dir(store);
    std::fs::create_dir_all(&runs).map_err(crate::durable::at(&runs))?;
    StoreLock::acquire(&runs.join(format!("{run}.lock")), "run")
}

/// `runs/RUN/config.json` under the store at `store`.
pub fn path(store: &Path, run: &str) -> PathBuf {
    run_dir(store, run).join("config.json")
}

impl RunRecord {
    pub fn read(store: &Path, run: &str) -> Result<RunRecord, RunRecordError> {
        read(store, run)
    }

    pub fn write(&self, store: &Path, run: &str) -> Result<(), RunRecordError> {
        let path = path(store, run);
        let bytes = serde_json::to_vec_pretty(self).expect("record serializes");
        Ok(fs::write(&path, bytes).map_err(crate::durable::at(&path))?)
    }
}

impl TrainedOn {
    pub fn read(store: &Path, run: &str) -> Result<TrainedOn, RunRecordError> {
        read(store, run)
    }
}

fn read<T: serde::de::DeserializeOwned>(store: &Path, run: &str) -> Result<T, RunRecordError> {
    let path = path(store, run);
    let text = fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => {
            RunRecordError::Missing { run: run.to_owned(), path: path.clone() }
        }
        _ => crate::durable::at(&path)(source).into(),
    })?;
    serde_json::from_slice(&text)
        .map_err(|e| RunRecordError::Unreadable { path, reason: e.to_string() })
}
