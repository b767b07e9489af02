//! Which config a command reads, as cargo finds its manifest: `--config FILE`, else
//! `PIPELINE_CONFIG`, else the first `pipeline.toml` in the working folder or a folder
//! above it, else the built-in defaults. `PIPELINE_<SECTION>__<KEY>` variables then set
//! single keys (`PIPELINE_NETWORK__CONCURRENCY=8`, `PIPELINE_TRAIN__PRETRAINED__CROP=96`).
//!
//! Relative paths written in a config file are relative to its folder; relative default
//! paths (`store`, `.weights/…`) to the project's folder: that of the `pipeline.toml` found
//! by the search, else the working folder.

use std::path::{Path, PathBuf};

/// The name searched for.
pub const FILE: &str = "pipeline.toml";

/// The variable naming a config file.
pub const CONFIG_VAR: &str = "PIPELINE_CONFIG";

/// The config file to read, whether it must exist, and the project's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// `None`: no file; the defaults apply.
    pub file: Option<PathBuf>,
    /// Named by `--config` or `PIPELINE_CONFIG`: a missing file is an error.
    pub required: bool,
    /// Where relative default paths start.
    pub root: PathBuf,
}

/// Finds the config from `explicit` (`--config`), the environment and `cwd`.
pub fn find(explicit: Option<&Path>, env: impl Fn(&str) -> Option<String>, cwd: &Path) -> Located {
    let found = cwd.ancestors().map(|dir| dir.join(FILE)).find(|file| file.is_file());
    // Paths print as the user would type them: relative while the project is here.
    let root = match found.as_deref().and_then(Path::parent) {
        Some(dir) if dir != cwd => dir.to_owned(),
        _ => PathBuf::new(),
    };
    let named = explicit.map(Path::to_owned).or_else(|| env(CONFIG_VAR).map(PathBuf::from));
    match named {
        Some(file) => Located { file: Some(file), required: true, root },
        None => {
            let file =
                found.map(|f| if root.as_os_str().is_empty() { PathBuf::from(FILE) } else { f });
            Located { file, required: false, root }
        }
    }
}

/// One key set by a variable: the variable's name, the key's path, its value.
pub type Override = (String, Vec<String>, toml::Value);

/// The `PIPELINE_<SECTION>__<KEY>` variables among `vars`, as keys and values: names
/// lower-cased, a value read as TOML (a number, a boolean, an array) or else as text.
/// Variables without `__` are not ours.
pub fn overrides(vars: impl Iterator<Item = (String, String)>) -> Vec<Override> {
    let mut found: Vec<Override> = vars
        .filter(|(name, _)| name != CONFIG_VAR)
        .filter_map(|(name, value)| {
            // A key always has its section: a variable without `__` is someone else's
            // (Azure's PIPELINE_WORKSPACE, this crate's own build's).
            let keys = name.strip_prefix("PIPELINE_").filter(|keys| keys.contains("__"))?;
            let path: Vec<String> = keys.split("__").map(str::to_lowercase).collect();
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            Some((name, path, parsed))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pipeline_toml_upward_is_found_and_named_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let none = |_: &str| None;
        assert_eq!(find(None, none, &deep).file, None);
        std::fs::write(dir.path().join(FILE), "").unwrap();
        let found = find(None, none, &deep);
        assert_eq!((found.file, found.required), (Some(dir.path().join(FILE)), false));
        assert_eq!(found.root, dir.path());
        let here = find(None, none, dir.path());
        assert_eq!((here.file, here.root), (Some(PathBuf::from(FILE)), PathBuf::new()));
        let env = |var: &str| (var == CONFIG_VAR).then(|| "other.toml".to_owned());
        let named = find(None, env, &deep);
        assert_eq!((named.file, named.required), (Some(PathBuf::from("other.toml")), true));
        let explicit = find(Some(Path::new("x.toml")), env, &deep);
        assert_eq!(explicit.file, Some(PathBuf::from("x.toml")));
    }

    #[test]
    fn variables_become_keys_with_toml_values() {
        let vars = [
            ("PIPELINE_NETWORK__CONCURRENCY", "8"),
            ("PIPELINE_TRAIN__PRETRAINED__CROP", "96"),
            ("PIPELINE_STORE__PATH", "/data/store"),
            ("PIPELINE_CONFIG", "x.toml"),
            ("PIPELINE_WORKSPACE", "/agent/work"),
            ("HOME", "/root"),
        ];
        let found = overrides(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let keys: Vec<(Vec<String>, toml::Value)> =
            found.into_iter().map(|(_, k, v)| (k, v)).collect();
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            keys,
            [
                (path("network.concurrency"), toml::Value::Integer(8)),
                (path("store.path"), toml::Value::String("/data/store".into())),
                (path("train.pretrained.crop"), toml::Value::Integer(96)),
            ]
        );
    }
}
