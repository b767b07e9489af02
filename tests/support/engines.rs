//! Real engines on 127.0.0.1, started per test by `scripts/cluster` from what
//! `scripts/engines` unpacked: SeaweedFS (S3) and a one-node Slurm cluster. Stopped (by
//! pid) when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;

/// A running engine: its folder and the variables a client needs.
pub struct Engine {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster")
}

impl Engine {
    /// `scripts/cluster KIND DIR`: waits until the engine is ready.
    fn start(kind: &str) -> Engine {
        let dir = tempfile::tempdir().expect("temp dir");
        let out =
            Command::new(script()).args([kind, dir.path().to_str().unwrap()]).output().unwrap();
        assert!(
            out.status.success(),
            "scripts/cluster {kind} (did scripts/engines run?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
        let vars = env
            .lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| {
                let path = std::env::var("PATH").unwrap_or_default();
                (k.to_owned(), v.replace("$PATH", &path))
            })
            .collect();
        Engine { dir, vars }
    }

    /// SeaweedFS with the buckets `test` and `bench`.
    pub fn s3() -> Engine {
        Engine::start("s3")
    }

    /// A one-node Slurm cluster.
    pub fn slurm() -> Engine {
        Engine::start("slurm")
    }

    pub fn vars(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }

    pub fn var(&self, name: &str) -> String {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap()
    }

    /// A client of bucket `bucket` of this S3 server, for checking what it holds.
    pub fn bucket(&self, bucket: &str) -> Arc<dyn object_store::ObjectStore> {
        pipeline::net::install_tls();
        let s3 = AmazonS3Builder::new()
            .with_endpoint(self.var("AWS_ENDPOINT"))
            .with_allow_http(true)
            .with_access_key_id("KEY")
            .with_secret_access_key("SECRET")
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .build()
            .unwrap();
        Arc::new(s3)
    }

    /// The keys under `prefix` in `bucket`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let store = self.bucket(bucket);
        let prefix = object_store::path::Path::from(prefix);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut keys: Vec<String> = rt
            .block_on(store.list(Some(&prefix)).map_ok(|m| m.location.to_string()).try_collect())
            .unwrap();
        keys.sort();
        keys
    }

    /// Writes (or replaces) the object `key` of `bucket`: what a hostile writer can do.
    /// `key` is taken as it is, percent escapes included.
    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStoreExt;
        let store = self.bucket(bucket);
        let key = object_store::path::Path::parse(key).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(store.put(&key, bytes.into())).unwrap();
    }

    /// When the object `key` of `bucket` was last written.
    pub fn modified(&self, bucket: &str, key: &str) -> String {
        use object_store::ObjectStoreExt;
        let store = self.bucket(bucket);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { store.head(&key.into()).await.unwrap().last_modified.to_rfc3339() })
    }

    /// The object `key` of `bucket`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        let store = self.bucket(bucket);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { store.get(&key.into()).await.unwrap().bytes().await.unwrap().to_vec() })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["stop", self.dir.path().to_str().unwrap()]).status();
    }
}
