//! `pipeline build` and `pipeline export`.

use anyhow::bail;

use super::print::{describe, progress_bar};
use super::{bucket_url, runtime};
use crate::bucket::{Bucket, mirror};
use crate::build::{self, Outcome};
use crate::commands::cli::{BuildArgs, ExportArgs};
use crate::commands::exit;
use crate::config::Config;
use crate::dataset::Built;
use crate::dataset::export;
use crate::store::Store;

pub fn build(config: Config, args: BuildArgs) -> anyhow::Result<u8> {
    if super::arrays::is_task(&config, args.shard) {
        return super::arrays::build(&config, &args);
    }
    if args.shard.is_some() || args.shards.is_some() {
        return Err(exit::usage("--shard and --shards are for bucket stores (--store s3://...)"));
    }
    let bucket = config.store.bucket.is_some();
    // A bucket's build creates this machine's cache of it.
    let store = if bucket { Store::create } else { Store::open }(&config.store.path)?;
    let mut settings = config.build.clone();
    if let Some(size) = args.size {
        settings.size = size;
    }
    let named = !args.datasets.is_empty();
    let datasets = if bucket {
        // The bucket's merged member lists are the truth: the cache becomes them first.
        pull(&config, &store, &args.datasets)?
    } else if named {
        args.datasets.clone()
    } else {
        let all: Vec<String> = store.index.datasets()?.into_iter().map(|(name, _)| name).collect();
        if all.is_empty() {
            bail!("no datasets in {} yet: fetch or import some first", store.root().display());
        }
        all
    };
    for dataset in datasets {
        if !named && store.index.member_count(&dataset)? == 0 {
            println!("{dataset}: no images, nothing to build");
            continue;
        }
        let curation = args.rules.rules(&config, &dataset);
        let progress = progress_bar(&dataset);
        let outcome = build::build(&store, &dataset, &settings, &curation, args.force, &progress)?;
        progress.finish_and_clear();
        if !args.json {
            println!("{}", describe(&dataset, &outcome, settings.size));
        }
        let (Outcome::Built { version, .. } | Outcome::UpToDate { version }) = &outcome;
        let uploaded = if bucket { push(&config, &dataset, version, args.json)? } else { 0 };
        if args.json {
            println!("{}", outcome_json(&store, &dataset, &outcome, uploaded)?);
        }
    }
    Ok(exit::OK)
}

pub fn export(config: &Config, args: ExportArgs) -> anyhow::Result<u8> {
    super::pull_build(config, &args.dataset)?;
    // Published versions never change, so reading one needs no store lock.
    let built = Built::latest(&config.store.path, &args.dataset)?;
    let count = export::export(&built, args.format, &args.out)?;
    if args.json {
        let line = serde_json::json!({
            "dataset": args.dataset, "version": built.manifest.version, "format": args.format,
            "pairs": count, "out": args.out,
        });
        println!("{line}");
    } else {
        println!(
            "{}: exported {count} pairs of version {} to {}",
            args.dataset,
            built.manifest.version,
            args.out.display()
        );
    }
    Ok(exit::OK)
}

/// Before a build of a bucket store: fills this machine's cache with the merged datasets
/// (`datasets`, or every merged one). Returns the datasets pulled.
fn pull(
    config: &Config,
    store: &crate::store::Store,
    datasets: &[String],
) -> anyhow::Result<Vec<String>> {
    let url = bucket_url(config, "build")?;
    let checks =
        mirror::Checks { max_bytes: config.network.max_bytes, images: config.images.clone() };
    runtime()?.block_on(async {
        let bucket = Bucket::open(&url).await?;
        let names = super::merged_or_named(&bucket, datasets).await?;
        for name in &names {
            let pulled = mirror::pull(&bucket, store, name, &checks).await?;
            if pulled.downloaded > 0 || pulled.removed > 0 {
                println!(
                    "{name}: {} members from {url} ({} images downloaded, {} no longer members)",
                    pulled.members, pulled.downloaded, pulled.removed
                );
            }
        }
        Ok(names)
    })
}

/// `build --json`'s line for one dataset.
fn outcome_json(
    store: &Store,
    dataset: &str,
    outcome: &Outcome,
    uploaded: usize,
) -> anyhow::Result<serde_json::Value> {
    let (status, version, seconds) = match outcome {
        Outcome::Built { version, elapsed, .. } => ("built", version, Some(elapsed.as_secs_f64())),
        Outcome::UpToDate { version } => ("up-to-date", version, None),
    };
    let built = Built::latest(store.root(), dataset)?;
    Ok(serde_json::json!({
        "dataset": dataset, "status": status, "version": version, "dir": built.dir,
        "counts": built.manifest.counts, "size": built.manifest.settings.size,
        "seconds": seconds, "uploaded": uploaded,
    }))
}

/// After a build of a bucket store: uploads the version built (or found up to date);
/// how many files were new.
fn push(config: &Config, dataset: &str, version: &str, quiet: bool) -> anyhow::Result<usize> {
    let url = bucket_url(config, "build")?;
    let uploaded = runtime()?.block_on(async {
        let bucket = Bucket::open(&url).await?;
        anyhow::Ok(mirror::push_build(&bucket, &config.store.path, dataset, version).await?)
    })?;
    if uploaded > 0 && !quiet {
        println!("{dataset}: uploaded {uploaded} files of {version} to {url}");
    }
    Ok(uploaded)
}
