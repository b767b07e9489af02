//! Compiles the c10d shim (`src/train/dist.cpp`) when the `train` feature is on, against
//! the libtorch `scripts/libtorch` names (`LIBTORCH`) and the gloo headers it unpacks
//! (`GLOO_INCLUDE`). tch links libtorch itself; the shim only adds the collectives.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/train/dist.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE");
    if env::var_os("CARGO_FEATURE_TRAIN").is_none() {
        return;
    }
    let libtorch = PathBuf::from(
        env::var("LIBTORCH").expect("LIBTORCH is not set: run eval \"$(scripts/libtorch)\" first"),
    );
    let gloo = env::var("GLOO_INCLUDE")
        .expect("GLOO_INCLUDE is not set: run eval \"$(scripts/libtorch)\" first");
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
