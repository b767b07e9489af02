//! `pipeline refresh`, the cron job: every query file, failures kept to their dataset,
//! rebuilds of what changed only, one quiet JSON line, and the exit codes cron sees.

use crate::support::site::Site;
use crate::support::{Workspace, interrupt, test_config};

fn query(ws: &Workspace, name: &str, text: &str) {
    std::fs::create_dir_all(ws.path("queries")).unwrap();
    std::fs::write(ws.path(&format!("queries/{name}.toml")), text).unwrap();
}

/// The report entry of the query file `queries/NAME.toml`.
fn entry(report: &serde_json::Value, name: &str) -> serde_json::Value {
    let file = format!("queries/{name}.toml");
    report["queries"]
        .as_array()
        .and_then(|all| all.iter().find(|q| q["file"] == file.as_str()).cloned())
        .unwrap_or_else(|| panic!("no entry for {file} in {report}"))
}

/// `dataset -> build outcome` from the report.
fn builds(report: &serde_json::Value) -> Vec<(String, String)> {
    report["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (b["dataset"].as_str().unwrap().to_owned(), b["build"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn refresh_runs_every_query_keeps_failures_apart_and_rebuilds_what_changed() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, "[build]\nsize = 64\n"));
    query(
        &ws,
        "bears",
        "query = \"brown bear\"\ndataset = \"bears\"\ntop = 6\nengines = [\"bing\"]\n",
    );
    query(&ws, "gophers", "query = \"gopher\"\ntop = 4\nengines = [\"duckduckgo\", \"bing\"]\n");
    query(&ws, "typo", "query = \"polar bear\"\ntop = 0\n");

    // A bad query file is named with its error; the other queries still run and build.
    let run = ws.run(&["refresh", "--json"]).expect_code(78);
    assert_eq!(run.stdout.lines().count(), 1, "one JSON line: {}", run.stdout);
    assert_eq!(run.stderr, "", "quiet without a terminal");
    let report = run.json();
    assert_eq!(report["exit_code"], 78);
    let bears = entry(&report, "bears");
    assert_eq!((bears["dataset"].as_str(), bears["added"].as_u64()), (Some("bears"), Some(6)));
    // Ranks 3, 5 and 7 are HTML, truncated and an exact copy; the ones after the sixth
    // image may or may not be reached before the run stops.
    assert!(bears["duplicates"].as_u64() >= Some(1), "{bears}");
    assert!(bears["failures"]["html"].as_u64() >= Some(1), "{bears}");
    assert_eq!(bears["failures"]["truncated"], 1, "{bears}");
    let gophers = entry(&report, "gophers");
    assert_eq!(gophers["images"], 4);
    assert!(
        gophers["engine_failures"][0].as_str().unwrap().contains("duckduckgo blocked"),
        "a blocked engine is reported even when the next one fills the dataset: {gophers}"
    );
    let typo = entry(&report, "typo");
    assert!(
        typo["error"].as_str().unwrap().contains("queries/typo.toml: top = 0: allowed: 1 to 10000"),
        "{typo}"
    );
    assert_eq!(
        builds(&report),
        [("bears".into(), "rebuilt".into()), ("gopher".into(), "rebuilt".into())]
    );

    let run = ws.run(&["refresh"]).expect_code(78);
    assert!(
        run.stdout.contains("\nskipped: queries/typo.toml: top = 0: allowed"),
        "{}",
        run.stdout
    );

    // Fixed file, blocked-only query: the others are done, this one is partial (exit 3).
    query(&ws, "typo", "query = \"polar bear\"\ntop = 2\nengines = [\"google\"]\n");
    let report = ws.run(&["refresh", "--json"]).expect_code(3).json();
    assert_eq!(entry(&report, "bears")["added"], 0);
    assert_eq!(entry(&report, "typo")["images"], 0);
    assert!(entry(&report, "typo")["engine_failures"][0].as_str().unwrap().contains("google"));
    assert_eq!(
        builds(&report),
        [("bears".into(), "up-to-date".into()), ("gopher".into(), "up-to-date".into())],
        "nothing changed, nothing rebuilt"
    );

    // A bigger top for one query: only its dataset grows and is rebuilt; all good is 0.
    std::fs::remove_file(ws.path("queries/typo.toml")).unwrap();
    query(
        &ws,
        "bears",
        "query = \"brown bear\"\ndataset = \"bears\"\ntop = 9\nengines = [\"bing\"]\n",
    );
    let report = ws.run(&["refresh", "--json"]).expect_code(0).json();
    assert_eq!(entry(&report, "bears")["added"], 3);
    assert_eq!(entry(&report, "gophers")["added"], 0);
    assert_eq!(
        builds(&report),
        [("bears".into(), "rebuilt".into()), ("gopher".into(), "up-to-date".into())]
    );
    let built = pipeline::dataset::Built::latest(&ws.store(), "bears").unwrap();
    assert_eq!(built.manifest.members.len(), 9);

    // The text form names each dataset and ends with the totals.
    let run = ws.run(&["refresh"]).expect_code(0);
    assert!(run.stdout.contains("bears: 9 images of 9 wanted (0 new)"), "{}", run.stdout);
    assert!(run.stdout.contains("bears: up to date"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("refresh: 2 query files (0 partial, 0 failed), 0 images added")
    );
}

#[test]
fn refresh_exits_at_once_when_another_run_holds_the_store() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, ""));
    query(&ws, "bears", "query = \"brown bear\"\ntop = 3\nengines = [\"bing\"]\n");
    let held = pipeline::store::Store::open(&ws.store()).unwrap();
    let run = ws.run(&["refresh", "--json"]).expect_code(75);
    assert!(
        run.stderr.contains(&format!("in use by pipeline pid {}", std::process::id())),
        "{}",
        run.stderr
    );
    assert_eq!(site.server.connections(), 0, "nothing fetched while busy");
    drop(held);

    std::fs::remove_file(ws.path("queries/bears.toml")).unwrap();
    let run = ws.run(&["refresh"]).expect_code(1);
    assert!(run.stderr.contains("no query files in queries"), "{}", run.stderr);
}

#[test]
fn a_second_refresh_exits_at_once_and_ctrl_c_stops_the_first_cleanly() {
    let site = Site::start_with_delay(std::time::Duration::from_millis(300));
    let ws = Workspace::new(&test_config(&site.server, "concurrency = 4\n"));
    query(&ws, "bears", "query = \"brown bear\"\ntop = 60\nengines = [\"bing\"]\n");
    query(&ws, "more", "query = \"more bears\"\ntop = 60\nengines = [\"bing\"]\n");
    let first = ws
        .command(&["refresh", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while ws.blobs().len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    let second = ws.run(&["refresh", "--json"]).expect_code(75);
    let holder = format!("store busy: store/lock is in use by pipeline pid {}", first.id());
    assert!(second.stderr.contains(&holder), "{}", second.stderr);

    interrupt(first.id());
    let output = first.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (report["interrupted"].as_bool(), report["exit_code"].as_u64()),
        (Some(true), Some(130))
    );
    assert_eq!(report["queries"].as_array().unwrap().len(), 1, "the second query never started");
    assert_eq!(report["builds"], serde_json::json!([]), "no build after an interrupt");
    let kept = entry(&report, "bears")["images"].as_u64().unwrap();
    assert!(kept > 0 && kept < 60, "{report}");
    let verify = ws.run(&["verify", "--json"]).expect_code(0).json();
    assert_eq!(verify["members"], kept);
}

#[test]
fn a_failed_build_is_reported_for_its_dataset_and_the_others_still_build() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, "[build]\nsize = 32\n"));
    query(
        &ws,
        "bears",
        "query = \"brown bear\"\ndataset = \"bears\"\ntop = 3\nengines = [\"bing\"]\n",
    );
    query(&ws, "gophers", "query = \"gopher\"\ntop = 3\nengines = [\"bing\"]\n");
    // A file where the bears' build folder should be: that build cannot be written.
    std::fs::create_dir_all(ws.store().join("datasets")).unwrap();
    std::fs::write(ws.store().join("datasets/bears"), "in the way").unwrap();

    let report = ws.run(&["refresh", "--json"]).expect_code(3).json();
    let failed = &report["builds"][0];
    assert_eq!(
        (failed["dataset"].as_str(), failed["build"].as_str()),
        (Some("bears"), Some("failed"))
    );
    assert!(failed["error"].as_str().unwrap().contains("store/datasets/bears"), "{failed}");
    assert_eq!(builds(&report)[1], ("gopher".into(), "rebuilt".into()));
    assert_eq!(entry(&report, "bears")["images"], 3, "the fetch itself is kept");
}

/// A query in another alphabet gets a transliterated dataset; a query with no letters at
/// all gets no dataset name, which is an error for that file, and nothing is written
/// straight into `store/datasets/`.
#[test]
fn derived_dataset_names_are_transliterated_or_refused() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, "[build]\nsize = 64\n"));
    query(&ws, "ru", "query = \"бурый медведь\"\ntop = 2\nengines = [\"bing\"]\n");
    query(&ws, "bang", "query = \"!!!\"\ntop = 2\nengines = [\"bing\"]\n");
    let report = ws.run(&["refresh", "--json"]).json();
    assert_eq!(entry(&report, "ru")["dataset"], "buryi-medved", "{report}");
    let bang = entry(&report, "bang");
    assert!(bang["error"].as_str().is_some_and(|e| e.contains("dataset name \"\"")), "{bang}");
    assert_eq!(builds(&report), [("buryi-medved".to_owned(), "rebuilt".to_owned())]);
    let stray: Vec<_> = std::fs::read_dir(ws.store().join("datasets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(stray, ["buryi-medved"], "only dataset folders in store/datasets");
}

/// Two datasets share the search results; `b` also holds a re-encoded copy of the first
/// result, so that URL is a member of `a` and a near duplicate in `b`. Each dataset keeps its
/// own decision, and a second refresh downloads nothing.
#[test]
fn urls_shared_by_two_datasets_are_downloaded_once() {
    use crate::support::site::Body;
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, "[build]\nsize = 64\n"));
    let Body::Photo(first) = &site.bodies[0] else { panic!("result 1 is a photo") };
    let photo = image::open(first).unwrap();
    let smaller = photo.resize_exact(
        photo.width() * 9 / 10,
        photo.height() * 9 / 10,
        image::imageops::FilterType::Triangle,
    );
    std::fs::create_dir_all(ws.path("copies")).unwrap();
    smaller.to_rgb8().save(ws.path("copies/first.jpg")).unwrap();
    ws.run(&["import", "copies", "--dataset", "b"]).expect_code(0);
    // top is never reached: every run goes through every result.
    for name in ["a", "b"] {
        query(
            &ws,
            name,
            &format!(
                "query = \"brown bear\"\ndataset = \"{name}\"\ntop = 1000\nengines = [\"bing\"]\n"
            ),
        );
    }
    let first = ws.run(&["refresh", "--json"]).json();
    assert!(entry(&first, "a")["downloaded"].as_u64() > Some(90), "{first}");
    // b reuses a's downloads, except a's near duplicate, whose bytes were never stored.
    assert_eq!(entry(&first, "b")["downloaded"], 1, "{first}");
    assert!(entry(&first, "b")["duplicates"].as_u64() >= Some(1), "{first}");

    let second = ws.run(&["refresh", "--json"]).json();
    for name in ["a", "b"] {
        let fetch = entry(&second, name);
        assert_eq!(fetch["downloaded"], 0, "{name}: {fetch}");
        assert_eq!(fetch["added"], 0, "{name}: {fetch}");
    }
}

/// Each query file's `[curate]` rules its own dataset's build, and only that one.
#[test]
fn a_query_files_curation_rules_its_datasets_build() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, "[build]\nsize = 32\n"));
    query(
        &ws,
        "bears",
        "query = \"brown bear\"\ndataset = \"bears\"\ntop = 3\nengines = [\"bing\"]\n[curate]\nmin_chroma = 100\n",
    );
    query(&ws, "gophers", "query = \"gopher\"\ntop = 3\nengines = [\"bing\"]\n");

    let report = ws.run(&["refresh", "--json"]).expect_code(3).json();
    let failed = &report["builds"][0];
    assert_eq!(failed["build"], "failed", "{report}");
    assert!(report["builds"][1]["dropped"].is_object(), "by reason: {report}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("curation left out all 3 members (gray 3)"), "{error}");
    assert_eq!(builds(&report)[1], ("gopher".into(), "rebuilt".into()));
}

#[test]
fn refresh_report_writes_the_report_after_the_builds() {
    let site = Site::start();
    let ws = Workspace::new(&test_config(&site.server, "[build]\nsize = 32\n"));
    query(
        &ws,
        "bears",
        "query = \"brown bear\"\ndataset = \"bears\"\ntop = 3\nengines = [\"bing\"]\n",
    );

    let run = ws.run(&["refresh", "--report", "--json"]).expect_code(0);
    assert_eq!(run.stderr, "", "quiet without a terminal");
    let report = run.json();
    assert_eq!(report["report"]["datasets"], 1, "{report}");
    assert_eq!(report["report"]["thumbnails_made"], 3, "{report}");
    let gallery = std::fs::read_to_string(ws.store().join("report/dataset-bears.html")).unwrap();
    assert_eq!(gallery.matches("<figure class=\"member").count(), 3);
    // Without --report, no report is written or mentioned.
    std::fs::remove_dir_all(ws.store().join("report")).unwrap();
    let report = ws.run(&["refresh", "--json"]).expect_code(0).json();
    assert!(report.get("report").is_none(), "{report}");
    assert!(!ws.store().join("report").exists());
}
