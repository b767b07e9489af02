//! `pipeline build` and `pipeline export` on real photos: shard layout, A/B alignment,
//! stable splits, byte-identical rebuilds, errors, interruption, and exports read back.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use pipeline::dataset::{Built, Shard, Split};

use crate::support::{Workspace, bears, folder};

/// Every file of a built version, by name, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

fn splits(built: &Built) -> HashMap<String, Split> {
    built.manifest.members.iter().map(|m| (m.id.clone(), m.split)).collect()
}

#[test]
fn build_writes_aligned_shards_and_is_reproducible() {
    let ws = Workspace::new("[build]\nsize = 64\nshard_size = 8\ntest_fraction = 0.25\n");
    folder(&ws, "bears", &bears(0..30));
    ws.run(&["import", "bears", "--dataset", "bears"]).expect_code(0);
    let run = ws.run(&["build"]).expect_code(0);
    assert!(run.stdout.contains("bears: built "), "{}", run.stdout);

    let built = Built::latest(&ws.store(), "bears").unwrap();
    let m = &built.manifest;
    assert_eq!(m.counts.train + m.counts.test, 30);
    assert_eq!(m.counts.skipped, 0);
    assert!(m.counts.test > 0 && m.counts.train > m.counts.test, "{:?}", m.counts);
    assert_eq!(m.shards.iter().map(|s| s.count).sum::<usize>(), 30);
    assert!(m.shards.iter().all(|s| s.count <= 8));

    for (index, info) in m.shards.iter().enumerate() {
        // The header, read with the safetensors crate directly: u8 A [N,1,64,64], B [N,3,64,64].
        let bytes = std::fs::read(built.dir.join(&info.file)).unwrap();
        assert_eq!(blake3::hash(&bytes).to_hex().as_str(), info.blake3);
        let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let (a, b) = (tensors.tensor("A").unwrap(), tensors.tensor("B").unwrap());
        assert_eq!((a.dtype(), a.shape()), (safetensors::Dtype::U8, &[info.count, 1, 64, 64][..]));
        assert_eq!((b.dtype(), b.shape()), (safetensors::Dtype::U8, &[info.count, 3, 64, 64][..]));

        let shard = Shard::open(&built.dir.join(&info.file)).unwrap();
        let ids: Vec<&String> =
            m.members.iter().filter(|x| x.shard == index).map(|x| &x.id).collect();
        assert_eq!(shard.ids().iter().collect::<Vec<_>>(), ids);
        for i in 0..shard.len() {
            let pair = shard.pair(i);
            let plane = 64 * 64;
            let mut spread = 0;
            for p in 0..plane {
                let (r, g, bl) =
                    (pair.b[p] as f64, pair.b[plane + p] as f64, pair.b[2 * plane + p] as f64);
                let luma = 0.299 * r + 0.587 * g + 0.114 * bl;
                assert!((pair.a[p] as f64 - luma).abs() <= 1.0, "A is the BT.601 luma of B");
                spread = spread.max((pair.b[p] as i32 - pair.b[plane + p] as i32).abs());
            }
            assert!(spread > 10, "B keeps its colour");
        }
    }
    // Members are the images' content hashes, each in the split its hash decides.
    for member in &m.members {
        assert_eq!(member.split, Split::of(&member.id, 0.25));
    }

    let again = ws.run(&["build", "bears"]).expect_code(0);
    assert!(
        again.stdout.contains(&format!("bears: up to date ({})", m.version)),
        "{}",
        again.stdout
    );

    // A forced rebuild of the same version keeps the published folder: no moment without it.
    let before = files(&built.dir);
    let folder = |dir: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(dir).unwrap());
    let published = folder(&built.dir);
    ws.run(&["build", "bears", "--force"]).expect_code(0);
    assert_eq!(folder(&built.dir), published, "the published version was swapped");
    assert_eq!(files(&built.dir), before);
    let names: Vec<_> = std::fs::read_dir(built.dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}: the version and latest, no leftover");

    // Another store, same photos, same command: same version, same bytes.
    let other = Workspace::new("[build]\nsize = 64\nshard_size = 8\ntest_fraction = 0.25\n");
    std::fs::rename(ws.path("bears"), other.path("bears")).unwrap();
    other.run(&["import", "bears", "--dataset", "bears"]).expect_code(0);
    other.run(&["build"]).expect_code(0);
    let twin = Built::latest(&other.store(), "bears").unwrap();
    assert_eq!(twin.manifest.version, m.version);
    // The manifest and the card say where and when each store got its photos.
    let shards = |mut files: BTreeMap<String, Vec<u8>>| {
        files.remove("manifest.json");
        files.remove("README.md");
        files
    };
    assert_eq!(shards(files(&twin.dir)), shards(before), "shards are byte-identical");
}

#[test]
fn splits_do_not_move_when_images_are_added_or_removed() {
    let ws = Workspace::new("[build]\nsize = 32\ntest_fraction = 0.3\n");
    folder(&ws, "first", &bears(0..24));
    ws.run(&["import", "first", "--dataset", "d"]).expect_code(0);
    ws.run(&["build", "d"]).expect_code(0);
    let v1 = Built::latest(&ws.store(), "d").unwrap();

    // Added: 12 more images.
    folder(&ws, "more", &bears(24..36));
    ws.run(&["import", "more", "--dataset", "d"]).expect_code(0);
    ws.run(&["build", "d"]).expect_code(0);
    let v2 = Built::latest(&ws.store(), "d").unwrap();
    assert_ne!(v1.manifest.version, v2.manifest.version);
    assert_eq!(v2.manifest.members.len(), 36);
    let (s1, s2) = (splits(&v1), splits(&v2));
    for (id, split) in &s1 {
        assert_eq!(s2[id], *split, "{id} moved when images were added");
    }
    assert!(Built::open(&v1.dir).is_ok(), "the previous version stays usable");

    // Removed: a dataset holding only the last 20 of those images.
    folder(&ws, "fewer", &bears(16..36));
    ws.run(&["import", "fewer", "--dataset", "e"]).expect_code(0);
    ws.run(&["build", "e"]).expect_code(0);
    let s3 = splits(&Built::latest(&ws.store(), "e").unwrap());
    assert_eq!(s3.len(), 20);
    for (id, split) in &s3 {
        assert_eq!(s2[id], *split, "{id} moved when images were removed");
    }
}

#[test]
fn build_errors_are_clear() {
    let ws = Workspace::new("");
    ws.run(&["build"]).expect_code(1);
    std::fs::create_dir_all(ws.path("junk")).unwrap();
    std::fs::write(ws.path("junk/a.jpg"), "<html>not an image</html>").unwrap();
    ws.run(&["import", "junk", "--dataset", "empty"]).expect_code(0);
    let run = ws.run(&["build", "empty"]).expect_code(1);
    assert!(run.stderr.contains("dataset empty has no accepted images yet"), "{}", run.stderr);
    let run = ws.run(&["build", "nope"]).expect_code(1);
    assert!(
        run.stderr.contains("no dataset named \"nope\" in the store (known: empty)"),
        "{}",
        run.stderr
    );
    let run = ws.run(&["export", "empty", "--format", "pix2pix", "--out", "x"]).expect_code(1);
    assert!(run.stderr.contains("dataset empty has not been built yet"), "{}", run.stderr);

    let held = pipeline::store::Store::open(&ws.store()).unwrap();
    ws.run(&["build", "empty"]).expect_code(75);
    drop(held);
}

#[test]
fn an_interrupted_build_leaves_the_previous_version_usable() {
    let ws = Workspace::new("[build]\nshard_size = 4\n");
    folder(&ws, "few", &bears(0..4));
    ws.run(&["import", "few", "--dataset", "d"]).expect_code(0);
    ws.run(&["build"]).expect_code(0);
    let v1 = Built::latest(&ws.store(), "d").unwrap();
    let v1_files = files(&v1.dir);

    folder(&ws, "many", &bears(4..120));
    ws.run(&["import", "many", "--dataset", "d"]).expect_code(0);
    let mut child =
        ws.command(&["build", "d"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let datasets = ws.store().join("datasets/d");
    let partial_has_shard = || {
        std::fs::read_dir(&datasets).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with(".partial-")
                && std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some())
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !partial_has_shard() {
        assert!(std::time::Instant::now() < deadline, "the build never started writing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let report = ws.run(&["verify", "--json"]).expect_code(0).json();
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["leftovers"].as_array().unwrap().len(), 1, "the partial folder: {report}");
    let latest = Built::latest(&ws.store(), "d").unwrap();
    assert_eq!(latest.manifest.version, v1.manifest.version, "latest still points to v1");
    assert_eq!(files(&latest.dir), v1_files, "v1 is untouched");
    for index in 0..latest.manifest.shards.len() {
        latest.shard(index).unwrap();
    }

    ws.run(&["build", "d"]).expect_code(0);
    let v2 = Built::latest(&ws.store(), "d").unwrap();
    assert_eq!(v2.manifest.members.len(), 120);
    let leftovers = std::fs::read_dir(&datasets)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(leftovers, 0, "the next build removes the partial folder");
    let report = ws.run(&["verify", "--json"]).expect_code(0).json();
    assert_eq!(
        (report["builds"].as_u64(), report["problems"].as_array().map(Vec::len)),
        (Some(2), Some(0))
    );
}

#[test]
fn exports_read_back_exactly() {
    let ws = Workspace::new("[build]\nsize = 48\ntest_fraction = 0.3\n");
    folder(&ws, "bears", &bears(0..10));
    ws.run(&["import", "bears", "--dataset", "b"]).expect_code(0);
    let line = ws.run(&["build", "--json"]).expect_code(0).json();
    let built = Built::latest(&ws.store(), "b").unwrap();
    assert_eq!(
        (line["status"].as_str(), line["version"].as_str()),
        (Some("built"), Some(built.manifest.version.as_str()))
    );
    assert_eq!(
        line["counts"]["train"].as_u64().unwrap() + line["counts"]["test"].as_u64().unwrap(),
        10,
        "{line}"
    );
    let pair_of = |id: &str| {
        let member = built.manifest.members.iter().find(|m| m.id == id).unwrap();
        let shard = built.shard(member.shard).unwrap();
        let pair = shard.pair(member.index);
        (pair.a.to_vec(), pair.b.to_vec())
    };
    let planar = |img: &image::RgbImage, x0: u32| {
        let mut out = vec![0u8; 3 * 48 * 48];
        for y in 0..48 {
            for x in 0..48 {
                let p = img.get_pixel(x0 + x, y).0;
                for c in 0..3 {
                    out[c * 48 * 48 + (y * 48 + x) as usize] = p[c];
                }
            }
        }
        out
    };

    let line = ws.run(&["export", "b", "--format", "pix2pix", "--out", "p2p", "--json"]);
    assert_eq!(line.expect_code(0).json()["pairs"], 10);
    let mut count = 0;
    for split in ["train", "test"] {
        for entry in std::fs::read_dir(ws.path("p2p").join(split)).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() == "metadata.jsonl" {
                continue; // provenance, read in tests/provenance.rs
            }
            let id = path.file_stem().unwrap().to_string_lossy().into_owned();
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (96, 48), "A|B side by side");
            let (a, b) = pair_of(&id);
            let left = planar(&img, 0);
            assert_eq!(&left[..48 * 48], &a[..], "left half is A");
            assert_eq!(&left[48 * 48..2 * 48 * 48], &a[..], "A is gray in all channels");
            assert_eq!(planar(&img, 48), b, "right half is B");
            count += 1;
        }
    }
    assert_eq!(count, 10);

    ws.run(&["export", "b", "--format", "webdataset", "--out", "wds"]).expect_code(0);
    let mut keys = Vec::new();
    for info in &built.manifest.shards {
        let tar_path = ws.path("wds").join(info.file.replace(".safetensors", ".tar"));
        let mut archive = tar::Archive::new(std::fs::File::open(&tar_path).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            let (id, kind) = name.split_once('.').unwrap();
            match kind {
                "gray.png" => assert_eq!(
                    image::load_from_memory(&bytes).unwrap().to_luma8().into_raw(),
                    pair_of(id).0
                ),
                "color.png" => assert_eq!(
                    planar(&image::load_from_memory(&bytes).unwrap().to_rgb8(), 0),
                    pair_of(id).1
                ),
                "json" => {
                    let meta: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    assert_eq!(meta["id"], id);
                    assert_eq!(meta["split"], info.split.as_str());
                    keys.push(id.to_owned());
                }
                other => panic!("unexpected entry {other}"),
            }
        }
    }
    assert_eq!(keys.len(), 10);

    ws.run(&["export", "b", "--format", "folders", "--out", "fold"]).expect_code(0);
    let pairs = combine_a_and_b(&ws.path("fold/A"), &ws.path("fold/B"));
    assert_eq!(pairs.len(), 10, "every pair found as the script finds them: {pairs:?}");
    for (split, name) in &pairs {
        let id = name.trim_end_matches(".png");
        let gray = image::open(ws.path(&format!("fold/A/{split}/{name}"))).unwrap().to_luma8();
        assert_eq!(gray.into_raw(), pair_of(id).0, "{split}/{name}");
        let color = image::open(ws.path(&format!("fold/B/{split}/{name}"))).unwrap().to_rgb8();
        assert_eq!(planar(&color, 0), pair_of(id).1, "{split}/{name}");
    }
}

/// The pairs pix2pix's `datasets/combine_A_and_B.py` makes of `--fold_A A --fold_B B`, as
/// the script reads them: every entry of A is a split folder (it lists each), every entry
/// of `A/<split>` an image, paired with the file of the same name in `B/<split>`.
fn combine_a_and_b(a: &Path, b: &Path) -> Vec<(String, String)> {
    let names = |dir: &Path| -> Vec<String> {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut names: Vec<String> =
            entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let mut pairs = Vec::new();
    for split in names(a) {
        for name in names(&a.join(&split)) {
            assert!(b.join(&split).join(&name).is_file(), "{split}/{name}: no B of the same name");
            pairs.push((split.clone(), name));
        }
    }
    pairs
}
