//! `pipeline fetch` and `pipeline import`: build a job, open the store, run the graph,
//! print the summary.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use super::interrupts::Interrupts;
use super::{display, runtime};
use crate::commands::cli::{FetchArgs, ImportArgs};
use crate::commands::exit;
use crate::config::Config;
use crate::config::query::{QueryFile, slug};
use crate::engines::{EngineName, SearchQuery};
use crate::fetch::{self, Context, DRAIN_DEADLINE, Job, Source, Stats, Summary, UrlList};
use crate::net::Http;
use crate::printable::printable;
use crate::store::Store;

/// `--top` when neither the command nor a query file gives one.
const DEFAULT_TOP: usize = 100;

pub fn fetch(config: Config, args: FetchArgs) -> anyhow::Result<u8> {
    let file = args.query_file.as_deref().map(QueryFile::load).transpose()?;
    let text = match (&args.query, &file) {
        (Some(q), _) => q.clone(),
        (None, Some(f)) => f.query.clone(),
        (None, None) => bail!("give a QUERY or --query-file"),
    };
    if text.trim().is_empty() {
        bail!("the query is empty");
    }
    let choices = Choices {
        dataset: args.dataset.clone(),
        engines: args.engines.clone(),
        top: args.top.map(|t| t as usize),
    };
    let job = search_job(&config, text, file.as_ref(), choices);
    run_job(config, job, args.json)
}

/// What the command line chose for a search; unset ones come from the query file, then
/// from the config.
#[derive(Default)]
pub(super) struct Choices {
    pub dataset: Option<String>,
    pub engines: Vec<EngineName>,
    pub top: Option<usize>,
}

/// The job that searches for `text`.
pub(super) fn search_job(
    config: &Config,
    text: String,
    file: Option<&QueryFile>,
    choices: Choices,
) -> Job {
    let dataset = choices
        .dataset
        .or_else(|| file.and_then(|f| f.dataset.clone()))
        .unwrap_or_else(|| slug(&text));
    let engines = if !choices.engines.is_empty() {
        choices.engines
    } else if let Some(engines) = file.and_then(|f| f.engines.clone()) {
        engines
    } else {
        config.fetch.engines.clone()
    };
    let top = choices.top.or(file.map(|f| f.top)).unwrap_or(DEFAULT_TOP);
    let safe_search = file.is_none_or(|f| f.filters.safe_search);
    let query = SearchQuery { text, safe_search };
    Job { dataset, source: Source::Search { query, engines }, top: Some(top) }
}

pub fn import(config: Config, args: ImportArgs) -> anyhow::Result<u8> {
    let Some(path) = args.path else {
        bail!(
            "give a folder or a URL list to import (--shard and --shards-from-stdin import \
             shards of a bucket store: --store s3://…)"
        );
    };
    let meta =
        std::fs::metadata(&path).with_context(|| format!("cannot read {}", display(&path)))?;
    let source =
        if meta.is_dir() { Source::Folder(path) } else { Source::UrlList(UrlList::whole(path)) };
    let job = Job { dataset: args.dataset, source, top: None };
    run_job(config, job, args.json)
}

fn run_job(config: Config, job: Job, json: bool) -> anyhow::Result<u8> {
    // `fetch` and `import` create stores: a folder that is none becomes one.
    let store = Arc::new(Store::create(&config.store.path)?);
    let http = Arc::new(Http::new(&config.network).context("building the HTTP client")?);
    let ctx = Arc::new(Context {
        config,
        store,
        http,
        stats: Stats::default(),
        stop: CancellationToken::new(),
    });
    let interrupts = listen(&ctx.stop)?;
    let summary = runtime()?.block_on(fetch::run(ctx.clone(), job, fetch::show_progress()))?;
    report(&summary, json);
    if let Some(code) = interrupts.code() {
        return Ok(code);
    }
    if summary.partial() {
        return Ok(exit::PARTIAL);
    }
    Ok(exit::OK)
}

fn report(summary: &Summary, json: bool) {
    if json {
        println!("{}", serde_json::to_string(summary).expect("summary serializes"));
    } else {
        print_summary(summary);
    }
}

/// The text form of a summary: counts, then what stopped it short, then a few failures.
pub(super) fn print_summary(summary: &Summary) {
    print!("{summary}");
    if !summary.complete() && summary.engine_failures.is_empty() {
        println!(
            "  the engines had no more results: {} of {} images",
            summary.images,
            summary.top.unwrap_or(0)
        );
    }
    for example in &summary.failure_examples {
        println!("  failed: {}", printable(example));
    }
}

/// Listens for SIGINT and SIGTERM: the first cancels `stop` (the graph drains what is in
/// flight), a second or a drain longer than [`DRAIN_DEADLINE`] exits at once.
pub(super) fn listen(stop: &CancellationToken) -> anyhow::Result<Interrupts> {
    let stop = stop.clone();
    Interrupts::listen(move || stop.cancel(), Some(DRAIN_DEADLINE))
        .context("listening for SIGINT and SIGTERM")
}
