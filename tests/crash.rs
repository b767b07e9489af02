//! Crashes for real: `pipeline import` killed with SIGKILL while downloading and while
//! storing, then run again. The store opens, `verify` finds it consistent, no partial
//! blob is visible, and nothing accepted is lost or duplicated. (The build and train
//! kills live with their features, in build.rs and train.rs.)

use std::collections::{BTreeSet, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Response, Server, Workspace, photos, test_config};

/// (image hash, URL) of every member of `dataset`.
fn members(ws: &Workspace, dataset: &str) -> BTreeSet<(String, String)> {
    let store = pipeline::store::Store::open(&ws.store()).unwrap();
    let members = store.index.members(dataset).unwrap();
    members.into_iter().map(|(hash, member, _)| (hash, member.url)).collect()
}

/// Imports `count` distinct photos from a server that waits `delay` per image, kills the
/// import with SIGKILL once `kill_when` holds, checks the store, imports again and checks
/// that the second run completed the first without losing or repeating anything.
fn kill_and_rerun(count: usize, delay: Duration, kill_when: impl Fn(&Server, &Workspace) -> bool) {
    let bears: Vec<Vec<u8>> = photos("brown_bear")
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .take(count)
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let server = Server::start(move |target| {
        let n: usize = target.trim_start_matches("/b/").trim_end_matches(".jpg").parse().unwrap();
        Response::ok("image/jpeg", bears[n].clone()).with_delay(delay)
    });
    let ws =
        Workspace::new(&test_config(&server, "concurrency = 8\n[dedup]\nphash_distance = 0\n"));
    let list: String = (0..count).map(|n| server.url(&format!("/b/{n}.jpg")) + "\n").collect();
    std::fs::write(ws.path("urls.txt"), list).unwrap();

    let mut child = ws
        .command(&["import", "urls.txt", "--dataset", "d"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !kill_when(&server, &ws) {
        assert!(child.try_wait().unwrap().is_none(), "the import ended before it could be killed");
        assert!(Instant::now() < deadline, "the kill point never came");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Every blob file is whole (named by the hash of its bytes), killed or not.
    for blob in ws.blobs() {
        let hash = blake3::hash(&std::fs::read(&blob).unwrap()).to_hex().to_string();
        assert_eq!(blob.file_stem().unwrap().to_string_lossy(), hash, "partial blob visible");
    }
    let report = ws.run(&["verify", "--json"]).expect_code(0).json();
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let before = members(&ws, "d");
    assert!(before.len() < count, "killed midway");
    assert_eq!(
        std::fs::read_dir(ws.store().join("tmp")).unwrap().count(),
        0,
        "half-written files are gone once the store is opened"
    );

    let summary = ws.run(&["import", "urls.txt", "--dataset", "d", "--json"]).expect_code(0).json();
    assert_eq!(summary["images"], count, "{summary}");
    let after = members(&ws, "d");
    assert!(after.is_superset(&before), "nothing accepted before the kill is lost");
    let urls: HashSet<&String> = after.iter().map(|(_, url)| url).collect();
    assert_eq!((after.len(), urls.len()), (count, count), "no image or URL twice");
    assert_eq!(ws.blobs().len(), count, "one blob per member, none left over");
    let report = ws.run(&["verify", "--json"]).expect_code(0).json();
    assert_eq!(
        (report["problems"].clone(), report["unreferenced_blobs"].clone()),
        (serde_json::json!([]), serde_json::json!(0))
    );
}

#[test]
fn an_import_killed_while_downloading_loses_nothing() {
    // Slow answers: when 12 requests have arrived, most of the run is in flight.
    kill_and_rerun(40, Duration::from_millis(200), |server, _| server.hits("/b/") >= 12);
}

#[test]
fn an_import_killed_while_storing_loses_nothing() {
    // Instant answers: the store (blob write, fsync, rename, index) is the busy stage when
    // the 20th blob lands.
    kill_and_rerun(150, Duration::ZERO, |_, ws| ws.blobs().len() >= 20);
}
