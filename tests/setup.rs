//! The set-up scripts: `scripts/libtorch` uses an installed torch 2.11.0 (a GPU machine's
//! PyTorch) instead of fetching one, and only that version.

use std::path::Path;
use std::process::Command;

/// A site-packages folder holding a stand-in torch of `version` (its version file and
/// library name) and one NVIDIA library folder.
fn fake_site(root: &Path, version: &str) {
    std::fs::create_dir_all(root.join("torch/lib")).unwrap();
    std::fs::create_dir_all(root.join("nvidia/cu13/lib")).unwrap();
    std::fs::write(root.join("torch/__init__.py"), "").unwrap();
    std::fs::write(root.join("torch/version.py"), format!("__version__ = '{version}'\n")).unwrap();
    std::fs::write(root.join("torch/lib/libtorch_cpu.so"), "").unwrap();
}

/// What `scripts/libtorch` prints with `site` on python3's path. pip may not reach an
/// index: where the script would fetch libtorch (no `.libtorch/` here), it fails at once.
fn exports(site: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/libtorch");
    let out = Command::new("bash")
        .arg(script)
        .env("PYTHONPATH", site)
        .env("PIP_NO_INDEX", "1")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_installed_torch_2_11_is_used_as_it_is_and_another_version_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let gpu = dir.path().join("gpu-site");
    fake_site(&gpu, "2.11.0+cu130");
    let printed = exports(&gpu);
    let torch = gpu.join("torch");
    assert!(printed.contains(&format!("export LIBTORCH='{}'", torch.display())), "{printed}");
    let libs =
        format!("'{}:{}:", torch.join("lib").display(), gpu.join("nvidia/cu13/lib").display());
    assert!(printed.contains(&libs), "{printed}");

    // Another version is passed over: the repository's own .libtorch/ is used (or fetched).
    let old = dir.path().join("old-site");
    fake_site(&old, "2.10.0");
    let printed = exports(&old);
    assert!(!printed.contains(&old.display().to_string()), "{printed}");
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join(".libtorch/site-packages/torch");
    if own.join("lib/libtorch_cpu.so").is_file() {
        assert!(printed.contains(&format!("export LIBTORCH='{}'", own.display())), "{printed}");
    }
}
