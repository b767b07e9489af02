//! Query files (`queries/NAME.toml`): one search each, so `refresh` and cron can replay it.
//!
//! ```toml
//! query = "brown bear"
//! dataset = "brown-bear"      # optional: the query's slug
//! top = 250
//! engines = ["bing", "duckduckgo"]   # optional: fetch.engines
//! [filters]
//! safe_search = true          # optional, default true
//! [curate]                    # optional: pipeline.toml's [curate], key by key
//! require = ["brown bear"]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, parse_toml};
use crate::dataset::check_name;
use crate::dataset::curation::{CurateConfig, CurateOverrides};
use crate::engines::EngineName;
use crate::setting::Invalid;

/// One query file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryFile {
    pub query: String,
    pub dataset: Option<String>,
    pub top: usize,
    pub engines: Option<Vec<EngineName>>,
    #[serde(default)]
    pub filters: Filters,
    /// How its dataset is curated, over pipeline.toml's `[curate]`.
    #[serde(default)]
    pub curate: CurateOverrides,
}

/// Optional narrowing of what the engines return.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filters {
    /// Ask engines to filter adult content.
    pub safe_search: bool,
}

impl Default for Filters {
    fn default() -> Self {
        Filters { safe_search: true }
    }
}

/// The largest `--top` accepted: engines stop near 1000 results per query.
pub const MAX_TOP: usize = 10_000;

impl QueryFile {
    /// Reads and validates a query file; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<QueryFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read(crate::durable::at(path)(e)))?;
        let file: QueryFile = parse_toml(path, &text)?;
        file.check().map_err(|invalid| ConfigError::Invalid { path: path.to_owned(), invalid })?;
        Ok(file)
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.query.trim().is_empty() {
            return Invalid::err("query", "\"\"", "must not be empty");
        }
        if !(1..=MAX_TOP).contains(&self.top) {
            return Invalid::err("top", self.top, "allowed: 1 to 10000");
        }
        if let Some(name) = &self.dataset {
            check_name(name).or_else(|allowed| Invalid::err("dataset", name, allowed))?;
        }
        if self.engines.as_ref().is_some_and(Vec::is_empty) {
            return Invalid::err("engines", "[]", "name at least one engine, or leave it out");
        }
        CurateConfig::default().with(&self.curate).check()
    }

    /// The dataset the query fills: `dataset`, else the query's slug.
    pub fn dataset(&self) -> String {
        self.dataset.clone().unwrap_or_else(|| slug(&self.query))
    }

    /// The query file in `dir` that fills `dataset`, if any. Files that cannot be read
    /// are passed over (refresh reports them).
    pub fn for_dataset(dir: &Path, dataset: &str) -> Option<QueryFile> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        paths.into_iter().filter_map(|p| QueryFile::load(&p).ok()).find(|q| q.dataset() == dataset)
    }
}

/// The dataset name a query gets by default: transliterated to ASCII (deunicode), letters
/// and digits, lower case, words joined by `-`.
/// "Brown Bear!" -> "brown-bear", "медведь" -> "medved".
pub fn slug(query: &str) -> String {
    let ascii = deunicode::deunicode(query);
    let mut out = String::new();
    for word in ascii.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("brown bear"), "brown-bear");
        assert_eq!(slug("  Polar   Bear! "), "polar-bear");
        assert_eq!(slug("ours brun über"), "ours-brun-uber");
        assert_eq!(slug("медведь"), "medved");
        assert_eq!(slug("熊"), "xiong");
        assert_eq!(slug("!!!"), "");
    }
}
