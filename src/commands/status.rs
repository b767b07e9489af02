//! `pipeline status`: one row per dataset, or JSON for machines.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{bucket_url, runtime};
use crate::bucket::{Bucket, status as bucket_status};
use crate::commands::exit;
use crate::config::Config;
use crate::credit::count_by_license;
use crate::curate::color::Colorfulness;
use crate::curate::labels::{self, top_classes, verdicts};
use crate::dataset::{Built, Counts, DatasetError};
use crate::store::Store;

/// One dataset in `pipeline status --json` (the format is documented in the README).
#[derive(Debug, Serialize)]
pub struct DatasetStatus {
    pub name: String,
    pub query: Option<String>,
    pub images: usize,
    pub duplicates: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    /// RFC 3339, UTC.
    pub last_fetch: Option<String>,
    /// Members by licence id (`unknown` when the source named none).
    pub licenses: BTreeMap<String, usize>,
    pub labels: LabelStatus,
    /// The latest build: version and counts, curation's drops by reason included.
    pub build: Option<BuildStatus>,
}

/// What `pipeline label` (or a build) measured on a dataset's members.
#[derive(Debug, Serialize)]
pub struct LabelStatus {
    /// Members with a label.
    pub labelled: usize,
    /// Members the color check of pipeline.toml's `[curate]` calls gray, or tinted.
    pub gray: usize,
    pub tinted: usize,
    /// Top-1 ImageNet class -> members (those labelled with the classifier).
    pub classes: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct BuildStatus {
    pub version: String,
    #[serde(flatten)]
    pub counts: Counts,
}

pub fn status(config: &Config, args: crate::commands::cli::StatusArgs) -> anyhow::Result<u8> {
    if config.store.bucket.is_some() {
        return bucket_status(config, args.json);
    }
    let store = Store::open(&config.store.path)?;
    let rows = gather(config, &store)?;
    if args.json {
        println!("{}", serde_json::json!({ "datasets": rows }));
    } else if rows.is_empty() {
        println!(
            "no datasets yet in {}: try `pipeline fetch \"brown bear\" --top 250`",
            store.root().display()
        );
    } else {
        print_table(&rows);
    }
    Ok(crate::commands::exit::OK)
}

/// Every dataset of the store: its counters, labels and latest build.
fn gather(config: &Config, store: &Store) -> anyhow::Result<Vec<DatasetStatus>> {
    let mut rows = Vec::new();
    for (name, record) in store.index.datasets()? {
        let members = store.index.members(&name)?;
        let licenses = count_by_license(members.iter().map(|m| m.1.credit.as_ref()));
        let ids: Vec<String> = members.into_iter().map(|(id, _, _)| id).collect();
        let labels = labels::stored(store, &ids.iter().map(String::as_str).collect::<Vec<_>>())?;
        let build = match Built::latest(store.root(), &name) {
            Ok(built) => {
                Some(BuildStatus { version: built.manifest.version, counts: built.manifest.counts })
            }
            Err(DatasetError::NotBuilt(_)) => None,
            Err(e) => return Err(e.into()),
        };
        rows.push(DatasetStatus {
            labels: LabelStatus {
                labelled: labels.len(),
                gray: verdicts(labels.iter(), &config.curate, Colorfulness::Gray),
                tinted: verdicts(labels.iter(), &config.curate, Colorfulness::Tinted),
                classes: top_classes(labels.iter()),
            },
            build,
            licenses,
            images: store.index.member_count(&name)?,
            query: record.query,
            duplicates: record.duplicates,
            failed: record.failures.values().sum(),
            failures: record.failures,
            last_fetch: record.last_fetch.map(crate::store::rfc3339),
            name,
        });
    }
    Ok(rows)
}

/// The text form: a row a dataset, then each dataset's top classes.
fn print_table(rows: &[DatasetStatus]) {
    println!(
        "{:<24} {:>7} {:>10} {:>7}  {:<20}  {:<24}  failures",
        "dataset", "images", "duplicates", "failed", "last fetch", "left out of the build"
    );
    for row in rows {
        let failures: Vec<String> = row.failures.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let dropped = match &row.build {
            None => "not built".to_owned(),
            Some(b) if b.counts.dropped.is_empty() => "none".to_owned(),
            Some(b) => b
                .counts
                .dropped
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        println!(
            "{:<24} {:>7} {:>10} {:>7}  {:<20}  {:<24}  {}",
            row.name,
            row.images,
            row.duplicates,
            row.failed,
            row.last_fetch.as_deref().unwrap_or("never"),
            dropped,
            failures.join(", ")
        );
    }
    for row in rows.iter().filter(|r| !r.labels.classes.is_empty()) {
        let mut classes: Vec<_> = row.labels.classes.iter().collect();
        classes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = classes.iter().take(6).map(|(c, n)| format!("{c} {n}")).collect();
        println!("{}: top classes {}", row.name, top.join(", "));
    }
}

/// `status` of a bucket store.
fn bucket_status(config: &Config, json: bool) -> anyhow::Result<u8> {
    let url = bucket_url(config, "status")?;
    let (rows, left_out) = runtime()?.block_on(async {
        let bucket = Bucket::open(&url).await?;
        anyhow::Ok(bucket_status::read(&bucket).await?)
    })?;
    for problem in left_out {
        eprintln!("warning: {url}/{}", crate::printable::printable(&problem));
    }
    if json {
        let all = serde_json::json!({"store": url, "datasets": rows});
        println!("{all}");
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        println!(
            "{url}: no shard plan yet: run `pipeline shard-urls URLS.txt --dataset NAME --shards N --store {url}`"
        );
    }
    for row in rows {
        let merged = row
            .merged
            .as_ref()
            .map_or_else(|| "not merged".to_owned(), |m| format!("{} members", m.members));
        println!(
            "{}: {}/{} shards done, {} images, {} duplicates, {} failed; {merged}; build {}",
            row.name,
            row.shards_done,
            row.shards,
            row.images,
            row.duplicates,
            row.failed,
            row.build.as_deref().unwrap_or("none")
        );
    }
    Ok(exit::OK)
}
