//! `pipeline verify [--repair]`: checks that the index, the blobs and the built datasets
//! agree, and with `--repair` makes them agree again without deleting image bytes.
//!
//! Checked: every image record has its blob, of the recorded size and content hash; every
//! member and URL record names an image that exists; every record decodes; every built
//! version's manifest reads and its shards match their recorded hashes; `latest` names a
//! version that exists. Not problems, only counted: blobs no record names (a crash between
//! blob and index leaves one; `gc` removes them) and `.partial-*` folders of killed builds
//! and checkpoints (never read; the next build, `--repair` or `gc` removes them).
//!
//! Repairs: a missing or damaged blob's image is forgotten (its record, its memberships
//! and the URL records naming it, so the next fetch downloads it again), damaged bytes
//! are moved to `store/quarantine/`; undecodable and dangling records are deleted; a
//! broken build is deleted (and `latest` with it, when it named it: `build` remakes it).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{Built, file_hash};
use crate::durable::subfolders;
use crate::store::{ImageRecord, Member, Store, StoreError, Tree, UrlOutcome, UrlRecord};
use crate::upkeep::{
    UpkeepError, forget_images, idle_run_leftovers, latest, remove_build, remove_run_leftovers,
};

/// Something that disagrees.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// An image record whose blob file is gone.
    MissingBlob { image: String, path: PathBuf },
    /// A blob whose size or content hash is not the recorded one.
    DamagedBlob { image: String, path: PathBuf, reason: String },
    /// A record that does not decode.
    BadRecord { tree: Tree, key: String, reason: String },
    /// A dataset member without an image record.
    MemberWithoutImage { dataset: String, image: String },
    /// A URL record naming an image that does not exist.
    DanglingUrl { url: String, image: String },
    /// A built version that cannot be read as written.
    BrokenBuild { dataset: String, version: String, reason: String },
    /// `latest` names a version that is not there.
    MissingLatest { dataset: String, version: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MissingBlob { image, path } => {
                write!(f, "image {image}: its blob {} is missing", path.display())
            }
            Problem::DamagedBlob { image, path, reason } => {
                write!(f, "image {image}: blob {} is damaged: {reason}", path.display())
            }
            Problem::BadRecord { tree, key, reason } => {
                write!(f, "index record {tree}/{key} does not decode: {reason}")
            }
            Problem::MemberWithoutImage { dataset, image } => {
                write!(f, "dataset {dataset}: member {image} has no image record")
            }
            Problem::DanglingUrl { url, image } => {
                write!(f, "URL {url} names image {image}, which is not stored")
            }
            Problem::BrokenBuild { dataset, version, reason } => {
                write!(f, "dataset {dataset}: build {version} is broken: {reason}")
            }
            Problem::MissingLatest { dataset, version } => {
                write!(f, "dataset {dataset}: latest names build {version}, which is missing")
            }
        }
    }
}

/// What `verify` found (and, with `--repair`, fixed).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub images: usize,
    /// Bytes of blobs read and hashed.
    pub bytes: u64,
    pub members: usize,
    pub urls: usize,
    pub builds: usize,
    /// Blob files that no image record names (harmless; `gc` removes them).
    pub unreferenced_blobs: usize,
    /// `.partial-*` folders left by killed builds and checkpoints (harmless).
    pub leftovers: Vec<PathBuf>,
    pub problems: Vec<Problem>,
    pub repaired: bool,
}

impl Report {
    pub fn consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the whole store; repairs what it finds when `repair` is set. `progress` counts
/// the blobs checked.
pub fn verify(store: &Store, repair: bool, progress: &ProgressBar) -> Result<Report, UpkeepError> {
    let mut report = Report::default();
    let mut problems = Vec::new();
    let images = check_images(store, &mut report, &mut problems, progress)?;
    check_members(store, &images, &mut report, &mut problems)?;
    check_urls(store, &images, &mut report, &mut problems)?;
    for (name, record) in store.index.records::<crate::store::DatasetRecord>(&Tree::Datasets)? {
        if let Err(e) = record {
            problems.push(bad_record(&Tree::Datasets, name, e));
        }
    }
    report.unreferenced_blobs = unreferenced_blobs(store, &images)?;
    check_builds(store.root(), &mut report, &mut problems)?;
    report.leftovers.extend(idle_run_leftovers(store.root())?);
    if repair {
        self::repair(store, &problems, &report.leftovers)?;
        report.repaired = true;
    }
    report.problems = problems;
    Ok(report)
}

/// Every image record is keyed by a hash, and its blob is whole (read and hashed on every
/// core). Returns the readable records.
fn check_images(
    store: &Store,
    report: &mut Report,
    problems: &mut Vec<Problem>,
    progress: &ProgressBar,
) -> Result<HashMap<String, ImageRecord>, UpkeepError> {
    let mut images: HashMap<String, ImageRecord> = HashMap::new();
    for (key, record) in store.index.records::<ImageRecord>(&Tree::Images)? {
        match record {
            Ok(_) if !crate::store::is_hash(&key) => {
                let reason = "its key is not a blake3 hash".to_owned();
                problems.push(Problem::BadRecord { tree: Tree::Images, key, reason });
            }
            Ok(record) => {
                images.insert(key, record);
            }
            Err(e) => problems.push(bad_record(&Tree::Images, key, e)),
        }
    }
    report.images = images.len();
    progress.set_length(images.len() as u64);
    let checked: Vec<(u64, Option<Problem>)> = images
        .par_iter()
        .map(|(hash, record)| {
            let checked = check_blob(store, hash, record);
            progress.inc(1);
            checked
        })
        .collect();
    for (bytes, problem) in checked {
        report.bytes += bytes;
        problems.extend(problem);
    }
    Ok(images)
}

/// Every member names an image the store holds.
fn check_members(
    store: &Store,
    images: &HashMap<String, ImageRecord>,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) -> Result<(), UpkeepError> {
    for dataset in store.index.member_datasets() {
        let tree = Tree::Members(dataset.clone());
        for (image, member) in store.index.records::<Member>(&tree)? {
            report.members += 1;
            match member {
                Err(e) => problems.push(bad_record(&tree, image, e)),
                Ok(_) if !images.contains_key(&image) => {
                    problems.push(Problem::MemberWithoutImage { dataset: dataset.clone(), image })
                }
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

/// Every URL that names an image names one the store holds.
fn check_urls(
    store: &Store,
    images: &HashMap<String, ImageRecord>,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) -> Result<(), UpkeepError> {
    for (url, record) in store.index.records::<UrlRecord>(&Tree::Urls)? {
        report.urls += 1;
        let named = match record {
            Err(e) => {
                problems.push(bad_record(&Tree::Urls, url, e));
                continue;
            }
            Ok(UrlRecord { outcome: UrlOutcome::Accepted { image }, .. }) => image,
            Ok(UrlRecord { outcome: UrlOutcome::Duplicate { of, .. }, .. }) => of,
            Ok(_) => continue,
        };
        if !images.contains_key(&named) {
            problems.push(Problem::DanglingUrl { url, image: named });
        }
    }
    Ok(())
}

/// Blob files no image record names (harmless: `gc` removes them).
fn unreferenced_blobs(
    store: &Store,
    images: &HashMap<String, ImageRecord>,
) -> Result<usize, UpkeepError> {
    let named: HashSet<String> =
        images.iter().map(|(hash, r)| format!("{hash}.{}", r.ext)).collect();
    let files = store.blobs.files()?;
    Ok(files
        .iter()
        .filter(|(path, _)| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            !named.contains(&name.unwrap_or_default())
        })
        .count())
}

fn bad_record(tree: &Tree, key: String, error: StoreError) -> Problem {
    let reason = match error {
        StoreError::Corrupt { reason, .. } => reason,
        other => other.to_string(),
    };
    Problem::BadRecord { tree: tree.clone(), key, reason }
}

/// Reads and hashes one blob: (bytes read, what is wrong with it).
fn check_blob(store: &Store, hash: &str, record: &ImageRecord) -> (u64, Option<Problem>) {
    let path = store.blobs.path(hash, &record.ext);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (0, Some(Problem::MissingBlob { image: hash.to_owned(), path }));
        }
        Err(e) => {
            let reason = format!("unreadable: {e}");
            return (0, Some(Problem::DamagedBlob { image: hash.to_owned(), path, reason }));
        }
    };
    let read = bytes.len() as u64;
    let reason = if read != record.bytes {
        format!("{read} bytes, {} recorded", record.bytes)
    } else if blake3::hash(&bytes).to_hex().as_str() != hash {
        "its content hash is not its name".to_owned()
    } else {
        return (read, None);
    };
    (read, Some(Problem::DamagedBlob { image: hash.to_owned(), path, reason }))
}

/// Every version under `store/datasets/*/`: manifest, shards, and `latest`.
fn check_builds(
    root: &Path,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) -> Result<(), UpkeepError> {
    let datasets = root.join("datasets");
    for (dataset, dir) in subfolders(&datasets)? {
        for (version, path) in subfolders(&dir)? {
            if version.starts_with(".partial-") {
                report.leftovers.push(path);
                continue;
            }
            report.builds += 1;
            if let Err(reason) = check_build(&path) {
                problems.push(Problem::BrokenBuild { dataset: dataset.clone(), version, reason });
            }
        }
        if let Some(version) =
            latest(root, &dataset)?.filter(|v| !dir.join(v).join("manifest.json").exists())
        {
            problems.push(Problem::MissingLatest { dataset, version });
        }
    }
    Ok(())
}

fn check_build(dir: &Path) -> Result<(), String> {
    let built = Built::open(dir).map_err(|e| e.to_string())?;
    for (number, info) in built.manifest.shards.iter().enumerate() {
        let path = dir.join(&info.file);
        let hash = file_hash(&path).map_err(|e| format!("{}: {e}", info.file))?;
        if hash != info.blake3 {
            return Err(format!("{}: content differs from the manifest's hash", info.file));
        }
        built.shard(number).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn repair(store: &Store, problems: &[Problem], leftovers: &[PathBuf]) -> Result<(), UpkeepError> {
    let index = &store.index;
    let mut lost: HashSet<&str> = HashSet::new();
    for problem in problems {
        match problem {
            Problem::MissingBlob { image, .. } => {
                lost.insert(image);
            }
            Problem::DamagedBlob { image, path, .. } => {
                lost.insert(image);
                let quarantine = store.root().join("quarantine");
                fs::create_dir_all(&quarantine).map_err(crate::durable::at(&quarantine))?;
                let name = path.file_name().expect("blob paths have a name");
                fs::rename(path, quarantine.join(name)).map_err(crate::durable::at(path))?;
            }
            Problem::BadRecord { tree, key, .. } => index.remove(tree, key)?,
            Problem::MemberWithoutImage { dataset, image } => {
                index.remove(&Tree::Members(dataset.clone()), image)?
            }
            Problem::DanglingUrl { url, .. } => index.remove(&Tree::Urls, url)?,
            Problem::BrokenBuild { dataset, version, .. } => {
                let dir = crate::dataset::dataset_dir(store.root(), dataset);
                remove_build(&dir, version)?;
            }
            Problem::MissingLatest { dataset, .. } => {
                let latest = crate::dataset::dataset_dir(store.root(), dataset).join("latest");
                fs::remove_file(&latest).map_err(crate::durable::at(&latest))?;
            }
        }
    }
    if !lost.is_empty() {
        forget_images(store, &lost)?;
    }
    // Build leftovers are safe under the store lock; checkpoint leftovers are listed
    // again under their run locks, since `train` does not take the store lock.
    let runs = crate::train::run_record::runs_dir(store.root());
    for path in leftovers.iter().filter(|p| !p.starts_with(&runs)) {
        fs::remove_dir_all(path).map_err(crate::durable::at(path))?;
    }
    remove_run_leftovers(store.root())?;
    Ok(index.flush()?)
}
