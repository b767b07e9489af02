//! `[fetch]` and `[engines.*]` of `pipeline.toml`: which engines a query tries when it
//! names none, and where each engine is (tests and mirrors point them elsewhere). Imports
//! the engines' names and `setting`.

use serde::Deserialize;
use url::Url;

use super::EngineName;
use crate::setting::Invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Engines tried in order when neither the command nor the query file names any.
    pub engines: Vec<EngineName>,
}

/// `engines.<name>.base_url` for each engine, so tests and mirrors can point it elsewhere.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnginesConfig {
    pub bing: EngineConfig,
    pub duckduckgo: EngineConfig,
    pub openverse: EngineConfig,
    pub wikimedia: EngineConfig,
    pub google: EngineConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub base_url: Url,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig { engines: vec![EngineName::Bing, EngineName::Duckduckgo] }
    }
}

impl EnginesConfig {
    pub fn base_url(&self, engine: EngineName) -> &Url {
        match engine {
            EngineName::Bing => &self.bing.base_url,
            EngineName::Duckduckgo => &self.duckduckgo.base_url,
            EngineName::Openverse => &self.openverse.base_url,
            EngineName::Wikimedia => &self.wikimedia.base_url,
            EngineName::Google => &self.google.base_url,
        }
    }
}

impl Default for EnginesConfig {
    fn default() -> Self {
        let at = |e: EngineName| EngineConfig {
            base_url: Url::parse(e.default_base_url()).expect("built-in engine URLs parse"),
        };
        EnginesConfig {
            bing: at(EngineName::Bing),
            duckduckgo: at(EngineName::Duckduckgo),
            openverse: at(EngineName::Openverse),
            wikimedia: at(EngineName::Wikimedia),
            google: at(EngineName::Google),
        }
    }
}

impl FetchConfig {
    pub fn check(&self) -> Result<(), Invalid> {
        if self.engines.is_empty() {
            return Invalid::err("fetch.engines", "[]", "name at least one engine");
        }
        Ok(())
    }
}

impl EnginesConfig {
    pub fn check(&self) -> Result<(), Invalid> {
        for engine in EngineName::ALL {
            let url = self.base_url(engine);
            if !matches!(url.scheme(), "http" | "https") {
                return Invalid::err("engines.*.base_url", url, "must be http or https");
            }
        }
        Ok(())
    }
}
