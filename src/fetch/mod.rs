//! The fetch graph: `fetch` and `import` as tokio stages joined by bounded channels.
//!
//! ```text
//! source ──► download ──► validate ──► dedup ──► store
//! (search pages, a URL list or a folder)
//! ```
//!
//! Every candidate flows through every stage as an [`Item`] whose [`State`] each stage
//! advances or passes on untouched (a failure keeps flowing so the sink can record it).
//! Channels are bounded, so a slow stage holds back the ones before it. Stages keep the
//! source's order (`buffered`, not `buffer_unordered`), which makes the outcome of a run,
//! including which of two duplicates is kept, independent of network timing. Downloads
//! and decodes run concurrently inside their stage; CPU work runs on the blocking pool.
//!
//! The run stops when the dataset holds `--top` images, when the source is exhausted, or
//! on Ctrl-C: the source stops, in-flight downloads are dropped unrecorded, and the rest
//! drains into the store before the index is flushed. A stage's fatal error (the store
//! refusing a write) cancels the run at once and is the run's error.
//!
//! Imports `config` (a run's `Config`), `engines`, `net`, `photo`, `store`,
//! `interrupts`, `printable`.

mod credits;
mod dedup;
mod download;
mod failure;
mod hosts;
mod job;
mod progress;
mod search;
mod session;
mod sink;
mod source;
mod stats;
mod validate;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::credit::Credit;
use crate::net::Http;
use crate::photo::check::ImageInfo;
use crate::store::{Store, StoreError};
pub use dedup::Seen;
pub use failure::ItemError;
pub use hosts::Hosts;
pub use job::{Choices, DEFAULT_TOP, Job, Source, UrlList};
pub use session::{Session, SessionError};
pub use stats::{Stats, Summary};

/// A candidate image: where it is and where it came from.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// 1-based position in the source (merged search results, list line, sorted walk).
    pub rank: u64,
    pub location: Location,
    /// Engine name, or "import".
    pub source: String,
    /// The query, or the imported path.
    pub query: String,
    pub page_url: Option<String>,
    pub title: Option<String>,
    /// Licence and credit: from the engine, or an import's `CREDITS.tsv`.
    pub credit: Option<Credit>,
}

/// Where a candidate's bytes are. Only a folder import makes a `Local` one: what a search
/// page or a URL list names is `Remote`, fetched over http(s) or not at all, so no result
/// can make the tool read a local file.
#[derive(Debug, Clone)]
pub enum Location {
    /// An http(s) URL (for a `bad-url` failure, the text as found).
    Remote(String),
    /// A file found by `import FOLDER`; `url` is its `file://` URL, the index's key.
    Local { path: PathBuf, url: String },
}

impl Location {
    /// An http(s) URL from `text`, or why it is not one.
    pub fn remote(text: &str) -> Result<Location, String> {
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Location::Remote(url.into())),
            Ok(url) => Err(format!("{} URLs are not fetched", url.scheme())),
            Err(e) => Err(format!("not a URL ({e})")),
        }
    }

    /// The URL the index records the candidate under, also its name in messages.
    pub fn url(&self) -> &str {
        match self {
            Location::Remote(url) | Location::Local { url, .. } => url,
        }
    }
}

/// Where a candidate is on its way through the graph.
#[derive(Debug)]
pub enum State {
    /// Not yet downloaded.
    New,
    /// Already a member of this dataset: nothing to do.
    Known,
    /// Stored already (for another dataset): reuse it without downloading.
    Stored { hash: String, info: ImageInfo },
    /// Body in hand, not yet checked.
    Downloaded(Bytes),
    /// A valid image, not yet deduplicated.
    Checked { hash: String, info: ImageInfo, body: Bytes },
    /// Accepted into the dataset; `body` is `None` when the blob already exists.
    Accepted { hash: String, info: ImageInfo, body: Option<Bytes> },
    /// An exact or near copy of member `of`.
    Duplicate { of: String, exact: bool },
    /// Unusable: why, and where (the URL, or the file and line it came from).
    Failed { error: ItemError, at: String },
    /// Dropped unrecorded: the run stopped (top reached or interrupted) before it finished.
    Dropped,
}

#[derive(Debug)]
pub struct Item {
    pub candidate: Candidate,
    pub state: State,
}

/// Channel capacities between stages, in items. Small: each item can carry a body of up to
/// `network.max_bytes`, so memory stays bounded by roughly
/// (capacities + in-flight) x typical body size.
const CHANNEL_CAPACITY: usize = 16;

/// How far the source may run ahead of what the dataset still needs: each candidate takes
/// a permit, and every candidate that ends without being accepted gives it back. With
/// `wanted` images to go, at most `wanted + lookahead` candidates are ever in flight, so
/// `--top 5` does not download a whole result page.
pub struct Demand(Option<Semaphore>);

impl Demand {
    fn new(wanted: Option<usize>, lookahead: usize) -> Demand {
        Demand(wanted.map(|w| Semaphore::new(w + lookahead.min(w))))
    }

    /// Waits for room for one more candidate.
    async fn take(&self) {
        if let Some(permits) = &self.0 {
            permits.acquire().await.expect("demand never closes").forget();
        }
    }

    /// A candidate ended without adding an image: make room for another.
    fn give_back(&self) {
        if let Some(permits) = &self.0 {
            permits.add_permits(1);
        }
    }
}

/// The source's end of the graph: where the source stage and the search it runs send
/// their candidates, as demand allows.
pub struct Emitter<'a> {
    pub ctx: &'a Context,
    demand: &'a Demand,
    tx: &'a mpsc::Sender<Item>,
}

impl Emitter<'_> {
    /// Sends one item once there is demand for it, unless the run is stopping; false when
    /// the source should stop.
    pub async fn emit(&self, item: Item) -> bool {
        let sent = async {
            self.demand.take().await;
            self.tx.send(item).await.is_ok()
        };
        tokio::select! {
            biased;
            _ = self.ctx.stop.cancelled() => false,
            sent = sent => {
                self.ctx.stats.candidates.inc();
                sent
            }
        }
    }
}

/// Shared by every stage of one run.
pub struct Context {
    pub config: Config,
    /// Shared with the other runs of the same command (`refresh` runs one per query).
    pub store: Arc<Store>,
    pub http: Arc<Http>,
    /// The opt-out rules of the hosts seen, shared with the other runs of the command.
    pub hosts: Arc<Hosts>,
    pub stats: Stats,
    /// Cancelled to stop the source: top reached, Ctrl-C, or a fatal error.
    pub stop: CancellationToken,
}

/// Fatal errors: these end the run (per-image failures never do).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] crate::durable::PathError),
    #[error(transparent)]
    Credits(#[from] credits::CreditsError),
    #[error("stage {stage} failed: {message}")]
    Stage { stage: &'static str, message: String },
    #[error("dataset name {name:?}: {allowed} (set `dataset` in the query file or --dataset)")]
    Name { name: String, allowed: &'static str },
}

/// Runs one job to completion and returns what happened.
///
/// # Errors
/// Only run-level failures (store I/O, an unreadable input file); per-image failures are
/// counted in the summary.
pub async fn run(ctx: Arc<Context>, job: Job, show_progress: bool) -> Result<Summary, RunError> {
    let started = Instant::now();
    crate::dataset::check_name(&job.dataset)
        .map_err(|allowed| RunError::Name { name: job.dataset.clone(), allowed })?;
    let before = ctx.store.index.member_count(&job.dataset)?;
    let wanted = job.top.map(|top| top.saturating_sub(before));
    if wanted == Some(0) {
        // Already complete: the source sees the stop at once and searches nothing.
        ctx.stop.cancel();
    }
    let progress = progress::Progress::start(ctx.clone(), &job, before, show_progress);

    let (source_tx, source_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (download_tx, download_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (validate_tx, validate_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (dedup_tx, dedup_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let dataset = job.dataset.clone();
    let demand = Arc::new(Demand::new(wanted, ctx.config.network.concurrency));
    let stop = &ctx.stop;
    let source =
        stage(stop, source::run(ctx.clone(), job.source.clone(), demand.clone(), source_tx));
    let download = stage(stop, download::run(ctx.clone(), dataset.clone(), source_rx, download_tx));
    let validate = stage(stop, validate::run(ctx.clone(), download_rx, validate_tx));
    let dedup =
        stage(stop, dedup::run(ctx.clone(), dataset.clone(), wanted, validate_rx, dedup_tx));
    let sink = stage(stop, sink::run(ctx.clone(), job.clone(), demand, dedup_rx));

    // The sink's error comes first: when it fails, the stages before it stop (cancelled,
    // or their sends fail), and their own results say nothing new.
    let sink_result = joined("store", sink).await;
    let dedup_result = joined("dedup", dedup).await;
    let validate_result = joined("validate", validate).await;
    let download_result = joined("download", download).await;
    let engine_failures = joined("source", source).await;
    sink_result?;
    dedup_result?;
    validate_result?;
    download_result?;
    let engine_failures = engine_failures?;
    ctx.store.index.flush()?;
    progress.finish();
    let after = ctx.store.index.member_count(&job.dataset)?;
    Ok(ctx.stats.summary(&job, before, after, engine_failures, started.elapsed()))
}

/// Spawns one stage; its error cancels the whole run at once (the source may otherwise
/// wait forever for demand that only the sink gives back).
fn stage<T: Send + 'static>(
    stop: &CancellationToken,
    future: impl Future<Output = Result<T, RunError>> + Send + 'static,
) -> tokio::task::JoinHandle<Result<T, RunError>> {
    let stop = stop.clone();
    tokio::spawn(async move {
        let result = future.await;
        if result.is_err() {
            stop.cancel();
        }
        result
    })
}

async fn joined<T>(
    stage: &'static str,
    handle: tokio::task::JoinHandle<Result<T, RunError>>,
) -> Result<T, RunError> {
    handle.await.map_err(|e| RunError::Stage { stage, message: e.to_string() })?
}

/// How long a drain may take after Ctrl-C before the process exits anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);
