//! The store stage (the sink): makes each outcome durable, in source order.
//!
//! Accepted images are written as blobs (several at once, on the blocking pool: each is
//! fsynced) and only then recorded in the index. Duplicates and failures are recorded
//! against their URL so a rerun does not download them again (transient failures excepted),
//! and counted in the dataset's record; each failed URL is listed in the dataset's
//! `failures` tree, until a later try of it succeeds.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc::Receiver;
use tracing::debug;

use super::{Candidate, Context, Demand, Item, ItemError, Job, RunError, Source, State};
use crate::photo::check::ImageInfo;
use crate::store::{DuplicateRecord, FailureRecord, ImageRecord, Member, Tree, UrlOutcome, now};

/// Blob writes in flight at once.
const WRITERS: usize = 8;

pub async fn run(
    ctx: Arc<Context>,
    job: Job,
    demand: Arc<Demand>,
    mut rx: Receiver<Item>,
) -> Result<(), RunError> {
    let index = &ctx.store.index;
    let dataset = job.dataset.as_str();
    let mut record = index.dataset(dataset)?.unwrap_or_default();
    if let Source::Search { query, .. } = &job.source {
        record.query = Some(query.text.clone());
    }
    if !matches!(job.source, Source::Folder(_)) {
        let policy = &ctx.config.opt_outs;
        record.opt_outs =
            Some(record.opt_outs.map_or_else(|| policy.clone(), |p| p.weakest(policy)));
    }
    let incoming = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
    let mut written = incoming.map(|item| write_blob(&ctx, item)).buffered(WRITERS);
    while let Some(item) = written.next().await {
        let Item { candidate, state } = item?;
        if !matches!(state, State::Accepted { .. }) {
            demand.give_back();
        }
        let at = now();
        match state {
            State::Accepted { hash, info, .. } => {
                accept(&ctx, dataset, &hash, &info, candidate, at)?
            }
            State::Duplicate { of, exact } => {
                record_duplicate(&ctx, dataset, candidate.location.url(), of, exact, at)?;
                record.duplicates += 1;
                index.put_dataset(dataset, &record)?;
            }
            State::Failed { error, at: place } => {
                let kind =
                    record_failure(&ctx, dataset, candidate.location.url(), &error, &place, at)?;
                *record.failures.entry(kind).or_default() += 1;
                index.put_dataset(dataset, &record)?;
            }
            State::Known => ctx.stats.known.inc(),
            State::Dropped => {}
            State::New | State::Downloaded(_) | State::Checked { .. } | State::Stored { .. } => {
                let message = format!("{} reached the store undecided", candidate.location.url());
                return Err(RunError::Stage { stage: "store", message });
            }
        }
    }
    record.last_fetch = Some(now());
    index.put_dataset(dataset, &record)?;
    Ok(())
}

/// Records an accepted image as a member of `dataset` (its blob is stored already).
fn accept(
    ctx: &Context,
    dataset: &str,
    hash: &str,
    info: &ImageInfo,
    candidate: Candidate,
    at: u64,
) -> Result<(), RunError> {
    let index = &ctx.store.index;
    let image = ImageRecord {
        ext: info.format.ext().into(),
        width: info.width,
        height: info.height,
        bytes: info.bytes,
        phash: info.phash,
        added_at: at,
    };
    let image = index.image(hash)?.unwrap_or(image);
    let member = Member {
        rank: candidate.rank,
        source: candidate.source,
        query: candidate.query,
        url: candidate.location.url().to_owned(),
        page_url: candidate.page_url,
        title: candidate.title,
        added_at: at,
        credit: candidate.credit,
    };
    ctx.store.add_member(dataset, hash, &image, &member)?;
    index.remove(&Tree::Failures(dataset.to_owned()), &member.url)?;
    ctx.stats.accepted.inc();
    Ok(())
}

/// Records `dataset`'s decision that `url`'s image copies its member `of`.
fn record_duplicate(
    ctx: &Context,
    dataset: &str,
    url: &str,
    of: String,
    exact: bool,
    at: u64,
) -> Result<(), RunError> {
    let index = &ctx.store.index;
    // The decision is this dataset's; an exact copy's bytes are `of` for all.
    if exact {
        index.put_url(url, UrlOutcome::Accepted { image: of.clone() }, at)?;
    }
    index.put_duplicate(dataset, url, &DuplicateRecord { of, exact, at })?;
    index.remove(&Tree::Failures(dataset.to_owned()), url)?;
    ctx.stats.duplicates.inc();
    Ok(())
}

/// Records why `url` gave `dataset` no image; returns the failure's kind.
fn record_failure(
    ctx: &Context,
    dataset: &str,
    url: &str,
    error: &ItemError,
    place: &str,
    at: u64,
) -> Result<String, RunError> {
    let index = &ctx.store.index;
    let kind = error.kind();
    let detail = format!("{place}: {error}");
    debug!(%kind, "Rejected {detail}.");
    // A text that is not a URL is no fact about a URL.
    if !matches!(error, ItemError::BadUrl(_)) {
        let outcome = UrlOutcome::Failed { reason: kind.clone(), retry: error.is_transient() };
        index.put_url(url, outcome, at)?;
    }
    let failure = FailureRecord { reason: kind.clone(), detail: detail.clone(), at };
    index.put(&Tree::Failures(dataset.to_owned()), url, &failure)?;
    ctx.stats.fail(&kind, detail);
    Ok(kind)
}

/// Writes the blob of an accepted image that is not stored yet; passes everything else.
async fn write_blob(ctx: &Arc<Context>, mut item: Item) -> Result<Item, RunError> {
    let State::Accepted { hash, info, body: Some(body) } = item.state else { return Ok(item) };
    let store = ctx.clone();
    let (hash, info) = tokio::task::spawn_blocking(move || {
        store.store.blobs.write(&hash, info.format.ext(), &body).map(|_| (hash, info))
    })
    .await
    .map_err(|e| RunError::Stage { stage: "store", message: e.to_string() })??;
    item.state = State::Accepted { hash, info, body: None };
    Ok(item)
}
