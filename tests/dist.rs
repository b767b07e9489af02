//! `train --dist` with two real processes on CPU: Gloo over a loopback TCPStore
//! rendezvous, as torchrun would launch them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Workspace};

/// Tiny networks, 12 epochs (8 + 4 decaying), a checkpoint every 2.
pub const TINY: &str = "[build]\nsize = 72\ntest_fraction = 0.2\n\n[train]\nngf = 8\nndf = 8\ncrop = 64\nbatch_size = 2\nepochs = 8\nepochs_decay = 4\ncheckpoint_every = 2\nkeep_last = 2\n";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts rank `rank` of 2 of `pipeline ARGS --dist`.
fn rank(ws: &Workspace, args: &[&str], rank: usize, port: u16) -> Child {
    ws.command(&[args, &["--dist"]].concat())
        .envs([("RANK", rank.to_string()), ("WORLD_SIZE", "2".into())])
        .envs([("MASTER_ADDR", "127.0.0.1".to_owned()), ("MASTER_PORT", port.to_string())])
        // Two ranks on two cores: one thread each, as torchrun sets it.
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Both ranks of `pipeline ARGS --dist`, to their end: (exit code, stdout, stderr) each.
fn both(ws: &Workspace, args: &[&str]) -> Vec<(i32, String, String)> {
    let port = free_port();
    let children = [rank(ws, args, 0, port), rank(ws, args, 1, port)];
    children.into_iter().map(finish).collect()
}

fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn two_ranks_train_as_one_a_dead_rank_fails_the_other_fast_and_the_run_resumes() {
    let ws = support::built_bears(TINY, 24);
    let train = ["train", "bears", "--device", "cpu", "--run"];

    let straight = both(&ws, &[&train[..], &["straight"]].concat());
    for (code, stdout, stderr) in &straight {
        assert_eq!(*code, 0, "{stdout}\n{stderr}");
    }
    assert!(straight[0].1.contains("run straight: "), "{}", straight[0].1);
    assert!(straight[1].1.contains("run straight: rank 1 of 2 done"), "{}", straight[1].1);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.store().join("runs/straight/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["ranks"], 2);
    // Rank 0 alone logs: each epoch's steps once, each with the time its collectives took.
    let (first, last) =
        (support::l1_of_epoch(&ws, "straight", 1), support::l1_of_epoch(&ws, "straight", 12));
    let metrics = std::fs::read_to_string(ws.store().join("runs/straight/metrics.jsonl")).unwrap();
    let step: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    assert!(step["collectives_ms"].as_f64().unwrap() > 0.0, "{step}");
    assert_eq!(first.len(), last.len());
    assert!(mean(&last) < mean(&first), "the loss falls: {first:?} -> {last:?}");

    // Kill rank 1 after the epoch-2 checkpoint: rank 0 fails at its next collective, fast.
    let port = free_port();
    let args = [&train[..], &["killed"]].concat();
    let (mut zero, mut one) = (rank(&ws, &args, 0, port), rank(&ws, &args, 1, port));
    let checkpoint = ws.store().join("runs/killed/checkpoints/epoch-00002");
    while !checkpoint.exists() {
        assert!(one.try_wait().unwrap().is_none(), "rank 1 ended before it was killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    one.kill().unwrap();
    one.wait().unwrap();
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(60);
    while zero.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "rank 0 still runs a minute after rank 1 died");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, _, stderr) = finish(zero);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("distributed training: rank 0 of 2"), "{stderr}");
    eprintln!("rank 0 exited {:.2} s after rank 1 was killed", killed_at.elapsed().as_secs_f64());

    // SIGTERM to rank 1 alone, mid-epoch: both ranks stop at the same step boundary, rank 0
    // checkpoints, both exit 143, and the resumed run computes what the uninterrupted one did.
    let port = free_port();
    let args = [&train[..], &["signalled"]].concat();
    let (zero, one) = (rank(&ws, &args, 0, port), rank(&ws, &args, 1, port));
    while support::l1_of_epoch_if_any(&ws, "signalled", 3).is_empty() {
        std::thread::sleep(Duration::from_millis(2));
    }
    let sent = std::process::Command::new("kill").args(["-TERM", &one.id().to_string()]).status();
    assert!(sent.unwrap().success());
    for (code, _, stderr) in [within_a_minute(zero, "rank 0"), within_a_minute(one, "rank 1")] {
        assert_eq!(code, 143, "{stderr}");
    }
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.store().join("runs/signalled/checkpoints/interrupted/state.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(state["epoch"], 3, "{state}");
    let resumed = both(&ws, &["train", "--resume", "signalled", "--device", "cpu"]);
    for (code, stdout, stderr) in &resumed {
        assert_eq!(*code, 0, "{stdout}\n{stderr}");
    }
    for epoch in 1..=12 {
        let straight = support::l1_of_epoch(&ws, "straight", epoch);
        assert_eq!(support::l1_of_epoch(&ws, "signalled", epoch), straight, "epoch {epoch}");
    }

    // Resumed with two ranks, the run computes what the uninterrupted one did.
    let resumed = both(&ws, &["train", "--resume", "killed", "--device", "cpu"]);
    for (code, stdout, stderr) in &resumed {
        assert_eq!(*code, 0, "{stdout}\n{stderr}");
    }
    for epoch in 3..=12 {
        let straight = support::l1_of_epoch(&ws, "straight", epoch);
        assert!(!straight.is_empty());
        assert_eq!(support::l1_of_epoch(&ws, "killed", epoch), straight, "epoch {epoch}");
    }
}

#[test]
fn a_run_resumed_with_more_ranks_says_so_and_goes_on() {
    let ws = support::built_bears(TINY, 12);
    let run = ws.store().join("runs/grow");
    let train = ["train", "bears", "--device", "cpu", "--run", "grow"];
    support::kill_once_exists(&ws, &train, &run.join("checkpoints/epoch-00002"));
    let resumed = both(&ws, &["train", "--resume", "grow", "--device", "cpu"]);
    for (code, stdout, stderr) in &resumed {
        assert_eq!(*code, 0, "{stdout}\n{stderr}");
    }
    let note =
        "note: run grow trained on 1 rank(s) and goes on with 2: each step now sees 2 batches of 2";
    assert!(resumed[0].2.contains(note), "{}", resumed[0].2);
    assert!(!resumed[1].2.contains("note:"), "rank 0 alone says it: {}", resumed[1].2);
    assert!(run.join("checkpoints/epoch-00012").is_dir());
}

#[test]
fn a_dist_run_without_a_launcher_or_with_a_bad_rank_says_what_is_missing() {
    let ws = support::built_bears(TINY, 4);
    let mut unnamed = ws.command(&["train", "bears", "--device", "cpu", "--dist"]);
    let out = unnamed.envs([("RANK", "0"), ("WORLD_SIZE", "2")]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("--run <RUN>|--resume <RUN>"), "every rank needs one name: {stderr}");
    let run = ws.run(&["train", "bears", "--device", "cpu", "--dist", "--run", "r"]).expect_code(1);
    assert!(
        run.stderr.contains("--dist: no launcher found: set RANK and WORLD_SIZE"),
        "{}",
        run.stderr
    );
    let mut bad = ws.command(&["train", "bears", "--device", "cpu", "--dist", "--run", "r"]);
    let out = bad.envs([("RANK", "2"), ("WORLD_SIZE", "2")]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--dist: rank 2 is not below the world size 2"), "{stderr}");
}

/// The TCP sockets process `pid` listens on: (address as /proc writes it, port).
fn listening(pid: u32) -> Vec<(String, u16)> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|link| {
                    let link = link.to_string_lossy().into_owned();
                    Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN), inode
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                let (addr, port) = fields[1].split_once(':').unwrap();
                out.push((addr.to_owned(), u16::from_str_radix(port, 16).unwrap()));
            }
        }
    }
    out
}

/// 127.0.0.1 (or any 127/8), ::1 or ::ffff:127.x, as /proc/net/tcp{,6} writes them.
fn is_loopback(addr: &str) -> bool {
    addr.ends_with("7F") && (addr.len() == 8 || addr.starts_with("0000000000000000FFFF0000"))
        || addr == "00000000000000000000000001000000"
}

/// Waits up to a minute for `child` to end; kills it and fails past that.
fn within_a_minute(mut child: Child, what: &str) -> (i32, String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{what} still runs after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    finish(child)
}

/// Issue 20, finding 8: the rendezvous (and every socket a rank listens on) binds the
/// loopback address it was given, not every interface; ranks that do not train the same
/// thing (another run, other epochs) all fail at once, naming the difference.
#[test]
fn ranks_listen_only_where_told_and_fail_together_when_they_disagree() {
    let ws = support::built_bears(TINY, 12);
    let port = free_port();
    let zero =
        rank(&ws, &["train", "bears", "--device", "cpu", "--run", "one", "--epochs", "3"], 0, port);
    let one =
        rank(&ws, &["train", "bears", "--device", "cpu", "--run", "two", "--epochs", "4"], 1, port);
    for (code, stdout, stderr) in [within_a_minute(zero, "rank 0"), within_a_minute(one, "rank 1")]
    {
        assert_ne!(code, 0, "{stdout}");
        assert!(stderr.contains("the ranks do not train the same thing"), "{stderr}");
        assert!(stderr.contains("rank 1 has run \"two\" (rank 0: \"one\")"), "{stderr}");
        assert!(stderr.contains("train.epochs_decay 2 (rank 0: 1)"), "{stderr}");
    }
    assert!(!ws.store().join("runs/one").exists() && !ws.store().join("runs/two").exists());

    let port = free_port();
    let args = ["train", "bears", "--device", "cpu", "--run", "agreed", "--epochs", "2"];
    let (zero, one) = (rank(&ws, &args, 0, port), rank(&ws, &args, 1, port));
    let (pids, mut seen) = ([zero.id(), one.id()], BTreeSet::new());
    let log = ws.store().join("runs/agreed/metrics.jsonl");
    // Sample while they train (a step is logged once Gloo is up).
    while !log.is_file() || seen.iter().all(|(_, p)| *p != port) {
        for pid in pids {
            seen.extend(listening(pid));
        }
        std::thread::sleep(Duration::from_millis(5));
        assert!(seen.len() < 1000);
        if log.is_file() && std::fs::read_to_string(&log).unwrap().lines().count() > 1 {
            break;
        }
    }
    for pid in pids {
        seen.extend(listening(pid));
    }
    for (code, stdout, stderr) in [finish(zero), finish(one)] {
        assert_eq!(code, 0, "{stdout}\n{stderr}");
    }
    assert!(seen.iter().any(|(_, p)| *p == port), "the rendezvous was seen: {seen:?}");
    assert!(seen.len() >= 2, "and Gloo's listeners: {seen:?}");
    for (addr, p) in &seen {
        assert!(is_loopback(addr), "a rank listened on {addr}:{p}, not on 127.0.0.1");
    }
}
