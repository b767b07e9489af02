//! `merge`: the one step that sees every shard. It reads every committed manifest (the one
//! each shard's marker names), counts from it, and decides the
//! dataset's members exactly as one import of the whole list would: in rank order, an
//! exact or near copy (`dedup.phash_distance`) of an earlier member is a duplicate. The
//! member list goes to `members/<dataset>.jsonl`, then its counts to `members/<dataset>.json`.
//!
//! It streams: manifests are read in shard order (rank order) and decided as they come,
//! the members written out as they are decided; it keeps only what decisions need (the
//! near-duplicate index, or the content hashes when near duplicates are off:
//! `fetch::Seen::counting`). It refuses to run while
//! any shard is unfinished.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::manifest::{self, Attempt, Image, Line, ShardStats};
use super::plan::{self, PlanError};
use super::{Bucket, BucketError, Cap};
use crate::fetch::Seen;
use crate::net::OptOutConfig;
use crate::store::now;

/// Manifests read at once.
const READS: usize = 16;

/// `members/<dataset>.json`, and what `merge` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    pub dataset: String,
    pub shards: usize,
    pub urls: usize,
    pub members: usize,
    /// Exact copies within shards, plus exact and near copies across them.
    pub duplicates: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    /// Seconds since the Unix epoch.
    pub merged_at: u64,
    pub seconds: f64,
    /// The weakest opt-out policy of the shards' workers (`None`: a shard did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_outs: Option<OptOutConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(
        "{dataset}: {} of {shards} shards are not done yet (shards {}); run their workers, then merge again",
        .pending.len(), list(.pending)
    )]
    Pending { dataset: String, shards: usize, pending: Vec<usize> },
}

fn list(shards: &[usize]) -> String {
    let shown: Vec<String> = shards.iter().take(20).map(usize::to_string).collect();
    let more =
        if shards.len() > 20 { format!(" and {} more", shards.len() - 20) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

pub fn members_key(dataset: &str) -> String {
    format!("members/{dataset}.jsonl")
}

pub fn merged_key(dataset: &str) -> String {
    format!("members/{dataset}.json")
}

/// Merges every shard of `dataset`; near duplicates within `max_distance` bits.
pub async fn merge(
    bucket: &Bucket,
    dataset: &str,
    max_distance: u32,
) -> Result<Merged, MergeError> {
    let started = Instant::now();
    let plan = plan::read(bucket, dataset).await?;
    let shards = plan.parts.len();
    let done = done_shards(bucket, dataset).await?;
    let pending: Vec<usize> = (0..shards).filter(|s| !done.contains(s)).collect();
    if !pending.is_empty() {
        return Err(MergeError::Pending { dataset: dataset.to_owned(), shards, pending });
    }
    let mut merged = Merged {
        dataset: dataset.to_owned(),
        shards,
        urls: plan.urls,
        members: 0,
        duplicates: 0,
        failed: 0,
        failures: BTreeMap::new(),
        merged_at: now(),
        seconds: 0.0,
        opt_outs: None,
    };
    // Shards are contiguous slices of the list, so shard order is rank order: each
    // manifest (READS read ahead) is decided as it comes, its images in rank order, and
    // the members stream out. What stays is what decisions need: `Seen`.
    let mut seen = Seen::counting(max_distance);
    let key = members_key(dataset);
    let mut members = bucket.writer(&key);
    let mut policies = Policies::default();
    let reads = plan
        .parts
        .iter()
        .enumerate()
        .map(|(shard, part)| shard_lines(bucket, dataset, shard, part.urls));
    let mut reads = futures::stream::iter(reads).buffered(READS);
    while let Some((lines, policy)) = reads.try_next().await? {
        policies.add(policy);
        let mut images = Vec::new();
        for line in lines {
            match line {
                Line::Image(image) => images.push(*image),
                Line::Duplicate { .. } => merged.duplicates += 1,
                Line::Failure { reason, .. } => *merged.failures.entry(reason).or_default() += 1,
            }
        }
        images.sort_by_key(|image| image.member.rank);
        for image in images {
            if seen.is_duplicate(&image.hash, image.image.phash) {
                merged.duplicates += 1;
                continue;
            }
            seen.insert(&image.hash, image.image.phash);
            let line = manifest::to_jsonl(std::slice::from_ref(&image));
            members.write_all(&line).await.map_err(|e| bucket.corrupt(&key, e.to_string()))?;
            merged.members += 1;
        }
    }
    members.shutdown().await.map_err(|e| bucket.corrupt(&key, e.to_string()))?;
    merged.failed = merged.failures.values().sum();
    merged.opt_outs = policies.weakest();
    merged.seconds = started.elapsed().as_secs_f64();
    let json = serde_json::to_vec_pretty(&merged).expect("merge counts serialize");
    bucket.put(&merged_key(dataset), Bytes::from(json)).await?;
    Ok(merged)
}

/// The shards' opt-out policies, folded: the weakest, or none when a shard did not say.
#[derive(Default)]
struct Policies {
    unknown: bool,
    weakest: Option<OptOutConfig>,
}

impl Policies {
    fn add(&mut self, policy: Option<OptOutConfig>) {
        match (policy, &self.weakest) {
            (None, _) => self.unknown = true,
            (Some(policy), None) => self.weakest = Some(policy),
            (Some(policy), Some(weakest)) => self.weakest = Some(weakest.weakest(&policy)),
        }
    }

    fn weakest(self) -> Option<OptOutConfig> {
        if self.unknown { None } else { self.weakest }
    }
}

/// The shards of `dataset` whose marker is in the bucket.
pub async fn done_shards(
    bucket: &Bucket,
    dataset: &str,
) -> Result<std::collections::BTreeSet<usize>, BucketError> {
    let keys = bucket.list(&manifest::done_folder(dataset)).await?;
    Ok(keys.iter().filter_map(|key| manifest::shard_of_done_key(key)).collect())
}

/// The lines of the manifest shard `shard` (of `urls` URLs) has its marker commit, and the
/// opt-out policy its worker fetched with (one that is no valid policy counts as unknown).
async fn shard_lines(
    bucket: &Bucket,
    dataset: &str,
    shard: usize,
    urls: usize,
) -> Result<(Vec<Line>, Option<OptOutConfig>), MergeError> {
    let done = manifest::done_key(dataset, shard);
    let stats: ShardStats =
        bucket.get_json(&done).await?.ok_or_else(|| bucket.corrupt(&done, "vanished".into()))?;
    let attempt = Attempt::parse(&stats.attempt).ok_or_else(|| {
        bucket.corrupt(&done, format!("attempt {:?} is not an attempt id", stats.attempt))
    })?;
    let key = manifest::manifest_key(dataset, shard, &attempt);
    let bytes = bucket.get(&key, Cap::lines(urls)).await?.ok_or_else(|| {
        bucket.corrupt(&key, "missing, though the shard's marker names it".into())
    })?;
    let lines = manifest::from_jsonl(&bytes).map_err(|e| bucket.corrupt(&key, e))?;
    Ok((lines, stats.opt_outs.filter(|policy| policy.check().is_ok())))
}

/// The member list `merge` wrote for `dataset` (of `count` members, as its counts say)
/// and 16 hex digits of its blake3, or `None` before the first merge.
pub async fn members(
    bucket: &Bucket,
    dataset: &str,
    count: usize,
) -> Result<Option<(Vec<Image>, String)>, BucketError> {
    let key = members_key(dataset);
    let Some(bytes) = bucket.get(&key, Cap::lines(count)).await? else { return Ok(None) };
    let digest = blake3::hash(&bytes).to_hex()[..16].to_owned();
    let members = manifest::from_jsonl(&bytes).map_err(|e| bucket.corrupt(&key, e))?;
    Ok(Some((members, digest)))
}
