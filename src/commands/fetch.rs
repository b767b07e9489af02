//! `pipeline fetch` and `pipeline import`: a job, a session, one run of the graph, the
//! summary.

use std::sync::Arc;

use anyhow::Context as _;

use super::print::{display, print_summary};
use super::runtime;
use crate::commands::cli::{FetchArgs, ImportArgs};
use crate::commands::exit;
use crate::config::Config;
use crate::config::query::QueryFile;
use crate::fetch::{self, Choices, Job, Session, Source, UrlList};
use crate::store::Store;

pub fn fetch(config: Config, args: FetchArgs) -> anyhow::Result<u8> {
    let file = args.query_file.as_deref().map(QueryFile::load).transpose()?;
    // clap made sure of one of them and of a QUERY that is not blank; a query file's
    // query is checked as the file is read.
    let text = match (&args.query, &file) {
        (Some(q), _) => q.clone(),
        (_, f) => f.as_ref().map(|f| f.query.clone()).unwrap_or_default(),
    };
    let choices = Choices {
        dataset: args.dataset.clone(),
        engines: args.engines.clone(),
        top: args.top.map(|t| t as usize),
    };
    let job = Job::search(&config, text, file.as_ref(), choices);
    run_job(config, job, args.json)
}

pub fn import(config: Config, args: ImportArgs) -> anyhow::Result<u8> {
    let Some(path) = args.path else {
        return Err(crate::commands::exit::usage(
            "give a folder or a URL list to import (--shard and --shards-from-stdin import \
             shards of a bucket store: --store s3://…)",
        ));
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
    let session = Session::open(&config.network)?;
    let ctx = session.context(config, store);
    let summary = runtime()?.block_on(fetch::run(ctx, job, crate::terminal::show_progress()))?;
    if json {
        println!("{}", serde_json::to_string(&summary).expect("summary serializes"));
    } else {
        print_summary(&summary);
    }
    if let Some(code) = session.signal() {
        return Ok(code);
    }
    if summary.partial() {
        return Ok(exit::PARTIAL);
    }
    Ok(exit::OK)
}
