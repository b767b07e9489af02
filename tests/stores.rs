//! What a store folder is (issue 20, finding 11): a marker file makes a folder a store; a
//! folder that is not one is never cleaned, and only a command that creates a store takes
//! it. The bucket cache's folder is made from the parsed bucket URL, never its raw text.

use crate::support::{Workspace, bears, folder};

/// A folder of the user's own: a `tmp/` with a file in it, and a note.
fn users_folder(ws: &Workspace, name: &str) -> std::path::PathBuf {
    let dir = ws.path(name);
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::write(dir.join("tmp/draft.txt"), "keep me").unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    dir
}

#[test]
fn a_folder_that_is_no_store_is_refused_and_never_cleaned() {
    let ws = Workspace::new("");
    let home = users_folder(&ws, "home");
    for args in [
        &["status"][..],
        &["build"],
        &["verify"],
        &["gc"],
        &["report", "--out", "site"],
        &["export", "bears", "--format", "pix2pix", "--out", "out"],
    ] {
        let run = ws.run(&[args, &["--store", "home"]].concat());
        assert_ne!(run.code, 0, "{args:?}: {}", run.stdout);
        assert!(
            run.stderr
                .contains("home: not a pipeline store (no pipeline-store.json) and not empty"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(home.join("tmp/draft.txt")).unwrap(), "keep me");
    }
    let mut names: Vec<String> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["notes.txt", "tmp"], "nothing was added to the folder either");
}

#[test]
fn a_command_that_creates_a_store_keeps_what_the_folder_held() {
    let ws = Workspace::new("");
    let home = users_folder(&ws, "home");
    folder(&ws, "photos", &bears(0..3));
    ws.run(&["import", "photos", "--dataset", "bears", "--store", "home"]).expect_code(0);
    assert!(home.join("pipeline-store.json").is_file());
    assert_eq!(std::fs::read_to_string(home.join("tmp/draft.txt")).unwrap(), "keep me");
    // Now a store: every command takes it, and its temporaries are its own.
    let status = ws.run(&["status", "--json", "--store", "home"]).expect_code(0).json();
    assert_eq!(status["datasets"][0]["images"], 3, "{status}");
    assert_eq!(std::fs::read_to_string(home.join("tmp/draft.txt")).unwrap(), "keep me");
}

#[test]
fn a_store_written_before_the_marker_is_taken_and_marked() {
    let ws = Workspace::new("");
    folder(&ws, "photos", &bears(0..2));
    ws.run(&["import", "photos", "--dataset", "bears"]).expect_code(0);
    std::fs::remove_file(ws.store().join("pipeline-store.json")).unwrap();
    let status = ws.run(&["status", "--json"]).expect_code(0).json();
    assert_eq!(status["datasets"][0]["images"], 2, "{status}");
    assert!(ws.store().join("pipeline-store.json").is_file());
}

#[test]
fn the_bucket_cache_folder_comes_from_the_parsed_url() {
    let ws = Workspace::new("");
    let xdg = ws.path("xdg");
    // A closed loopback port: were the URL taken, nothing would leave the machine.
    let vars = [
        ("XDG_CACHE_HOME".to_owned(), xdg.display().to_string()),
        ("AWS_ENDPOINT".to_owned(), "http://127.0.0.1:9".to_owned()),
        ("AWS_ALLOW_HTTP".to_owned(), "true".to_owned()),
    ];
    for url in ["s3://test/../../../escape", "s3://test/a/./b", "s3://../x", "s3://test//a"] {
        let run = ws.run_with(&["status", "--store", url], &vars);
        assert_eq!(run.code, 2, "{url}: {}", run.stderr);
        assert!(run.stderr.contains("not a bucket URL"), "{url}: {}", run.stderr);
    }
    assert!(!xdg.exists() && !ws.path("escape").exists(), "nothing was created");
}
