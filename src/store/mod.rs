//! The store: where fetched images and everything known about them live.
//!
//! ```text
//! store/
//!   pipeline-store.json   the marker that makes the folder a store (its format)
//!   lock          held (flock) by the one process using the store; holds its pid
//!   index/        sled: URL outcomes, image metadata, dataset members and counters
//!   blobs/ab/<blake3>.<ext>   image bytes, content-addressed, never modified
//!   pipeline-tmp/ blobs being written; emptied on open, never read
//! ```
//!
//! A folder is a store when it holds the marker. A command takes a missing or empty
//! folder (and makes it a store), and a store from before the marker (`index/` and
//! `blobs/`, marked as it is opened); a non-empty folder without the marker is refused,
//! except by the commands that create a store (`fetch`, `import`, `refresh`, a bucket's
//! `build`), which keep what it holds. Nothing outside `pipeline-tmp/` is ever cleaned.
//!
//! A blob is written to `pipeline-tmp/`, fsynced and renamed into place before the index names it,
//! so a crash can leave an unreferenced blob (harmless) but never a partial one, and never
//! an index record without its bytes. Checking and tidying it is `upkeep`'s (above the
//! store, since it reads builds and runs too).
//!
//! Owns `[store]` (`config`); imports `durable`, `photo`, `setting`.

mod blobs;
pub mod config;
mod index;
mod lock;

use std::path::{Path, PathBuf};

pub use blobs::{Blobs, folder as blob_folder, is_hash};
pub use index::{
    DatasetRecord, DuplicateRecord, FailureRecord, ImageRecord, Index, Member, Records, Tree,
    UrlOutcome, UrlRecord,
};
pub use lock::StoreLock;

/// Store-level failures: these stop a command (unlike per-image failures, which are counted).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} busy: {path} is in use by {}", holder_text(*.pid))]
    Busy { what: &'static str, path: PathBuf, pid: Option<u32> },
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
    #[error("store index: {0}")]
    Index(#[from] sled::Error),
    #[error("store index: corrupt record under {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(
        "{path}: not a pipeline store (no {MARKER}) and not empty: give the folder `fetch` or \
         `import` made (--store), or an empty one"
    )]
    NotAStore { path: PathBuf },
}

/// The file that makes a folder a store.
const MARKER: &str = "pipeline-store.json";

/// Refuses `root` if it is a folder that is neither a store nor empty; for commands that
/// read a store without opening it (export, train, eval, colorize).
pub fn check_folder(root: &Path) -> Result<(), StoreError> {
    if root.join(MARKER).is_file() || is_empty(root)? || predates_marker(root) {
        return Ok(());
    }
    Err(StoreError::NotAStore { path: root.to_owned() })
}

/// Makes `root` a store (writes the marker) unless it is one. `adopt`: whatever it holds;
/// otherwise only a missing or empty folder or a store from before the marker.
fn take_folder(root: &Path, adopt: bool) -> Result<(), StoreError> {
    let marker = root.join(MARKER);
    if marker.is_file() {
        return Ok(());
    }
    if !adopt {
        check_folder(root)?;
    }
    std::fs::create_dir_all(root).map_err(crate::durable::at(root))?;
    let json = serde_json::json!({ "format": 1, "created_at": rfc3339(now()) }).to_string();
    let partial = root.join(format!("{MARKER}.{}.partial", std::process::id()));
    crate::durable::write_file(&partial, &marker, json.as_bytes())?;
    Ok(())
}

fn is_empty(root: &Path) -> Result<bool, StoreError> {
    match std::fs::read_dir(root) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(crate::durable::at(root)(e).into()),
    }
}

/// A store written before the marker existed: sled's `index/conf` and `blobs/`.
fn predates_marker(root: &Path) -> bool {
    root.join("index").join("conf").is_file() && root.join("blobs").is_dir()
}

impl StoreError {}

fn holder_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "another pipeline process".to_owned(), |p| format!("pipeline pid {p}"))
}

/// An open store. One per process: opening takes an exclusive lock.
pub struct Store {
    root: PathBuf,
    pub index: Index,
    pub blobs: Blobs,
    _lock: StoreLock,
}

impl Store {
    /// Opens the store at `root`; a missing or empty folder becomes one.
    ///
    /// # Errors
    /// [`StoreError::NotAStore`] for a folder that is neither; [`StoreError::Busy`] at once
    /// if another process holds the store.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        take_folder(root, false)?;
        Store::lock_and_open(root)
    }

    /// Opens the store at `root`, making any folder one (`fetch`, `import`, `refresh`: the
    /// commands that create a store); what the folder held stays untouched.
    pub fn create(root: &Path) -> Result<Store, StoreError> {
        take_folder(root, true)?;
        Store::lock_and_open(root)
    }

    fn lock_and_open(root: &Path) -> Result<Store, StoreError> {
        let lock = StoreLock::acquire(&root.join("lock"), "store")?;
        let blobs = Blobs::open(root)?;
        let index = Index::open(&root.join("index"))?;
        Ok(Store { root: root.to_owned(), index, blobs, _lock: lock })
    }

    /// Records `hash` as a member of `dataset`, refusing unless its blob is stored: the
    /// index never names bytes the store does not hold.
    pub fn add_member(
        &self,
        dataset: &str,
        hash: &str,
        image: &ImageRecord,
        member: &Member,
    ) -> Result<(), StoreError> {
        let blob = self.blobs.path(hash, &image.ext);
        if !blob.is_file() {
            let source = std::io::Error::other("no blob: a member is recorded after its bytes");
            return Err(StoreError::Io(crate::durable::PathError { path: blob, source }));
        }
        self.index.add_member(dataset, hash, image, member)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Seconds since the Unix epoch, the time unit of every record.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A record time as people read it: RFC 3339, UTC, to the second.
pub fn rfc3339(at: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::check::PerceptualHash;

    #[test]
    fn a_member_is_recorded_only_after_its_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bytes = b"bytes of an image";
        let hash = blake3::hash(bytes).to_hex().to_string();
        let image = ImageRecord {
            ext: "jpg".into(),
            width: 1,
            height: 1,
            bytes: bytes.len() as u64,
            phash: PerceptualHash([0; 4]),
            added_at: 0,
        };
        let member = Member {
            rank: 1,
            source: "test".into(),
            query: "q".into(),
            url: "https://example.com/a.jpg".into(),
            page_url: None,
            title: None,
            added_at: 0,
            credit: None,
        };
        let err = store.add_member("d", &hash, &image, &member).unwrap_err();
        assert!(err.to_string().contains(&hash), "{err}");
        assert!(!store.index.is_member("d", &hash).unwrap());
        store.blobs.write(&hash, "jpg", bytes).unwrap();
        store.add_member("d", &hash, &image, &member).unwrap();
        assert!(store.index.is_member("d", &hash).unwrap());
    }
}
