//! One task of a job array that builds a merged dataset (`build --shard N`), after the
//! labelling array (`labeller`): the same version, byte for byte, as one machine's build.
//!
//! Every task decides the whole build the same way from the member list and the labels
//! (curation, splits, version, which members each shard file holds: `build::decide`,
//! no pixels needed), then writes only its run of shard files: it downloads only those
//! members' blobs (checked) into a scratch store, builds them, creates the files under
//! `datasets/<dataset>/<version>/` and, last, its part marker
//! `builds/<dataset>/<version>/part-NNNNN-of-KKKKK.json` (the shards' hashes, members and
//! failures). A task killed before its marker is redone whole; its files are the same
//! bytes, created only if absent. The task that finds every part marker there commits the
//! version: it reads the parts (checked against its own decision), writes the card, then
//! `manifest.json` (created once: the first commit stands), then `latest`.

use bytes::Bytes;
use serde::Serialize;

use super::labeller::fetch_labels;
use super::mirror::{self, Blobs, Checks};
use super::task::{self, Task, TaskError};
use super::{Bucket, Cap, scratch};
use crate::build::shards::{self, Chunk, Part};
use crate::build::{self, Decision};
use crate::config::Config;
use crate::dataset::curation::CurateConfig;
use crate::dataset::{BuildSettings, card};

/// What one building task did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildReport {
    pub dataset: String,
    pub part: usize,
    pub parts: usize,
    pub version: String,
    /// "built" (this task's part), or "skipped" (its part was there).
    pub status: &'static str,
    /// Shard files of this task's part.
    pub shards: usize,
    /// Whether the version is committed (by this task or an earlier one).
    pub committed: bool,
}

fn part_key(dataset: &str, version: &str, part: usize, parts: usize) -> String {
    format!("builds/{dataset}/{version}/part-{part:05}-of-{parts:05}.json")
}

fn file_key(dataset: &str, version: &str, file: &str) -> String {
    format!("datasets/{dataset}/{version}/{file}")
}

/// Builds `task`'s part of the merged `task.dataset`, then commits the version if every
/// part is done.
pub async fn run(
    bucket: &Bucket,
    config: &Config,
    settings: &BuildSettings,
    curation: &CurateConfig,
    task: &Task<'_>,
) -> Result<BuildReport, TaskError> {
    let scratch_error = |source| TaskError::Scratch { part: task.part, source };
    let list = mirror::merged(bucket, task.dataset).await?;
    let name = format!("build-{}-{}", task.dataset, task.part);
    let (scratch, store) = scratch::create(&name).map_err(scratch_error)?;
    mirror::pull_records(&store, task.dataset, &list, Blobs::InBucket)?;
    fetch_labels(bucket, &store, task, &list).await?;
    let members = store.index.members(task.dataset).map_err(scratch_error)?;
    let decision = tokio::task::block_in_place(|| {
        build::decide(&store, task.dataset, &members, settings, curation, &task.progress)
    })?;
    let version = decision.version.clone();
    let marker = part_key(task.dataset, &version, task.part, task.parts);
    let run = task::range(decision.chunks.len(), task.part, task.parts);
    let mut report = BuildReport {
        dataset: task.dataset.to_owned(),
        part: task.part,
        parts: task.parts,
        version: version.clone(),
        status: "skipped",
        shards: 0,
        committed: false,
    };
    if bucket.get(&marker, part_cap(&decision)).await?.is_none() {
        let chunks = &decision.chunks[run];
        let mine: std::collections::HashSet<&str> = chunks.iter().flat_map(Chunk::ids).collect();
        let images: Vec<_> =
            list.members.iter().filter(|m| mine.contains(m.hash.as_str())).cloned().collect();
        let checks = Checks { max_bytes: config.network.max_bytes, images: config.images.clone() };
        mirror::pull_blobs(bucket, &store, &images, &checks).await?;
        let dir = scratch.path().join("shards");
        std::fs::create_dir(&dir).map_err(|e| scratch_error(crate::durable::at(&dir)(e).into()))?;
        task.progress.set_position(0);
        task.progress.set_length(images.len() as u64);
        let part =
            tokio::task::block_in_place(|| shards::write(&dir, chunks, settings, &task.progress))?;
        upload_part(bucket, &decision, &dir, &part, &marker).await?;
        (report.status, report.shards) = ("built", part.shards.len());
    }
    report.committed = commit(bucket, &decision, task.parts).await?;
    drop(store);
    Ok(report)
}

/// Most bytes a part marker may have: some 2 KiB a member of the build.
fn part_cap(decision: &Decision) -> Cap {
    Cap::per(decision.images(), 2048, "2 KiB an image of the build")
}

/// Creates the part's shard files, then its marker.
async fn upload_part(
    bucket: &Bucket,
    decision: &Decision<'_>,
    dir: &std::path::Path,
    part: &Part,
    marker: &str,
) -> Result<(), TaskError> {
    for shard in &part.shards {
        let path = dir.join(&shard.file);
        let bytes = tokio::fs::read(&path).await.map_err(crate::durable::at(&path));
        let bytes = bytes.map_err(crate::build::BuildError::from)?;
        let key = file_key(decision.dataset, &decision.version, &shard.file);
        bucket.create(&key, Bytes::from(bytes)).await?;
    }
    let json = serde_json::to_vec(part).expect("a part serializes");
    bucket.create(marker, Bytes::from(json)).await?;
    Ok(())
}

/// Commits the version once every part's marker is there: the card, `manifest.json`
/// (created once), then `latest`. Whether it is committed.
async fn commit(bucket: &Bucket, decision: &Decision<'_>, parts: usize) -> Result<bool, TaskError> {
    let (dataset, version) = (decision.dataset, decision.version.as_str());
    let manifest_key = file_key(dataset, version, "manifest.json");
    let mut written = Vec::with_capacity(parts);
    for part in 0..parts {
        let key = part_key(dataset, version, part, parts);
        let Some(bytes) = bucket.get(&key, part_cap(decision)).await? else {
            return Ok(false);
        };
        let read: Part =
            serde_json::from_slice(&bytes).map_err(|e| bucket.corrupt(&key, e.to_string()))?;
        let run = task::range(decision.chunks.len(), part, parts);
        shards::check(&decision.chunks[run], &read).map_err(|why| bucket.corrupt(&key, why))?;
        written.push(read);
    }
    let manifest = decision.manifest(shards::join(written));
    let card_key = file_key(dataset, version, card::FILE);
    bucket.create(&card_key, Bytes::from(card::card(&manifest))).await?;
    let bytes = Bytes::from(build::manifest_bytes(&manifest));
    // Created once: a task committing beside this one, or before it, made the same bytes.
    bucket.create(&manifest_key, bytes).await?;
    bucket.put(&format!("datasets/{dataset}/latest"), Bytes::from(format!("{version}\n"))).await?;
    Ok(true)
}
