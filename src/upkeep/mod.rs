//! Upkeep of a store: `verify` (are index, blobs and builds consistent; repair) and `gc`
//! (remove what nothing uses), and here what they share: walking the store's folders, and removing what is no
//! longer wanted without touching what a running command uses. Datasets and blobs are
//! safe under the store lock those commands hold; training runs, which do not take the
//! store lock, are touched only while their own run lock is held.
//!
//! Imports `dataset`, `store`, `train` (run records), `durable`.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

pub mod gc;
pub mod verify;

use crate::dataset::DatasetError;
use crate::dataset::latest_version;
use crate::durable::PathError;
use crate::durable::subfolders;
use crate::store::{DuplicateRecord, Store, StoreError, Tree, UrlOutcome, UrlRecord};
use crate::train::run_record::{RunRecordError, TrainedOn};
use crate::train::run_record::{lock as lock_run, runs_dir};

/// What stops `verify` or `gc`: the store, a file, a build or a run record that cannot be
/// read (each names its path).
#[derive(Debug, thiserror::Error)]
pub enum UpkeepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Run(#[from] RunRecordError),
}

/// The version `latest` names in a dataset folder, if any; an unreadable `latest` is an
/// error (never "no latest": gc would take that as "nothing to keep").
pub fn latest(root: &Path, dataset: &str) -> Result<Option<String>, UpkeepError> {
    Ok(latest_version(root, dataset)?)
}

/// Deletes the built `version` in a dataset folder, and `latest` when it names it.
pub fn remove_build(dataset_dir: &Path, version: &str) -> Result<(), UpkeepError> {
    let latest = dataset_dir.join("latest");
    if fs::read_to_string(&latest).is_ok_and(|v| v.trim() == version) {
        fs::remove_file(&latest).map_err(crate::durable::at(&latest))?;
    }
    let dir = dataset_dir.join(version);
    Ok(fs::remove_dir_all(&dir).map_err(crate::durable::at(&dir))?)
}

/// Removes the images `hashes` from the index: their records and labels, every membership,
/// and every URL record and duplicate decision naming them.
pub fn forget_images(store: &Store, hashes: &HashSet<&str>) -> Result<(), UpkeepError> {
    let index = &store.index;
    for hash in hashes {
        index.remove(&Tree::Images, hash)?;
        index.remove(&Tree::Labels, hash)?;
    }
    for dataset in index.member_datasets() {
        let tree = Tree::Members(dataset.clone());
        for hash in hashes {
            index.remove(&tree, hash)?;
        }
        let tree = Tree::Duplicates(dataset);
        for (url, record) in index.records::<DuplicateRecord>(&tree)? {
            if record.is_ok_and(|r| hashes.contains(r.of.as_str())) {
                index.remove(&tree, &url)?;
            }
        }
    }
    for (url, record) in index.records::<UrlRecord>(&Tree::Urls)? {
        let names = match record {
            Ok(UrlRecord { outcome: UrlOutcome::Accepted { image }, .. }) => image,
            Ok(UrlRecord { outcome: UrlOutcome::Duplicate { of, .. }, .. }) => of,
            _ => continue,
        };
        if hashes.contains(names.as_str()) {
            index.remove(&Tree::Urls, &url)?;
        }
    }
    Ok(())
}

/// `.partial-*` checkpoint folders of runs no `train` is running (a running one's is its
/// checkpoint in progress).
pub fn idle_run_leftovers(root: &Path) -> Result<Vec<PathBuf>, UpkeepError> {
    let mut out = Vec::new();
    for_idle_runs(root, |run| {
        out.extend(partial_checkpoints(run)?);
        Ok(())
    })?;
    Ok(out)
}

/// Removes the `.partial-*` checkpoint folders of runs no `train` is running, each run
/// locked meanwhile: (folders removed, bytes freed).
pub fn remove_run_leftovers(root: &Path) -> Result<(usize, u64), UpkeepError> {
    let mut removed = (0, 0);
    for_idle_runs(root, |run| {
        for path in partial_checkpoints(run)? {
            removed.1 += size_of(&path);
            fs::remove_dir_all(&path).map_err(crate::durable::at(&path))?;
            removed.0 += 1;
        }
        Ok(())
    })?;
    Ok(removed)
}

/// Calls `visit` with each run folder whose run lock is free, holding it meanwhile.
fn for_idle_runs(
    root: &Path,
    mut visit: impl FnMut(&Path) -> Result<(), UpkeepError>,
) -> Result<(), UpkeepError> {
    for (name, run) in subfolders(&runs_dir(root))? {
        let _lock = match lock_run(root, &name) {
            Ok(lock) => lock,
            Err(StoreError::Busy { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        visit(&run)?;
    }
    Ok(())
}

fn partial_checkpoints(run: &Path) -> Result<Vec<PathBuf>, UpkeepError> {
    let all = subfolders(&run.join("checkpoints"))?;
    Ok(all.into_iter().filter(|(name, _)| name.starts_with(".partial-")).map(|(_, p)| p).collect())
}

/// (dataset, version) of every run's `config.json`: their builds are kept for `--resume`
/// and `eval`. gc must not guess: a record it cannot read is an error naming it, and so is
/// a run whose `train` holds its lock before writing the record. A run folder with neither
/// (a start that died) needs no build.
pub fn trained_versions(root: &Path) -> Result<HashSet<(String, String)>, UpkeepError> {
    let mut out = HashSet::new();
    for (name, _) in subfolders(&runs_dir(root))? {
        match TrainedOn::read(root, &name) {
            Ok(TrainedOn { dataset, version }) => {
                out.insert((dataset, version));
            }
            Err(RunRecordError::Missing { .. }) => drop(lock_run(root, &name)?),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Bytes of the files under `dir`.
pub fn size_of(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
