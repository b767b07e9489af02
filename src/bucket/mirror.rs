//! This machine's cache of a bucket store: a folder store (sled index, blobs, builds) that
//! `build` fills from the bucket's member list and whose builds it uploads. Everything
//! that reads a folder store (export, train, eval, report) then reads the cache.
//!
//! What the bucket holds is untrusted: member names are checked as they are parsed
//! (`manifest::Image`), and a blob enters the cache only if its bytes hash to its name and
//! pass a download's checks and caps (`network.max_bytes`, `images.*`, one decode budget).
//! The cache's dataset changes only once every member passed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::manifest::Image;
use super::merge::{self, Merged};
use super::{Bucket, BucketError, Cap, Created, blob_key};
use crate::dataset::{Manifest, card, dataset_dir, set_latest};
use crate::photo::budget;
use crate::photo::check::Validator;
use crate::photo::config::ImagesConfig;
use crate::store::{DatasetRecord, ImageRecord, Store, StoreError, Tree};

/// Downloads and uploads in flight at once.
const TRANSFERS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
    #[error(
        "{url}: dataset {dataset} has not been merged: run `pipeline merge --dataset {dataset}`"
    )]
    NotMerged { url: String, dataset: String },
}

/// What a pull changed in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pulled {
    pub members: usize,
    /// Blobs downloaded (the others were cached).
    pub downloaded: usize,
    /// Cached members the merge no longer lists, removed from the cache's dataset.
    pub removed: usize,
}

/// The datasets `merge` has written a member list for, and the keys under `members/`
/// left out because they name no dataset.
pub async fn merged_datasets(bucket: &Bucket) -> Result<(Vec<String>, Vec<String>), BucketError> {
    bucket.datasets("members", ".json").await
}

/// What a blob pulled from the bucket must pass to enter the cache: a download's caps.
#[derive(Debug, Clone)]
pub struct Checks {
    /// `network.max_bytes`.
    pub max_bytes: u64,
    pub images: ImagesConfig,
}

/// Makes the cache's `dataset` exactly the bucket's merged member list, blobs included.
pub async fn pull(
    bucket: &Bucket,
    cache: &Store,
    dataset: &str,
    checks: &Checks,
) -> Result<Pulled, MirrorError> {
    let merged = merged(bucket, dataset).await?;
    let downloaded = pull_blobs(bucket, cache, &merged.members, checks).await?;
    let removed = pull_records(cache, dataset, &merged, Blobs::Held)?;
    Ok(Pulled { members: merged.members.len(), downloaded, removed })
}

/// A dataset's merged member list as `merge` wrote it.
pub struct MemberList {
    pub members: Vec<Image>,
    counts: Merged,
    /// 16 hex digits of the list's blake3: another merge, another digest.
    pub digest: String,
}

/// The bucket's merged member list of `dataset`.
pub async fn merged(bucket: &Bucket, dataset: &str) -> Result<MemberList, MirrorError> {
    let not_merged =
        || MirrorError::NotMerged { url: bucket.url().to_owned(), dataset: dataset.to_owned() };
    let counts: Merged =
        bucket.get_json(&merge::merged_key(dataset)).await?.ok_or_else(not_merged)?;
    let (members, digest) =
        merge::members(bucket, dataset, counts.members).await?.ok_or_else(not_merged)?;
    Ok(MemberList { members, counts, digest })
}

/// Downloads the blobs of `members` the cache lacks, each checked; how many came.
pub async fn pull_blobs(
    bucket: &Bucket,
    cache: &Store,
    members: &[Image],
    checks: &Checks,
) -> Result<usize, MirrorError> {
    let budget = budget::global();
    let missing = members.iter().filter(|m| !cache.blobs.path(&m.hash, &m.image.ext).is_file());
    let downloads = missing.map(|Image { hash, image, .. }| async move {
        let key = blob_key(hash, &image.ext);
        let bytes = bucket
            .get(&key, Cap { bytes: checks.max_bytes, from: "network.max_bytes" })
            .await?
            .ok_or_else(|| bucket.corrupt(&key, "missing: the member list names it".into()))?;
        let _memory = budget.take(&bytes).await;
        let (limits, record, name) = (checks.images.clone(), image.clone(), hash.clone());
        let checked = tokio::task::spawn_blocking(move || {
            check_blob(&bytes, &name, &record, limits).map(|()| bytes)
        });
        let bytes = checked.await.expect("a blob check does not panic");
        let bytes = bytes.map_err(|why| bucket.corrupt(&key, why))?;
        Ok::<_, MirrorError>((hash, &image.ext, bytes))
    });
    let mut downloads = futures::stream::iter(downloads).buffer_unordered(TRANSFERS);
    let mut downloaded = 0;
    while let Some((hash, ext, bytes)) = downloads.try_next().await? {
        tokio::task::block_in_place(|| cache.blobs.write(hash, ext, &bytes))?;
        downloaded += 1;
    }
    Ok(downloaded)
}

/// Where the blobs of the members a store records are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blobs {
    /// In the store, before their records (a cache: its index names only what it holds).
    Held,
    /// In the bucket: a job array's task downloads only those its part needs.
    InBucket,
}

/// Makes the store's records of `dataset` the member list's (blobs aside); returns how
/// many members the list no longer names.
pub fn pull_records(
    cache: &Store,
    dataset: &str,
    list: &MemberList,
    blobs: Blobs,
) -> Result<usize, MirrorError> {
    let members = &list.members;
    let listed: HashSet<&str> = members.iter().map(|m| m.hash.as_str()).collect();
    let tree = Tree::Members(dataset.to_owned());
    let mut cached = HashMap::new();
    let mut removed = 0;
    for (hash, member, image) in cache.index.members(dataset)? {
        if listed.contains(hash.as_str()) {
            cached.insert(hash, (member, image));
        } else {
            cache.index.remove(&tree, &hash)?;
            removed += 1;
        }
    }
    // Only what changed is written: a build of an unchanged bucket writes no record.
    for Image { hash, member, image } in members {
        if cached.get(hash).is_some_and(|(m, i)| m == member && i == image) {
            continue;
        }
        match blobs {
            Blobs::Held => cache.add_member(dataset, hash, image, member)?,
            Blobs::InBucket => cache.index.add_member(dataset, hash, image, member)?,
        }
    }
    let counts = &list.counts;
    let record = DatasetRecord {
        query: None,
        duplicates: counts.duplicates,
        failures: counts.failures.clone(),
        last_fetch: Some(counts.merged_at),
        opt_outs: counts.opt_outs.clone().filter(|policy| policy.check().is_ok()),
    };
    cache.index.put_dataset(dataset, &record)?;
    cache.index.flush()?;
    Ok(removed)
}

/// Whether `bytes` may be cached as the blob `hash` with `record`: they hash to its name
/// and pass a download's validation, and what they are is what the record says. The
/// error says what is wrong and what to do about it.
fn check_blob(
    bytes: &[u8],
    hash: &str,
    record: &ImageRecord,
    limits: ImagesConfig,
) -> Result<(), String> {
    let actual = blake3::hash(bytes).to_hex();
    if actual.as_str() != hash {
        return Err(format!(
            "its bytes hash to {actual}, not to its name: the object was replaced; delete it \
             and redo the shard that found the image (`import --shard N --redo`)"
        ));
    }
    let info = Validator::new(limits).check(bytes).map_err(|r| r.to_string())?;
    if info.format.ext() != record.ext {
        return Err(format!("its bytes are {}, not {}", info.format.ext(), record.ext));
    }
    let seen = (info.width, info.height, info.bytes, info.phash);
    if seen != (record.width, record.height, record.bytes, record.phash) {
        return Err(format!(
            "the member list says {}x{} px, {} bytes; the bytes are {}x{} px, {} bytes{}",
            record.width,
            record.height,
            record.bytes,
            info.width,
            info.height,
            info.bytes,
            if info.phash == record.phash { "" } else { ", another perceptual hash" }
        ));
    }
    Ok(())
}

/// Uploads the cache's build `version` of `dataset` (files created only if absent: a
/// version's bytes never change) and then points the bucket's `latest` at it. Returns the
/// number of files uploaded.
pub async fn push_build(
    bucket: &Bucket,
    cache: &Path,
    dataset: &str,
    version: &str,
) -> Result<usize, MirrorError> {
    let dir = dataset_dir(cache, dataset).join(version);
    let files: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect();
    let uploads = files.iter().map(|path| {
        let relative =
            path.strip_prefix(&dir).expect("walked under dir").to_string_lossy().replace('\\', "/");
        let key = format!("datasets/{dataset}/{version}/{relative}");
        async move {
            let bytes = tokio::fs::read(path).await.map_err(crate::durable::at(path))?;
            Ok::<_, MirrorError>(bucket.create(&key, Bytes::from(bytes)).await?)
        }
    });
    let created: Vec<Created> =
        futures::stream::iter(uploads).buffer_unordered(TRANSFERS).try_collect().await?;
    bucket.put(&format!("datasets/{dataset}/latest"), Bytes::from(format!("{version}\n"))).await?;
    Ok(created.iter().filter(|c| **c == Created::New).count())
}

/// What a build pulled into the cache is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledBuild {
    pub version: String,
    /// Shard files downloaded (0: the cache had the version).
    pub downloaded: usize,
}

/// Makes the cache hold the bucket's latest build of `dataset` (its shard files and
/// manifest; none of the members' blobs), so that `train`, `export` and `eval` read it as
/// a folder store's; `None` when the bucket has no build. The manifest is checked as it is
/// parsed (its dataset and version are the ones asked for, every shard file a plain
/// `train-NNNNN.safetensors` or `test-…` name) and every shard file must hash to the
/// manifest's blake3; the card is written from the manifest here, not copied.
pub async fn pull_build(
    bucket: &Bucket,
    cache: &Path,
    dataset: &str,
) -> Result<Option<PulledBuild>, MirrorError> {
    let Some(version) = latest_build(bucket, dataset).await? else { return Ok(None) };
    let dir = dataset_dir(cache, dataset);
    if dir.join(&version).join("manifest.json").is_file() {
        set_latest(&dir, &version)?;
        return Ok(Some(PulledBuild { version, downloaded: 0 }));
    }
    let key = format!("datasets/{dataset}/{version}/manifest.json");
    let bytes = bucket
        .get(&key, MANIFEST_CAP)
        .await?
        .ok_or_else(|| bucket.corrupt(&key, "missing, though `latest` names its version".into()))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| bucket.corrupt(&key, e.to_string()))?;
    check_manifest(&manifest, dataset, &version).map_err(|why| bucket.corrupt(&key, why))?;
    std::fs::create_dir_all(&dir).map_err(crate::durable::at(&dir))?;
    let partial = dir.join(format!(".partial-pull-{version}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir(&partial).map_err(crate::durable::at(&partial))?;
    let side = u64::from(manifest.settings.size);
    for shard in &manifest.shards {
        let key = format!("datasets/{dataset}/{version}/{}", shard.file);
        // Its pairs (1 + 3 bytes a pixel), their ids and a header.
        let pair = side.saturating_mul(4 * side).saturating_add(128);
        let cap = (shard.count as u64).saturating_mul(pair).saturating_add(1 << 20);
        let bytes =
            bucket.get(&key, Cap { bytes: cap, from: "4 bytes a pixel of its pairs" }).await?;
        let bytes =
            bytes.ok_or_else(|| bucket.corrupt(&key, "missing: the manifest names it".into()))?;
        let actual = blake3::hash(&bytes).to_hex();
        if actual.as_str() != shard.blake3 {
            let why = format!("its bytes hash to {actual}, not to the manifest's {}", shard.blake3);
            return Err(bucket.corrupt(&key, why).into());
        }
        let path = partial.join(&shard.file);
        std::fs::write(&path, &bytes).map_err(crate::durable::at(&path))?;
    }
    let path = partial.join("manifest.json");
    std::fs::write(&path, &bytes).map_err(crate::durable::at(&path))?;
    let path = partial.join(card::FILE);
    std::fs::write(&path, card::card(&manifest)).map_err(crate::durable::at(&path))?;
    let target = dir.join(&version);
    if target.join("manifest.json").is_file() {
        // Another process (a rank of the same `train --dist`) copied it meanwhile.
        std::fs::remove_dir_all(&partial).map_err(crate::durable::at(&partial))?;
    } else {
        if target.exists() {
            // A version folder without its manifest is what an interrupted copy left.
            std::fs::remove_dir_all(&target).map_err(crate::durable::at(&target))?;
        }
        crate::durable::publish_folder(&partial, &target)?;
    }
    set_latest(&dir, &version)?;
    Ok(Some(PulledBuild { version, downloaded: manifest.shards.len() }))
}

/// Most bytes of a manifest: some 1 KB a member at 100 M members.
const MANIFEST_CAP: Cap = Cap { bytes: 100 << 30, from: "100 GiB for a build's manifest" };

/// Whether a manifest read from the bucket is the build asked for, naming only plain
/// shard files.
fn check_manifest(manifest: &Manifest, dataset: &str, version: &str) -> Result<(), String> {
    if manifest.dataset != dataset || manifest.version != version {
        return Err(format!(
            "it is version {:?} of {:?}, not {version} of {dataset}",
            manifest.version, manifest.dataset
        ));
    }
    let plain = |file: &str| {
        let number = file
            .strip_suffix(".safetensors")
            .and_then(|f| f.strip_prefix("train-").or_else(|| f.strip_prefix("test-")));
        number.is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    match manifest.shards.iter().find(|s| !plain(&s.file)) {
        Some(bad) => Err(format!("shard file {:?} is not a shard file's name", bad.file)),
        None => Ok(()),
    }
}

/// The bucket's latest build of `dataset`, if any.
pub async fn latest_build(bucket: &Bucket, dataset: &str) -> Result<Option<String>, BucketError> {
    let key = format!("datasets/{dataset}/latest");
    let Some(text) = bucket.get(&key, Cap::SMALL).await? else { return Ok(None) };
    let version = String::from_utf8_lossy(&text).trim().to_owned();
    // A build version is 16 hex digits; anything else is no version of ours.
    if version.len() != 16 || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        let shown = crate::printable::printable(&version).into_owned();
        return Err(bucket.corrupt(&key, format!("{shown:?} is not a build version")));
    }
    Ok(Some(version))
}
