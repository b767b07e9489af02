//! The report's output folder: every file is written aside and renamed into place, and
//! only when its bytes change, so a browser never reads half a page and a rerun over an
//! unchanged store rewrites nothing.

use std::fs;
use std::path::{Path, PathBuf};

use super::ReportError;

pub struct Site {
    root: PathBuf,
}

impl Site {
    pub fn create(root: &Path) -> Result<Site, ReportError> {
        fs::create_dir_all(root).map_err(crate::durable::at(root))?;
        Ok(Site { root: root.to_owned() })
    }

    /// Where `rel` (a `/`-separated path inside the folder) lives.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn has(&self, rel: &str) -> bool {
        self.path(rel).is_file()
    }

    /// Writes `bytes` at `rel` unless it holds them already; true when written.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<bool, ReportError> {
        let path = self.path(rel);
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            return Ok(false);
        }
        let dir = path.parent().expect("site paths have a folder");
        fs::create_dir_all(dir).map_err(crate::durable::at(dir))?;
        let aside = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            std::process::id()
        ));
        fs::write(&aside, bytes).map_err(crate::durable::at(&aside))?;
        fs::rename(&aside, &path).map_err(crate::durable::at(&path))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_bytes_are_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::create(dir.path()).unwrap();
        assert!(site.write("a/b.html", b"one").unwrap());
        assert!(!site.write("a/b.html", b"one").unwrap());
        assert!(site.write("a/b.html", b"two").unwrap());
        assert_eq!(fs::read(site.path("a/b.html")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(site.path("a")).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "nothing left aside");
    }
}
