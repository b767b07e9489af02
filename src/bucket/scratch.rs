//! Scratch stores: a task's own folder store under `$TMPDIR`, removed when the task ends,
//! so that tasks of a job array on one machine never share (or lock) a store. A task
//! killed outright leaves its folder; the next one to start removes it.

use std::path::Path;

use crate::store::{Store, StoreError, StoreLock};

/// Scratch folders are `$TMPDIR/pipeline-shard-<name>-XXXXXX`.
const PREFIX: &str = "pipeline-shard-";

/// A scratch folder younger than this may belong to a task that is starting.
const GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// A new scratch folder for the task `name`, with a store in it; the folder goes when the
/// returned guard is dropped.
pub fn create(name: &str) -> Result<(tempfile::TempDir, Store), StoreError> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{name}-"))
        .tempdir()
        .map_err(crate::durable::at(&std::env::temp_dir()))?;
    let store = Store::create(&dir.path().join("store"))?;
    Ok((dir, store))
}

/// Removes the scratch folders under `tmp` of tasks that died without cleaning up
/// (SIGKILL, a node's crash): those whose store lock no process holds. A folder is only
/// taken once it and its lock are older than `GRACE`, so a task that is
/// starting keeps its own. Returns how many went.
pub fn remove_dead(tmp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp) else { return 0 };
    let old = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > GRACE))
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(PREFIX);
        if !ours || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let lock = dir.join("store").join("lock");
        let dead = if lock.exists() {
            // Taking the lock proves its holder is gone; it is released as the folder goes.
            old(&lock) && StoreLock::acquire(&lock, "scratch store").is_ok()
        } else {
            old(&dir)
        };
        if dead && std::fs::remove_dir_all(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}
