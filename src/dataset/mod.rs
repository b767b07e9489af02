//! Built datasets on disk: what `build` writes and `export` and `train` read.
//!
//! ```text
//! store/datasets/NAME/
//!   latest                      the current VERSION, replaced atomically
//!   VERSION/                    immutable once published
//!     manifest.json             settings, counts, shards, every member and its split,
//!                               curation: its rules, what it left out and why;
//!                               provenance: queries, sources, licences, opt-outs
//!     README.md                 the dataset card (`card`), from the manifest alone
//!     train-00000.safetensors   u8 A [N,1,S,S], B [N,3,S,S]; member ids in the metadata
//!     test-00000.safetensors
//!   .partial-VERSION-PID/       a build in progress; removed by the next build
//! ```
//!
//! VERSION is a content hash of the member list and the build settings, so the same
//! inputs always give the same version, and the same bytes. Reading needs no store lock:
//! a published version never changes.
//!
//! Owns `[build]`, names (`name`), curation records (`curation`), the dataset card
//! (`card`) and exports; imports `credit`, `durable`, `link`, `photo`, `setting`.

pub mod card;
pub mod curation;
pub mod export;
mod name;
mod shard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::credit::Credit;
use crate::photo::resize::ResizeMode;
use crate::setting::Invalid;
use curation::{CurateConfig, Dropped, Leak};

pub use name::check_name;
pub use shard::{Shard, ShardError, file_hash, write_shard};

/// The settings a version was built with (`[build]` in pipeline.toml, `--size`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildSettings {
    /// Stored side in pixels; the trainer crops from it (reference: stored 286, trained 256).
    pub size: u32,
    pub resize: ResizeMode,
    /// Share of images in the test split, decided by each image's content hash.
    pub test_fraction: f64,
    /// Images per shard file.
    pub shard_size: usize,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings { size: 286, resize: ResizeMode::Squash, test_fraction: 0.1, shard_size: 64 }
    }
}

impl BuildSettings {
    pub fn check(&self) -> Result<(), Invalid> {
        if !(16..=4096).contains(&self.size) {
            return Invalid::err("build.size", self.size, "allowed: 16 to 4096 pixels");
        }
        if !(0.0..1.0).contains(&self.test_fraction) {
            let allowed = "allowed: 0 up to (not including) 1";
            return Invalid::err("build.test_fraction", self.test_fraction, allowed);
        }
        if !(1..=100_000).contains(&self.shard_size) {
            return Invalid::err("build.shard_size", self.shard_size, "allowed: 1 to 100000");
        }
        Ok(())
    }
}

/// Which split an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// The split of the image with blake3 hex `id`: its first 64 bits as a fraction of 2^64,
    /// below `test_fraction` -> test. It depends on nothing but the image's own bytes, so
    /// adding or removing other images never moves it.
    pub fn of(id: &str, test_fraction: f64) -> Split {
        let prefix = u64::from_str_radix(&id[..16], 16).unwrap_or(u64::MAX);
        let threshold = (test_fraction * 2f64.powi(64)) as u64;
        if prefix < threshold { Split::Test } else { Split::Train }
    }

    /// Whether a training image with blake3 hex `id` is held out for validation: the next
    /// 64 bits of its hash, as a fraction of 2^64, below `val_fraction`. Independent of the
    /// test split's bits, and as stable.
    pub fn is_validation(id: &str, val_fraction: f64) -> bool {
        let bits = id.get(16..32).and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(u64::MAX);
        bits < (val_fraction * 2f64.powi(64)) as u64
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// `manifest.json` of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub dataset: String,
    pub version: String,
    pub settings: BuildSettings,
    /// How A was computed from B.
    pub luma: String,
    pub counts: Counts,
    pub shards: Vec<ShardInfo>,
    pub members: Vec<ManifestMember>,
    /// Members that could not be preprocessed, with why; they are in no shard.
    pub skipped: Vec<Skipped>,
    /// The curation rules applied.
    #[serde(default)]
    pub curation: CurateConfig,
    /// Members curation left out, with why; they are in no shard.
    #[serde(default)]
    pub dropped: Vec<Dropped>,
    /// Leaks published anyway (`on_leak = "allow"`).
    #[serde(default)]
    pub leaks: Vec<Leak>,
    /// Where the members came from and on what terms.
    #[serde(default)]
    pub provenance: Provenance,
}

/// Where a version's members came from and on what terms: what the dataset card says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Members by what found them: the query searched, the URL list or folder imported.
    pub queries: BTreeMap<String, usize>,
    /// Members by source: an engine's name, or `import` (a URL list or a folder).
    pub sources: BTreeMap<String, usize>,
    /// When the first and the last member were added (RFC 3339).
    pub first_added: Option<String>,
    pub last_added: Option<String>,
    pub opt_outs: OptOuts,
}

/// How the fetches into a dataset treated opt-outs from AI training.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOuts {
    /// Whether every fetch from the web honoured them (`None`: none recorded it: imports
    /// only, or fetched before opt-outs were honoured).
    pub honoured: Option<bool>,
    /// The signals every fetch honoured.
    pub signals: Vec<String>,
    /// URLs of the dataset's left out because their site opted out.
    pub excluded: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub train: usize,
    pub test: usize,
    pub skipped: usize,
    /// Members curation left out, by reason.
    #[serde(default)]
    pub dropped: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub file: String,
    pub split: Split,
    pub count: usize,
    /// blake3 of the file.
    pub blake3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestMember {
    /// blake3 of the source image's bytes (its blob name).
    pub id: String,
    pub split: Split,
    /// Index into `shards`, and position inside that shard.
    pub shard: usize,
    pub index: usize,
    pub rank: u64,
    pub source: String,
    pub url: String,
    /// Where it came from, and under what licence: carried into every export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<Credit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

/// Bumped whenever the bytes a build writes would change for the same inputs.
pub const FORMAT: u32 = 1;

/// The luma formula, as recorded in every manifest.
pub const LUMA: &str =
    "BT.601 as Pillow's convert(\"L\"): (19595 R + 38470 G + 7471 B + 32768) >> 16";

/// The version of a build of these members (blake3 hex ids, any order) with `settings`
/// and `curation` (its rules and decisions).
pub fn version_of(ids: &[&str], settings: &BuildSettings, curation: &impl Serialize) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    let mut hasher = blake3::Hasher::new();
    hasher.update(format!("pipeline-dataset-{FORMAT}\n").as_bytes());
    hasher.update(&serde_json::to_vec(settings).expect("settings serialize"));
    hasher.update(&serde_json::to_vec(curation).expect("curation serializes"));
    for id in ids {
        hasher.update(b"\n");
        hasher.update(id.as_bytes());
    }
    hasher.finalize().to_hex()[..16].to_owned()
}

/// Errors reading a built dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset {0} has not been built yet: run `pipeline build {0}`")]
    NotBuilt(String),
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(transparent)]
    Shard(#[from] ShardError),
}

/// The folder of a dataset's builds inside a store.
pub fn dataset_dir(store: &Path, dataset: &str) -> PathBuf {
    store.join("datasets").join(dataset)
}

/// The version `latest` points to, if any.
pub fn latest_version(store: &Path, dataset: &str) -> Result<Option<String>, DatasetError> {
    let path = dataset_dir(store, dataset).join("latest");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DatasetError::Io(crate::durable::PathError { path, source })),
    }
}

/// Points the dataset folder `dir`'s `latest` at `version` (atomically, durably).
pub fn set_latest(dir: &Path, version: &str) -> Result<(), crate::durable::PathError> {
    let pointer = format!("{version}\n");
    crate::durable::write_file(&dir.join(".latest.tmp"), &dir.join("latest"), pointer.as_bytes())
}

/// A published version: its folder and manifest.
#[derive(Debug, Clone)]
pub struct Built {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Built {
    /// Opens the version `latest` points to.
    pub fn latest(store: &Path, dataset: &str) -> Result<Built, DatasetError> {
        let version = latest_version(store, dataset)?
            .ok_or_else(|| DatasetError::NotBuilt(dataset.to_owned()))?;
        Built::open(&dataset_dir(store, dataset).join(version))
    }

    pub fn open(dir: &Path) -> Result<Built, DatasetError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read(&path).map_err(|source| {
            DatasetError::Io(crate::durable::PathError { path: path.clone(), source })
        })?;
        let manifest = serde_json::from_slice(&text)
            .map_err(|e| DatasetError::Corrupt { path: path.clone(), message: e.to_string() })?;
        Ok(Built { dir: dir.to_owned(), manifest })
    }

    /// Memory-maps shard `index` of the manifest.
    pub fn shard(&self, index: usize) -> Result<Shard, DatasetError> {
        let info = &self.manifest.shards[index];
        Ok(Shard::open(&self.dir.join(&info.file))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_depends_only_on_the_id() {
        let low = "0000000000000000aaaa";
        let high = "ffffffffffffffffaaaa";
        assert_eq!(Split::of(low, 0.1), Split::Test);
        assert_eq!(Split::of(high, 0.1), Split::Train);
        assert_eq!(Split::of("1900000000000000", 0.1), Split::Test, "0.098 < 0.1");
        assert_eq!(Split::of("1a00000000000000", 0.1), Split::Train, "0.102 > 0.1");
        assert_eq!(Split::of(low, 0.0), Split::Train, "no test split");
        assert!(Split::is_validation("ffffffffffffffff0800000000000000", 0.1));
        assert!(!Split::is_validation("00000000000000002000000000000000", 0.1));
        assert!(!Split::is_validation("ffffffffffffffff0000000000000000", 0.0), "none held out");
    }

    #[test]
    fn version_ignores_member_order_but_not_settings() {
        let settings = BuildSettings {
            size: 286,
            resize: ResizeMode::Squash,
            test_fraction: 0.1,
            shard_size: 64,
        };
        let a = version_of(&["b", "a"], &settings, &());
        assert_eq!(a, version_of(&["a", "b"], &settings, &()));
        assert_ne!(a, version_of(&["a"], &settings, &()));
        assert_ne!(
            a,
            version_of(&["a", "b"], &BuildSettings { size: 256, ..settings.clone() }, &())
        );
        assert_ne!(a, version_of(&["a", "b"], &settings, &["gray"]));
    }
}
