//! Compiles the c10d shim (`src/train/dist.cpp`) when the `train` feature is on, against
//! the libtorch `scripts/libtorch` names (`LIBTORCH`) and the gloo headers it unpacks
//! (`GLOO_INCLUDE`). tch links libtorch itself; the shim only adds the collectives; an
//! rpath lets the binaries find that libtorch without LD_LIBRARY_PATH. Also names the
//! commit and features `--version` prints.

use std::env;
use std::path::PathBuf;

fn main() {
    version();
    println!("cargo:rerun-if-changed=src/train/dist.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE");
    if env::var_os("CARGO_FEATURE_TRAIN").is_none() {
        return;
    }
    let libtorch = PathBuf::from(
        env::var("LIBTORCH")
            .expect("LIBTORCH is not set: scripts/run and scripts/test set it (scripts/libtorch)"),
    );
    rpath(&libtorch);
    let gloo = env::var("GLOO_INCLUDE")
        .expect("GLOO_INCLUDE is not set: scripts/run and scripts/test set it (scripts/libtorch)");
    cc::Build::new()
        .cpp(true)
        .file("src/train/dist.cpp")
        .include(libtorch.join("include"))
        .include(libtorch.join("include/torch/csrc/api/include"))
        .flag("-isystem")
        .flag(&gloo)
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_C10D_GLOO", None)
        .define("GLOG_USE_GLOG_EXPORT", None)
        .warnings(false)
        .compile("pipeline_dist");
}

/// What `--version` says beside the crate's version: the commit (with `-dirty` when the
/// tree had changes; `unknown` outside a git checkout) and the features built in.
fn version() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = match (git(&["rev-parse", "--short=12", "HEAD"]), git(&["status", "--porcelain"]))
    {
        (Some(commit), Some(changes)) if !changes.is_empty() => format!("{commit}-dirty"),
        (Some(commit), _) => commit,
        (None, _) => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=PIPELINE_COMMIT={commit}");
    let features: Vec<String> = env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase()))
        .collect();
    let features = if features.is_empty() { "none".to_owned() } else { features.join(", ") };
    println!("cargo:rustc-env=PIPELINE_FEATURES={features}");
}

/// Lets the binaries find libtorch (and the CUDA runtime libraries beside it in a wheel's
/// site-packages) where the build found them, with no LD_LIBRARY_PATH: an installed
/// `pipeline` runs from any folder while that libtorch stays where it is.
fn rpath(libtorch: &std::path::Path) {
    let mut dirs = vec![libtorch.join("lib")];
    if let Some(site) = libtorch.parent()
        && let Ok(entries) = std::fs::read_dir(site.join("nvidia"))
    {
        let mut nvidia: Vec<PathBuf> =
            entries.flatten().map(|e| e.path().join("lib")).filter(|d| d.is_dir()).collect();
        nvidia.sort();
        dirs.extend(nvidia);
    }
    for dir in dirs {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
