//! Crashes for real: `pipeline fetch` killed with SIGKILL while downloading and while
//! storing, then run again. The store opens, `verify` finds it consistent, no partial
//! blob is visible, and nothing accepted is lost or duplicated. (The build and train
//! kills live with their features, in build.rs and train.rs.)

use std::collections::{BTreeSet, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::site::Site;
use crate::support::{Workspace, test_config};

/// Images wanted: most of what the three Bing pages offer.
const TOP: usize = 60;

/// (image hash, URL) of every member of `dataset`.
fn members(ws: &Workspace, dataset: &str) -> BTreeSet<(String, String)> {
    let store = pipeline::store::Store::open(&ws.store()).unwrap();
    let members = store.index.members(dataset).unwrap();
    members.into_iter().map(|(hash, member, _)| (hash, member.url)).collect()
}

/// Fetches from the fake Bing site (its images answering after `delay`), kills the fetch
/// with SIGKILL once `kill_when` holds, checks the store, fetches again and checks that
/// the second run completed the first without losing or repeating anything.
fn kill_and_rerun(delay: Duration, kill_when: impl Fn(&Site, &Workspace) -> bool) {
    let site = Site::start_with_delay(delay);
    let ws = Workspace::new(&test_config(&site.server, "concurrency = 8\n"));
    let top = TOP.to_string();
    let fetch = ["fetch", "brown bear", "--top", &top, "--engine", "bing", "--json"];
    let mut child = ws.command(&fetch).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !kill_when(&site, &ws) {
        assert!(child.try_wait().unwrap().is_none(), "the fetch ended before it could be killed");
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
    let before = members(&ws, "brown-bear");
    assert!(before.len() < TOP, "killed midway");
    let tmp = std::fs::read_dir(ws.store().join("pipeline-tmp")).unwrap().count();
    assert_eq!(tmp, 0, "half-written files are gone once the store is opened");

    let summary = ws.run(&fetch).expect_code(0).json();
    assert_eq!(summary["images"], TOP, "{summary}");
    let after = members(&ws, "brown-bear");
    assert!(after.is_superset(&before), "nothing accepted before the kill is lost");
    let urls: HashSet<&String> = after.iter().map(|(_, url)| url).collect();
    assert_eq!((after.len(), urls.len()), (TOP, TOP), "no image or URL twice");
    assert_eq!(ws.blobs().len(), TOP, "one blob per member, none left over");
    let report = ws.run(&["verify", "--json"]).expect_code(0).json();
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["unreferenced_blobs"], 0, "{report}");
}

#[test]
fn a_fetch_killed_while_downloading_loses_nothing() {
    // Slow images: when 12 downloads have started, most of the run is in flight.
    kill_and_rerun(Duration::from_millis(200), |site, _| site.server.hits("/img/") >= 12);
}

#[test]
fn a_fetch_killed_while_storing_loses_nothing() {
    // Instant images: the store (blob write, fsync, rename, index) is the busy stage when
    // the 20th blob lands.
    kill_and_rerun(Duration::ZERO, |_, ws| ws.blobs().len() >= 20);
}
