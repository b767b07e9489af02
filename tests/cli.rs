//! The command line's contract: config and query-file errors, store busy, exit codes, and
//! Ctrl-C draining cleanly.

use std::time::{Duration, Instant};

use crate::support::{Response, Server, Workspace, interrupt, photos, test_config};

#[test]
fn malformed_config_names_file_line_and_column() {
    let ws = Workspace::new("[network]\nconcurrency = 4\nconcurency = 8\n");
    let run = ws.run(&["status"]).expect_code(78);
    assert!(
        run.stderr.contains("pipeline.toml: line 3, column 1: unknown field `concurency`"),
        "{}",
        run.stderr
    );
    let ws = Workspace::new("[network]\ntotal_timeout_s = -5\n");
    let run = ws.run(&["status"]).expect_code(78);
    assert!(
        run.stderr.contains("network.total_timeout_s = -5: allowed: above 0"),
        "{}",
        run.stderr
    );
    let ws = Workspace::new("[network]\nprivate_allowlist = [\"10.0.0.0/8\", \"intranet\"]\n");
    let run = ws.run(&["status"]).expect_code(78);
    assert!(
        run.stderr.contains(
            "pipeline.toml: line 2, column 21: \"intranet\" is not an IP address or network"
        ),
        "{}",
        run.stderr
    );
    assert!(!ws.store().exists(), "nothing is written when the config is bad");
}

#[test]
fn bad_query_file_is_refused_with_its_range() {
    let ws = Workspace::new("");
    std::fs::write(ws.path("q.toml"), "query = \"brown bear\"\ntop = 0\n").unwrap();
    let run = ws.run(&["fetch", "--query-file", "q.toml"]).expect_code(78);
    assert!(run.stderr.contains("q.toml: top = 0: allowed: 1 to 10000"), "{}", run.stderr);
    std::fs::write(
        ws.path("q.toml"),
        "query = \"brown bear\"\ntop = 5\nengines = [\"altavista\"]\n",
    )
    .unwrap();
    let run = ws.run(&["fetch", "--query-file", "q.toml"]).expect_code(78);
    assert!(
        run.stderr.contains("q.toml: line 3, column 12: unknown variant `altavista`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_held_store_is_busy_and_names_the_holder() {
    let ws = Workspace::new("");
    let held = pipeline::store::Store::open(&ws.store()).expect("open store");
    let started = Instant::now();
    let run = ws.run(&["status"]).expect_code(75);
    assert!(started.elapsed() < Duration::from_secs(5), "busy must be reported at once");
    let expected =
        format!("store busy: store/lock is in use by pipeline pid {}", std::process::id());
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    drop(held);
    ws.run(&["status"]).expect_code(0);
}

#[test]
fn shipped_config_and_query_files_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join("pipeline.toml")).unwrap();
    pipeline::config::Config::parse(&root.join("pipeline.toml"), &config).expect("pipeline.toml");
    for name in ["brown-bear", "polar-bear"] {
        let file =
            pipeline::config::query::QueryFile::load(&root.join(format!("queries/{name}.toml")))
                .expect(name);
        assert_eq!(file.dataset.as_deref(), Some(name));
    }
}

#[test]
fn interrupt_drains_in_flight_work_and_keeps_the_store_consistent() {
    let bears = photos("brown_bear");
    let server = Server::start(move |target| {
        let n: usize =
            target.trim_start_matches("/slow/").trim_end_matches(".jpg").parse().unwrap_or(0);
        Response::ok("image/jpeg", std::fs::read(&bears[n % bears.len()]).unwrap())
            .with_delay(Duration::from_millis(200))
    });
    let ws = Workspace::new(&test_config(&server, "concurrency = 4\n"));
    let list: String =
        (0..300).map(|n| format!("{}\n", server.url(&format!("/slow/{n}.jpg")))).collect();
    std::fs::write(ws.path("urls.txt"), list).unwrap();
    let child = ws
        .command(&["import", "urls.txt", "--dataset", "slow", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while server.hits("/slow/") < 12 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted = Instant::now();
    interrupt(child.id());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert!(
        interrupted.elapsed() < Duration::from_secs(10),
        "drain took {:?}",
        interrupted.elapsed()
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("summary printed");
    let images = summary["images"].as_u64().unwrap();
    assert!(images > 0 && images < 300, "stopped midway: {summary}");
    assert_eq!(ws.blobs().len() as u64, images, "every accepted image has its blob and no more");
    assert_eq!(ws.status("slow")["images"], images);
}

/// Names that would leave the store's folders are refused before anything is opened.
#[test]
fn dataset_and_run_names_that_leave_the_store_are_refused() {
    let ws = Workspace::new("");
    for args in [
        &["build", "../outside"][..],
        &["export", "../outside", "--format", "pix2pix", "--out", "o"],
        &["import", "photos", "--dataset", "a/b"],
        &["fetch", "bear", "--dataset", ".."],
        &["eval", "--run", "../r", "--dataset", "d"],
        &["colorize", "--run", "r", "--dataset", "../d", "--out", "o"],
        &["train", "../d"],
        &["train", "d", "--run", "../r"],
    ] {
        let run = ws.run(args).expect_code(2);
        assert!(run.stderr.contains("use 1-100 of a-z 0-9 - _ ."), "{args:?}: {}", run.stderr);
    }
    assert!(!ws.path("outside").exists() && !ws.store().exists());
}

#[test]
fn a_store_url_of_another_scheme_is_refused_not_made_a_folder() {
    let ws = Workspace::new("");
    for store in ["gs://bucket/bears", "file:///tmp/bears", "S3://bucket/bears"] {
        let run = ws.run(&["status", "--store", store]).expect_code(2);
        assert!(
            run.stderr.contains("only s3://BUCKET[/PREFIX] buckets"),
            "{store}: {}",
            run.stderr
        );
    }
    let made: Vec<_> =
        std::fs::read_dir(ws.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(made, ["pipeline.toml"], "no folder named after the URL");
}

/// Every usage error exits 2, as clap's own do, naming what is wrong, before anything is
/// opened or run.
#[test]
fn usage_errors_exit_2_before_anything_runs() {
    let ws = Workspace::new("");
    for (args, says) in [
        (&["train"][..], "DATASET"),
        (&["train", "d", "--epochs", "0"], "--epochs"),
        (&["train", "d", "--minutes", "0"], "--minutes"),
        (&["train", "d", "--minutes", "nan"], "--minutes"),
        (&["train", "d", "--device", "gpu"], "--device"),
        (&["train", "d", "--dist"], "--run"),
        (&["eval", "--run", "r", "--dataset", "d", "--device", "tpu"], "--device"),
        (&["fetch", ""], "QUERY"),
        (&["fetch", "  "], "QUERY"),
        (&["import", "--dataset", "d"], "folder or a URL list"),
        (&["build", "--shard", "0"], "--shard"),
        (&["label", "--shards", "2"], "--shards"),
        (&["merge", "--dataset", "d"], "bucket store"),
    ] {
        let run = ws.run(args).expect_code(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert!(!ws.store().exists(), "no store was made");
}

/// The config is found as cargo finds its manifest: from a subfolder, the project's
/// `pipeline.toml` and its paths (written ones relative to the file, default ones to its
/// folder); `PIPELINE_CONFIG` names another; `PIPELINE_<SECTION>__<KEY>` sets one key, and
/// a bad one is refused naming the variable.
#[test]
fn the_config_is_found_upward_and_variables_set_single_keys() {
    let ws = Workspace::new("[store]\npath = \"data/store\"\n");
    let photos = crate::support::shared("data/demo_cc0");
    std::fs::create_dir_all(ws.path("deep/er")).unwrap();
    let from = |dir: &str, args: &[&str], vars: &[(&str, &str)]| {
        let mut command = ws.command(args);
        command.current_dir(ws.path(dir)).envs(vars.iter().copied());
        crate::support::Run::from(command.output().unwrap())
    };
    let import = ["import", photos.to_str().unwrap(), "--dataset", "demo", "--json"];
    from("deep/er", &import, &[]).expect_code(0);
    assert!(ws.path("data/store/index").is_dir(), "the project's store, from two folders down");
    assert!(!ws.path("deep/er/data").exists() && !ws.path("deep/er/store").exists());

    std::fs::write(ws.path("deep/other.toml"), "[store]\npath = \"elsewhere\"\n").unwrap();
    let status = from("deep/er", &["status", "--json"], &[("PIPELINE_CONFIG", "../other.toml")]);
    assert_eq!(status.expect_code(0).json()["datasets"], serde_json::json!([]));
    assert!(ws.path("deep/elsewhere").is_dir(), "a path written in a file is the file's folder's");

    let vars = [("PIPELINE_STORE__PATH", "by-env")];
    from("deep/er", &["status", "--json"], &vars).expect_code(0);
    assert!(ws.path("deep/er/by-env").is_dir(), "a variable's path is the working folder's");
    let bad = from("deep", &["status"], &[("PIPELINE_IMAGES__MIN_SIDE", "0")]).expect_code(78);
    assert!(
        bad.stderr.contains("with PIPELINE_IMAGES__MIN_SIDE: images.min_side"),
        "{}",
        bad.stderr
    );
    let typo = from("deep", &["status"], &[("PIPELINE_NETWORK__CONCURENCY", "8")]).expect_code(78);
    assert!(typo.stderr.contains("unknown field `concurency`"), "{}", typo.stderr);
}

/// `--version` names the commit and features; completions and the man page come from the
/// command line's own definition; `-q` hides the progress a terminal would show.
#[test]
fn version_completions_man_page_and_quiet() {
    let ws = Workspace::new("");
    let version = ws.run(&["--version"]).expect_code(0).stdout;
    let commit = version.split("(commit ").nth(1).and_then(|v| v.split(',').next()).unwrap();
    let hex = commit.trim_end_matches("-dirty");
    assert!(hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{version}");
    assert!(version.contains(", features: "), "{version}");
    let bash = ws.run(&["completions", "bash"]).expect_code(0).stdout;
    assert!(bash.contains("_pipeline()") && bash.contains("shard-urls"), "a bash completion");
    let man = ws.run(&["man"]).expect_code(0).stdout;
    assert!(man.contains(".TH pipeline") && man.contains("export\\-model"), "a roff page");

    // On a terminal (script(1) gives the command one) the import draws its progress bar;
    // with -q it does not, and still prints its summary.
    let photos = crate::support::shared("data/demo_cc0");
    let on_terminal = |quiet: &str, dataset: &str| {
        let line = format!(
            "{} {quiet} import {} --dataset {dataset}",
            env!("CARGO_BIN_EXE_pipeline"),
            photos.display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            // A terminal that draws: indicatif draws nothing on TERM=dumb (an editor's
            // shell, a clean container's), as such a terminal asks.
            .env("TERM", "xterm-256color")
            .current_dir(ws.dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said} {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_terminal("", "shown");
    assert!(shown.contains("[00:00:"), "a progress bar: {shown}");
    let quiet = on_terminal("-q", "quiet");
    assert!(!quiet.contains("[00:00:") && quiet.contains("quiet: "), "{quiet}");
}
