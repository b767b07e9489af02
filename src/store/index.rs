//! The sled index: small records only, image bytes live in `blobs/`.
//!
//! Trees:
//! - `urls`: URL -> [`UrlRecord`] (accepted, duplicate or failed, and when);
//! - `images`: blake3 hex -> [`ImageRecord`] (format, size, perceptual hash);
//! - `datasets`: name -> [`DatasetRecord`] (query, duplicate and failure counters, last fetch);
//! - `members/<dataset>`: blake3 hex -> [`Member`] (rank, source, query, URL, time).
//!
//! This is the only module that touches sled, so another engine could replace it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sled::Transactional;

use super::StoreError;
use crate::validate::PerceptualHash;

/// What became of a URL the last time it was downloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum UrlOutcome {
    /// Its bytes are the stored image `image`.
    Accepted { image: String },
    /// Its bytes duplicated (exactly or nearly) the stored image `of`; not stored.
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

    fn members_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("members/{dataset}"))?)
    }

    pub fn url(&self, url: &str) -> Result<Option<UrlRecord>, StoreError> {
        get(&self.urls, url)
    }

    pub fn image(&self, hash: &str) -> Result<Option<ImageRecord>, StoreError> {
        get(&self.images, hash)
    }

    pub fn is_member(&self, dataset: &str, hash: &str) -> Result<bool, StoreError> {
        Ok(self.members_tree(dataset)?.contains_key(hash)?)
    }

    /// Every member of `dataset` with its image record, in hash order.
    pub fn members(&self, dataset: &str) -> Result<Vec<(String, Member, ImageRecord)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.members_tree(dataset)?.iter() {
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
        Ok(self.members_tree(dataset)?.len())
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
        let members = self.members_tree(dataset)?;
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

    /// Every record of `tree` ("urls", "images", "datasets" or "members/NAME") with its key,
    /// each decoded on its own so one corrupt record does not hide the others.
    pub fn records<T: DeserializeOwned>(&self, tree: &str) -> Result<Records<T>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.open_tree(tree)?.iter() {
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

    /// Deletes one record (see [`Index::records`] for the tree names).
    pub fn remove(&self, tree: &str, key: &str) -> Result<(), StoreError> {
        self.db.open_tree(tree)?.remove(key)?;
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
