//! `pipeline verify [--repair]` and `pipeline gc` on a real store: damage is found and
//! named, repair loses nothing intact, the next import heals what was lost, gc frees only
//! what nothing uses.

use std::path::PathBuf;

use pipeline::dataset::Built;

use crate::support::{Workspace, bears, folder};

fn problems(report: &serde_json::Value) -> Vec<String> {
    let mut kinds: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["problem"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

/// The blob file of every member of `dataset`, in hash order.
fn member_blobs(ws: &Workspace, dataset: &str) -> Vec<PathBuf> {
    let store = pipeline::store::Store::open(&ws.store()).unwrap();
    let members = store.index.members(dataset).unwrap();
    members.iter().map(|(hash, _, image)| store.blobs.path(hash, &image.ext)).collect()
}

#[test]
fn verify_names_damage_and_repair_keeps_everything_intact() {
    let ws = Workspace::new("[build]\nsize = 32\nshard_size = 4\n");
    folder(&ws, "photos", &bears(0..8));
    ws.run(&["import", "photos", "--dataset", "d"]).expect_code(0);
    ws.run(&["build", "d"]).expect_code(0);
    let report = ws.run(&["verify", "--json"]).expect_code(0).json();
    assert_eq!((report["images"].as_u64(), report["members"].as_u64()), (Some(8), Some(8)));
    assert_eq!(report["builds"], 1);
    assert!(problems(&report).is_empty());

    // Damage: a blob cut short, a blob deleted, a shard byte flipped, an undecodable URL
    // record; plus the harmless: a stray blob file and a killed build's partial folder.
    let blobs = member_blobs(&ws, "d");
    let bytes = std::fs::read(&blobs[0]).unwrap();
    std::fs::write(&blobs[0], &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(&blobs[1]).unwrap();
    let built = Built::latest(&ws.store(), "d").unwrap();
    let shard = built.dir.join(&built.manifest.shards[0].file);
    let mut shard_bytes = std::fs::read(&shard).unwrap();
    let last = shard_bytes.len() - 1;
    shard_bytes[last] ^= 0xFF;
    std::fs::write(&shard, shard_bytes).unwrap();
    {
        let db = sled::open(ws.store().join("index")).unwrap();
        db.open_tree("urls")
            .unwrap()
            .insert("http://example.com/x.jpg", &b"{not json"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let stray = ws.store().join("blobs/00").join(format!("{}.jpg", "0".repeat(64)));
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"left by a crash").unwrap();
    std::fs::create_dir_all(ws.store().join("datasets/d/.partial-abc-1")).unwrap();

    let run = ws.run(&["verify"]).expect_code(65);
    let damaged = blobs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(run.stdout.contains(&format!("{damaged} is damaged")), "{}", run.stdout);
    assert!(
        run.stdout.contains("1 unreferenced blobs, 1 leftover partial folders"),
        "{}",
        run.stdout
    );
    let report = ws.run(&["verify", "--json"]).expect_code(65).json();
    assert_eq!(problems(&report), ["bad-record", "broken-build", "damaged-blob", "missing-blob"]);

    // Repair: the damaged bytes are kept aside, the six intact images stay, the broken
    // build and `latest` go (build remakes them).
    let report = ws.run(&["verify", "--repair", "--json"]).expect_code(0).json();
    assert_eq!(report["repaired"], true);
    let quarantined = ws.store().join("quarantine").join(blobs[0].file_name().unwrap());
    assert_eq!(std::fs::read(quarantined).unwrap(), bytes[..bytes.len() / 2]);
    assert!(Built::latest(&ws.store(), "d").is_err(), "the broken build is gone");
    let report = ws.run(&["verify", "--json"]).expect_code(0).json();
    assert!(problems(&report).is_empty(), "{report}");
    assert_eq!(report["members"], 6);
    assert_eq!(report["leftovers"], serde_json::json!([]));

    // The two lost images were forgotten with their URLs: the next import fetches them again.
    let again = ws.run(&["import", "photos", "--dataset", "d", "--json"]).expect_code(0).json();
    assert_eq!((again["added"].as_u64(), again["images"].as_u64()), (Some(2), Some(8)));
    ws.run(&["build", "d"]).expect_code(0);
    assert_eq!(Built::latest(&ws.store(), "d").unwrap().manifest.members.len(), 8);
    assert!(problems(&ws.run(&["verify", "--json"]).expect_code(0).json()).is_empty());

    // gc removes the stray blob, and nothing a member needs.
    let freed = ws.run(&["gc", "--json"]).expect_code(0).json();
    assert_eq!(freed["blobs"], 1);
    assert!(!stray.exists());
    assert_eq!(ws.blobs().len(), 8);
}

#[test]
fn gc_keeps_latest_and_trained_builds_and_removes_the_rest() {
    let ws = Workspace::new("[build]\nsize = 32\n");
    let all = bears(0..6);
    let mut versions = Vec::new();
    for n in [2, 4, 6] {
        folder(&ws, "photos", &all[..n]);
        ws.run(&["import", "photos", "--dataset", "d"]).expect_code(0);
        ws.run(&["build", "d"]).expect_code(0);
        versions.push(Built::latest(&ws.store(), "d").unwrap().manifest.version);
    }
    // A run trained on the first version (config.json as `train` writes it).
    let run = ws.store().join("runs/first");
    std::fs::create_dir_all(&run).unwrap();
    let record = serde_json::json!({"dataset": "d", "version": versions[0], "config": {}});
    std::fs::write(run.join("config.json"), record.to_string()).unwrap();
    std::fs::create_dir_all(run.join("checkpoints/.partial-00003")).unwrap();

    let freed = ws.run(&["gc", "--json"]).expect_code(0).json();
    assert_eq!((freed["builds"].as_u64(), freed["leftovers"].as_u64()), (Some(1), Some(1)));
    assert_eq!((freed["blobs"].as_u64(), freed["images"].as_u64()), (Some(0), Some(0)));
    let dir = ws.store().join("datasets/d");
    assert!(dir.join(&versions[0]).exists(), "a run trained on it");
    assert!(!dir.join(&versions[1]).exists(), "neither latest nor trained on");
    assert_eq!(Built::latest(&ws.store(), "d").unwrap().manifest.version, versions[2]);
    assert_eq!(ws.blobs().len(), 6, "members are never collected");
    assert!(problems(&ws.run(&["verify", "--json"]).expect_code(0).json()).is_empty());

    // An image no dataset holds any more goes, with its blob and its URL record.
    let dropped = {
        let store = pipeline::store::Store::open(&ws.store()).unwrap();
        let (hash, member, _) = store.index.members("d").unwrap().remove(0);
        store.index.remove(&pipeline::store::Tree::Members("d".into()), &hash).unwrap();
        store.index.flush().unwrap();
        member.url
    };
    let freed = ws.run(&["gc", "--json"]).expect_code(0).json();
    assert_eq!((freed["images"].as_u64(), freed["blobs"].as_u64()), (Some(1), Some(1)));
    assert_eq!(ws.blobs().len(), 5);
    let store = pipeline::store::Store::open(&ws.store()).unwrap();
    assert_eq!(store.index.url(&dropped).unwrap(), None, "its URL will be fetched anew");
    drop(store);
    assert!(problems(&ws.run(&["verify", "--json"]).expect_code(0).json()).is_empty());
}

/// gc must not guess which builds a run needs: an unreadable run record, or a run whose
/// `train` has not written its record yet, stops gc before anything is removed.
#[test]
fn gc_stops_at_a_run_it_cannot_read_and_removes_nothing() {
    let ws = Workspace::new("[build]\nsize = 32\n");
    let all = bears(0..4);
    let mut versions = Vec::new();
    for n in [2, 4] {
        folder(&ws, "photos", &all[..n]);
        ws.run(&["import", "photos", "--dataset", "d"]).expect_code(0);
        ws.run(&["build", "d"]).expect_code(0);
        versions.push(Built::latest(&ws.store(), "d").unwrap().manifest.version);
    }
    let broken = ws.store().join("runs/broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("config.json"), "{\"dataset\": \"d\", \"vers").unwrap();
    let run = ws.run(&["gc"]).expect_code(1);
    assert!(run.stderr.contains("runs/broken/config.json"), "{}", run.stderr);
    assert!(ws.store().join("datasets/d").join(&versions[0]).exists());

    // A run starting: its lock held, no record yet.
    std::fs::remove_dir_all(&broken).unwrap();
    std::fs::create_dir_all(ws.store().join("runs/starting")).unwrap();
    let lock = pipeline::train::run_record::lock(&ws.store(), "starting").unwrap();
    let run = ws.run(&["gc"]).expect_code(75);
    assert!(run.stderr.contains("runs/starting.lock"), "{}", run.stderr);
    assert!(ws.store().join("datasets/d").join(&versions[0]).exists());

    // Once it is gone, gc goes on.
    drop(lock);
    let freed = ws.run(&["gc", "--json"]).expect_code(0).json();
    assert_eq!(freed["builds"], 1);
}

/// An image record whose key is not a blake3 hash (here one letter) is reported as a bad
/// record, not a panic, and `--repair` deletes it.
#[test]
fn verify_reports_an_image_key_that_is_not_a_hash() {
    let ws = Workspace::new("");
    folder(&ws, "photos", &bears(0..1));
    ws.run(&["import", "photos", "--dataset", "d"]).expect_code(0);
    {
        let store = pipeline::store::Store::open(&ws.store()).unwrap();
        let (_, member, image) = store.index.members("d").unwrap().remove(0);
        store.index.add_member("e", "a", &image, &member).unwrap();
        store.index.flush().unwrap();
    }
    let report = ws.run(&["verify", "--json"]).expect_code(65).json();
    assert_eq!(problems(&report), ["bad-record", "dangling-url", "member-without-image"]);
    assert!(report.to_string().contains("not a blake3 hash"), "{report}");
    ws.run(&["verify", "--repair"]).expect_code(0);
}
