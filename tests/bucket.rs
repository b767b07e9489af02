//! Bucket stores end to end against a real S3 server (SeaweedFS on 127.0.0.1, started per
//! test): shard plans, idempotent shard workers (rerun, killed, two at once), merge, build
//! into the bucket, and the errors a wrong key or a missing bucket give.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::engines::Engine;
use crate::support::{Response, Server, Workspace, bears, test_config};

/// Ten brown bears, then a 404, a line that is no URL, and two copies of earlier bears
/// (exact, and re-encoded: a near duplicate), so that with 3 shards the copies fall in
/// another shard than their originals.
pub struct Corpus {
    pub server: Server,
    pub list: String,
}

pub fn corpus(delay: Duration) -> Corpus {
    served(move |_, body| match body {
        Some(body) => Response::ok("image/jpeg", body.to_vec()).with_delay(delay),
        None => Response::status(404),
    })
}

/// The corpus on a server that answers each request with `answer(target, body)`, `body`
/// the image at that URL (`None`: no such image).
fn served(answer: impl Fn(&str, Option<&[u8]>) -> Response + Send + Sync + 'static) -> Corpus {
    let mut bodies: Vec<Vec<u8>> = bears(0..10).iter().map(|p| std::fs::read(p).unwrap()).collect();
    bodies.push(bodies[2].clone());
    let rgb = image::load_from_memory(&bodies[5]).unwrap().to_rgb8();
    let mut near = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut near, 80).encode_image(&rgb).unwrap();
    bodies.push(near);
    let server = Server::start(move |target| {
        let n = target.trim_start_matches("/b/").trim_end_matches(".jpg").parse::<usize>();
        answer(target, n.ok().and_then(|n| bodies.get(n)).map(Vec::as_slice))
    });
    let url = |n: usize| server.url(&format!("/b/{n}.jpg"));
    let mut list = String::from("# brown bears, sharded\n");
    for n in 0..7 {
        list.push_str(&format!("{}\n", url(n)));
    }
    list.push_str(&format!("{}\nnot a url\n", url(404)));
    for n in 7..12 {
        list.push_str(&format!("{}\n", url(n)));
    }
    Corpus { server, list }
}

/// The workspace config: loopback images, small builds, the bucket's cache in the
/// workspace.
pub fn config(server: &Server) -> String {
    test_config(server, "[store]\ncache = \"cache\"\n[build]\nsize = 32\n")
}

/// Imports the corpus into a folder store, as one machine would, and builds it: the
/// member hashes and the build version.
pub fn one_import(corpus: &Corpus) -> (BTreeSet<String>, String) {
    let ws = Workspace::new(&config(&corpus.server));
    std::fs::write(ws.path("urls.txt"), &corpus.list).unwrap();
    let summary =
        ws.run(&["import", "urls.txt", "--dataset", "bears", "--json"]).expect_code(0).json();
    assert_eq!(summary["images"], 10, "{summary}");
    assert_eq!(summary["duplicates"], 2, "the exact and the near copy: {summary}");
    ws.run(&["build"]).expect_code(0);
    let status = ws.status("bears");
    let members: BTreeSet<String> =
        ws.blobs().iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    (members, status["build"]["version"].as_str().unwrap().to_owned())
}

/// The member hashes `merge` wrote to the bucket.
pub fn merged_members(s3: &Engine, bucket: &str, prefix: &str) -> BTreeSet<String> {
    let bytes = s3.get(bucket, &format!("{prefix}/members/bears.jsonl"));
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["hash"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A SeaweedFS, a workspace over `corpus` (config `config`, its URL list written), and a
/// plan of dataset `bears` in `shards` shards in `s3://test/PREFIX`.
pub struct Planned {
    pub s3: Engine,
    pub ws: Workspace,
    pub env: Vec<(String, String)>,
    /// `--store s3://test/PREFIX`.
    pub store: [String; 2],
}

impl Planned {
    pub fn new(corpus: &Corpus, config: &str, prefix: &str, shards: &str) -> Planned {
        let s3 = Engine::s3();
        let ws = Workspace::new(config);
        std::fs::write(ws.path("urls.txt"), &corpus.list).unwrap();
        let env = s3.vars();
        let planned =
            Planned { s3, ws, env, store: ["--store".into(), format!("s3://test/{prefix}")] };
        planned
            .run(&["shard-urls", "urls.txt", "--dataset", "bears", "--shards", shards])
            .expect_code(0);
        planned
    }

    /// `pipeline ARGS --store s3://test/PREFIX` with the engine's variables.
    pub fn run(&self, args: &[&str]) -> crate::support::Run {
        self.ws.run_with(&self.args(args), &self.env)
    }

    /// ARGS and the `--store` option.
    pub fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        args.iter().copied().chain(self.store.iter().map(String::as_str)).collect()
    }

    /// The command for ARGS with the engine's variables, not started.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = self.ws.command(&self.args(args));
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }
}

fn with(vars: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = vars.to_vec();
    all.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    all
}

#[test]
fn sharded_import_merge_and_build_equal_one_import() {
    let s3 = Engine::s3();
    let corpus = corpus(Duration::ZERO);
    let ws = Workspace::new(&config(&corpus.server));
    std::fs::write(ws.path("urls.txt"), &corpus.list).unwrap();
    let env = s3.vars();
    let store = "s3://test/bears";
    let args = |rest: &[&'static str]| [rest, &["--store", store]].concat();

    let plan = ws
        .run_with(&args(&["shard-urls", "urls.txt", "--dataset", "bears", "--shards", "3"]), &env);
    assert!(plan.expect_code(0).stdout.contains("bears: 14 URLs in 3 shards (0 to 2)"));
    let shard0 =
        ws.run_with(&args(&["import", "--dataset", "bears", "--shard", "0", "--json"]), &env);
    assert_eq!(shard0.expect_code(0).json()["images"], 4);

    // Merging before every shard is done names the missing ones and writes nothing.
    let early = ws.run_with(&args(&["merge", "--dataset", "bears"]), &env).expect_code(3);
    assert!(
        early.stderr.contains("2 of 3 shards are not done yet (shards 1, 2)"),
        "{}",
        early.stderr
    );
    assert!(s3.keys("test", "bears/members").is_empty());

    // The shard comes from the job array's index: Slurm's, then Kubernetes'.
    let slurm = with(&env, &[("SLURM_ARRAY_TASK_ID", "1")]);
    let shard1 = ws
        .run_with(&args(&["import", "--dataset", "bears", "--json"]), &slurm)
        .expect_code(0)
        .json();
    assert_eq!(shard1["failures"], serde_json::json!({"bad-url": 1, "http-404": 1}));
    let k8s = with(&env, &[("JOB_COMPLETION_INDEX", "2")]);
    let shard2 =
        ws.run_with(&args(&["import", "--dataset", "bears", "--json"]), &k8s).expect_code(0).json();
    assert_eq!(shard2["images"], 5, "near copies are merge's to drop: {shard2}");
    assert_eq!(shard2["blobs_created"], 4, "the exact copy's blob was there: {shard2}");

    // A rerun of a finished shard downloads nothing.
    let hits = corpus.server.hits("/b/");
    let again =
        ws.run_with(&args(&["import", "--dataset", "bears", "--shard", "0"]), &env).expect_code(0);
    assert!(again.stdout.contains("bears shard 0: already done"), "{}", again.stdout);
    assert_eq!(corpus.server.hits("/b/"), hits);

    let merged =
        ws.run_with(&args(&["merge", "--dataset", "bears", "--json"]), &env).expect_code(0).json();
    assert_eq!(merged["members"], 10, "{merged}");
    assert_eq!(merged["duplicates"], 2, "the exact and the near copy, across shards: {merged}");
    assert_eq!(merged["failures"], serde_json::json!({"bad-url": 1, "http-404": 1}));
    assert_eq!(s3.keys("test", "bears/blobs").len(), 11, "one object per distinct image");

    let built = ws.run_with(&args(&["build"]), &env).expect_code(0);
    assert!(built.stdout.contains("bears: built "), "{}", built.stdout);
    let status = ws.run_with(&args(&["status", "--json"]), &env).expect_code(0).json();
    let row = &status["datasets"][0];
    assert_eq!((row["shards"].as_u64(), row["shards_done"].as_u64()), (Some(3), Some(3)), "{row}");
    let version = row["build"].as_str().unwrap().to_owned();
    let manifest = format!("bears/datasets/bears/{version}/manifest.json");
    assert!(s3.keys("test", "bears/datasets").contains(&manifest), "the build is in the bucket");
    let card = s3.get("test", &format!("bears/datasets/bears/{version}/README.md"));
    let card = String::from_utf8(card).unwrap();
    assert!(card.contains("Honoured by every fetch from the web"), "the workers' policy: {card}");

    let (members, single_version) = one_import(&corpus);
    assert_eq!(merged_members(&s3, "test", "bears"), members, "the same members as one import");
    assert_eq!(version, single_version, "the same build version as one import");

    // Export (and everything else that reads builds) reads this machine's cache.
    ws.run_with(&args(&["export", "bears", "--format", "pix2pix", "--out", "out"]), &env)
        .expect_code(0);
    assert!(ws.path("out").is_dir());
    // A second build, elsewhere or here, is up to date and uploads nothing new.
    let rebuilt = ws.run_with(&args(&["build"]), &env).expect_code(0);
    assert!(
        rebuilt.stdout.contains(&format!("bears: up to date ({version})")),
        "{}",
        rebuilt.stdout
    );
    assert!(!rebuilt.stdout.contains("uploaded"), "{}", rebuilt.stdout);
}

#[test]
fn a_killed_worker_leaves_no_marker_and_its_shard_reruns_whole() {
    let s3 = Engine::s3();
    let corpus = corpus(Duration::from_millis(400));
    let ws = Workspace::new(&config(&corpus.server));
    std::fs::write(ws.path("urls.txt"), &corpus.list).unwrap();
    let env = s3.vars();
    let store = ["--store", "s3://test/killed"];
    let plan =
        [&["shard-urls", "urls.txt", "--dataset", "bears", "--shards", "1"][..], &store].concat();
    ws.run_with(&plan, &env).expect_code(0);

    let import = [&["import", "--dataset", "bears", "--shard", "0"][..], &store].concat();
    let mut worker = ws.command(&import);
    worker.envs(env.iter().map(|(k, v)| (k, v))).stdout(std::process::Stdio::null());
    let mut child = worker.stderr(std::process::Stdio::null()).spawn().unwrap();
    while corpus.server.hits("/b/") < 3 {
        assert!(child.try_wait().unwrap().is_none(), "the worker ended before it was killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(s3.keys("test", "killed/shards").is_empty(), "no manifest, no marker");

    let rerun = ws.run_with(&[&import[..], &["--json"]].concat(), &env).expect_code(0).json();
    assert_eq!(
        (rerun["status"].as_str(), rerun["images"].as_u64()),
        (Some("done"), Some(11)),
        "{rerun}"
    );
    let merged = [&["merge", "--dataset", "bears", "--json"][..], &store].concat();
    assert_eq!(ws.run_with(&merged, &env).expect_code(0).json()["members"], 10);
}

#[test]
fn two_workers_on_overlapping_shards_store_each_image_once() {
    let s3 = Engine::s3();
    let corpus = corpus(Duration::from_millis(50));
    let ws = Workspace::new(&config(&corpus.server));
    std::fs::write(ws.path("urls.txt"), &corpus.list).unwrap();
    let env = s3.vars();
    let store = ["--store", "s3://test/overlap"];
    let plan =
        [&["shard-urls", "urls.txt", "--dataset", "bears", "--shards", "3"][..], &store].concat();
    ws.run_with(&plan, &env).expect_code(0);

    // Spark's RDD.pipe contract: shard numbers on stdin, one JSON line per shard out.
    let import = [&["import", "--dataset", "bears", "--shards-from-stdin"][..], &store].concat();
    let workers: Vec<_> = ["0\n1\n", "1\n2\n"]
        .iter()
        .map(|ids| {
            let mut command = ws.command(&import);
            command.envs(env.iter().map(|(k, v)| (k, v)));
            command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
            let mut child = command.stderr(std::process::Stdio::piped()).spawn().unwrap();
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(ids.as_bytes()).unwrap();
            child
        })
        .collect();
    let mut lines = Vec::new();
    for child in workers {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            lines.push(serde_json::from_str::<serde_json::Value>(line).unwrap());
        }
    }
    assert_eq!(lines.len(), 4, "one line per shard given: {lines:?}");
    assert!(lines.iter().all(|l| l["status"] == "done" || l["status"] == "skipped"), "{lines:?}");
    let shard1: Vec<_> = lines.iter().filter(|l| l["shard"] == 1).collect();
    assert_eq!(shard1.len(), 2);

    assert_eq!(s3.keys("test", "overlap/blobs").len(), 11, "one object per distinct image");
    assert_eq!(s3.keys("test", "overlap/shards/bears/_done").len(), 3);
    let merged = [&["merge", "--dataset", "bears", "--json"][..], &store].concat();
    assert_eq!(ws.run_with(&merged, &env).expect_code(0).json()["members"], 10);
}

#[test]
fn a_wrong_key_or_a_missing_bucket_is_a_clear_error_before_any_write() {
    let s3 = Engine::s3();
    let server = Server::start(|_| Response::status(404));
    let ws = Workspace::new(&config(&server));
    std::fs::write(ws.path("urls.txt"), "http://127.0.0.1:9/a.jpg\n").unwrap();
    let plan = ["shard-urls", "urls.txt", "--dataset", "bears", "--shards", "1"];

    let wrong = with(&s3.vars(), &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")]);
    let denied =
        ws.run_with(&[&plan[..], &["--store", "s3://test/keys"]].concat(), &wrong).expect_code(77);
    assert!(denied.stderr.contains("s3://test/keys: access denied"), "{}", denied.stderr);
    assert!(denied.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{}", denied.stderr);
    assert!(s3.keys("test", "keys").is_empty());

    let missing =
        ws.run_with(&[&plan[..], &["--store", "s3://no-such-bucket/x"]].concat(), &s3.vars());
    let missing = missing.expect_code(78);
    assert!(
        missing.stderr.contains("s3://no-such-bucket/x: the bucket does not exist"),
        "{}",
        missing.stderr
    );

    // Commands that write a folder store say so, and where this machine's cache is.
    let fetch =
        ws.run_with(&["fetch", "bears", "--store", "s3://test/keys"], &s3.vars()).expect_code(1);
    assert!(fetch.stderr.contains("`fetch` works on a folder store"), "{}", fetch.stderr);
    let import = ws.run_with(
        &["import", "urls.txt", "--dataset", "b", "--store", "s3://test/keys"],
        &s3.vars(),
    );
    assert!(import.expect_code(1).stderr.contains("a bucket store imports shards"));
    let no_plan = ws.run_with(
        &["import", "--dataset", "b", "--shard", "0", "--store", "s3://test/keys"],
        &s3.vars(),
    );
    let no_plan = no_plan.expect_code(78);
    assert!(
        no_plan.stderr.contains("no shard plan for dataset b in s3://test/keys"),
        "{}",
        no_plan.stderr
    );
}

/// The corpus, but the first request for each URL is answered with a 503 after `delay`:
/// a worker that makes it meets a transient failure.
fn flaky_corpus(delay: Duration) -> Corpus {
    let first = std::sync::Mutex::new(std::collections::HashSet::new());
    served(move |target, body| {
        if first.lock().unwrap().insert(target.to_owned()) {
            return Response::status(503).with_delay(delay);
        }
        match body {
            Some(body) => Response::ok("image/jpeg", body.to_vec()),
            None => Response::status(404),
        }
    })
}

/// Finding 9 of issue 20: a second worker on a shard (a Slurm requeue, a speculative
/// re-run) that finishes after the first committed must not replace what the first
/// committed: merge reads the manifest the marker names, and counts from it.
#[test]
fn a_late_second_worker_never_replaces_the_committed_manifest() {
    let corpus = flaky_corpus(Duration::from_secs(5));
    let bucket = Planned::new(&corpus, &config(&corpus.server), "late", "1");
    // The late worker takes every image at once and does not retry its 503s.
    let config = std::fs::read_to_string(bucket.ws.path("pipeline.toml")).unwrap();
    let late = config.replace("retries = 1\n", "retries = 0\nper_host = 16\n");
    std::fs::write(bucket.ws.path("late.toml"), late).unwrap();

    let import = ["import", "--dataset", "bears", "--shard", "0", "--json"];
    let mut late = bucket.command(&[&import[..], &["--config", "late.toml"]].concat());
    late.stderr(std::process::Stdio::null());
    let late = late.stdout(std::process::Stdio::piped()).spawn().unwrap();
    while corpus.server.hits("/b/") < 13 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Meanwhile another worker does the shard and commits it.
    let first = bucket.run(&import).expect_code(0).json();
    assert_eq!((first["status"].as_str(), first["images"].as_u64()), (Some("done"), Some(11)));
    let late = late.wait_with_output().unwrap();
    assert!(late.status.success());
    let late: serde_json::Value = serde_json::from_slice(
        late.stdout.trim_ascii_end().rsplit(|b| *b == b'\n').next().unwrap(),
    )
    .unwrap();
    assert_eq!(late["status"], "skipped", "the first marker stands: {late}");
    assert_eq!(late["images"], 11, "and its counts are the first worker's: {late}");

    let merged = bucket.run(&["merge", "--dataset", "bears", "--json"]).expect_code(0).json();
    assert_eq!(merged["members"], 10, "{merged}");
    assert_eq!(merged["failures"], serde_json::json!({"bad-url": 1, "http-404": 1}), "{merged}");
    let manifests: Vec<String> = bucket
        .s3
        .keys("test", "late/shards/bears")
        .into_iter()
        .filter(|k| k.contains("/manifest-"))
        .collect();
    assert_eq!(manifests.len(), 1, "the late worker removed its own: {manifests:?}");
}

/// A done shard's transient failures are retried by `import --shard N --redo`, which
/// does the shard again, whole, and commits it anew.
#[test]
fn redo_retries_a_done_shard_with_transient_failures() {
    let corpus = flaky_corpus(Duration::ZERO);
    let config = config(&corpus.server).replace("retries = 1\n", "retries = 0\n");
    let bucket = Planned::new(&corpus, &config, "redo", "1");
    let import = ["import", "--dataset", "bears", "--shard", "0", "--json"];
    let flaky = bucket.run(&import).expect_code(0).json();
    assert_eq!(flaky["failures"]["http-503"], 13, "{flaky}");
    let again = bucket.run(&import).expect_code(0).json();
    assert_eq!(again["status"], "skipped", "a done shard is not redone unasked");

    let redo = bucket.run(&[&import[..], &["--redo"]].concat()).expect_code(0).json();
    assert_eq!((redo["status"].as_str(), redo["images"].as_u64()), (Some("done"), Some(11)));
    let merged = bucket.run(&["merge", "--dataset", "bears", "--json"]).expect_code(0).json();
    assert_eq!(merged["members"], 10, "{merged}");
    assert_eq!(merged["failures"], serde_json::json!({"bad-url": 1, "http-404": 1}), "{merged}");
}

/// Finding 10 of issue 20: SIGTERM (a Slurm time limit, `scancel`, a pod's deletion) is
/// handled like Ctrl-C by a shard worker: it drains, removes its scratch store and exits
/// 143; the scratch a dead worker left is removed by the next worker that starts.
#[test]
fn a_terminated_worker_cleans_up_and_the_next_removes_a_dead_ones_scratch() {
    let corpus = corpus(Duration::from_millis(400));
    let mut bucket = Planned::new(&corpus, &config(&corpus.server), "term", "1");
    let tmp = bucket.ws.path("tmpdir");
    bucket.env.push(("TMPDIR".into(), tmp.display().to_string()));

    // What a worker killed with SIGKILL leaves: its scratch store, its lock held by no one.
    let dead = tmp.join("pipeline-shard-bears-0-dead00");
    std::fs::create_dir_all(dead.join("store/blobs/ab")).unwrap();
    std::fs::write(dead.join("store/lock"), "4194303\n").unwrap();
    std::fs::write(dead.join("store/blobs/ab/photo.jpg"), vec![0u8; 4096]).unwrap();
    let lock = dead.join("store/lock");
    let old = std::process::Command::new("touch").arg("-d").arg("1 hour ago").arg(&lock).status();
    assert!(old.unwrap().success());
    // One that is just starting (no lock yet, made now) is left alone.
    let starting = tmp.join("pipeline-shard-bears-0-new000");
    std::fs::create_dir_all(&starting).unwrap();

    let mut worker = bucket.command(&["import", "--dataset", "bears", "--shard", "0"]);
    worker.stdout(std::process::Stdio::null());
    let mut child = worker.stderr(std::process::Stdio::piped()).spawn().unwrap();
    while corpus.server.hits("/b/") < 3 {
        assert!(child.try_wait().unwrap().is_none(), "the worker ended before SIGTERM");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!dead.exists(), "the dead worker's scratch was removed at start");
    assert!(starting.exists(), "a starting worker's was not");
    std::fs::remove_dir(&starting).unwrap();
    let own: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert_eq!(own.len(), 1, "the live worker's own scratch is there");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted before it finished"), "{stderr}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "its scratch store is gone");
    assert!(bucket.s3.keys("test", "term/shards").is_empty(), "no manifest, no marker");
}

/// Issue 24: `shard-urls` streams a list of any size, here from standard input, into its
/// parts (the one part of 300,000 URLs, 13 MB, goes up as a multipart upload); the parts
/// are the list, verbatim; the same list again is the same plan, a different cut is
/// refused (exit 78, as any other plan conflict).
#[test]
fn shard_urls_streams_standard_input_into_parts_verbatim() {
    let s3 = Engine::s3();
    let ws = Workspace::new("");
    let list: String = (0..300_000)
        .map(|i| match i % 1000 {
            0 => format!("# block {i}\n"),
            _ => format!("http://images.example/bears/{i:08}.jpg\n"),
        })
        .collect();
    std::fs::write(ws.path("urls.txt"), &list).unwrap();
    let store = ["--store", "s3://test/stdin"];
    let shard = |path: &str, shards: &str| {
        let args = [&["shard-urls", path, "--dataset", "bears", "--shards", shards][..], &store];
        let mut command = ws.command(&args.concat());
        command.envs(s3.vars());
        command.stdin(std::fs::File::open(ws.path("urls.txt")).unwrap());
        crate::support::Run::from(command.output().unwrap())
    };
    let run = shard("-", "1").expect_code(0);
    assert!(run.stdout.contains("299700 URLs in 1 shards"), "{}", run.stdout);
    let part = s3.get("test", "stdin/plan/bears/part-00000.txt");
    assert!(part == list.as_bytes(), "the part is the list, verbatim");
    shard("-", "1").expect_code(0);
    let refused = shard("-", "4").expect_code(78);
    assert!(refused.stderr.contains("different shard plan"), "{}", refused.stderr);
}
