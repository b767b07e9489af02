//! The download stage: decides what a candidate needs, then fetches its bytes.
//!
//! First the index is asked about the URL ("triage"): already a member of this dataset, a
//! duplicate of one by this dataset's own decision, or finally failed before -> `Known`,
//! nothing is downloaded; stored for another dataset -> `Stored`, reused without
//! downloading; otherwise it is fetched (a remote location over
//! http(s) only, an imported file from disk) with `network.concurrency` requests in flight.
//! A remote one its host reserves from AI training (robots.txt, tdmrep.json) fails as
//! `opted-out` before any byte of it is asked for; its response headers are checked by
//! `net` before the body is read.

use std::sync::Arc;

use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::{Receiver, Sender};

use super::{Context, Item, Location, RunError, State};
use crate::net::{DownloadError, OPTED_OUT};
use crate::photo::check::{Format, ImageInfo};
use crate::store::UrlOutcome;

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
    let location = &item.candidate.location;
    item.state = triage(ctx, dataset, location.url())?;
    if !matches!(item.state, State::New | State::Stored { .. }) {
        return Ok(item);
    }
    if let Location::Remote(url) = location {
        match until_stopped(ctx, opted_out(ctx, url)).await.transpose()? {
            None => item.state = State::Dropped,
            Some(Some(signal)) => {
                let error = DownloadError::OptedOut(signal).into();
                item.state = State::Failed { error, at: url.clone() };
            }
            Some(None) => {}
        }
    }
    if !matches!(item.state, State::New) {
        return Ok(item);
    }
    let url = location.url();
    item.state = match until_stopped(ctx, read(ctx, location)).await {
        None => State::Dropped,
        Some(Ok(bytes)) => {
            ctx.stats.downloaded.inc();
            ctx.stats.bytes.add(bytes.len() as u64);
            State::Downloaded(bytes)
        }
        Some(Err(e)) => State::Failed { error: e.into(), at: url.to_owned() },
    };
    Ok(item)
}

/// `work`'s result, or `None` once the run is stopping.
async fn until_stopped<T>(ctx: &Context, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        _ = ctx.stop.cancelled() => None,
        done = work => Some(done),
    }
}

/// The opt-out of `url`'s host that reserves it (its robots.txt or tdmrep.json), if any.
async fn opted_out(ctx: &Context, url: &str) -> Result<Option<String>, RunError> {
    let Ok(url) = url::Url::parse(url) else { return Ok(None) };
    Ok(ctx.hosts.reserving(ctx, &url).await?)
}

/// What the index already knows decides whether `url` needs downloading.
fn triage(ctx: &Context, dataset: &str, url: &str) -> Result<State, RunError> {
    let index = &ctx.store.index;
    if let Some(duplicate) = index.duplicate(dataset, url)?
        && index.is_member(dataset, &duplicate.of)?
    {
        return Ok(State::Known);
    }
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
        // Opted out while the signals were honoured: asked again once they are not.
        UrlOutcome::Failed { reason, .. } if reason == OPTED_OUT && !ctx.config.opt_outs.honour => {
            State::New
        }
        UrlOutcome::Failed { retry: false, .. } => State::Known,
        UrlOutcome::Failed { retry: true, .. } => State::New,
    })
}

/// The bytes behind a candidate: a remote one through the shared http(s) client, an
/// imported file from disk (with the same byte cap, counted while reading).
async fn read(ctx: &Context, location: &Location) -> Result<bytes::Bytes, DownloadError> {
    match location {
        Location::Remote(url) => Ok(ctx.http.get_image(url, &ctx.config.opt_outs).await?.bytes),
        Location::Local { path, .. } => {
            let max = ctx.config.network.max_bytes;
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| DownloadError::Network(e.to_string()))?;
            let mut bytes = Vec::new();
            file.take(max + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| DownloadError::Network(e.to_string()))?;
            if bytes.len() as u64 > max {
                return Err(DownloadError::TooLarge(max));
            }
            Ok(bytes.into())
        }
    }
}
