//! Helpers shared by the integration tests: a temp workspace that runs the real
//! `pipeline` binary, paths into ../shared, and the fake search site.

#[cfg(feature = "train")]
pub mod browser;
pub mod engines;
pub mod server;
pub mod site;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use server::{Response, Server};

/// `../shared/<rel>` from the repository root.
pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(rel)
}

/// Every file directly or indirectly under `../shared/data/<set>`, sorted.
pub fn photos(set: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walk(&shared(&format!("data/{set}")));
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e != "tsv" && e != "md") {
            out.push(path);
        }
    }
    out
}

/// The Python of `scripts/engines` (`.engines/python`: PyTorch 2.11, Hugging Face
/// `datasets`), which the export tests load their outputs with.
pub fn engines_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".engines/python/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/engines", python.display());
    python
}

/// A folder `name` in the workspace holding copies of `files`.
pub fn folder(ws: &Workspace, name: &str, files: &[std::path::PathBuf]) {
    let dir = ws.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    for file in files {
        std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
    }
}

/// Brown-bear photos with distinct file names, in name order.
pub fn bears(range: std::ops::Range<usize>) -> Vec<std::path::PathBuf> {
    let all: Vec<_> = photos("brown_bear")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    // File names repeat across source repos: keep one per name so copies do not collide.
    let mut by_name = BTreeMap::new();
    for path in all {
        by_name.entry(path.file_name().unwrap().to_owned()).or_insert(path);
    }
    by_name.into_values().collect::<Vec<_>>()[range].to_vec()
}

/// `[train.pretrained]` for tiny runs on CPU (64 px crops, batch 4, one L1 and one GAN
/// epoch, the project's ImageNet weights), then the `extra` keys of that table.
#[cfg(feature = "train")]
pub fn tiny_pretrained(extra: &str) -> String {
    let weights = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(pipeline::train::nets::efficientnet::WEIGHTS_FILE);
    format!(
        "[train.pretrained]\ncrop = 64\nbatch_size = 4\npretrain_epochs = 1\nepochs = 1\nfreeze_epochs = 1\nndf = 8\nweights = {weights:?}\n{extra}"
    )
}

/// A workspace with `config` and the first `n` brown-bear photos imported as dataset
/// `bears` and built.
#[cfg(feature = "train")]
pub fn built_bears(config: &str, n: usize) -> Workspace {
    let ws = Workspace::new(config);
    let dir = ws.path("bears");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, photo) in photos("brown_bear")
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .take(n)
        .enumerate()
    {
        std::fs::copy(photo, dir.join(format!("{i:03}.jpg"))).unwrap();
    }
    ws.run(&["import", "bears", "--dataset", "bears"]).expect_code(0);
    ws.run(&["build"]).expect_code(0);
    ws
}

/// The training pairs of `ws`'s built dataset `bears` and the first batch of its epoch 1:
/// 4 crops of 64 px in `color`, flipped or not, seed 1.
#[cfg(feature = "train")]
pub fn first_batch(
    ws: &Workspace,
    color: pipeline::train::config::ColorSpace,
    flip: bool,
) -> (std::sync::Arc<pipeline::train::loader::Pairs>, pipeline::train::loader::Batch) {
    use pipeline::train::loader::{self, LoaderConfig, Pairs};
    let built = pipeline::dataset::Built::latest(&ws.store(), "bears").unwrap();
    let pairs = std::sync::Arc::new(Pairs::open(&built, pipeline::dataset::Split::Train).unwrap());
    let config =
        LoaderConfig { batch_size: 4, crop: 64, flip, color, seed: 1, prefetch: 2, rank: (0, 1) };
    let batch = loader::epoch(pairs.clone(), config, 1).recv().unwrap();
    (pairs, batch)
}

/// The G_L1 loss of every step of `epoch` in run `run`'s metrics.
#[cfg(feature = "train")]
pub fn l1_of_epoch(ws: &Workspace, run: &str, epoch: u64) -> Vec<f64> {
    let text =
        std::fs::read_to_string(ws.store().join("runs").join(run).join("metrics.jsonl")).unwrap();
    l1_in(&text, epoch)
}

/// [`l1_of_epoch`] of a run that may not have logged yet (complete lines only).
#[cfg(feature = "train")]
pub fn l1_of_epoch_if_any(ws: &Workspace, run: &str, epoch: u64) -> Vec<f64> {
    let path = ws.store().join("runs").join(run).join("metrics.jsonl");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    l1_in(complete, epoch)
}

#[cfg(feature = "train")]
fn l1_in(text: &str, epoch: u64) -> Vec<f64> {
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["epoch"] == epoch && v.get("step").is_some())
        .map(|v| v["G_L1"].as_f64().unwrap())
        .collect()
}

/// Starts `pipeline ARGS` in `ws`, waits until `path` exists, then kills it with SIGKILL
/// (a panic if the command ended first).
#[cfg(feature = "train")]
pub fn kill_once_exists(ws: &Workspace, args: &[&str], path: &Path) {
    let mut child = ws
        .command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "{args:?} ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Sends SIGINT (what Ctrl-C sends) to the process `pid`.
pub fn interrupt(pid: u32) {
    let sent = Command::new("kill").args(["-INT", &pid.to_string()]).status().expect("run kill");
    assert!(sent.success(), "kill -INT {pid}");
}

/// A fresh folder holding `pipeline.toml` and `store/`, where the binary runs.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

/// What a run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The last stdout line, parsed as JSON (`--json` summaries).
    pub fn json(&self) -> serde_json::Value {
        let line = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Workspace {
    /// A workspace whose `pipeline.toml` holds `config`.
    pub fn new(config: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pipeline.toml"), config).expect("write config");
        Workspace { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline"));
        command.current_dir(self.dir.path()).args(args).env_remove("RUST_LOG");
        command
    }

    /// Runs `pipeline ARGS` in the workspace and waits for it.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run pipeline"))
    }

    /// Runs `pipeline ARGS` with these environment variables set, and waits for it.
    pub fn run_with(&self, args: &[&str], vars: &[(String, String)]) -> Run {
        let mut command = self.command(args);
        command.envs(vars.iter().map(|(k, v)| (k, v)));
        Run::from(command.output().expect("run pipeline"))
    }

    /// `pipeline status --json`, as the entry for `dataset` (panics if absent).
    pub fn status(&self, dataset: &str) -> serde_json::Value {
        let run = self.run(&["status", "--json"]).expect_code(0);
        let all = run.json();
        all["datasets"]
            .as_array()
            .and_then(|list| list.iter().find(|d| d["name"] == dataset).cloned())
            .unwrap_or_else(|| panic!("no dataset {dataset} in {all}"))
    }

    /// Every blob file in the store.
    pub fn blobs(&self) -> Vec<PathBuf> {
        let dir = self.store().join("blobs");
        if !dir.exists() {
            return Vec::new();
        }
        walk(&dir)
    }
}

/// A config for tests: loopback allowed, quick timeouts, every engine pointed at `server`.
pub fn test_config(server: &Server, extra: &str) -> String {
    let mut config = String::from(
        "[network]\nallow_private = true\nconnect_timeout_s = 2\ntotal_timeout_s = 10\nretries = 1\n",
    );
    config.push_str(extra);
    for engine in ["bing", "duckduckgo", "openverse", "wikimedia", "google"] {
        config.push_str(&format!(
            "\n[engines.{engine}]\nbase_url = \"{}\"\n",
            server.url(&format!("/{engine}"))
        ));
    }
    config
}
