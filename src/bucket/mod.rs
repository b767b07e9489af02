//! Bucket stores: a dataset's shared truth in object storage (`--store s3://bucket/prefix`),
//! for fetching on many machines at once. The engines are existing ones: S3 (through the
//! `object_store` crate) for storage, Slurm, Kubernetes or Spark for running one worker per
//! shard; nothing here schedules, retries across machines or locks.
//!
//! ```text
//! PREFIX/
//!   plan/<dataset>/plan.json                 the shard plan (`shard-urls`)
//!   plan/<dataset>/part-NNNNN.txt            shard N's slice of the URL list, verbatim
//!   blobs/ab/<blake3>.<ext>                  image bytes, written only if absent
//!   shards/<dataset>/manifest-NNNNN-<attempt>.jsonl   what one try at shard N found
//!   shards/<dataset>/_done/NNNNN.json        shard N's stats and the attempt they commit,
//!                                            created last, once: its commit marker
//!   members/<dataset>.jsonl                  the members `merge` chose, best rank first
//!   members/<dataset>.json                   the merge's counts, written after the list
//!   labels/<dataset>/<merge>/part-N-of-K.jsonl    a labelling task's labels (`labeller`)
//!   builds/<dataset>/<version>/part-N-of-K.json   a building task's marker (`builder`)
//!   datasets/<dataset>/<version>/…, latest   builds, uploaded by `build` or its tasks
//! ```
//!
//! Blobs are content-addressed and created only if absent (`If-None-Match: *`), so two
//! workers storing the same image never clash and exact deduplication needs no
//! coordinator. A shard is done when its marker exists; a killed worker's shard has none
//! and is redone whole; `import --shard N --redo` removes a done shard's marker and does
//! it again (to retry its transient failures). Each machine keeps its own sled store as a cache (`mirror`): builds,
//! exports, training and reports run there, as on a folder store.
//!
//! Imports `fetch` (a shard runs the graph), `config`, `dataset`, `store`, `net`,
//! `photo`, `durable`, `printable`.

pub mod builder;
pub mod labeller;
mod manifest;
pub mod merge;
pub mod mirror;
pub mod plan;
pub mod scratch;
pub mod status;
pub mod task;
pub mod worker;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

use crate::store::config::BucketUrl;

/// The most bytes one object read from the bucket may have. Its contents are untrusted
/// (anyone who can write the bucket can write anything), so every read says how much it
/// takes, from a setting or from the counts read before it, and a refusal names both.
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    pub bytes: u64,
    /// Where the figure comes from, as a refusal says it.
    pub from: &'static str,
}

/// The most bytes a line of a manifest or member list may have: a URL, page, title and
/// credit take a few hundred.
const LINE_BYTES: u64 = 64 << 10;

impl Cap {
    /// A plan, a marker, a count or a pointer: small JSON or text.
    pub const SMALL: Cap = Cap { bytes: 16 << 20, from: "16 MiB for a plan, marker or count" };

    /// `bytes_each` for each of `items`, and one more: the items counted in an object
    /// read before (from the bucket too, so a huge count saturates rather than wraps).
    pub fn per(items: usize, bytes_each: u64, from: &'static str) -> Cap {
        Cap { bytes: bytes_each.saturating_mul((items as u64).saturating_add(1)), from }
    }

    /// A manifest or member list of at most `lines` lines.
    pub fn lines(lines: usize) -> Cap {
        Cap::per(lines, LINE_BYTES, "64 KiB a line for each URL or member its counts name")
    }
}

/// What went wrong talking to the bucket; each names the bucket and, where one is
/// involved, the object.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("{url}: not a bucket URL ({why}); expected s3://BUCKET[/PREFIX]")]
    Url { url: String, why: String },
    #[error(
        "{url}: access denied ({detail}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
         (and AWS_ENDPOINT for a server other than AWS)"
    )]
    Denied { url: String, detail: String },
    #[error("{url}: the bucket does not exist (create it with your S3 server's own tools)")]
    NoBucket { url: String },
    #[error("{url}/{key}: {source}")]
    Object { url: String, key: String, source: object_store::Error },
    #[error("{url}/{key}: {message}")]
    Corrupt { url: String, key: String, message: String },
}

/// What kind of bucket-store failure an error is, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketProblem {
    /// The keys were refused.
    Denied,
    /// Retrying cannot help: a bad URL, no such bucket, no plan or shard.
    Config,
    /// `merge` before every shard is done, `build --shard` before every member is labelled.
    Pending,
}

/// The bucket-store problem `error` is, if it is one (whatever command wrapped it).
pub fn problem(error: &(dyn std::error::Error + 'static)) -> Option<BucketProblem> {
    use plan::PlanError;
    let of_bucket = |e: &BucketError| match e {
        BucketError::Denied { .. } => Some(BucketProblem::Denied),
        BucketError::Url { .. } | BucketError::NoBucket { .. } => Some(BucketProblem::Config),
        BucketError::Object { .. } | BucketError::Corrupt { .. } => None,
    };
    let of_plan = |e: &PlanError| match e {
        PlanError::Bucket(e) => of_bucket(e),
        _ => Some(BucketProblem::Config),
    };
    if let Some(e) = error.downcast_ref::<BucketError>() {
        return of_bucket(e);
    }
    if let Some(e) = error.downcast_ref::<PlanError>() {
        return of_plan(e);
    }
    if let Some(e) = error.downcast_ref::<worker::WorkerError>() {
        return match e {
            worker::WorkerError::Plan(e) => of_plan(e),
            worker::WorkerError::Bucket(e) => of_bucket(e),
            _ => None,
        };
    }
    if let Some(e) = error.downcast_ref::<merge::MergeError>() {
        return match e {
            merge::MergeError::Plan(e) => of_plan(e),
            merge::MergeError::Bucket(e) => of_bucket(e),
            merge::MergeError::Pending { .. } => Some(BucketProblem::Pending),
        };
    }
    let of_mirror = |e: &mirror::MirrorError| match e {
        mirror::MirrorError::Bucket(e) => of_bucket(e),
        mirror::MirrorError::NotMerged { .. } => Some(BucketProblem::Config),
        _ => None,
    };
    if let Some(e) = error.downcast_ref::<task::TaskError>() {
        use task::TaskError;
        return match e {
            TaskError::Plan(e) => of_plan(e),
            TaskError::Bucket(e) => of_bucket(e),
            TaskError::Mirror(e) => of_mirror(e),
            TaskError::NoCount | TaskError::BadCount { .. } | TaskError::OutOfRange { .. } => {
                Some(BucketProblem::Config)
            }
            TaskError::Unlabelled { .. } => Some(BucketProblem::Pending),
            TaskError::Scratch { .. } | TaskError::Build(_) => None,
        };
    }
    error.downcast_ref::<mirror::MirrorError>().and_then(of_mirror)
}

/// Whether a create-only write made the object or found it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existed,
}

/// An object store with the prefix every key of this store lives under.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: Key,
    /// `s3://bucket/prefix`, for messages.
    url: String,
}

impl Bucket {
    /// The bucket `url` names (`s3://bucket[/prefix]`), configured from the usual AWS
    /// environment variables (AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, …). Checks
    /// that the bucket exists and the keys are accepted before anything else happens.
    pub async fn open(url: &str) -> Result<Bucket, BucketError> {
        let bad = |why: String| BucketError::Url { url: url.to_owned(), why };
        let parsed = BucketUrl::parse(url).map_err(bad)?;
        crate::net::install_tls();
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(&parsed.bucket)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let prefix = Key::from_iter(parsed.prefix.iter().map(String::as_str));
        let store = Bucket::over(Arc::new(s3), prefix, url.trim_end_matches('/'));
        store.check().await?;
        Ok(store)
    }

    /// A bucket over any object store (tests use the in-memory one).
    pub fn over(store: Arc<dyn ObjectStore>, prefix: Key, url: &str) -> Bucket {
        Bucket { store, prefix, url: url.to_owned() }
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One list request: fails at once on a wrong key or a missing bucket.
    async fn check(&self) -> Result<(), BucketError> {
        self.store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map(|_| ())
            .map_err(|e| self.error("", e))
    }

    fn key(&self, key: &str) -> Key {
        key.split('/').fold(self.prefix.clone(), |k, part| k.clone().join(part))
    }

    fn error(&self, key: &str, source: object_store::Error) -> BucketError {
        let url = self.url.clone();
        // S3 list errors arrive as `Generic`, the status and S3's code only in their text.
        let text = source.to_string();
        let denied = matches!(
            source,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || ["status code: 401", "status code: 403"].iter().any(|s| text.contains(s));
        if denied {
            let code = ["SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"]
                .into_iter()
                .find(|code| text.contains(code))
                .unwrap_or("403");
            return BucketError::Denied { url, detail: code.to_owned() };
        }
        if text.contains("NoSuchBucket") {
            return BucketError::NoBucket { url };
        }
        BucketError::Object { url, key: key.to_owned(), source }
    }

    /// Writes `key` unless it exists; never replaces what another writer stored.
    pub async fn create(&self, key: &str, bytes: Bytes) -> Result<Created, BucketError> {
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.store.put_opts(&self.key(key), PutPayload::from(bytes), options).await {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Existed),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Writes `key`, replacing it (one object: readers see the old or the new bytes whole).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BucketError> {
        self.store
            .put(&self.key(key), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.error(key, e))
    }

    /// A writer of `key` that streams: past 10 MB it goes up as a multipart upload, and
    /// `shutdown` completes it (readers see the object only then, whole).
    pub fn writer(&self, key: &str) -> object_store::buffered::BufWriter {
        object_store::buffered::BufWriter::new(self.store.clone(), self.key(key))
    }

    /// Removes `key` (nothing happens when there is none).
    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        match self.store.delete(&self.key(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// The bytes of `key`, refused unasked when there are more than `cap` allows (whatever
    /// the object's listed size says), or `None` when there is no such object.
    pub async fn get(&self, key: &str, cap: Cap) -> Result<Option<Bytes>, BucketError> {
        let result = match self.store.get(&self.key(key)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(key, e)),
        };
        let too_big = |size: u64| {
            let Cap { bytes, from } = cap;
            self.corrupt(key, format!("{size} bytes or more, over its cap of {bytes} ({from})"))
        };
        if result.meta.size > cap.bytes {
            return Err(too_big(result.meta.size));
        }
        // What the server says it will send, up to a first 64 MiB: the rest as it comes.
        let mut body = Vec::with_capacity(result.meta.size.min(64 << 20) as usize);
        let mut chunks = result.into_stream();
        while let Some(chunk) = chunks.try_next().await.map_err(|e| self.error(key, e))? {
            if (body.len() + chunk.len()) as u64 > cap.bytes {
                return Err(too_big((body.len() + chunk.len()) as u64));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Bytes::from(body)))
    }

    /// The JSON object at `key`, or `None` when there is none.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, BucketError> {
        let Some(bytes) = self.get(key, Cap::SMALL).await? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| self.corrupt(key, e.to_string()))
    }

    /// The keys under `folder` (relative to the store's prefix), sorted.
    pub async fn list(&self, folder: &str) -> Result<Vec<String>, BucketError> {
        let under = self.key(folder);
        let prefix_len = self.prefix.as_ref().len() + usize::from(!self.prefix.as_ref().is_empty());
        let mut keys: Vec<String> = self
            .store
            .list(Some(&under))
            .map_ok(|meta| meta.location.as_ref()[prefix_len..].to_owned())
            .try_collect()
            .await
            .map_err(|e| self.error(folder, e))?;
        keys.sort_unstable();
        Ok(keys)
    }

    pub fn corrupt(&self, key: &str, message: String) -> BucketError {
        BucketError::Corrupt { url: self.url.clone(), key: key.to_owned(), message }
    }

    /// The dataset names that keys `FOLDER/<name>SUFFIX` give, and the keys of that form
    /// whose name is no dataset name (anyone who can write the bucket can list anything),
    /// left out.
    pub async fn datasets(
        &self,
        folder: &str,
        suffix: &str,
    ) -> Result<(Vec<String>, Vec<String>), BucketError> {
        let (mut names, mut left_out) = (Vec::new(), Vec::new());
        for key in self.list(folder).await? {
            let Some(name) = key.strip_prefix(folder).and_then(|k| k.strip_prefix('/')) else {
                continue;
            };
            let Some(name) = name.strip_suffix(suffix) else { continue };
            match crate::dataset::check_name(name) {
                Ok(()) => names.push(name.to_owned()),
                Err(allowed) => {
                    left_out.push(format!("{key}: left out, not a dataset name ({allowed})"))
                }
            }
        }
        Ok((names, left_out))
    }
}

/// The object key of a blob: `blobs/ab/<hash>.<ext>`, as in a folder store.
pub fn blob_key(hash: &str, ext: &str) -> String {
    format!("blobs/{}/{hash}.{ext}", crate::store::blob_folder(hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    pub fn memory() -> Bucket {
        Bucket::over(Arc::new(InMemory::new()), Key::from("data/bears"), "memory://data/bears")
    }

    #[tokio::test]
    async fn a_second_create_finds_the_first_and_keeps_its_bytes() {
        let bucket = memory();
        assert_eq!(
            bucket.create("blobs/ab/x.jpg", Bytes::from("one")).await.unwrap(),
            Created::New
        );
        assert_eq!(
            bucket.create("blobs/ab/x.jpg", Bytes::from("two")).await.unwrap(),
            Created::Existed
        );
        assert_eq!(bucket.get("blobs/ab/x.jpg", Cap::SMALL).await.unwrap().unwrap(), "one");
        assert_eq!(bucket.list("blobs").await.unwrap(), ["blobs/ab/x.jpg"]);
        assert_eq!(bucket.get("blobs/ab/y.jpg", Cap::SMALL).await.unwrap(), None);
    }

    /// Counts come from the bucket too: a huge one saturates, it does not wrap around.
    #[test]
    fn a_cap_from_a_hostile_count_saturates() {
        assert_eq!(Cap::lines(usize::MAX).bytes, u64::MAX);
        assert_eq!(Cap::lines(2).bytes, 3 * 64 * 1024);
    }

    #[tokio::test]
    async fn a_read_past_its_cap_is_refused_naming_the_object_and_the_cap() {
        let bucket = memory();
        bucket.put("members/bears.jsonl", Bytes::from(vec![b' '; 4097])).await.unwrap();
        let cap = Cap { bytes: 4096, from: "a test's cap" };
        let refused = bucket.get("members/bears.jsonl", cap).await.unwrap_err().to_string();
        assert!(refused.contains("members/bears.jsonl"), "{refused}");
        assert!(refused.contains("4097 bytes or more, over its cap of 4096 (a test's cap)"));
        let cap = Cap { bytes: 4097, ..cap };
        assert_eq!(bucket.get("members/bears.jsonl", cap).await.unwrap().unwrap().len(), 4097);
    }

    #[tokio::test]
    async fn the_local_file_store_creates_only_if_absent_too() {
        let dir = tempfile::tempdir().unwrap();
        let files = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let bucket = Bucket::over(Arc::new(files), Key::from("p"), "file://p");
        assert_eq!(bucket.create("a/b.json", Bytes::from("1")).await.unwrap(), Created::New);
        assert_eq!(bucket.create("a/b.json", Bytes::from("2")).await.unwrap(), Created::Existed);
        assert_eq!(bucket.get("a/b.json", Cap::SMALL).await.unwrap().unwrap(), "1");
    }
}
