//! Slurm for real: a one-node cluster (Debian's slurmctld, slurmd and munge, unpacked by
//! scripts/engines) runs `pipeline import` once per shard of a job array into SeaweedFS
//! (merge and build then equal one `pipeline import` of the same URLs), and the two ranks
//! of a `train --dist` run as one `srun -n 2` step.

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
