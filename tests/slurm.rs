//! Slurm for real: a one-node cluster (Debian's slurmctld, slurmd and munge, unpacked by
//! scripts/engines) runs `pipeline import` once per shard of a job array into SeaweedFS
//! (merge and build then equal one `pipeline import` of the same URLs), `label` and
//! `build` as job arrays (the same bytes as one machine's build), and the two ranks of a
//! `train --dist` run as one `srun -n 2` step.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::bucket::{config, corpus, merged_members, one_import};
use crate::support::engines::Engine;
use crate::support::{Workspace, test_config};

/// Runs `command` as a job array of `tasks` tasks and waits for it; each task's log.
fn sbatch(
    ws: &Workspace,
    env: &[(String, String)],
    command: &str,
    tasks: usize,
    out: &str,
) -> Vec<String> {
    let status = std::process::Command::new("sbatch")
        .args(["--wait", &format!("--array=0-{}", tasks - 1)])
        .args(["--chdir", ws.dir.path().to_str().unwrap()])
        .args(["--output", out, "--wrap", command])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(status.status.success(), "sbatch: {}", String::from_utf8_lossy(&status.stderr));
    (0..tasks)
        .map(|task| {
            std::fs::read_to_string(ws.path(&out.replace("%a", &task.to_string()))).unwrap()
        })
        .collect()
}

/// `pipeline ARGS --store STORE` with the workspace's config, as a job array runs it.
fn task_command(ws: &Workspace, args: &str, store: &str) -> String {
    format!(
        "{} {args} --store {store} --config {}",
        env!("CARGO_BIN_EXE_pipeline"),
        ws.path("pipeline.toml").display()
    )
}

#[test]
fn a_slurm_job_array_of_workers_equals_one_import() {
    let s3 = Engine::s3();
    let slurm = Engine::slurm();
    let corpus = corpus(Duration::ZERO);
    let ws = Workspace::new(&config(&corpus.server));
    std::fs::write(ws.path("urls.txt"), &corpus.list).unwrap();
    let mut env = s3.vars();
    env.extend(slurm.vars());
    let store = "s3://test/slurm";
    let plan = ["shard-urls", "urls.txt", "--dataset", "bears", "--shards", "4", "--store", store];
    ws.run_with(&plan, &env).expect_code(0);

    // The README's command line: the job array's index is the shard.
    let worker = task_command(&ws, "import --dataset bears", store);
    let logs = sbatch(&ws, &env, &worker, 4, "first-%a.log");
    for (task, log) in logs.iter().enumerate() {
        assert!(log.contains(&format!("bears shard {task}: ")), "task {task}: {log}");
    }
    assert_eq!(s3.keys("test", "slurm/shards/bears/_done").len(), 4);

    // The array again (a requeue, or a user's rerun): every shard is done, nothing is
    // downloaded.
    let hits = corpus.server.hits("/b/");
    for log in sbatch(&ws, &env, &worker, 4, "again-%a.log") {
        assert!(log.contains(": already done on "), "{log}");
    }
    assert_eq!(corpus.server.hits("/b/"), hits);

    let merged = ws.run_with(&["merge", "--dataset", "bears", "--json", "--store", store], &env);
    assert_eq!(merged.expect_code(0).json()["members"], 10);
    ws.run_with(&["build", "--store", store], &env).expect_code(0);
    let status = ws.run_with(&["status", "--json", "--store", store], &env).expect_code(0).json();
    let (members, version) = one_import(&corpus);
    assert_eq!(merged_members(&s3, "test", "slurm"), members, "the same members as one import");
    assert_eq!(
        status["datasets"][0]["build"],
        version.as_str(),
        "the same build version: {status}"
    );
}

#[cfg(feature = "train")]
#[test]
fn srun_launches_the_ranks_of_a_distributed_run() {
    let slurm = Engine::slurm();
    let ws = crate::support::built_bears(crate::dist::TINY, 12);
    let port = crate::dist::free_port().to_string();
    // srun sets SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID; one node, so the ranks meet
    // on 127.0.0.1.
    let out = std::process::Command::new("srun")
        .args([
            "-n",
            "2",
            "--chdir",
            ws.dir.path().to_str().unwrap(),
            env!("CARGO_BIN_EXE_pipeline"),
        ])
        .args(["train", "bears", "--device", "cpu", "--run", "srun", "--epochs", "2", "--dist"])
        .envs(slurm.vars().iter().map(|(k, v)| (k, v)))
        .envs([("MASTER_PORT", port.as_str()), ("OMP_NUM_THREADS", "1")])
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("run srun: rank 1 of 2 done"), "{stdout}");
    assert!(ws.store().join("runs/srun/checkpoints/epoch-00002").is_dir(), "{stdout}");
}

/// The objects under `PREFIX/datasets/` of the test bucket: key (less the prefix) -> bytes.
fn builds(s3: &Engine, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let keys = s3.keys("test", &format!("{prefix}/datasets"));
    keys.into_iter().map(|k| (k[prefix.len()..].to_owned(), s3.get("test", &k))).collect()
}

/// A build spread over two job arrays (labels, then shard files) gives the version one
/// machine builds from the same merge, byte for byte; a task killed after part of its
/// upload redoes its part; the version is committed once.
#[test]
fn a_slurm_job_array_builds_what_one_machine_builds() {
    let s3 = Engine::s3();
    let slurm = Engine::slurm();
    let corpus = corpus(Duration::ZERO);
    let settings = "[store]\ncache = \"cache\"\n[build]\nsize = 32\nshard_size = 2\n";
    let ws = Workspace::new(&test_config(&corpus.server, settings));
    std::fs::write(ws.path("urls.txt"), &corpus.list).unwrap();
    let mut env = s3.vars();
    env.extend(slurm.vars());
    let store = "s3://test/array";
    let run = |args: &[&str]| ws.run_with(&[args, &["--store", store]].concat(), &env);
    let plan = run(&["shard-urls", "urls.txt", "--dataset", "bears", "--shards", "2", "--json"]);
    let plan = plan.expect_code(0).json();
    assert_eq!((plan["urls"].as_u64(), plan["shards"].as_u64()), (Some(14), Some(2)), "{plan}");
    for shard in ["0", "1"] {
        run(&["import", "--dataset", "bears", "--shard", shard]).expect_code(0);
    }
    run(&["merge", "--dataset", "bears"]).expect_code(0);

    // One machine's build of a copy of the merged bucket: the bytes to match.
    for key in s3.keys("test", "array") {
        s3.put("test", &key.replacen("array/", "one/", 1), s3.get("test", &key));
    }
    ws.run_with(&["build", "--store", "s3://test/one"], &env).expect_code(0);
    let one = builds(&s3, "one");
    let version = String::from_utf8(one["/datasets/bears/latest"].clone()).unwrap();
    let version = version.trim();
    let manifest: serde_json::Value =
        serde_json::from_slice(&one[&format!("/datasets/bears/{version}/manifest.json")]).unwrap();
    let files: Vec<&str> = manifest["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 5, "1 or 2 shard files a task: {files:?}");

    // Building before every member is labelled says so and writes nothing.
    let early = run(&["build", "--shard", "0", "--shards", "3"]).expect_code(3);
    assert!(
        early.stderr.contains("10 of 10 members of bears have no label yet"),
        "{}",
        early.stderr
    );
    assert!(s3.keys("test", "array/datasets").is_empty());

    let labels = sbatch(&ws, &env, &task_command(&ws, "label", store), 3, "label-%a.log");
    for (task, log) in labels.iter().enumerate() {
        assert!(log.contains(&format!("bears labels, part {task} of 3: done")), "{log}");
    }

    // What task 1 leaves when killed after creating its first shard file: that file, and
    // no marker.
    let first = files[files.len() / 3];
    let key = format!("/datasets/bears/{version}/{first}");
    s3.put("test", &format!("array{key}"), one[&key].clone());

    let build = task_command(&ws, "build", store);
    for (task, log) in sbatch(&ws, &env, &build, 3, "build-%a.log").iter().enumerate() {
        assert!(log.contains(&format!("bears {version}, part {task} of 3: built")), "{log}");
    }
    assert_eq!(s3.keys("test", &format!("array/builds/bears/{version}")).len(), 3);
    assert_eq!(builds(&s3, "array"), one, "the same files as one machine's build, byte for byte");

    // The array again: every part is there, the commit stands.
    let manifest_key = format!("array/datasets/bears/{version}/manifest.json");
    let modified = || s3.modified("test", &manifest_key);
    let committed = modified();
    for log in sbatch(&ws, &env, &build, 3, "again-%a.log") {
        assert!(log.contains(": skipped (0 shard files); version committed"), "{log}");
    }
    assert_eq!(modified(), committed, "manifest.json is created once");
    assert_eq!(builds(&s3, "array"), one);

    // A machine that did not build reads the build's shard files, not the members' blobs.
    std::fs::remove_dir_all(ws.path("cache")).unwrap();
    let export = run(&["export", "bears", "--format", "pix2pix", "--out", "out"]).expect_code(0);
    assert!(export.stderr.contains(&format!("bears: 5 shard files of version {version}")));
    let entries = std::fs::read_dir(ws.path("out/train")).unwrap().filter_map(Result::ok);
    let pairs = entries.filter(|e| e.path().extension().is_some_and(|x| x == "png")).count();
    assert_eq!(pairs, manifest["counts"]["train"].as_u64().unwrap() as usize);
    let cached = walkdir::WalkDir::new(ws.path("cache")).into_iter().filter_map(Result::ok);
    assert!(
        cached
            .filter(|e| e.path().to_string_lossy().contains("/blobs/"))
            .all(|e| e.file_type().is_dir()),
        "no member's blob"
    );
}
