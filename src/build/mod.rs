//! `pipeline build`: a dataset's accepted images -> paired A/B tensor shards.
//!
//! ```text
//! members (index) ──► curate ──► preprocess (all cores, in order) ──► shard writer ──► publish
//! ```
//!
//! Curation (`crate::curate`) leaves out gray, tinted and off-topic images and refuses a
//! test split that leaks; the manifest records what it left out and why.
//! Members are ordered by split, then by content hash, and cut into shards of
//! `build.shard_size`; each shard's images are decoded and resized in parallel (rayon)
//! straight into the shard's buffers while the previous shard is being written, so memory
//! stays at about two shards. Everything goes to a `.partial-*` folder that is fsynced and
//! renamed into place before `latest` moves: an interrupted build leaves the previous
//! version untouched and usable. The manifest records the members' provenance
//! (`provenance`), and the dataset card (`README.md`) is written beside it.
//!
//! Imports `curate`, `dataset`, `store`, `net`, `photo`, `durable`.

mod provenance;

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::curate::{self, CurateError};
use crate::dataset::curation::Leak;
use crate::dataset::curation::{CurateConfig, Dropped, OnLeak};
use crate::dataset::{
    self, BuildSettings, Counts, DatasetError, FORMAT, LUMA, Manifest, ManifestMember, Provenance,
    ShardError, ShardInfo, Skipped, Split, dataset_dir, latest_version, version_of,
};
use crate::durable;
use crate::photo::resize::Preprocessor;
use crate::store::{ImageRecord, Member, Store, StoreError};

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

/// One image to preprocess.
struct Planned<'a> {
    id: &'a str,
    split: Split,
    member: &'a Member,
    blob: PathBuf,
}

/// What the shards hold: shard list, members in shard order, images that failed.
type Written = (Vec<ShardInfo>, Vec<ManifestMember>, Vec<Skipped>);

/// A shard's pixels on their way to the writer.
struct ShardJob {
    path: PathBuf,
    a: Vec<u8>,
    b: Vec<u8>,
    ids: Vec<String>,
}

thread_local! {
    static PREPROCESSOR: RefCell<Preprocessor> = RefCell::new(Preprocessor::default());
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
    let selection =
        curate::select(store, dataset, &members, curation, settings.test_fraction, progress)?;
    if curation.on_leak == OnLeak::Refuse && !selection.leaks.is_empty() {
        return Err(BuildError::Leaks { dataset: dataset.to_owned(), leaks: selection.leaks });
    }
    let (dropped, leaks) = (selection.dropped, selection.leaks);
    if selection.kept.is_empty() {
        return Err(BuildError::AllDropped { dataset: dataset.to_owned(), dropped });
    }
    let ids: Vec<&str> = selection.kept.iter().map(|((id, _, _), _)| id.as_str()).collect();
    let version = version_of(&ids, settings, &(curation, &dropped, &leaks));
    let dir = dataset_dir(store.root(), dataset);
    let published = dir.join(&version);
    if !force
        && latest_version(store.root(), dataset)?.as_deref() == Some(version.as_str())
        && published.join("manifest.json").exists()
    {
        return Ok(Outcome::UpToDate { version });
    }
    // Where the members came from is recorded, not hashed: the same members built in
    // another store, fetched at other times, are the same version.
    let kept_members = selection.kept.iter().map(|((_, member, _), _)| member);
    let provenance = provenance::provenance(store, dataset, kept_members)?;
    let version = Version { dataset, name: version, dir, settings, curation, provenance };
    let counts = write_version(store, &version, selection.kept, dropped, leaks, progress)?;
    Ok(Outcome::Built { version: version.name, counts, elapsed: started.elapsed() })
}

/// The version a build writes: its name and folder, and what it was built with.
struct Version<'a> {
    dataset: &'a str,
    name: String,
    /// The dataset's folder.
    dir: PathBuf,
    settings: &'a BuildSettings,
    curation: &'a CurateConfig,
    provenance: Provenance,
}

/// Writes `version` aside (its shards, then its manifest) and publishes it; its counts.
fn write_version(
    store: &Store,
    version: &Version,
    kept: Vec<(&(String, Member, ImageRecord), Split)>,
    dropped: Vec<Dropped>,
    leaks: Vec<Leak>,
    progress: &ProgressBar,
) -> Result<Counts, BuildError> {
    let dir = &version.dir;
    fs::create_dir_all(dir).map_err(crate::durable::at(dir))?;
    remove_partials(dir)?;
    let partial = dir.join(format!(".partial-{}-{}", version.name, std::process::id()));
    fs::create_dir(&partial).map_err(crate::durable::at(&partial))?;
    let mut plan: Vec<Planned> = kept
        .iter()
        .map(|&((id, member, image), split)| Planned {
            id,
            split,
            member,
            blob: blob_path(store, id, image),
        })
        .collect();
    plan.sort_by(|x, y| (x.split, x.id).cmp(&(y.split, y.id)));
    progress.set_position(0);
    progress.set_length(plan.len() as u64);

    let (shards, members, skipped) = write_shards(&partial, &plan, version.settings, progress)?;
    let counts = Counts {
        train: members.iter().filter(|m| m.split == Split::Train).count(),
        test: members.iter().filter(|m| m.split == Split::Test).count(),
        skipped: skipped.len(),
        dropped: crate::dataset::curation::count_by_reason(&dropped),
    };
    let manifest = Manifest {
        format: FORMAT,
        dataset: version.dataset.to_owned(),
        version: version.name.clone(),
        settings: version.settings.clone(),
        luma: LUMA.to_owned(),
        counts: counts.clone(),
        shards,
        members,
        skipped,
        curation: version.curation.clone(),
        dropped,
        leaks,
        provenance: version.provenance.clone(),
    };
    let manifest_path = partial.join("manifest.json");
    let text = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    fs::write(&manifest_path, text).map_err(crate::durable::at(&manifest_path))?;
    let card_path = partial.join(dataset::card::FILE);
    fs::write(&card_path, dataset::card::card(&manifest))
        .map_err(crate::durable::at(&card_path))?;
    publish(dir, &partial, &version.name)?;
    Ok(counts)
}

fn known(store: &Store) -> Result<String, BuildError> {
    let names: Vec<String> = store.index.datasets()?.into_iter().map(|(name, _)| name).collect();
    Ok(if names.is_empty() { "none yet".into() } else { names.join(", ") })
}

fn blob_path(store: &Store, id: &str, image: &ImageRecord) -> PathBuf {
    store.blobs.path(id, &image.ext)
}

/// Preprocesses `plan` shard by shard into `dir`, writing each shard on a second thread
/// while the next one is computed.
fn write_shards(
    dir: &Path,
    plan: &[Planned],
    settings: &BuildSettings,
    progress: &ProgressBar,
) -> Result<Written, BuildError> {
    let (tx, rx) = sync_channel::<ShardJob>(0);
    let size = settings.size;
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<Vec<String>, BuildError> {
            let mut hashes = Vec::new();
            for job in rx {
                dataset::write_shard(&job.path, size, &job.a, &job.b, &job.ids)?;
                let job_path = job.path;
                // Synced here, beside the decoding of the next shard, rather than all at
                // the end.
                durable::sync(&job_path)?;
                hashes.push(dataset::file_hash(&job_path).map_err(crate::durable::at(&job_path))?);
            }
            Ok(hashes)
        });
        let produced = produce(dir, plan, settings, progress, &tx);
        drop(tx);
        let hashes = writer.join().expect("shard writer does not panic")?;
        let (mut shards, members, skipped) = produced?;
        for (shard, hash) in shards.iter_mut().zip(hashes) {
            shard.blake3 = hash;
        }
        Ok((shards, members, skipped))
    })
}

fn produce(
    dir: &Path,
    plan: &[Planned],
    settings: &BuildSettings,
    progress: &ProgressBar,
    tx: &std::sync::mpsc::SyncSender<ShardJob>,
) -> Result<Written, BuildError> {
    let plane = (settings.size * settings.size) as usize;
    let (mut shards, mut members, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for split in [Split::Train, Split::Test] {
        let in_split: Vec<&Planned> = plan.iter().filter(|p| p.split == split).collect();
        for (number, chunk) in in_split.chunks(settings.shard_size).enumerate() {
            let mut a = vec![0u8; chunk.len() * plane];
            let mut b = vec![0u8; chunk.len() * 3 * plane];
            let results: Vec<Result<(), String>> = a
                .par_chunks_mut(plane)
                .zip(b.par_chunks_mut(3 * plane))
                .zip(chunk.par_iter())
                .map(|((a, b), item)| {
                    let result = fs::read(&item.blob)
                        .map_err(|e| format!("{}: {e}", item.blob.display()))
                        .and_then(|bytes| {
                            PREPROCESSOR.with_borrow_mut(|p| {
                                p.pair(&bytes, settings.size, settings.resize, a, b)
                                    .map_err(|e| e.to_string())
                            })
                        });
                    progress.inc(1);
                    result
                })
                .collect();
            // Failed images leave holes: close them up, keeping order.
            let mut kept = Vec::new();
            for (item, result) in chunk.iter().zip(results) {
                match result {
                    Ok(()) => kept.push(*item),
                    Err(reason) => skipped.push(Skipped { id: item.id.to_owned(), reason }),
                }
            }
            if kept.len() < chunk.len() {
                compact(&mut a, &mut b, chunk, &kept, plane);
            }
            if kept.is_empty() {
                continue;
            }
            let file = format!("{}-{:05}.safetensors", split.as_str(), number);
            let shard = shards.len();
            for (index, item) in kept.iter().enumerate() {
                members.push(ManifestMember {
                    id: item.id.to_owned(),
                    split,
                    shard,
                    index,
                    rank: item.member.rank,
                    source: item.member.source.clone(),
                    url: item.member.url.clone(),
                    page_url: item.member.page_url.clone(),
                    title: item.member.title.clone(),
                    credit: item.member.credit.clone(),
                });
            }
            shards.push(ShardInfo {
                file: file.clone(),
                split,
                count: kept.len(),
                blake3: String::new(),
            });
            let ids = kept.iter().map(|p| p.id.to_owned()).collect();
            let job = ShardJob { path: dir.join(file), a, b, ids };
            if tx.send(job).is_err() {
                break; // The writer failed; its error is reported by the caller.
            }
        }
    }
    Ok((shards, members, skipped))
}

/// Moves the pairs of `kept` (a subsequence of `chunk`) to the front, in order.
fn compact(a: &mut Vec<u8>, b: &mut Vec<u8>, chunk: &[&Planned], kept: &[&Planned], plane: usize) {
    let mut to = 0;
    for (from, item) in chunk.iter().enumerate() {
        if kept.get(to).is_some_and(|k| std::ptr::eq(*k, *item)) {
            a.copy_within(from * plane..(from + 1) * plane, to * plane);
            b.copy_within(from * 3 * plane..(from + 1) * 3 * plane, to * 3 * plane);
            to += 1;
        }
    }
    a.truncate(to * plane);
    b.truncate(to * 3 * plane);
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
    let pointer = format!("{version}\n");
    durable::write_file(&dir.join(".latest.tmp"), &dir.join("latest"), pointer.as_bytes())?;
    Ok(())
}
