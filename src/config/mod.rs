//! The files the user writes: `pipeline.toml` (`Config`, every tunable of the graph) and
//! query files (`query`). Each section's type lives with the stage that obeys it and checks
//! itself; this module only composes them, reads the files and names the file, line and
//! column of what it refuses.
//!
//! The file is optional (built-in defaults apply when it is absent); when present it is
//! parsed strictly: unknown keys are refused. Runtime switches (`--top`, `--json`) are CLI
//! flags. May import every module below the commands but `fetch` and `bucket`, which take
//! a `Config`.

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
    /// Loads `path`; a missing file gives the built-in defaults only when `required` is false
    /// (the default `./pipeline.toml`), while a file named with `--config` must exist.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(e) => Err(ConfigError::Read(crate::durable::at(path)(e))),
        }
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
