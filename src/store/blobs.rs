//! Content-addressed image files: `blobs/ab/<blake3>.<ext>`, `ab` being the hash's first
//! two hex digits (256 folders: a few hundred files each at 100k images).
//!
//! Bytes go to `pipeline-tmp/` first, are fsynced, then renamed into place, so a blob is either
//! absent or complete. A blob's name is its hash: writing the same bytes twice is a no-op.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;
use crate::durable;

/// True for a blob's name: a blake3 hash in lower-case hex.
pub fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The folder of blob `hash` (under `blobs/`, and of anything else kept by hash): its
/// first two hex digits. Never panics: a name that is no hash (refused wherever names
/// arrive) gets `__`.
pub fn folder(hash: &str) -> &str {
    hash.get(..2).filter(|_| is_hash(hash)).unwrap_or("__")
}

pub struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl Blobs {
    /// Opens the blob folders under the store root, discarding any half-written temp file.
    pub fn open(root: &Path) -> Result<Blobs, StoreError> {
        let dir = root.join("blobs");
        // A name only the store uses: `tmp/` may be the user's (`--store ~`).
        let tmp = root.join("pipeline-tmp");
        for d in [&dir, &tmp] {
            fs::create_dir_all(d).map_err(|source| {
                StoreError::Io(crate::durable::PathError { path: d.clone(), source })
            })?;
        }
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Blobs { dir, tmp, counter: AtomicU64::new(0) })
    }

    /// Where the blob with this hash and extension lives (whether or not it exists).
    pub fn path(&self, hash: &str, ext: &str) -> PathBuf {
        self.dir.join(folder(hash)).join(format!("{hash}.{ext}"))
    }

    /// The blob with this hash under the store `root`, whatever its extension, if present.
    /// Needs no lock: blobs never change once written.
    pub fn find(root: &Path, hash: &str) -> Option<PathBuf> {
        let folder = root.join("blobs").join(folder(hash));
        let prefix = format!("{hash}.");
        fs::read_dir(folder)
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
    }

    /// Every file under `blobs/`, with the hash its name gives (`None` for a file that is
    /// not named like a blob).
    pub fn files(&self) -> Result<Vec<(PathBuf, Option<String>)>, StoreError> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&self.dir).min_depth(1) {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&self.dir).to_owned();
                crate::durable::at(&path)(e.into())
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            let parsed = name
                .split_once('.')
                .map(|(hash, _)| hash)
                .filter(|hash| is_hash(hash))
                .map(str::to_owned);
            out.push((entry.into_path(), parsed));
        }
        Ok(out)
    }

    /// Durably writes `bytes` as the blob `hash`.`ext`. Safe to call from many threads.
    pub fn write(&self, hash: &str, ext: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let dest = self.path(hash, ext);
        if dest.exists() {
            return Ok(dest);
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{hash}.{}.{n}.part", std::process::id()));
        let parent = dest.parent().expect("blob paths have a parent");
        fs::create_dir_all(parent).map_err(crate::durable::at(parent))?;
        // The index may name this blob as soon as we return.
        durable::write_file(&tmp, &dest, bytes)?;
        Ok(dest)
    }
}
