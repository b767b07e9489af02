//! A bucket's contents are untrusted input (issue 20): anyone who can write the bucket
//! (every worker can) must not be able to make `build` write outside its cache, crash it,
//! or slip other bytes behind a member's hash. Real SeaweedFS per test; the hostile
//! objects are written straight into it, as such a writer would.

use std::time::Duration;

use crate::bucket::{Planned, config, corpus};
use crate::support::bears;

/// A workspace whose bucket `s3://test/PREFIX` holds one done shard of the corpus and its
/// merge: the member list a hostile writer then edits. Runs as [`Planned`] does.
pub struct Merged {
    planned: Planned,
    prefix: &'static str,
    _corpus: crate::bucket::Corpus,
}

impl std::ops::Deref for Merged {
    type Target = Planned;

    fn deref(&self) -> &Planned {
        &self.planned
    }
}

impl Merged {
    pub fn new(prefix: &'static str) -> Merged {
        let corpus = corpus(Duration::ZERO);
        let planned = Planned::new(&corpus, &config(&corpus.server), prefix, "1");
        planned.run(&["import", "--dataset", "bears", "--shard", "0"]).expect_code(0);
        planned.run(&["merge", "--dataset", "bears"]).expect_code(0);
        Merged { planned, prefix, _corpus: corpus }
    }

    pub fn key(&self, rel: &str) -> String {
        format!("{}/{rel}", self.prefix)
    }

    /// The merged member lines, parsed.
    pub fn members(&self) -> Vec<serde_json::Value> {
        let bytes = self.s3.get("test", &self.key("members/bears.jsonl"));
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    pub fn put_members(&self, lines: &[serde_json::Value]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.s3.put("test", &self.key("members/bears.jsonl"), text.into_bytes());
    }

    /// Adds a member with hash `hash` and extension `ext` (the rest copied from the first)
    /// and stores `bytes` under `blob_key`, a raw key (percent escapes as the server sees
    /// them).
    fn plant(&self, hash: &str, ext: &str, blob_key: &str, bytes: Vec<u8>) {
        let mut lines = self.members();
        let mut line = lines[0].clone();
        line["hash"] = hash.into();
        line["image"]["ext"] = ext.into();
        line["member"]["rank"] = 1000.into();
        lines.push(line);
        self.put_members(&lines);
        self.s3.put("test", &self.key(blob_key), bytes);
    }

    /// Every file in the workspace outside the bucket's cache (`cache/`).
    fn files_outside_cache(&self) -> Vec<String> {
        walkdir::WalkDir::new(self.ws.dir.path())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(self.ws.dir.path()).unwrap().display().to_string())
            .filter(|rel| !rel.starts_with("cache/"))
            .collect()
    }
}

fn bear_bytes(n: usize) -> Vec<u8> {
    std::fs::read(&bears(n..n + 1)[0]).unwrap()
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Findings 1 and 2: ids that are paths. `build` refuses the member, naming the key and
/// line; nothing lands outside the cache, nor outside `export`'s and `report`'s folders.
#[test]
fn a_member_id_that_is_a_path_is_refused_and_nothing_is_written_outside_the_cache() {
    let bucket = Merged::new("paths");
    let before = bucket.files_outside_cache();
    // `blobs/../../planted.jpg` as the bucket client escapes it: `..` parts become %2E%2E.
    bucket.plant("../planted", "jpg", "blobs/%2E%2E/%2E%2E/planted.jpg", bear_bytes(11));
    let refused = bucket.run(&["build"]).expect_code(1);
    assert!(refused.stderr.contains("members/bears.jsonl"), "{}", refused.stderr);
    assert!(refused.stderr.contains("line 11"), "{}", refused.stderr);
    assert!(refused.stderr.contains("\"../planted\" is not a blake3 hash"), "{}", refused.stderr);
    assert_eq!(bucket.files_outside_cache(), before, "nothing planted outside the cache");

    // An extension that is a path, and a hash that is not even ASCII (a panic before).
    let mut lines = bucket.members();
    lines.pop();
    let good = lines.clone();
    let mut line = lines[0].clone();
    line["image"]["ext"] = "jpg/../../../x".into();
    lines.push(line);
    bucket.put_members(&lines);
    let refused = bucket.run(&["build"]).expect_code(1);
    assert!(
        refused.stderr.contains("\"jpg/../../../x\" is not an image format"),
        "{}",
        refused.stderr
    );
    lines.pop();
    let mut line = lines[0].clone();
    line["hash"] = "€".repeat(30).into();
    lines.push(line);
    bucket.put_members(&lines);
    let refused = bucket.run(&["build"]).expect_code(1);
    assert!(refused.stderr.contains("is not a blake3 hash"), "{}", refused.stderr);

    // With the list whole again, the build goes on; export and report stay in their folders.
    bucket.put_members(&good);
    bucket.run(&["build"]).expect_code(0);
    bucket.run(&["export", "bears", "--format", "pix2pix", "--out", "out"]).expect_code(0);
    bucket.run(&["report", "--out", "site"]).expect_code(0);
    let outside: Vec<String> = bucket
        .files_outside_cache()
        .into_iter()
        .filter(|f| !f.starts_with("out/") && !f.starts_with("site/"))
        .collect();
    assert_eq!(outside, before);

    // The bucket's `latest` is shown by `status`: it must be a build version.
    bucket.s3.put("test", &bucket.key("datasets/bears/latest"), b"\x1b]0;owned\x07\n".to_vec());
    let status = bucket.run(&["status"]).expect_code(1);
    assert!(status.stderr.contains("datasets/bears/latest"), "{}", status.stderr);
    assert!(!status.stderr.contains('\x1b'), "{:?}", status.stderr);
}

/// Finding 1, the other half: bytes are checked against the hash they are stored under,
/// and a refused pull loses nothing the cache held.
#[test]
fn bytes_that_do_not_hash_to_their_name_are_refused_and_the_cache_keeps_its_build() {
    let bucket = Merged::new("swapped");
    let built = bucket.run(&["build"]).expect_code(0);
    assert!(built.stdout.contains("bears: built "), "{}", built.stdout);
    let status = bucket.ws.run(&["status", "--json", "--store", "cache"]).expect_code(0).json();
    let version = status["datasets"][0]["build"]["version"].as_str().unwrap().to_owned();

    // A member whose name is the hash of one photo, stored with another photo's bytes.
    let named = blake3_hex(&bear_bytes(11));
    let key = format!("blobs/{}/{named}.jpg", &named[..2]);
    bucket.plant(&named, "jpg", &key, bear_bytes(12));
    let refused = bucket.run(&["build"]).expect_code(1);
    assert!(refused.stderr.contains(&key), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("its bytes hash to {}", blake3_hex(&bear_bytes(12)))),
        "{}",
        refused.stderr
    );
    let status = bucket.ws.run(&["status", "--json", "--store", "cache"]).expect_code(0).json();
    assert_eq!(status["datasets"][0]["images"], 10, "the cache's members are unchanged");
    assert_eq!(status["datasets"][0]["build"]["version"], version.as_str());
}

/// Finding 4: pulled blobs pass the same checks and caps as a download.
#[test]
fn pulled_blobs_get_the_checks_and_caps_of_a_download() {
    let bucket = Merged::new("caps");
    let good = bucket.members();

    // Not an image, though its name is its hash.
    let text = b"<html>not an image</html>".to_vec();
    let named = blake3_hex(&text);
    bucket.plant(&named, "jpg", &format!("blobs/{}/{named}.jpg", &named[..2]), text);
    let refused = bucket.run(&["build"]).expect_code(1);
    assert!(refused.stderr.contains(&named), "{}", refused.stderr);
    assert!(refused.stderr.contains("an HTML page, not an image"), "{}", refused.stderr);
    let blob = bucket.ws.path(&format!("cache/blobs/{}/{named}.jpg", &named[..2]));
    assert!(!blob.exists(), "a refused blob is not cached");

    // A PNG named .jpg: the format comes from the bytes.
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(200, 200, image::Rgb([90, 60, 30]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    let named = blake3_hex(&png);
    bucket.put_members(&good);
    bucket.plant(&named, "jpg", &format!("blobs/{}/{named}.jpg", &named[..2]), png);
    let refused = bucket.run(&["build"]).expect_code(1);
    assert!(refused.stderr.contains("its bytes are png, not jpg"), "{}", refused.stderr);

    // The config's caps: bytes and pixels (the config is trusted; these are tight ones).
    bucket.put_members(&good);
    let config = std::fs::read_to_string(bucket.ws.path("pipeline.toml")).unwrap();
    let tight = config.replace("[network]\n", "[network]\nmax_bytes = 4096\n");
    std::fs::write(bucket.ws.path("tight.toml"), tight).unwrap();
    let refused = bucket.run(&["build", "--config", "tight.toml"]).expect_code(1);
    assert!(
        refused.stderr.contains("over its cap of 4096 (network.max_bytes)"),
        "{}",
        refused.stderr
    );
    let few = config.replace("[build]\n", "[images]\nmin_side = 16\nmax_pixels = 10000\n[build]\n");
    std::fs::write(bucket.ws.path("few.toml"), few).unwrap();
    let refused = bucket.run(&["build", "--config", "few.toml"]).expect_code(1);
    assert!(refused.stderr.contains("more pixels than images.max_pixels"), "{}", refused.stderr);
}

/// Finding 3: dataset names found by listing the bucket pass the one name check.
#[test]
fn a_listed_dataset_that_is_no_dataset_name_is_left_out_with_a_warning() {
    let bucket = Merged::new("names");
    let counts = bucket.s3.get("test", &bucket.key("members/bears.json"));
    let list = bucket.s3.get("test", &bucket.key("members/bears.jsonl"));
    bucket.s3.put("test", &bucket.key("members/...json"), counts.clone());
    bucket.s3.put("test", &bucket.key("members/...jsonl"), list.clone());
    bucket.s3.put("test", &bucket.key("members/a/b.json"), counts);
    bucket.s3.put("test", &bucket.key("members/a/b.jsonl"), list);
    let built = bucket.run(&["build"]).expect_code(0);
    assert!(built.stdout.contains("bears: built "), "{}", built.stdout);
    assert!(built.stderr.contains("members/...json: left out"), "{}", built.stderr);
    assert!(built.stderr.contains("members/a/b.json: left out"), "{}", built.stderr);
    let cache = bucket.ws.path("cache");
    assert!(!cache.join("datasets/..").join("manifest.json").exists());
    let datasets: Vec<_> = std::fs::read_dir(cache.join("datasets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(datasets, ["bears"]);
}

/// A build job array's part markers are read back as untrusted: one whose members are
/// not those its shards should hold is refused, naming its key, and nothing is committed.
#[test]
fn a_forged_part_of_a_build_array_is_refused_and_nothing_is_committed() {
    let merged = Merged::new("forged");
    merged.run(&["label", "--shard", "0", "--shards", "1"]).expect_code(0);
    let part = merged.run(&["build", "--shard", "0", "--shards", "2", "--json"]);
    let part = part.expect_code(0).json();
    assert_eq!(
        (part["status"].as_str(), part["committed"].as_bool()),
        (Some("built"), Some(false))
    );
    let version = part["version"].as_str().unwrap();
    let marker = |n: usize| format!("builds/bears/{version}/part-{n:05}-of-00002.json");
    let forged = merged.s3.get("test", &merged.key(&marker(0)));
    merged.s3.put("test", &merged.key(&marker(1)), forged);

    let refused = merged.run(&["build", "--shard", "0", "--shards", "2"]).expect_code(1);
    let why = format!("{}: its members are not the ones its shards should hold", marker(1));
    assert!(refused.stderr.contains(&why), "{}", refused.stderr);
    let published = merged.s3.keys("test", &merged.key("datasets"));
    assert!(!published.iter().any(|k| k.ends_with("manifest.json") || k.ends_with("latest")));
}

/// A bucket's build is untrusted when a machine that did not build it reads it: a
/// manifest naming a path as a shard file, or a shard file whose bytes are not the
/// manifest's, is refused naming the key, and nothing lands outside the cache.
#[test]
fn a_pulled_build_names_only_shard_files_and_their_bytes_must_hash() {
    let merged = Merged::new("pulled");
    merged.run(&["build"]).expect_code(0);
    let version = String::from_utf8(merged.s3.get("test", &merged.key("datasets/bears/latest")));
    let version = version.unwrap().trim().to_owned();
    let manifest_key = merged.key(&format!("datasets/bears/{version}/manifest.json"));
    let honest = merged.s3.get("test", &manifest_key);
    let mut manifest: serde_json::Value = serde_json::from_slice(&honest).unwrap();
    let file = manifest["shards"][0]["file"].as_str().unwrap().to_owned();
    let export = ["export", "bears", "--format", "pix2pix", "--out", "out"];

    manifest["shards"][0]["file"] = "../../planted.safetensors".into();
    merged.s3.put("test", &manifest_key, serde_json::to_vec(&manifest).unwrap());
    std::fs::remove_dir_all(merged.ws.path("cache")).unwrap();
    let refused = merged.run(&export).expect_code(1);
    assert!(
        refused
            .stderr
            .contains("shard file \"../../planted.safetensors\" is not a shard file's name"),
        "{}",
        refused.stderr
    );

    merged.s3.put("test", &manifest_key, honest);
    let shard_key = merged.key(&format!("datasets/bears/{version}/{file}"));
    let mut bytes = merged.s3.get("test", &shard_key);
    *bytes.last_mut().unwrap() ^= 1;
    merged.s3.put("test", &shard_key, bytes);
    let refused = merged.run(&export).expect_code(1);
    assert!(refused.stderr.contains(&format!("{file}: its bytes hash to ")), "{}", refused.stderr);
    assert!(merged.files_outside_cache().iter().all(|f| !f.contains("planted")));
    assert!(!merged.ws.path("out").exists(), "nothing exported");
}

/// Every object read from a bucket has a cap: a shard's manifest may hold 64 KiB a line
/// for each URL of its part of the plan, a member list as much for each member its counts
/// name. One padded past its cap is refused, naming its key, before it is read whole; put
/// back, it merges and builds.
#[test]
fn a_manifest_or_member_list_past_its_cap_is_refused_naming_its_key() {
    let merged = Merged::new("oversized");
    // Blank lines, which a reader skips: only the size is wrong.
    let padded = |honest: &[u8], lines: usize| {
        let mut bytes = honest.to_vec();
        bytes.extend(format!("{}\n", " ".repeat(65 << 10)).repeat(lines).bytes());
        bytes
    };
    let mut manifests = merged.s3.keys("test", &merged.key("shards/bears"));
    manifests.retain(|key| key.contains("/manifest-00000-"));
    let [manifest_key] = manifests.as_slice() else { panic!("one manifest: {manifests:?}") };
    let honest = merged.s3.get("test", manifest_key);
    let urls = String::from_utf8_lossy(&honest).lines().count();
    merged.s3.put("test", manifest_key, padded(&honest, urls + 2));
    let refused = merged.run(&["merge", "--dataset", "bears"]).expect_code(1);
    let shown = manifest_key.strip_prefix("oversized/").unwrap();
    assert!(refused.stderr.contains(shown), "{}", refused.stderr);
    assert!(refused.stderr.contains("over its cap"), "{}", refused.stderr);
    merged.s3.put("test", manifest_key, honest);
    merged.run(&["merge", "--dataset", "bears"]).expect_code(0);

    let members = merged.members();
    let honest = merged.s3.get("test", &merged.key("members/bears.jsonl"));
    merged.s3.put("test", &merged.key("members/bears.jsonl"), padded(&honest, members.len() + 2));
    let refused = merged.run(&["build"]).expect_code(1);
    assert!(refused.stderr.contains("members/bears.jsonl"), "{}", refused.stderr);
    assert!(refused.stderr.contains("over its cap"), "{}", refused.stderr);
    merged.put_members(&members);
    merged.run(&["build"]).expect_code(0);
}
