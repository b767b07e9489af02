//! `pipeline gc`: frees the space nothing uses any more.
//!
//! Removed: images that are no dataset's member (record, URL records naming them, blob),
//! blob files no image record names (left by a crash between blob and index), built
//! versions that are neither a dataset's `latest` nor trained on by a run in
//! `store/runs/` (builds are derived data: `build` remakes the latest), and the
//! `.partial-*` folders of killed builds and checkpoints. Members and their blobs are
//! never touched.

use std::collections::HashSet;
use std::fs;

use serde::Serialize;

use crate::durable::subfolders;
use crate::store::{Member, Store, Tree};
use crate::upkeep::{
    UpkeepError, forget_images, latest, remove_build, remove_run_leftovers, size_of,
    trained_versions,
};

#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Image records forgotten because no dataset has them as a member.
    pub images: usize,
    pub blobs: usize,
    pub builds: usize,
    pub leftovers: usize,
    /// Bytes freed on disk, all kinds together.
    pub bytes: u64,
}

pub fn gc(store: &Store) -> Result<Report, UpkeepError> {
    let index = &store.index;
    let mut report = Report::default();
    // First: a run record gc cannot read stops it before anything is removed.
    let trained = trained_versions(store.root())?;

    let mut members: HashSet<String> = HashSet::new();
    for dataset in index.member_datasets() {
        let tree = Tree::Members(dataset);
        members.extend(index.records::<Member>(&tree)?.into_iter().map(|(hash, _)| hash));
    }
    let images: Vec<String> = index
        .records::<crate::store::ImageRecord>(&Tree::Images)?
        .into_iter()
        .map(|(hash, _)| hash)
        .collect();
    let orphans: HashSet<&str> =
        images.iter().filter(|h| !members.contains(*h)).map(String::as_str).collect();
    report.images = orphans.len();
    if !orphans.is_empty() {
        forget_images(store, &orphans)?;
    }
    index.flush()?;

    // Only now that the index no longer names them can the bytes go.
    for (path, name) in store.blobs.files()? {
        if name.is_some_and(|hash| members.contains(&hash)) {
            continue;
        }
        report.bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        fs::remove_file(&path).map_err(crate::durable::at(&path))?;
        report.blobs += 1;
    }

    for (dataset, dir) in subfolders(&store.root().join("datasets"))? {
        let latest = latest(store.root(), &dataset)?;
        for (version, path) in subfolders(&dir)? {
            let leftover = version.starts_with(".partial-");
            if !leftover
                && (latest.as_deref() == Some(version.as_str())
                    || trained.contains(&(dataset.clone(), version.clone())))
            {
                continue;
            }
            report.bytes += size_of(&path);
            if leftover {
                fs::remove_dir_all(&path).map_err(crate::durable::at(&path))?;
                report.leftovers += 1;
            } else {
                remove_build(&dir, &version)?;
                report.builds += 1;
            }
        }
    }
    let (folders, bytes) = remove_run_leftovers(store.root())?;
    report.leftovers += folders;
    report.bytes += bytes;
    Ok(report)
}
