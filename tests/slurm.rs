//! Import workers as a Slurm job array, for real: a one-node cluster (Debian's slurmctld,
//! slurmd and munge, unpacked by scripts/engines) runs `pipeline import` once per shard
//! into SeaweedFS; merge and build then equal one `pipeline import` of the same URLs.

use std::time::Duration;

use crate::bucket::{config, corpus, merged_members, one_import};
use crate::support::Workspace;
use crate::support::engines::Engine;

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
    let worker = format!(
        "{} import --dataset bears --store {store} --config {}",
        env!("CARGO_BIN_EXE_pipeline"),
        ws.path("pipeline.toml").display()
    );
    let sbatch = |out: &str| {
        let status = std::process::Command::new("sbatch")
            .args(["--wait", "--array=0-3", "--chdir", ws.dir.path().to_str().unwrap()])
            .args(["--output", out, "--wrap", &worker])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(status.status.success(), "sbatch: {}", String::from_utf8_lossy(&status.stderr));
        (0..4)
            .map(|task| {
                std::fs::read_to_string(ws.path(&out.replace("%a", &task.to_string()))).unwrap()
            })
            .collect::<Vec<String>>()
    };
    let logs = sbatch("first-%a.log");
    for (task, log) in logs.iter().enumerate() {
        assert!(log.contains(&format!("bears shard {task}: ")), "task {task}: {log}");
    }
    assert_eq!(s3.keys("test", "slurm/shards/bears/_done").len(), 4);

    // The array again (a requeue, or a user's rerun): every shard is done, nothing is
    // downloaded.
    let hits = corpus.server.hits("/b/");
    for log in sbatch("again-%a.log") {
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
