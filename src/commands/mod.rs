//! The commands: thin glue between the parsed CLI, the config and the library. Each
//! returns the process exit code; fatal errors go up as `anyhow` errors.
//!
//! Holds the CLI (`cli`) and the exit codes (`exit`); imports any module (it is the top
//! layer); commands share only printing (`print`) and the runtime.

mod arrays;
mod build;
pub mod cli;
mod curate;
pub mod exit;
mod fetch;
mod model;
mod print;
mod refresh;
mod report;
mod shards;
mod shell;
mod status;
mod train;
mod verify;

use anyhow::Context as _;

use crate::commands::cli::{Cli, Command};
use crate::config::{Config, locate};

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    if cli.quiet {
        crate::terminal::set_quiet();
    }
    match &cli.command {
        Command::Completions(args) => return shell::completions(args),
        Command::Man => return shell::man(),
        _ => {}
    }
    let config = load_config(&cli)?;
    crate::photo::budget::install(&config.images);
    if let Some(bucket) = &config.store.bucket {
        shards::check_bucket_command(&cli.command, bucket, &config.store.path)?;
    }
    // Only the commands that create a store take a folder that is none (and not empty).
    let creates_store = match &cli.command {
        Command::Fetch(_) | Command::Import(_) | Command::Refresh(_) => true,
        Command::Build(_) => config.store.bucket.is_some(),
        _ => false,
    };
    if !creates_store {
        crate::store::check_folder(&config.store.path)?;
    }
    match cli.command {
        Command::Fetch(args) => fetch::fetch(config, args),
        Command::Import(args) if config.store.bucket.is_some() => shards::import(config, args),
        Command::Import(args) => fetch::import(config, args),
        Command::ShardUrls(args) => shards::shard_urls(&config, args),
        Command::Merge(args) => shards::merge(&config, args),
        Command::Refresh(args) => refresh::refresh(config, args),
        Command::Status(args) => status::status(&config, args),
        Command::Verify(args) => verify::verify(&config, args),
        Command::Gc(args) => verify::gc(&config, args),
        Command::Build(args) => build::build(config, args),
        Command::Label(args) => curate::label(&config, args),
        Command::Curate(args) => curate::curate(&config, args),
        Command::Export(args) => build::export(&config, args),
        Command::Train(args) => train::train(config, args),
        Command::Colorize(args) => train::colorize(config, args),
        Command::Eval(args) => train::eval(config, args),
        Command::Report(args) => report::report(config, args),
        Command::ExportModel(args) => model::export_model(config, args),
        Command::Serve(args) => model::serve(config, args),
        Command::Completions(_) | Command::Man => unreachable!("answered before the config"),
    }
}

/// The config `--config`, `PIPELINE_CONFIG` or the search upward names, with the
/// `PIPELINE_*` keys and then `--store` applied on top.
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let cwd = std::env::current_dir().context("the working folder")?;
    let located = locate::find(cli.config.as_deref(), |var| std::env::var(var).ok(), &cwd);
    let overrides = locate::overrides(std::env::vars());
    let mut config = Config::load_located(&located, &overrides)?;
    if let Some(store) = &cli.store {
        config.store.choose(store);
    }
    config.store.resolve_cache();
    Ok(config)
}

/// A tokio runtime for one command: as many workers as cores.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// With a bucket store, makes this machine's cache hold the bucket's latest build of
/// `dataset` (its shard files, not the members' blobs) before it is read.
fn pull_build(config: &Config, dataset: &str) -> anyhow::Result<()> {
    let Some(url) = &config.store.bucket else { return Ok(()) };
    let pulled = runtime()?.block_on(async {
        let bucket = crate::bucket::Bucket::open(url).await?;
        let cache = &config.store.path;
        anyhow::Ok(crate::bucket::mirror::pull_build(&bucket, cache, dataset).await?)
    })?;
    if let Some(pulled) = pulled.filter(|p| p.downloaded > 0) {
        eprintln!(
            "{dataset}: {} shard files of version {} from {url}",
            pulled.downloaded, pulled.version
        );
    }
    Ok(())
}

/// The datasets a bucket command works on: those `named`, else every merged one (keys
/// under `members/` that name no dataset are left out with a warning).
async fn merged_or_named(
    bucket: &crate::bucket::Bucket,
    named: &[String],
) -> anyhow::Result<Vec<String>> {
    if !named.is_empty() {
        return Ok(named.to_vec());
    }
    let (names, left_out) = crate::bucket::mirror::merged_datasets(bucket).await?;
    for problem in left_out {
        eprintln!("warning: {}/{}", bucket.url(), crate::printable::printable(&problem));
    }
    if names.is_empty() {
        anyhow::bail!(
            "{} has no merged dataset yet: run `pipeline merge --dataset NAME`",
            bucket.url()
        );
    }
    Ok(names)
}

/// The bucket store the config names; an error for a folder store.
fn bucket_url(config: &Config, command: &str) -> anyhow::Result<String> {
    config.store.bucket.clone().ok_or_else(|| {
        exit::usage(format!("`{command}` needs a bucket store: --store s3://BUCKET/PREFIX"))
    })
}
