//! The commands: glue between the parsed CLI, the config, the store and the graph.
//! Each returns the process exit code; fatal errors go up as `anyhow` errors.

mod build;
pub mod cli;
mod curate;
pub mod exit;
mod fetch;
mod interrupts;
mod refresh;
mod report;
mod shards;
mod status;
mod train;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::commands::cli::{Cli, Command};
use crate::config::Config;

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
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
    }
}

/// `--config` (must exist) or `./pipeline.toml` (optional), with `--store` applied on top.
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let (path, required) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("pipeline.toml"), false),
    };
    let mut config = Config::load(&path, required)?;
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

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// A progress bar counting images, labelled `prefix`, hidden off a terminal.
fn progress_bar(prefix: &str) -> ProgressBar {
    if !crate::fetch::show_progress() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:.bold} [{elapsed_precise}] {wide_bar} {pos}/{len} images",
        )
        .expect("valid template"),
    );
    bar.set_prefix(prefix.to_owned());
    bar
}
