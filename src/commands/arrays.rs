//! `label` and `build` on a bucket store as tasks of a job array (`--shard N`, or the
//! array's index from the environment): labelling first, then building, each task doing
//! its part; the building task that finds every part done commits the version.

use super::print::progress_bar;
use super::{bucket_url, runtime};
use crate::bucket::task::{self, Task};
use crate::bucket::{Bucket, builder, labeller};
use crate::commands::cli::{BuildArgs, LabelArgs};
use crate::commands::exit;
use crate::config::Config;

/// Whether `label`/`build` with these flags is one task of a job array.
pub fn is_task(config: &Config, shard: Option<usize>) -> bool {
    config.store.bucket.is_some()
        && (shard.is_some() || task::in_job_array(|var| std::env::var(var).ok()))
}

pub fn label(config: &Config, args: &LabelArgs) -> anyhow::Result<u8> {
    let (part, parts) = task::resolve(args.shard, args.shards, |v| std::env::var(v).ok())?;
    let url = bucket_url(config, "label")?;
    runtime()?.block_on(async {
        let bucket = Bucket::open(&url).await?;
        for dataset in super::merged_or_named(&bucket, &args.datasets).await? {
            let progress = progress_bar(&dataset);
            let task = Task { dataset: &dataset, part, parts, progress };
            let curation = config.curation_for(&args.queries, &dataset);
            let report = labeller::run(&bucket, config, &curation, &task).await?;
            task.progress.finish_and_clear();
            if args.json {
                println!("{}", serde_json::to_string(&report).expect("a report serializes"));
            } else {
                println!(
                    "{dataset} labels, part {part} of {parts}: {} ({} images, {} failed)",
                    report.status, report.images, report.failed
                );
            }
        }
        Ok(exit::OK)
    })
}

pub fn build(config: &Config, args: &BuildArgs) -> anyhow::Result<u8> {
    let (part, parts) = task::resolve(args.shard, args.shards, |v| std::env::var(v).ok())?;
    let url = bucket_url(config, "build")?;
    let mut settings = config.build.clone();
    if let Some(size) = args.size {
        settings.size = size;
    }
    runtime()?.block_on(async {
        let bucket = Bucket::open(&url).await?;
        for dataset in super::merged_or_named(&bucket, &args.datasets).await? {
            let progress = progress_bar(&dataset);
            let task = Task { dataset: &dataset, part, parts, progress };
            let curation = args.rules.rules(config, &dataset);
            let report = builder::run(&bucket, config, &settings, &curation, &task).await?;
            task.progress.finish_and_clear();
            if args.json {
                println!("{}", serde_json::to_string(&report).expect("a report serializes"));
            } else {
                let committed = if report.committed { "; version committed" } else { "" };
                println!(
                    "{dataset} {}, part {part} of {parts}: {} ({} shard files){committed}",
                    report.version, report.status, report.shards
                );
            }
        }
        Ok(exit::OK)
    })
}
