//! `[store]` of `pipeline.toml` and `--store`: a folder, or a bucket (`s3://BUCKET/PREFIX`)
//! with this machine's cache of it. Imports nothing of the crate but `setting`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::setting::Invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Root folder of the store (index, blobs, datasets, runs); for a bucket store, this
    /// machine's cache of it.
    pub path: PathBuf,
    /// A bucket store, `s3://bucket/prefix` (`--store` sets it when given an s3:// URL).
    pub bucket: Option<String>,
    /// Where a bucket store is cached on this machine [default:
    /// $XDG_CACHE_HOME/pipeline/s3/BUCKET/PREFIX, or ~/.cache/…].
    pub cache: Option<PathBuf>,
}

impl StoreConfig {
    /// Applies `--store`: an s3:// URL names a bucket store, anything else a folder.
    pub fn choose(&mut self, store: &str) {
        if store.starts_with("s3://") {
            self.bucket = Some(store.to_owned());
        } else {
            self.bucket = None;
            self.path = PathBuf::from(store);
        }
    }

    /// For a bucket store, points `path` at its cache on this machine: a folder named
    /// from the parsed URL's parts (checked when the URL was given).
    pub fn resolve_cache(&mut self) {
        let Some(Ok(url)) = self.bucket.as_deref().map(BucketUrl::parse) else { return };
        self.path = self.cache.clone().unwrap_or_else(|| {
            let place = cache_home().join("s3").join(&url.bucket);
            url.prefix.iter().fold(place, |path, part| path.join(part))
        });
    }
}

/// This user's cache folder for pipeline: `$XDG_CACHE_HOME/pipeline`, else
/// `~/.cache/pipeline`.
pub fn cache_home() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("pipeline")
}

/// A bucket store's URL, `s3://BUCKET[/PREFIX]`, taken apart. Its parts become object keys
/// and this machine's cache folder, so none may be empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUrl {
    pub bucket: String,
    pub prefix: Vec<String>,
}

impl BucketUrl {
    /// Why `text` is not a bucket URL, if it is not.
    pub fn parse(text: &str) -> Result<BucketUrl, String> {
        let rest = text.strip_prefix("s3://").ok_or("the scheme is not s3://")?;
        let mut parts = rest.strip_suffix('/').unwrap_or(rest).split('/');
        let bucket = parts.next().unwrap_or_default();
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !bucket.contains("..");
        if !bucket_ok {
            return Err(format!("{bucket:?} is not a bucket name (3-63 of a-z 0-9 . -)"));
        }
        let prefix: Vec<String> = parts.map(str::to_owned).collect();
        if let Some(bad) = prefix.iter().find(|p| {
            p.is_empty()
                || *p == "."
                || *p == ".."
                || p.chars().any(|c| c.is_control() || c == '\\')
        }) {
            return Err(format!("the prefix has a part {bad:?}"));
        }
        Ok(BucketUrl { bucket: bucket.to_owned(), prefix })
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { path: PathBuf::from("store"), bucket: None, cache: None }
    }
}

impl StoreConfig {
    /// Where `report` writes the site unless told: `STORE/report/`.
    pub fn report_dir(&self) -> PathBuf {
        self.path.join("report")
    }

    pub fn check(&self) -> Result<(), Invalid> {
        if let Some(url) = &self.bucket
            && BucketUrl::parse(url).is_err()
        {
            let allowed = "expected s3://BUCKET[/PREFIX], no empty, . or .. parts";
            return Invalid::err("store.bucket", url, allowed);
        }
        Ok(())
    }
}
