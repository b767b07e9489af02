//! Provenance (issue 22): licences and credits travel from an import's `CREDITS.tsv` into
//! the store, the manifest, the dataset card and every export, and the Hugging Face
//! `datasets` library (from `scripts/engines`) loads each export with them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::support::{Workspace, shared};

/// Loads the export at `dir` with `datasets.load_dataset` (a `folders` export's metadata
/// files as JSON) and answers, per split, its rows, its columns and its rows by licence.
const LOAD: &str = r#"
import collections, json, sys
import datasets
out = {}
import os
root = sys.argv[1]
if os.path.isdir(os.path.join(root, "metadata")):  # folders: A/ and B/ hold images alone
    files = {s[:-6]: os.path.join(root, "metadata", s) for s in os.listdir(os.path.join(root, "metadata"))}
    loaded = datasets.load_dataset("json", data_files=files)
else:
    loaded = datasets.load_dataset(root)
for split, rows in loaded.items():
    webdataset = "json" in rows.column_names
    licenses = [m["license"] for m in rows["json"]] if webdataset else rows["license"]
    out[split] = {
        "rows": rows.num_rows,
        "columns": sorted(rows.column_names),
        "licenses": collections.Counter(licenses),
        "first": {k: v for k, v in rows[0].items() if isinstance(v, (str, int, dict))},
    }
print(json.dumps(out))
"#;

fn load_with_datasets(dir: &Path) -> Value {
    let out = Command::new(super::support::engines_python())
        .args(["-c", LOAD, dir.to_str().unwrap()])
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HOME", dir.join(".hf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "datasets: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).expect("JSON")
}

/// The latest build's folder of `dataset`.
fn latest(ws: &Workspace, dataset: &str) -> PathBuf {
    let dir = ws.store().join("datasets").join(dataset);
    dir.join(std::fs::read_to_string(dir.join("latest")).unwrap().trim())
}

#[test]
fn import_credits_reach_the_manifest_the_card_and_every_export() {
    let ws = Workspace::new("");
    let demo = shared("data/demo_cc0");
    ws.run(&["import", demo.to_str().unwrap(), "--dataset", "demo"]).expect_code(0);
    // 41 photos: CREDITS.tsv says CC0-1.0 of 17 and "Public Domain" (the Mark) of 24.
    let status = ws.status("demo");
    assert_eq!(status["licenses"], json!({"CC0-1.0": 17, "PDM": 24}), "{status}");

    ws.run(&["build", "demo", "--size", "32"]).expect_code(0);
    let version = latest(&ws, "demo");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(version.join("manifest.json")).unwrap()).unwrap();
    let members = manifest["members"].as_array().unwrap();
    let petra = members
        .iter()
        .find(|m| m["url"].as_str().unwrap().ends_with("scene_petra.jpg"))
        .expect("Petra is kept");
    assert_eq!(petra["credit"], json!({"license": "PDM", "creator": "Berthold Werner"}));
    assert_eq!(petra["page_url"], "https://commons.wikimedia.org/wiki/File:Petra_Jordan_BW_36.JPG");
    let provenance = &manifest["provenance"];
    assert_eq!(provenance["queries"], json!({"folder demo_cc0": members.len()}), "no parent path");
    assert_eq!(provenance["opt_outs"]["honoured"], Value::Null, "an import fetched nothing");

    let card = std::fs::read_to_string(version.join("README.md")).unwrap();
    let header = card.split("---\n").nth(1).expect("a YAML header");
    // CC0 and the Public Domain Mark: neither is the set's licence; the table breaks it down.
    assert!(header.contains("license: \"other\"\n"), "{header}");
    assert!(header.contains("size_categories:\n- \"n<1K\""), "{header}");
    assert!(card.contains("| PDM | "), "licence table: {card}");
    let petra_row = format!(
        "| [`{}`](<https://commons.wikimedia.org/wiki/File:Petra_Jordan_BW_36.JPG>) | {} | PDM | \
         Berthold Werner |  |",
        &petra["id"].as_str().unwrap()[..16],
        petra["split"].as_str().unwrap()
    );
    assert!(card.contains(&petra_row), "{petra_row} in {card}");
    assert!(card.contains("Berthold Werner") && card.contains("folder demo\\_cc0"), "{card}");
    assert!(!card.contains(demo.parent().unwrap().to_str().unwrap()), "the importer's folders");

    // Each split's members by licence, as the loaded exports must count them.
    let mut expected: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for member in members {
        let license = member["credit"]["license"].as_str().unwrap().to_owned();
        *expected
            .entry(member["split"].as_str().unwrap())
            .or_default()
            .entry(license)
            .or_default() += 1;
    }
    for format in ["pix2pix", "folders", "webdataset"] {
        let out = ws.path(&format!("export-{format}"));
        ws.run(&["export", "demo", "--format", format, "--out", out.to_str().unwrap()])
            .expect_code(0);
        assert_eq!(std::fs::read_to_string(out.join("README.md")).unwrap(), card, "{format}");
        let loaded = load_with_datasets(&out);
        for split in ["train", "test"] {
            let got = &loaded[split];
            let licenses: BTreeMap<String, usize> =
                serde_json::from_value(got["licenses"].clone()).unwrap();
            assert_eq!(licenses, expected[split], "{format} {split}: {got}");
            let rows: usize = expected[split].values().sum();
            assert_eq!(got["rows"], rows, "{format} {split}: one row a pair");
            let columns: Vec<&str> =
                got["columns"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            let images: &[&str] = match format {
                "pix2pix" => &["image"],
                "folders" => &["color_file_name", "gray_file_name"],
                _ => &["color.png", "gray.png"],
            };
            assert!(images.iter().all(|c| columns.contains(c)), "{format} {split}: {columns:?}");
        }
        if format != "webdataset" {
            let first = &loaded["train"]["first"];
            assert!(first["creator"].as_str().is_some_and(|c| !c.is_empty()), "{first}");
            assert!(first["page_url"].as_str().unwrap().starts_with("https://"), "{first}");
        }
    }
}

#[test]
fn a_licence_rule_keeps_only_those_members_and_says_what_it_left_out() {
    let ws = Workspace::new("[curate]\nlicences = [\"PDM\"]\n");
    let demo = shared("data/demo_cc0");
    ws.run(&["import", demo.to_str().unwrap(), "--dataset", "demo"]).expect_code(0);
    let decision = ws.run(&["curate", "demo", "--json"]).expect_code(0).json();
    assert_eq!(decision["licenses"], json!({"CC0-1.0": 17, "PDM": 24}), "{decision}");
    assert_eq!(decision["kept_licenses"], json!({"PDM": 24}), "the config's `licences`");
    assert_eq!(decision["dropped_by_reason"], json!({"license": 17}));
    let dropped = decision["dropped"].as_array().unwrap();
    assert!(dropped.iter().all(|d| d["detail"] == "licence CC0-1.0"), "{dropped:?}");

    // The flag overrides the config.
    ws.run(&["build", "demo", "--size", "32", "--license", "CC0-1.0"]).expect_code(0);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(latest(&ws, "demo").join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["counts"]["dropped"], json!({"license": 24}));
    let members = manifest["members"].as_array().unwrap();
    assert_eq!(members.len(), 17);
    assert!(members.iter().all(|m| m["credit"]["license"] == "CC0-1.0"));
    let card = std::fs::read_to_string(latest(&ws, "demo").join("README.md")).unwrap();
    assert!(card.contains("license: \"cc0-1.0\"\n"), "one licence: the Hub's id");
    assert!(card.contains("kept only under the licences CC0-1.0") && card.contains("license 24"));
    let status = ws.status("demo");
    assert_eq!(status["build"]["dropped"], json!({"license": 24}), "{status}");
}
