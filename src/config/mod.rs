//! The files the user writes: `pipeline.toml` (`Config`, every tunable of the graph) and
//! query files (`query`). Each section's type lives with the stage that obeys it and checks
//! itself; this module only composes them, reads the files and names the file, line and
//! column of what it refuses.
//!
//! The file is optional (built-in defaults apply when it is absent); when present it is
//! parsed strictly: unknown keys are refused. Which file, and the `PIPELINE_*` variables
//! that set single keys: `locate`. Runtime switches (`--top`, `--json`) are CLI
//! flags. May import every module below the commands but `fetch` and `bucket`, which take
//! a `Config`.

pub mod locate;
pub mod query;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dataset::BuildSettings;
use crate::dataset::curation::CurateConfig;
use crate::engines::config::{EnginesConfig, FetchConfig};
use crate::net::{NetworkConfig, OptOutConfig};
use crate::photo::config::{DedupConfig, ImagesConfig};
use crate::report::config::ReportConfig;
use crate::setting::Invalid;
use crate::store::config::StoreConfig;
use crate::train::config::TrainConfig;

/// The whole configuration, as read from `pipeline.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub store: StoreConfig,
    pub network: NetworkConfig,
    pub opt_outs: OptOutConfig,
    pub fetch: FetchConfig,
    pub engines: EnginesConfig,
    pub images: ImagesConfig,
    pub dedup: DedupConfig,
    pub build: BuildSettings,
    pub curate: CurateConfig,
    pub train: TrainConfig,
    pub report: ReportConfig,
}

/// A configuration or query file that cannot be used. The message names the file and,
/// for syntax and type errors, the line and column.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}")]
    Read(crate::durable::PathError),
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {invalid}")]
    Invalid { path: PathBuf, invalid: Invalid },
}

impl Config {
    /// Reads the config `located` names (none: the defaults), sets the keys `overrides`
    /// name, and resolves relative paths (see [`locate`]).
    pub fn load_located(
        located: &locate::Located,
        overrides: &[locate::Override],
    ) -> Result<Config, ConfigError> {
        let path = located.file.clone().unwrap_or_else(|| PathBuf::from(locate::FILE));
        let text = match &located.file {
            None => String::new(),
            Some(file) => match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !located.required => {
                    String::new()
                }
                Err(e) => return Err(ConfigError::Read(crate::durable::at(file)(e))),
            },
        };
        let mut config: Config = parse_toml(&path, &text)?;
        let mut table: toml::Table = toml::from_str(&text).unwrap_or_default();
        let written = table.clone();
        let named = match overrides.is_empty() {
            true => path.clone(),
            false => {
                let vars: Vec<&str> = overrides.iter().map(|(var, _, _)| var.as_str()).collect();
                PathBuf::from(format!("{} with {}", path.display(), vars.join(", ")))
            }
        };
        if !overrides.is_empty() {
            for (var, keys, value) in overrides {
                set(&mut table, keys, value.clone())
                    .map_err(|message| ConfigError::Parse { path: PathBuf::from(var), message })?;
            }
            config = Config::deserialize(table)
                .map_err(|e| ConfigError::Parse { path: named.clone(), message: e.to_string() })?;
        }
        config.validate(&named)?;
        let dir = path.parent().unwrap_or(Path::new("")).to_owned();
        let from_env: Vec<&[String]> = overrides.iter().map(|(_, keys, _)| &keys[..]).collect();
        config.resolve_paths(&|keys: &[&str], p: &mut PathBuf| {
            if p.is_absolute() || from_env.iter().any(|k| k.iter().eq(keys.iter())) {
                return; // the command line's and the shell's paths are the working folder's
            }
            if is_written(&written, keys) {
                *p = dir.join(&*p);
                return;
            }
            *p = located.root.join(&*p);
            // Weights not fetched into the project are looked for in the user's cache,
            // where `WEIGHTS_DIR=~/.cache/pipeline/weights scripts/weights` puts them for an
            // installed binary.
            let cached = p.file_name().map(|name| weights_cache().join(name));
            if is_weights(keys) && !p.exists() && cached.as_ref().is_some_and(|c| c.exists()) {
                *p = cached.expect("checked");
            }
        });
        Ok(config)
    }

    /// Applies `place` to every path the config holds, with its key.
    fn resolve_paths(&mut self, place: &dyn Fn(&[&str], &mut PathBuf)) {
        place(&["store", "path"], &mut self.store.path);
        if let Some(cache) = &mut self.store.cache {
            place(&["store", "cache"], cache);
        }
        place(&["curate", "weights"], &mut self.curate.weights);
        place(&["curate", "classes"], &mut self.curate.classes);
        place(&["train", "pretrained", "weights"], &mut self.train.pretrained.weights);
    }

    /// Parses and validates the text of a config file named `path` (used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = parse_toml(path, text)?;
        config.validate(path)?;
        Ok(config)
    }

    /// How `dataset` is curated: `[curate]`, then the keys its query file in `queries`
    /// sets (if one fills it).
    pub fn curation_for(&self, queries: &Path, dataset: &str) -> CurateConfig {
        match query::QueryFile::for_dataset(queries, dataset) {
            Some(query) => self.curate.with(&query.curate),
            None => self.curate.clone(),
        }
    }

    /// Every section checks itself; the first refusal names the file.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        self.check().map_err(|invalid| ConfigError::Invalid { path: path.to_owned(), invalid })
    }

    fn check(&self) -> Result<(), Invalid> {
        self.network.check()?;
        self.opt_outs.check()?;
        self.store.check()?;
        self.fetch.check()?;
        self.engines.check()?;
        self.images.check()?;
        self.dedup.check()?;
        self.build.check()?;
        self.curate.check()?;
        self.report.check()?;
        self.train.check()
    }
}

/// Parses TOML into `T`, turning syntax, type and unknown-key errors into a message that
/// names the file, line and column.
/// The user's cache of model weights: `$XDG_CACHE_HOME/pipeline/weights`.
fn weights_cache() -> PathBuf {
    crate::store::config::cache_home().join("weights")
}

/// Whether the key at `keys` names model weights or class names.
fn is_weights(keys: &[&str]) -> bool {
    matches!(keys, ["curate", "weights" | "classes"] | ["train", "pretrained", "weights"])
}

/// Sets the key at `keys` of `table` to `value`, making the tables on the way.
fn set(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    let (last, path) = keys.split_last().expect("a variable names a key");
    let mut at = table;
    for key in path {
        let entry = at.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = entry.as_table_mut().ok_or_else(|| format!("{key} is not a section"))?;
    }
    at.insert(last.clone(), value);
    Ok(())
}

/// Whether the file set the key at `keys`.
fn is_written(table: &toml::Table, keys: &[&str]) -> bool {
    let (last, path) = keys.split_last().expect("a key");
    let mut at = table;
    for key in path {
        match at.get(*key).and_then(toml::Value::as_table) {
            Some(inner) => at = inner,
            None => return false,
        }
    }
    at.contains_key(*last)
}

pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let place = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: ")
        });
        ConfigError::Parse {
            path: path.to_owned(),
            message: format!("{}{}", place.unwrap_or_default(), e.message()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::parse(Path::new("pipeline.toml"), "").unwrap();
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let err = Config::parse(Path::new("p.toml"), "[network]\nconcurrency = 4\nspeed = 9\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml: line 3, column 1: unknown field `speed`"), "{err}");
    }

    #[test]
    fn negative_timeout_names_the_allowed_range() {
        let err = Config::parse(Path::new("p.toml"), "[network]\ntotal_timeout_s = -1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "p.toml: network.total_timeout_s = -1: allowed: above 0 up to 86400 seconds"
        );
    }

    #[test]
    fn unknown_engine_is_refused() {
        let err = Config::parse(Path::new("p.toml"), "[fetch]\nengines = [\"yahoo\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2, column 12") && err.contains("unknown variant `yahoo`"),
            "{err}"
        );
    }
}
