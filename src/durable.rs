//! Files and folders, safely: durable writes (a file or folder is whole or absent after a
//! crash), the one path-carrying I/O error, and listing a folder's subfolders. Bytes are written
//! aside, fsynced, renamed into place, and the folder holding them is fsynced, since a
//! rename is only durable once its folder is. Blobs, shards, builds, `latest` and training
//! checkpoints all go through here.
//!
//! Imports nothing of the crate.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An I/O error and the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct PathError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// `map_err(at(path))?`: an I/O error about `path`, as a [`PathError`] (which every
/// error of the crate that involves files is made from).
pub fn at(path: &Path) -> impl FnOnce(std::io::Error) -> PathError + use<> {
    let path = path.to_owned();
    move |source| PathError { path, source }
}

/// fsyncs one file or folder.
pub fn sync(path: &Path) -> Result<(), PathError> {
    fs::File::open(path).and_then(|f| f.sync_all()).map_err(at(path))
}

/// Writes `bytes` to `tmp`, fsyncs it and renames it to `dest` (see [`publish`]).
pub fn write_file(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<(), PathError> {
    let mut file = fs::File::create(tmp).map_err(at(tmp))?;
    file.write_all(bytes).map_err(at(tmp))?;
    file.sync_all().map_err(at(tmp))?;
    drop(file);
    publish(tmp, dest)
}

/// fsyncs every file directly in the folder `partial` and the folder itself, then
/// renames it to `dest` (see [`publish`]).
pub fn publish_folder(partial: &Path, dest: &Path) -> Result<(), PathError> {
    for entry in fs::read_dir(partial).map_err(at(partial))? {
        let path = entry.map_err(at(partial))?.path();
        if path.is_file() {
            sync(&path)?;
        }
    }
    sync(partial)?;
    publish(partial, dest)
}

/// Renames the synced `from` to `dest` and fsyncs `dest`'s folder, so the rename survives
/// a crash.
pub fn publish(from: &Path, dest: &Path) -> Result<(), PathError> {
    fs::rename(from, dest).map_err(at(dest))?;
    sync(dest.parent().expect("a published path has a folder"))
}

/// The folders directly inside `dir` (none if `dir` does not exist), sorted by name.
pub fn subfolders(dir: &Path) -> Result<Vec<(String, PathBuf)>, PathError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(PathError { path: dir.to_owned(), source }),
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_files_and_folders_are_whole_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("latest");
        write_file(&dir.path().join(".latest.tmp"), &dest, b"v1\n").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"v1\n");
        assert!(!dir.path().join(".latest.tmp").exists());

        let partial = dir.path().join(".partial-1");
        fs::create_dir(&partial).unwrap();
        fs::write(partial.join("a.bin"), b"a").unwrap();
        publish_folder(&partial, &dir.path().join("v1")).unwrap();
        assert_eq!(fs::read(dir.path().join("v1/a.bin")).unwrap(), b"a");

        let missing = dir.path().join("nope");
        let err = publish_folder(&missing, &dir.path().join("v2")).unwrap_err();
        assert_eq!(err.path, missing);
    }
}
