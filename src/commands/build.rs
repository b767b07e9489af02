//! `pipeline build` and `pipeline export`.

use anyhow::bail;

use super::progress_bar;
use crate::build::{self, Outcome};
use crate::commands::cli::{BuildArgs, ExportArgs};
use crate::commands::exit;
use crate::config::Config;
use crate::dataset::Built;
use crate::dataset::export;
use crate::store::Store;

pub fn build(config: Config, args: BuildArgs) -> anyhow::Result<u8> {
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
        super::shards::pull(&config, &store, &args.datasets)?
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
        let curation = super::curate::rules_with_args(&config, &args.rules, &dataset);
        let progress = progress_bar(&dataset);
        let outcome = build::build(&store, &dataset, &settings, &curation, args.force, &progress)?;
        progress.finish_and_clear();
        println!("{}", describe(&dataset, &outcome, settings.size));
        if bucket {
            let (Outcome::Built { version, .. } | Outcome::UpToDate { version }) = &outcome;
            super::shards::push(&config, &dataset, version)?;
        }
    }
    Ok(exit::OK)
}

/// One line saying what a build of `dataset` did.
pub(super) fn describe(dataset: &str, outcome: &Outcome, size: u32) -> String {
    match outcome {
        Outcome::UpToDate { version } => format!("{dataset}: up to date ({version})"),
        Outcome::Built { version, counts, elapsed } => {
            let total = counts.train + counts.test;
            let rate = total as f64 / elapsed.as_secs_f64().max(1e-9);
            let dropped: Vec<String> =
                counts.dropped.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
            let dropped = if dropped.is_empty() { "none".to_owned() } else { dropped.join(", ") };
            format!(
                "{dataset}: built {version}: {} train, {} test, {} skipped, left out {dropped}, {size}x{size} px, {:.1} s ({rate:.0} images/s)",
                counts.train,
                counts.test,
                counts.skipped,
                elapsed.as_secs_f64()
            )
        }
    }
}

pub fn export(config: &Config, args: ExportArgs) -> anyhow::Result<u8> {
    // Published versions never change, so reading one needs no store lock.
    let built = Built::latest(&config.store.path, &args.dataset)?;
    let count = export::export(&built, args.format, &args.out)?;
    println!(
        "{}: exported {count} pairs of version {} to {}",
        args.dataset,
        built.manifest.version,
        args.out.display()
    );
    Ok(exit::OK)
}
