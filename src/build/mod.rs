//! `pipeline build`: a dataset's accepted images -> paired A/B tensor shards.
//!
//! ```text
//! members (index) ──► curate ──► preprocess (all cores, in order) ──► shard writer ──► publish
//! ```
//!
//! Curation (`crate::curate`) leaves out gray, tinted and off-topic images and refuses a
//! test split that leaks; the manifest records what it left out and why.
//! What a build holds is decided first ([`decide`]: curation, splits, the version, the
//! shards' members), with no pixel resized; `shards` then writes the shard files, all of
//! them here, or one part of them on each task of a job array (`bucket::builder`).
//! Everything goes to a `.partial-*` folder that is fsynced and renamed into place before
//! `latest` moves: an interrupted build leaves the previous version untouched and usable.
//! The manifest records the members' provenance (`provenance`), and the dataset card
//! (`README.md`) is written beside it.
//!
//! Imports `curate`, `dataset`, `store`, `net`, `photo`, `durable`.

mod provenance;
pub mod shards;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::curate::{self, CurateError};
use crate::dataset::curation::Leak;
use crate::dataset::curation::{CurateConfig, Dropped, OnLeak};
use crate::dataset::{
    self, BuildSettings, Counts, DatasetError, FORMAT, LUMA, Manifest, Provenance, ShardError,
    Split, dataset_dir, latest_version, version_of,
};
use crate::durable;
use crate::store::{ImageRecord, Member, Store, StoreError};
use shards::{Chunk, Part, Planned};

/// What a build did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `latest` already is this version.
    UpToDate {
        version: String,
    },
    Built {
        version: String,
        counts: Counts,
        elapsed: Duration,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no dataset named {name:?} in the store (known: {known})")]
    Unknown { name: String, known: String },
    #[error("dataset {0} has no accepted images yet: fetch or import some first")]
    Empty(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Curate(#[from] CurateError),
    #[error(
        "{dataset}: {} test image(s) nearly duplicate training images; nothing published:\n  {}\n\
         leave them out with `--on-leak drop` (or curate.on_leak), or publish anyway with `--on-leak allow`",
        .leaks.len(),
        .leaks.iter().map(Leak::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    Leaks { dataset: String, leaks: Vec<Leak> },
    #[error(
        "{dataset}: curation left out all {} members ({}); `pipeline curate {dataset} --show` says why",
        .dropped.len(),
        crate::dataset::curation::count_by_reason(.dropped).iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
    )]
    AllDropped { dataset: String, dropped: Vec<crate::dataset::curation::Dropped> },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
}

/// What a build of a dataset holds, decided before any image is resized.
pub struct Decision<'a> {
    pub dataset: &'a str,
    /// The version's name.
    pub version: String,
    pub settings: &'a BuildSettings,
    curation: &'a CurateConfig,
    provenance: Provenance,
    /// The shards' members, in manifest order.
    pub chunks: Vec<Chunk<'a>>,
    dropped: Vec<Dropped>,
    leaks: Vec<Leak>,
}

/// Curates `members` of `dataset` by `curation` (labelling the images that need it),
/// splits what is kept, names the version and cuts it into shards.
pub fn decide<'a>(
    store: &Store,
    dataset: &'a str,
    members: &'a [(String, Member, ImageRecord)],
    settings: &'a BuildSettings,
    curation: &'a CurateConfig,
    progress: &ProgressBar,
) -> Result<Decision<'a>, BuildError> {
    let selection =
        curate::select(store, dataset, members, curation, settings.test_fraction, progress)?;
    if curation.on_leak == OnLeak::Refuse && !selection.leaks.is_empty() {
        return Err(BuildError::Leaks { dataset: dataset.to_owned(), leaks: selection.leaks });
    }
    let (dropped, leaks) = (selection.dropped, selection.leaks);
    if selection.kept.is_empty() {
        return Err(BuildError::AllDropped { dataset: dataset.to_owned(), dropped });
    }
    let ids: Vec<&str> = selection.kept.iter().map(|((id, _, _), _)| id.as_str()).collect();
    let version = version_of(&ids, settings, &(curation, &dropped, &leaks));
    // Where the members came from is recorded, not hashed: the same members built in
    // another store, fetched at other times, are the same version.
    let kept_members = selection.kept.iter().map(|((_, member, _), _)| member);
    let provenance = provenance::provenance(store, dataset, kept_members)?;
    let mut plan: Vec<Planned> = selection
        .kept
        .iter()
        .map(|&((id, member, image), split)| Planned {
            id,
            split,
            member,
            blob: store.blobs.path(id, &image.ext),
        })
        .collect();
    plan.sort_by(|x, y| (x.split, x.id).cmp(&(y.split, y.id)));
    let chunks = shards::chunks(plan, settings.shard_size);
    Ok(Decision { dataset, version, settings, curation, provenance, chunks, dropped, leaks })
}

impl Decision<'_> {
    /// The images the build reads.
    pub fn images(&self) -> usize {
        self.chunks.iter().map(|c| c.items.len()).sum()
    }

    /// The manifest of the version whose shards `written` (all of them, in order) hold.
    pub fn manifest(&self, written: Part) -> Manifest {
        let count = |split| written.members.iter().filter(|m| m.split == split).count();
        let counts = Counts {
            train: count(Split::Train),
            test: count(Split::Test),
            skipped: written.skipped.len(),
            dropped: crate::dataset::curation::count_by_reason(&self.dropped),
        };
        Manifest {
            format: FORMAT,
            dataset: self.dataset.to_owned(),
            version: self.version.clone(),
            settings: self.settings.clone(),
            luma: LUMA.to_owned(),
            counts,
            shards: written.shards,
            members: written.members,
            skipped: written.skipped,
            curation: self.curation.clone(),
            dropped: self.dropped.clone(),
            leaks: self.leaks.clone(),
            provenance: self.provenance.clone(),
        }
    }
}

/// Builds `dataset`, curated by `curation`, unless `latest` already holds this exact
/// version (or `force`).
pub fn build(
    store: &Store,
    dataset: &str,
    settings: &BuildSettings,
    curation: &CurateConfig,
    force: bool,
    progress: &ProgressBar,
) -> Result<Outcome, BuildError> {
    let started = Instant::now();
    let members = store.index.members(dataset)?;
    if members.is_empty() {
        return Err(match store.index.dataset(dataset)? {
            Some(_) => BuildError::Empty(dataset.to_owned()),
            None => BuildError::Unknown { name: dataset.to_owned(), known: known(store)? },
        });
    }
    let decision = decide(store, dataset, &members, settings, curation, progress)?;
    let dir = dataset_dir(store.root(), dataset);
    let version = decision.version.clone();
    if !force
        && latest_version(store.root(), dataset)?.as_deref() == Some(version.as_str())
        && dir.join(&version).join("manifest.json").exists()
    {
        return Ok(Outcome::UpToDate { version });
    }
    let counts = write_version(&dir, &decision, progress)?;
    Ok(Outcome::Built { version, counts, elapsed: started.elapsed() })
}

/// Writes `decision`'s version aside in the dataset's folder `dir` (its shards, then its
/// manifest and card) and publishes it; its counts.
fn write_version(
    dir: &Path,
    decision: &Decision,
    progress: &ProgressBar,
) -> Result<Counts, BuildError> {
    fs::create_dir_all(dir).map_err(crate::durable::at(dir))?;
    remove_partials(dir)?;
    let partial = dir.join(format!(".partial-{}-{}", decision.version, std::process::id()));
    fs::create_dir(&partial).map_err(crate::durable::at(&partial))?;
    progress.set_position(0);
    progress.set_length(decision.images() as u64);
    let written = shards::write(&partial, &decision.chunks, decision.settings, progress)?;
    let manifest = decision.manifest(written);
    write_manifest(&partial, &manifest)?;
    publish(dir, &partial, &decision.version)?;
    Ok(manifest.counts)
}

/// Writes `manifest.json` and the dataset card into `dir`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BuildError> {
    let manifest_path = dir.join("manifest.json");
    fs::write(&manifest_path, manifest_bytes(manifest))
        .map_err(crate::durable::at(&manifest_path))?;
    let card_path = dir.join(dataset::card::FILE);
    fs::write(&card_path, dataset::card::card(manifest)).map_err(crate::durable::at(&card_path))?;
    Ok(())
}

/// A manifest as `manifest.json` holds it.
pub fn manifest_bytes(manifest: &Manifest) -> Vec<u8> {
    serde_json::to_vec_pretty(manifest).expect("manifest serializes")
}

fn known(store: &Store) -> Result<String, BuildError> {
    let names: Vec<String> = store.index.datasets()?.into_iter().map(|(name, _)| name).collect();
    Ok(if names.is_empty() { "none yet".into() } else { names.join(", ") })
}

/// Removes the leftovers of interrupted builds.
fn remove_partials(dir: &Path) -> Result<(), BuildError> {
    for entry in fs::read_dir(dir).map_err(crate::durable::at(dir))?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".partial-") {
            fs::remove_dir_all(entry.path()).map_err(crate::durable::at(&entry.path()))?;
        }
    }
    Ok(())
}

/// Makes `partial` durable, renames it to `version` and points `latest` at it.
fn publish(dir: &Path, partial: &Path, version: &str) -> Result<(), BuildError> {
    let target = dir.join(version);
    if target.join("manifest.json").exists() {
        // A forced rebuild of a published version: the same bytes by construction, so the
        // published copy stays (a swap would leave `latest` naming nothing for a moment).
        fs::remove_dir_all(partial).map_err(crate::durable::at(partial))?;
    } else {
        durable::publish_folder(partial, &target)?;
    }
    dataset::set_latest(dir, version)?;
    Ok(())
}
