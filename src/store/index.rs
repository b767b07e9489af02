//! The sled index: small records only, image bytes live in `blobs/`.
//!
//! Trees:
//! - `urls`: URL -> [`UrlRecord`], what a download of it gave, for every dataset: a stored
//!   image, or a failure (stores written before `duplicates/` also hold duplicates here);
//! - `images`: blake3 hex -> [`ImageRecord`] (format, size, perceptual hash);
//! - `datasets`: name -> [`DatasetRecord`] (query, duplicate and failure counters, last fetch);
//! - `members/<dataset>`: blake3 hex -> [`Member`] (rank, source, query, URL, time);
//! - `duplicates/<dataset>`: URL -> [`DuplicateRecord`], the dataset's own decision that
//!   the URL's image duplicates one of its members;
//! - `failures/<dataset>`: URL -> [`FailureRecord`], the latest failure of each URL of
//!   the dataset's that gave no image (the counters in `datasets` count every failure);
//! - `labels`: blake3 hex -> what curation measured on the image (its type lives in
//!   `curate::labels`), computed once and shared by every dataset holding the image;
//! - `hosts`: origin -> a host's opt-out rules and when they were read (its type lives
//!   in `fetch::hosts`).
//!
//! Lookups never create a tree: asking about an unknown dataset finds nothing.
//!
//! This is the only module that touches sled, so another engine could replace it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sled::Transactional;

use super::StoreError;
use crate::credit::Credit;
use crate::net::OptOutConfig;
use crate::photo::check::PerceptualHash;

/// What became of a URL the last time it was downloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum UrlOutcome {
    /// Its bytes are the stored image `image` (whichever datasets hold it).
    Accepted { image: String },
    /// Written by stores before `duplicates/<dataset>`: its bytes duplicated the stored
    /// image `of` in some dataset. Read, never written.
    Duplicate { of: String, exact: bool },
    /// It gave no usable image. `retry` marks transient failures (timeouts, 5xx) that a
    /// later run tries again; the others are final.
    Failed { reason: String, retry: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlRecord {
    #[serde(flatten)]
    pub outcome: UrlOutcome,
    pub at: u64,
}

/// A dataset's decision: the URL's image is an exact or near copy of its member `of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRecord {
    pub of: String,
    pub exact: bool,
    pub at: u64,
}

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// File extension of the blob, from the bytes' format: jpg, png, gif, webp or bmp.
    pub ext: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// For near-duplicate search.
    pub phash: PerceptualHash,
    pub added_at: u64,
}

/// An image's membership of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Position in the merged search results (1 = first), or in the imported list.
    pub rank: u64,
    /// The engine that found it, or "import".
    pub source: String,
    /// The query searched for, or the imported path.
    pub query: String,
    pub url: String,
    pub page_url: Option<String>,
    pub title: Option<String>,
    pub added_at: u64,
    /// Licence and credit, when the source gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<Credit>,
}

/// Why a URL of a dataset's gave no image, the last time it was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The failure kind, as counted in [`DatasetRecord::failures`].
    pub reason: String,
    /// Where it failed and the error.
    pub detail: String,
    pub at: u64,
}

/// Per-dataset counters, over every fetch and import into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The last query fetched into it, if any.
    pub query: Option<String>,
    /// Downloads dropped as exact or near duplicates of a member.
    pub duplicates: u64,
    /// Failed downloads and rejected bodies, by reason.
    pub failures: BTreeMap<String, u64>,
    pub last_fetch: Option<u64>,
    /// The weakest opt-out policy a fetch from the web into it ran with (`None`: none
    /// recorded one: imports only, or fetched before opt-outs were honoured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_outs: Option<OptOutConfig>,
}

/// A tree of the index, by what it holds; its sled name stays in this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tree {
    Urls,
    Images,
    Datasets,
    /// The members of one dataset.
    Members(String),
    /// The duplicate decisions of one dataset.
    Duplicates(String),
    /// The failed URLs of one dataset.
    Failures(String),
    Labels,
    /// Each host's opt-out rules.
    Hosts,
}

impl Tree {
    fn name(&self) -> String {
        match self {
            Tree::Urls => "urls".into(),
            Tree::Images => "images".into(),
            Tree::Datasets => "datasets".into(),
            Tree::Members(dataset) => format!("members/{dataset}"),
            Tree::Duplicates(dataset) => format!("duplicates/{dataset}"),
            Tree::Failures(dataset) => format!("failures/{dataset}"),
            Tree::Labels => "labels".into(),
            Tree::Hosts => "hosts".into(),
        }
    }
}

impl std::fmt::Display for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Tree {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// Records with their keys, each decoded or not (see [`Index::records`]).
pub type Records<T> = Vec<(String, Result<T, StoreError>)>;

pub struct Index {
    db: sled::Db,
    urls: sled::Tree,
    images: sled::Tree,
    datasets: sled::Tree,
}

impl Index {
    pub fn open(path: &Path) -> Result<Index, StoreError> {
        let db = sled::Config::new().path(path).open()?;
        Ok(Index {
            urls: db.open_tree("urls")?,
            images: db.open_tree("images")?,
            datasets: db.open_tree("datasets")?,
            db,
        })
    }

    /// The tree `name` if it exists: lookups must not create trees.
    fn existing(&self, name: &str) -> Result<Option<sled::Tree>, StoreError> {
        let exists = self.db.tree_names().iter().any(|n| n.as_ref() == name.as_bytes());
        Ok(if exists { Some(self.db.open_tree(name)?) } else { None })
    }

    fn members_tree(&self, dataset: &str) -> Result<Option<sled::Tree>, StoreError> {
        self.existing(&format!("members/{dataset}"))
    }

    pub fn url(&self, url: &str) -> Result<Option<UrlRecord>, StoreError> {
        get(&self.urls, url)
    }

    pub fn image(&self, hash: &str) -> Result<Option<ImageRecord>, StoreError> {
        get(&self.images, hash)
    }

    pub fn is_member(&self, dataset: &str, hash: &str) -> Result<bool, StoreError> {
        match self.members_tree(dataset)? {
            Some(tree) => Ok(tree.contains_key(hash)?),
            None => Ok(false),
        }
    }

    /// `dataset`'s decision that `url` duplicates one of its members, if it made one.
    pub fn duplicate(
        &self,
        dataset: &str,
        url: &str,
    ) -> Result<Option<DuplicateRecord>, StoreError> {
        match self.existing(&format!("duplicates/{dataset}"))? {
            Some(tree) => get(&tree, url),
            None => Ok(None),
        }
    }

    pub fn put_duplicate(
        &self,
        dataset: &str,
        url: &str,
        record: &DuplicateRecord,
    ) -> Result<(), StoreError> {
        self.db.open_tree(format!("duplicates/{dataset}"))?.insert(url, encode(record))?;
        Ok(())
    }

    /// Every member of `dataset` with its image record, in hash order.
    pub fn members(&self, dataset: &str) -> Result<Vec<(String, Member, ImageRecord)>, StoreError> {
        let mut out = Vec::new();
        let Some(tree) = self.members_tree(dataset)? else { return Ok(out) };
        for entry in tree.iter() {
            let (key, value) = entry?;
            let hash = String::from_utf8_lossy(&key).into_owned();
            let member: Member = decode(&hash, &value)?;
            let image = self.image(&hash)?.ok_or_else(|| StoreError::Corrupt {
                key: format!("members/{dataset}/{hash}"),
                reason: "member without an image record".into(),
            })?;
            out.push((hash, member, image));
        }
        Ok(out)
    }

    pub fn member_count(&self, dataset: &str) -> Result<usize, StoreError> {
        Ok(self.members_tree(dataset)?.map_or(0, |tree| tree.len()))
    }

    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, StoreError> {
        get(&self.datasets, name)
    }

    /// Every dataset with a record, by name.
    pub fn datasets(&self) -> Result<Vec<(String, DatasetRecord)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.datasets.iter() {
            let (key, value) = entry?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let record = decode(&name, &value)?;
            out.push((name, record));
        }
        Ok(out)
    }

    pub fn put_dataset(&self, name: &str, record: &DatasetRecord) -> Result<(), StoreError> {
        self.datasets.insert(name, encode(record))?;
        Ok(())
    }

    pub fn put_url(&self, url: &str, outcome: UrlOutcome, at: u64) -> Result<(), StoreError> {
        self.urls.insert(url, encode(&UrlRecord { outcome, at }))?;
        Ok(())
    }

    /// Records `hash` as a member of `dataset` (and its image record, and the URL it came
    /// from) in one transaction: a crash leaves all three or none.
    pub fn add_member(
        &self,
        dataset: &str,
        hash: &str,
        image: &ImageRecord,
        member: &Member,
    ) -> Result<(), StoreError> {
        let members = self.db.open_tree(format!("members/{dataset}"))?;
        let url = UrlRecord {
            outcome: UrlOutcome::Accepted { image: hash.to_owned() },
            at: member.added_at,
        };
        let url_key = member.url.as_bytes();
        let (image, member, url) = (encode(image), encode(member), encode(&url));
        (&self.images, &members, &self.urls)
            .transaction(|(images, members, urls)| {
                images.insert(hash.as_bytes(), image.as_slice())?;
                members.insert(hash.as_bytes(), member.as_slice())?;
                urls.insert(url_key, url.as_slice())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Index(e),
                sled::transaction::TransactionError::Abort(()) => unreachable!("never aborted"),
            })
    }

    /// The record under `key` in `tree`, if any.
    pub fn record<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let Some(found) = self.existing(&tree.name())? else { return Ok(None) };
        found.get(key)?.map(|v| decode(&format!("{tree}/{key}"), &v)).transpose()
    }

    /// Writes the record under `key` in `tree`.
    pub fn put<T: Serialize>(&self, tree: &Tree, key: &str, value: &T) -> Result<(), StoreError> {
        self.db.open_tree(tree.name())?.insert(key, encode(value))?;
        Ok(())
    }

    /// Every record of `tree` with its key, each decoded on its own so one corrupt record
    /// does not hide the others.
    pub fn records<T: DeserializeOwned>(&self, tree: &Tree) -> Result<Records<T>, StoreError> {
        let mut out = Vec::new();
        let Some(found) = self.existing(&tree.name())? else { return Ok(out) };
        for entry in found.iter() {
            let (key, value) = entry?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let record = decode(&format!("{tree}/{key}"), &value);
            out.push((key, record));
        }
        Ok(out)
    }

    /// The datasets that have a members tree, by name.
    pub fn member_datasets(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .db
            .tree_names()
            .iter()
            .filter_map(|n| std::str::from_utf8(n).ok()?.strip_prefix("members/").map(String::from))
            .collect();
        names.sort();
        names
    }

    /// Deletes one record.
    pub fn remove(&self, tree: &Tree, key: &str) -> Result<(), StoreError> {
        if let Some(tree) = self.existing(&tree.name())? {
            tree.remove(key)?;
        }
        Ok(())
    }

    /// Writes everything to disk; called at the end of each command.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("index records serialize")
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() })
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, key: &str) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|v| decode(key, &v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_of_unknown_datasets_create_no_tree() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        assert!(!index.is_member("nope", "ab").unwrap());
        assert!(index.members("nope").unwrap().is_empty());
        assert_eq!(index.member_count("nope").unwrap(), 0);
        assert!(index.duplicate("nope", "http://x/").unwrap().is_none());
        assert!(index.records::<Member>(&Tree::Members("nope".into())).unwrap().is_empty());
        index.remove(&Tree::Members("nope".into()), "ab").unwrap();
        assert!(index.member_datasets().is_empty());
        let names = index.db.tree_names();
        assert!(
            names.iter().all(|n| !n.starts_with(b"members/") && !n.starts_with(b"duplicates/"))
        );
    }
}
