//! The download stage: decides what a candidate needs, then fetches its bytes.
//!
//! First the index is asked about the URL ("triage"): already a member of this dataset,
//! or finally failed before -> `Known`, nothing is downloaded; stored for another dataset
//! -> `Stored`, reused without downloading; otherwise it is fetched (over HTTP, or read
//! from disk for imported files) with `network.concurrency` requests in flight.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc::{Receiver, Sender};
use url::Url;

use super::{Context, Item, RunError, State};
use crate::net::DownloadError;
use crate::store::UrlOutcome;
use crate::validate::{Format, ImageInfo};

pub async fn run(
    ctx: Arc<Context>,
    dataset: String,
    mut rx: Receiver<Item>,
    tx: Sender<Item>,
) -> Result<(), RunError> {
    let incoming = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
    let mut done =
        incoming.map(|item| fetch(&ctx, &dataset, item)).buffered(ctx.config.network.concurrency);
    while let Some(item) = done.next().await {
        if tx.send(item?).await.is_err() {
            break;
        }
    }
    Ok(())
}

async fn fetch(ctx: &Context, dataset: &str, mut item: Item) -> Result<Item, RunError> {
    if !matches!(item.state, State::New) {
        return Ok(item);
    }
    item.state = triage(ctx, dataset, &item.candidate.url)?;
    if !matches!(item.state, State::New) {
        return Ok(item);
    }
    let url = item.candidate.url.as_str();
    let body = tokio::select! {
        biased;
        _ = ctx.stop.cancelled() => {
            item.state = State::Dropped;
            return Ok(item);
        }
        body = read(ctx, url) => body,
    };
    item.state = match body {
        Ok(bytes) => {
            ctx.stats.downloaded.inc();
            ctx.stats.bytes.add(bytes.len() as u64);
            State::Downloaded(bytes)
        }
        Err(e) => State::Failed {
            reason: e.reason(),
            detail: format!("{url}: {e}"),
            retry: e.is_transient(),
        },
    };
    Ok(item)
}

/// What the index already knows decides whether `url` needs downloading.
fn triage(ctx: &Context, dataset: &str, url: &str) -> Result<State, RunError> {
    let index = &ctx.store.index;
    let Some(record) = index.url(url)? else { return Ok(State::New) };
    Ok(match record.outcome {
        UrlOutcome::Accepted { image } if index.is_member(dataset, &image)? => State::Known,
        UrlOutcome::Accepted { image } => {
            let stored =
                index.image(&image)?.filter(|r| ctx.store.blobs.path(&image, &r.ext).exists());
            match stored.and_then(|r| Some((Format::from_ext(&r.ext)?, r))) {
                Some((format, r)) => {
                    let info = ImageInfo {
                        format,
                        width: r.width,
                        height: r.height,
                        bytes: r.bytes,
                        phash: r.phash,
                    };
                    State::Stored { hash: image, info }
                }
                None => State::New,
            }
        }
        UrlOutcome::Duplicate { of, .. } if index.is_member(dataset, &of)? => State::Known,
        UrlOutcome::Duplicate { .. } => State::New,
        UrlOutcome::Failed { retry: false, .. } => State::Known,
        UrlOutcome::Failed { retry: true, .. } => State::New,
    })
}

/// The bytes behind a candidate URL: HTTP(S) through the shared client, `file://` from disk
/// (with the same byte cap).
async fn read(ctx: &Context, url: &str) -> Result<bytes::Bytes, DownloadError> {
    if let Some(path) =
        url.starts_with("file:").then(|| Url::parse(url).ok()?.to_file_path().ok()).flatten()
    {
        let max = ctx.config.network.max_bytes;
        let meta =
            tokio::fs::metadata(&path).await.map_err(|e| DownloadError::Network(e.to_string()))?;
        if meta.len() > max {
            return Err(DownloadError::TooLarge(max));
        }
        let bytes =
            tokio::fs::read(&path).await.map_err(|e| DownloadError::Network(e.to_string()))?;
        return Ok(bytes.into());
    }
    Ok(ctx.http.get_image(url).await?.bytes)
}
