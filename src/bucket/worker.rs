//! One shard's worker (`import --shard N`): idempotent, so an engine may run it again.
//!
//! A shard with a `_done` marker is skipped. Otherwise its slice of the URL list goes
//! through the usual fetch graph into a scratch store of this process's own, then the
//! images go to the bucket (blobs created only if absent), then the manifest, then the
//! marker, last and created only if absent. A worker killed before the marker leaves
//! blobs (harmless: content-addressed, and `merge` names only what a manifest lists) and
//! its shard is redone whole; two workers on one shard write the same blobs, each its own
//! manifest (named by its attempt), and the one whose marker comes second removes its
//! manifest: the first commit stands. A worker stopped by SIGINT or SIGTERM removes its
//! scratch store on the way out; one killed outright leaves it, and the next worker to
//! start on the machine removes it ([`scratch::remove_dead`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::manifest::{self, Attempt, Image, Line, ShardStats};
use super::plan::{self, PlanError};
use super::{Bucket, BucketError, Created, blob_key, scratch};
use crate::config::Config;
use crate::fetch::{self, Job, RunError, Session, Source, UrlList};
use crate::store::{DuplicateRecord, FailureRecord, Store, StoreError, Tree, now};

/// Uploads in flight at once.
const UPLOADS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error("shard {shard}: {source}")]
    Fetch { shard: usize, source: RunError },
    #[error("shard {shard}: scratch store: {source}")]
    Scratch { shard: usize, source: StoreError },
    #[error("shard {shard}: interrupted before it finished; it will be redone whole")]
    Interrupted { shard: usize },
}

/// What became of one shard.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShardReport {
    /// "done" (by this worker), or "skipped" (its marker was there).
    pub status: &'static str,
    #[serde(flatten)]
    pub stats: ShardStats,
}

/// Which shard a worker does, and how.
pub struct Task<'a> {
    pub dataset: &'a str,
    pub shard: usize,
    /// Do the shard again even if it is done (its marker is removed first).
    pub redo: bool,
    pub show_progress: bool,
}

/// Runs shard `task.shard` of `task.dataset` unless it is done (or `task.redo`), in
/// `session` (whose stop a signal cancels).
pub async fn run(
    bucket: &Bucket,
    config: &Config,
    session: &Session,
    task: &Task<'_>,
) -> Result<ShardReport, WorkerError> {
    let started = Instant::now();
    let plan = plan::read(bucket, task.dataset).await?;
    if let Some(stats) = done_already(bucket, task).await? {
        return Ok(ShardReport { status: "skipped", stats });
    }
    let fetched = fetch_shard(bucket, config, session, task, &plan).await?;
    if session.stop.is_cancelled() {
        return Err(WorkerError::Interrupted { shard: task.shard });
    }
    commit(bucket, task, &plan, &fetched, started).await
}

/// The committed stats of a done shard, unless it is to be redone: then its marker (first:
/// from there on the shard is pending, never half-committed) and manifest go.
async fn done_already(bucket: &Bucket, task: &Task<'_>) -> Result<Option<ShardStats>, WorkerError> {
    let done = manifest::done_key(task.dataset, task.shard);
    let Some(stats) = bucket.get_json::<ShardStats>(&done).await? else { return Ok(None) };
    if !task.redo {
        return Ok(Some(stats));
    }
    bucket.delete(&done).await?;
    if let Some(attempt) = Attempt::parse(&stats.attempt) {
        bucket.delete(&manifest::manifest_key(task.dataset, task.shard, &attempt)).await?;
    }
    Ok(None)
}

/// A shard fetched into a scratch store of its own (removed when this is dropped).
struct Fetched {
    store: Arc<Store>,
    summary: fetch::Summary,
    _scratch: tempfile::TempDir,
}

/// Runs the shard's slice of the URL list through the fetch graph into a scratch store.
async fn fetch_shard(
    bucket: &Bucket,
    config: &Config,
    session: &Session,
    task: &Task<'_>,
    plan: &plan::Plan,
) -> Result<Fetched, WorkerError> {
    let (dataset, shard) = (task.dataset, task.shard);
    let text = plan::part(bucket, plan, shard).await?;
    let (scratch, store) =
        scratch::create(&format!("{dataset}-{shard}")).map_err(|e| scratch_error(shard, e))?;
    let list = scratch.path().join("part.txt");
    std::fs::write(&list, &text)
        .map_err(|e| scratch_error(shard, crate::durable::at(&list)(e).into()))?;
    let store = Arc::new(store);
    let mut config = config.clone();
    // Near duplicates are `merge`'s to decide, over every shard in rank order, as one
    // import would; exact copies within the shard are dropped here already.
    config.dedup.phash_distance = 0;
    let first_line = plan.parts[shard].first_line;
    let source = Source::UrlList(UrlList { path: list, name: plan.source.clone(), first_line });
    let job = Job { dataset: dataset.to_owned(), source, top: None };
    let summary = fetch::run(session.context(config, store.clone()), job, task.show_progress)
        .await
        .map_err(|source| WorkerError::Fetch { shard, source })?;
    Ok(Fetched { store, summary, _scratch: scratch })
}

/// Uploads the shard's images and manifest, then creates its marker; the first marker
/// stands, and a later worker's manifest, which nothing names, goes.
async fn commit(
    bucket: &Bucket,
    task: &Task<'_>,
    plan: &plan::Plan,
    fetched: &Fetched,
    started: Instant,
) -> Result<ShardReport, WorkerError> {
    let (dataset, shard) = (task.dataset, task.shard);
    let uploading = Instant::now();
    let lines = lines(&fetched.store, dataset).map_err(|e| scratch_error(shard, e))?;
    let blobs_created = upload_blobs(bucket, &fetched.store, &lines).await?;
    let attempt = Attempt::new();
    let manifest = manifest::manifest_key(dataset, shard, &attempt);
    bucket.put(&manifest, Bytes::from(manifest::to_jsonl(&lines))).await?;
    let summary = &fetched.summary;
    let stats = ShardStats {
        shard,
        attempt: attempt.as_str().to_owned(),
        urls: plan.parts[shard].urls,
        images: summary.images,
        duplicates: summary.duplicates,
        failures: summary.failures.clone(),
        downloaded: summary.downloaded,
        bytes: summary.bytes,
        blobs_created,
        seconds: started.elapsed().as_secs_f64(),
        upload_seconds: uploading.elapsed().as_secs_f64(),
        host: manifest::host(),
        finished_at: now(),
        opt_outs: fetched
            .store
            .index
            .dataset(dataset)
            .map_err(|e| scratch_error(shard, e))?
            .and_then(|r| r.opt_outs),
    };
    let done = manifest::done_key(dataset, shard);
    let json = Bytes::from(serde_json::to_vec_pretty(&stats).expect("stats serialize"));
    match bucket.create(&done, json).await? {
        Created::New => Ok(ShardReport { status: "done", stats }),
        Created::Existed => {
            bucket.delete(&manifest).await?;
            let theirs = bucket.get_json::<ShardStats>(&done).await?.unwrap_or(stats);
            Ok(ShardReport { status: "skipped", stats: theirs })
        }
    }
}

fn scratch_error(shard: usize, source: StoreError) -> WorkerError {
    WorkerError::Scratch { shard, source }
}

/// The scratch store's decisions as manifest lines: images in rank order, then exact
/// duplicates, then failures.
fn lines(store: &Store, dataset: &str) -> Result<Vec<Line>, StoreError> {
    let mut images = store.index.members(dataset)?;
    images.sort_by_key(|(_, member, _)| member.rank);
    let mut lines: Vec<Line> = images
        .into_iter()
        .map(|(hash, member, image)| Line::Image(Box::new(Image { hash, member, image })))
        .collect();
    for (url, record) in
        store.index.records::<DuplicateRecord>(&Tree::Duplicates(dataset.into()))?
    {
        lines.push(Line::Duplicate { url, of: record?.of });
    }
    for (url, record) in store.index.records::<FailureRecord>(&Tree::Failures(dataset.into()))? {
        let FailureRecord { reason, detail, .. } = record?;
        lines.push(Line::Failure { url, reason, detail });
    }
    Ok(lines)
}

/// Creates each image's blob unless the bucket has it; returns how many were new.
async fn upload_blobs(
    bucket: &Bucket,
    store: &Store,
    lines: &[Line],
) -> Result<usize, BucketError> {
    let images = lines.iter().filter_map(|line| match line {
        Line::Image(image) => Some(&**image),
        _ => None,
    });
    let uploads = images.map(|Image { hash, image, .. }| {
        let path = store.blobs.path(hash, &image.ext);
        let key = blob_key(hash, &image.ext);
        async move {
            let bytes = read(&path).await.map_err(|e| bucket.corrupt(&key, e))?;
            bucket.create(&key, bytes).await
        }
    });
    let created: Vec<Created> =
        futures::stream::iter(uploads).buffer_unordered(UPLOADS).try_collect().await?;
    Ok(created.iter().filter(|c| **c == Created::New).count())
}

async fn read(path: &Path) -> Result<Bytes, String> {
    tokio::fs::read(path)
        .await
        .map(Bytes::from)
        .map_err(|e| format!("reading {}: {e}", path.display()))
}
