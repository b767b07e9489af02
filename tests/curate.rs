//! Curation on real photos with the real classifier (libtorch, CPU): the class check keeps
//! brown bears among ImageNet photos of other classes, the color check flags gray and
//! sepia copies and no color photo, leaks are refused with both ids named.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use image::{ImageFormat, RgbImage};
use pipeline::dataset::Split;

use crate::support::{Workspace, photos};

/// A config whose classifier files are the repository's (scripts/weights), plus `extra`.
fn config(extra: &str) -> String {
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join(".weights");
    format!(
        "[curate]\nweights = {:?}\nclasses = {:?}\n{extra}",
        weights.join("efficientnet-lite0.safetensors"),
        weights.join("imagenet-classes.tsv")
    )
}

fn blake3_of(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap()).to_hex().to_string()
}

/// The ids of the `dropped` entries of `curate --json` or a manifest, with `reason`.
fn dropped(json: &serde_json::Value, reason: &str) -> BTreeSet<String> {
    json["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["reason"] == reason)
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

fn import(ws: &Workspace, dir: &Path, dataset: &str) {
    ws.run(&["import", dir.to_str().unwrap(), "--dataset", dataset]).expect_code(0);
}

fn manifest(ws: &Workspace, dataset: &str) -> serde_json::Value {
    let dir = ws.store().join("datasets").join(dataset);
    let version = std::fs::read_to_string(dir.join("latest")).unwrap();
    let text = std::fs::read(dir.join(version.trim()).join("manifest.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

#[test]
fn requiring_brown_bear_keeps_the_bears_and_drops_other_imagenet_classes() {
    let ws = Workspace::new(&config(""));
    let bears = photos("brown_bear");
    let others = photos("nature/EliSchwartz__imagenet-sample-images");
    import(&ws, &crate::support::shared("data/brown_bear"), "mix");
    import(&ws, &crate::support::shared("data/nature/EliSchwartz__imagenet-sample-images"), "mix");
    std::fs::create_dir(ws.path("queries")).unwrap();
    std::fs::write(
        ws.path("queries/mix.toml"),
        "query = \"brown bear\"\ndataset = \"mix\"\ntop = 10\n[curate]\nrequire = [\"Brown_Bear\"]\n",
    )
    .unwrap();

    let label = ws.run(&["label", "mix", "--json"]).expect_code(0).json();
    let members = label["images"].as_u64().unwrap() as usize;
    assert_eq!(label["labelled"].as_u64().unwrap() as usize, members);
    assert!(label["classes"]["brown bear"].as_u64().unwrap() >= 250, "{label}");

    // The query file's [curate] applies to its dataset's build.
    ws.run(&["build", "mix"]).expect_code(0);
    let built = manifest(&ws, "mix");
    let off_topic = dropped(&built, "off-topic");
    let bear_ids: BTreeSet<String> = bears.iter().map(|p| blake3_of(p)).collect();
    let other_ids: BTreeSet<String> = others.iter().map(|p| blake3_of(p)).collect();
    let bears_dropped = off_topic.intersection(&bear_ids).count();
    let others_dropped = off_topic.intersection(&other_ids).count();
    eprintln!(
        "require \"brown bear\": kept {} of {} bears, dropped {others_dropped} of {} other photos",
        bears.len() - bears_dropped,
        bears.len(),
        others.len()
    );
    assert!(bears_dropped * 10 <= bears.len(), "kept at least 90% of the bears");
    assert!(others_dropped * 10 >= others.len() * 9, "dropped at least 90% of the rest");
    assert_eq!(off_topic.len(), bears_dropped + others_dropped);

    // status shows the labels and what the build left out.
    let status = ws.status("mix");
    assert_eq!(status["build"]["dropped"]["off-topic"].as_u64().unwrap() as usize, off_topic.len());
    assert_eq!(status["labels"]["labelled"].as_u64().unwrap() as usize, members);
    assert!(status["labels"]["classes"]["brown bear"].as_u64().unwrap() >= 250);

    // Labels are computed once: nothing is labelled again.
    let again = ws.run(&["label", "mix", "--json"]).expect_code(0).json();
    assert_eq!(
        (again["labelled"].as_u64(), again["reused"].as_u64()),
        (Some(0), Some(members as u64))
    );

    // Members are never deleted: without the rule every image comes back.
    std::fs::remove_file(ws.path("queries/mix.toml")).unwrap();
    ws.run(&["build", "mix"]).expect_code(0);
    let all = manifest(&ws, "mix");
    let counts = &all["counts"];
    let total = counts["train"].as_u64().unwrap() + counts["test"].as_u64().unwrap();
    assert_eq!(
        total as usize + dropped(&all, "gray").len() + dropped(&all, "tinted").len(),
        members
    );
    assert!(dropped(&all, "off-topic").is_empty());
}

#[test]
fn an_unknown_class_name_is_refused_with_near_matches() {
    let ws = Workspace::new(&config(""));
    let dir = ws.path("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&photos("brown_bear")[0], dir.join("a.jpg")).unwrap();
    import(&ws, &dir, "d");
    let run = ws.run(&["build", "d", "--require", "brown bears"]).expect_code(78);
    assert!(
        run.stderr.contains("\"brown bears\" is not an ImageNet class name or synonym")
            && run.stderr.contains("near matches: \"brown bear\""),
        "{}",
        run.stderr
    );
    assert!(!ws.store().join("datasets/d").exists(), "nothing built");
    let run = ws.run(&["curate", "d", "--require", "grizzly bear"]).expect_code(78);
    assert!(run.stderr.contains("\"grizzly bear\" is not an ImageNet class"), "{}", run.stderr);
}

/// Tones `photo` as a sepia print: its luma mapped from dark brown to cream.
fn sepia(photo: &RgbImage) -> RgbImage {
    let (shadow, highlight) = ([38.0, 22.0, 10.0], [255.0, 240.0, 200.0]);
    let mut out = photo.clone();
    for pixel in out.pixels_mut() {
        let [r, g, b] = pixel.0.map(f32::from);
        let t = (0.299 * r + 0.587 * g + 0.114 * b) / 255.0;
        pixel.0 = [0, 1, 2].map(|c| (shadow[c] + t * (highlight[c] - shadow[c])).round() as u8);
    }
    out
}

#[test]
fn gray_and_sepia_copies_are_flagged_and_no_color_bear_photo_is() {
    let ws = Workspace::new(&config(""));
    let bears = photos("brown_bear");
    import(&ws, &crate::support::shared("data/brown_bear"), "bears");
    let curated = ws.run(&["curate", "bears", "--json"]).expect_code(0).json();
    assert_eq!(curated["dropped"].as_array().unwrap().len(), 0, "{}", curated["dropped"]);
    assert_eq!(curated["members"].as_u64().unwrap() as usize, bears.len());

    // Different photos for the gray and the sepia copies: a photo's two copies would be
    // near-duplicates of each other, and only one kept.
    let copies = ws.path("copies");
    std::fs::create_dir(&copies).unwrap();
    let mut gray: Vec<PathBuf> = Vec::new();
    let mut toned: Vec<PathBuf> = Vec::new();
    for (i, photo) in bears.iter().step_by(10).enumerate() {
        let rgb = image::open(photo).unwrap().to_rgb8();
        if i % 2 == 0 {
            let path = copies.join(format!("gray-{i}.jpg"));
            image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(rgb).to_luma8())
                .save_with_format(&path, ImageFormat::Jpeg)
                .unwrap();
            gray.push(path);
        } else {
            let path = copies.join(format!("sepia-{i}.jpg"));
            sepia(&rgb).save_with_format(&path, ImageFormat::Jpeg).unwrap();
            toned.push(path);
        }
    }
    import(&ws, &copies, "copies");
    let curated = ws.run(&["curate", "copies", "--json"]).expect_code(0).json();
    let ids = |paths: &[PathBuf]| paths.iter().map(|p| blake3_of(p)).collect::<BTreeSet<_>>();
    assert_eq!(dropped(&curated, "gray"), ids(&gray), "every gray copy, nothing else");
    assert_eq!(dropped(&curated, "tinted"), ids(&toned), "every sepia copy, nothing else");
    assert_eq!(curated["kept"], 0);

    let status = ws.status("copies");
    assert_eq!(status["labels"]["gray"].as_u64().unwrap() as usize, gray.len());
    assert_eq!(status["labels"]["tinted"].as_u64().unwrap() as usize, toned.len());
    // A build of nothing but toned copies has nothing to publish, and says why.
    let run = ws.run(&["build", "copies"]).expect_code(1);
    assert!(run.stderr.contains("curation left out all"), "{}", run.stderr);
}

/// Writes to `out` the first re-encoding of `photo` (JPEG quality 95 down to 60) whose
/// content hash puts it in a split `wanted` accepts (at test_fraction 0.5, half of them),
/// and returns that hash.
fn reencoded(photo: &Path, out: &Path, wanted: impl Fn(Split) -> bool) -> String {
    let rgb = image::open(photo).unwrap().to_rgb8();
    for quality in (60..=95).rev() {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&rgb)
            .unwrap();
        let id = blake3::hash(&bytes).to_hex().to_string();
        if wanted(Split::of(&id, 0.5)) {
            std::fs::write(out, &bytes).unwrap();
            return id;
        }
    }
    panic!("no re-encoding of {} fell in the wanted split", photo.display());
}

#[test]
fn a_leaking_test_split_is_refused_with_both_ids_named() {
    // Near-duplicates are kept at import (phash_distance 0), so that a leak can be planted.
    let config = config("[dedup]\nphash_distance = 0\n[build]\nsize = 32\ntest_fraction = 0.5\n");
    let ws = Workspace::new(&config);
    let bears = photos("brown_bear");
    let dir = ws.path("in");
    std::fs::create_dir(&dir).unwrap();
    for photo in &bears[..7] {
        std::fs::copy(photo, dir.join(photo.file_name().unwrap())).unwrap();
    }
    let original = blake3_of(&bears[0]);
    let copy_path = dir.join("planted-copy.jpg");
    let copy = reencoded(&bears[0], &copy_path, |s| s != Split::of(&original, 0.5));
    let ((test, _), (train, train_path)) = if Split::of(&original, 0.5) == Split::Test {
        ((original, &bears[0]), (copy, &copy_path))
    } else {
        ((copy, &copy_path), (original, &bears[0]))
    };
    import(&ws, &dir, "bears");

    let run = ws.run(&["build", "bears"]).expect_code(1);
    assert!(
        run.stderr.contains(&format!("test {test} ~ train {train} of bears")),
        "{}",
        run.stderr
    );
    assert!(!ws.store().join("datasets/bears/latest").exists(), "nothing published");
    let show = ws.run(&["curate", "bears", "--show"]).expect_code(0);
    assert!(show.stdout.contains(&format!("leak       test {test}")), "{}", show.stdout);

    // Told to, the build leaves the test copy out and says why.
    ws.run(&["build", "bears", "--on-leak", "drop"]).expect_code(0);
    let built = manifest(&ws, "bears");
    assert_eq!(dropped(&built, "leak"), BTreeSet::from([test.clone()]));
    assert!(built["members"].as_array().unwrap().iter().any(|m| m["id"] == train.as_str()));

    // Across datasets: another dataset's test image nearly duplicating a training image
    // of this one's latest build.
    let other = ws.path("other");
    std::fs::create_dir(&other).unwrap();
    let near = reencoded(train_path, &other.join("copy.jpg"), |s| s == Split::Test);
    import(&ws, &other, "polar");
    let run = ws.run(&["build", "polar"]).expect_code(1);
    assert!(
        run.stderr.contains(&format!("test {near} ~ train {train} of bears")),
        "{}",
        run.stderr
    );
    ws.run(&["build", "polar", "--on-leak", "allow"]).expect_code(0);
    let leaks = &manifest(&ws, "polar")["leaks"];
    assert_eq!(leaks[0]["test"], near.as_str(), "{leaks}");
}

#[test]
fn stored_labels_need_no_classifier_and_a_missing_one_is_named() {
    let ws = Workspace::new(&config(""));
    let dir = ws.path("in");
    std::fs::create_dir(&dir).unwrap();
    for photo in &photos("brown_bear")[..3] {
        std::fs::copy(photo, dir.join(photo.file_name().unwrap())).unwrap();
    }
    import(&ws, &dir, "labelled");
    ws.run(&["label", "labelled"]).expect_code(0);
    import(&ws, &dir, "other");
    std::fs::create_dir(ws.path("more")).unwrap();
    std::fs::copy(&photos("brown_bear")[3], ws.path("more/new.jpg")).unwrap();
    import(&ws, &ws.path("more"), "other");

    let classes = Path::new(env!("CARGO_MANIFEST_DIR")).join(".weights/imagenet-classes.tsv");
    let missing = format!("[curate]\nweights = \"missing.safetensors\"\nclasses = {classes:?}\n");
    std::fs::write(ws.path("pipeline.toml"), missing).unwrap();
    // Every label is stored: the class check reads them, the weights are not needed.
    ws.run(&["build", "labelled", "--require", "brown bear"]).expect_code(0);
    // One image of `other` has no classes yet: the missing file is named, nothing is built.
    let run = ws.run(&["build", "other", "--require", "brown bear"]).expect_code(1);
    assert!(
        run.stderr.contains("missing.safetensors") && run.stderr.contains("scripts/weights"),
        "{}",
        run.stderr
    );
    assert!(!ws.store().join("datasets/other").exists());
}

/// An installed binary run outside the project: weights the project's `.weights/` does not
/// hold are found in the user's cache (`$XDG_CACHE_HOME/pipeline/weights`, where
/// `WEIGHTS_DIR=… scripts/weights` puts them); without them the error names the file.
#[test]
fn weights_are_found_in_the_users_cache_outside_the_project() {
    let ws = Workspace::new("");
    import(&ws, &crate::support::shared("data/demo_cc0"), "demo");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join(".weights");
    let cache = ws.path("xdg");
    let label = ["label", "demo", "--json"];
    let with_cache = [("XDG_CACHE_HOME".to_owned(), cache.display().to_string())];
    let missing = ws.run_with(&label, &with_cache).expect_code(1);
    let said = &missing.stderr;
    assert!(said.contains(".weights/") && said.contains("scripts/weights"), "{said}");

    std::fs::create_dir_all(cache.join("pipeline/weights")).unwrap();
    for file in ["efficientnet-lite0.safetensors", "imagenet-classes.tsv"] {
        std::fs::copy(repo.join(file), cache.join("pipeline/weights").join(file)).unwrap();
    }
    let labelled = ws.run_with(&label, &with_cache).expect_code(0).json();
    assert_eq!(labelled["labelled"], labelled["images"], "{labelled}");
    assert!(labelled["classes"].as_object().is_some_and(|c| !c.is_empty()), "{labelled}");
}
