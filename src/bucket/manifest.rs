//! What a shard's worker writes: its manifest (one JSON line per URL it decided), under a
//! name of its own attempt's, and its stats, the commit marker, which names that attempt.
//! A shard is committed once, by the marker created first; `merge` reads the manifest the
//! marker names, so a late worker's manifest never replaces the committed one.
//! `members/<dataset>.jsonl` reuses [`Image`] lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::net::OptOutConfig;
use crate::photo::check::Format;
use crate::store::{ImageRecord, Member, is_hash};

/// An accepted image: its bytes' hash, where it came from, what it is. Read from a bucket
/// (anyone who can write it can write these), it is checked as it is parsed: the hash is
/// a blake3 hash and the extension one of the stored formats', so neither can name a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct Image {
    pub hash: String,
    pub member: Member,
    pub image: ImageRecord,
}

/// An [`Image`] as the bucket holds it, before its names are checked.
#[derive(Deserialize)]
struct Unchecked {
    hash: String,
    member: Member,
    image: ImageRecord,
}

impl TryFrom<Unchecked> for Image {
    type Error = String;

    fn try_from(Unchecked { hash, member, image }: Unchecked) -> Result<Image, String> {
        if !is_hash(&hash) {
            return Err(format!("hash {hash:?} is not a blake3 hash (64 lower-case hex digits)"));
        }
        if Format::from_ext(&image.ext).is_none() {
            return Err(format!(
                "extension {:?} is not an image format (jpg, png, gif, webp, bmp)",
                image.ext
            ));
        }
        Ok(Image { hash, member, image })
    }
}

/// One line of `shards/<dataset>/manifest-NNNNN.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Line {
    /// A valid image, not an exact copy of an earlier one of the shard. Near duplicates are
    /// all listed: `merge` decides them over every shard, in rank order.
    Image(Box<Image>),
    /// An exact copy of the shard's image `of`.
    Duplicate { url: String, of: String },
    /// A URL that gave no image: the failure kind and what happened.
    Failure { url: String, reason: String, detail: String },
}

/// `shards/<dataset>/_done/NNNNN.json`: a finished shard's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardStats {
    pub shard: usize,
    /// The attempt whose manifest this marker commits ([`Attempt`]).
    pub attempt: String,
    pub urls: usize,
    pub images: usize,
    /// Exact copies within the shard.
    pub duplicates: u64,
    pub failures: BTreeMap<String, u64>,
    pub downloaded: u64,
    pub bytes: u64,
    /// Blobs this worker created (the others were in the bucket already).
    pub blobs_created: usize,
    /// The whole shard, and the part of it spent writing to the bucket (blobs, manifest).
    pub seconds: f64,
    pub upload_seconds: f64,
    /// The machine that did it.
    pub host: String,
    /// Seconds since the Unix epoch.
    pub finished_at: u64,
    /// The opt-out policy the worker fetched with (`None` from workers before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_outs: Option<OptOutConfig>,
}

/// One worker's try at a shard: 16 hex digits, new for every try, that name its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt(String);

impl Attempt {
    /// A new attempt, unlike any other worker's (host, process, time).
    pub fn new() -> Attempt {
        let mut hasher = blake3::Hasher::new();
        let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        hasher.update(host().as_bytes());
        hasher.update(&std::process::id().to_le_bytes());
        hasher.update(&time.map_or(0, |t| t.as_nanos()).to_le_bytes());
        Attempt(hasher.finalize().to_hex()[..16].to_owned())
    }

    /// The attempt a marker names, if it is one (a marker is read from the bucket).
    pub fn parse(text: &str) -> Option<Attempt> {
        let ok = text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Attempt(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `shards/<dataset>/manifest-NNNNN-<attempt>.jsonl`.
pub fn manifest_key(dataset: &str, shard: usize, attempt: &Attempt) -> String {
    format!("shards/{dataset}/manifest-{shard:05}-{}.jsonl", attempt.0)
}

pub fn done_folder(dataset: &str) -> String {
    format!("shards/{dataset}/_done")
}

pub fn done_key(dataset: &str, shard: usize) -> String {
    format!("{}/{shard:05}.json", done_folder(dataset))
}

/// The shard number of a marker key, if it is one.
pub fn shard_of_done_key(key: &str) -> Option<usize> {
    key.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()
}

/// JSON lines, one a value.
pub fn to_jsonl<T: Serialize>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        serde_json::to_writer(&mut out, value).expect("manifest lines serialize");
        out.push(b'\n');
    }
    out
}

/// Parses JSON lines, naming the line that is not a `T`.
pub fn from_jsonl<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// This machine's name, for the stats.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}
