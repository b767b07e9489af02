//! `status` of a bucket store, read from the bucket alone: each planned dataset's shards
//! (done, pending), what the finished shards found, the merge, the latest build.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::manifest::{self, ShardStats};
use super::merge::{self, Merged};
use super::{Bucket, BucketError, mirror};

/// Markers read at once.
const READS: usize = 16;

/// One dataset of `pipeline status --json --store s3://…`.
#[derive(Debug, Serialize)]
pub struct BucketStatus {
    pub name: String,
    /// The URL list the plan was cut from.
    pub source: String,
    pub urls: usize,
    pub shards: usize,
    pub shards_done: usize,
    /// Shards without a marker (at most 100 listed).
    pub pending: Vec<usize>,
    /// Over the finished shards: images found, exact copies, failures by reason.
    pub images: usize,
    pub duplicates: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    pub downloaded: u64,
    pub bytes: u64,
    /// The last merge, if any.
    pub merged: Option<Merged>,
    /// The version the bucket's `latest` names.
    pub build: Option<String>,
}

/// Every planned dataset of the bucket, and the keys left out because they name no
/// dataset.
pub async fn read(bucket: &Bucket) -> Result<(Vec<BucketStatus>, Vec<String>), BucketError> {
    let (datasets, left_out) = bucket.datasets("plan", "/plan.json").await?;
    let mut rows = Vec::new();
    for dataset in &datasets {
        let dataset = dataset.as_str();
        let plan: super::plan::Plan =
            bucket.get_json(&format!("plan/{dataset}/plan.json")).await?.ok_or_else(|| {
                bucket.corrupt(&format!("plan/{dataset}/plan.json"), "vanished".into())
            })?;
        let done = merge::done_shards(bucket, dataset).await?;
        let mut row = BucketStatus {
            name: dataset.to_owned(),
            source: plan.source,
            urls: plan.urls,
            shards: plan.parts.len(),
            shards_done: done.len(),
            pending: (0..plan.parts.len()).filter(|s| !done.contains(s)).take(100).collect(),
            images: 0,
            duplicates: 0,
            failed: 0,
            failures: BTreeMap::new(),
            downloaded: 0,
            bytes: 0,
            merged: bucket.get_json(&merge::merged_key(dataset)).await?,
            build: mirror::latest_build(bucket, dataset).await?,
        };
        let reads = done.iter().map(|&shard| async move {
            bucket.get_json::<ShardStats>(&manifest::done_key(dataset, shard)).await
        });
        let markers: Vec<Option<ShardStats>> =
            futures::stream::iter(reads).buffered(READS).try_collect().await?;
        for stats in markers.into_iter().flatten() {
            row.images += stats.images;
            row.duplicates += stats.duplicates;
            row.downloaded += stats.downloaded;
            row.bytes += stats.bytes;
            for (reason, n) in stats.failures {
                *row.failures.entry(reason).or_default() += n;
            }
        }
        row.failed = row.failures.values().sum();
        rows.push(row);
    }
    Ok((rows, left_out))
}
