//! Image search engines: the `search` end of the fetch graph.
//!
//! Each engine knows two things, both pure and tested on real captured pages:
//! how to build the URL of its first result page for a query, and how to turn
//! one fetched page into hits plus the URL of the next page. Fetching, retries
//! and merging across engines live in `fetch::search`; nothing here does I/O.
//!
//! A page that is a captcha, an anomaly block, a 403/429 or any other refusal
//! is an [`EngineError::Blocked`], never an empty result: "0 results" is only
//! reported when the engine really said so.
//!
//! Owns the engines' parsers and their `[fetch]`/`[engines]` settings; imports only
//! `setting`.

mod bing;
pub mod config;
mod duckduckgo;
mod google;
mod openverse;
mod wikimedia;

use serde::{Deserialize, Serialize};

use crate::credit::Credit;
use url::Url;

/// The engines `pipeline` can query, in the spelling used by the config,
/// query files and `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineName {
    Bing,
    Duckduckgo,
    Openverse,
    Wikimedia,
    Google,
}

impl EngineName {
    pub const ALL: [EngineName; 5] = [
        EngineName::Bing,
        EngineName::Duckduckgo,
        EngineName::Openverse,
        EngineName::Wikimedia,
        EngineName::Google,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EngineName::Bing => "bing",
            EngineName::Duckduckgo => "duckduckgo",
            EngineName::Openverse => "openverse",
            EngineName::Wikimedia => "wikimedia",
            EngineName::Google => "google",
        }
    }

    /// The public host each engine is reached at unless the config points it elsewhere.
    pub fn default_base_url(self) -> &'static str {
        match self {
            EngineName::Bing => "https://www.bing.com",
            EngineName::Duckduckgo => "https://duckduckgo.com",
            EngineName::Openverse => "https://api.openverse.org",
            EngineName::Wikimedia => "https://commons.wikimedia.org",
            EngineName::Google => "https://www.google.com",
        }
    }

    /// URL of the first page to fetch for `query`.
    ///
    /// `base` is `engines.<name>.base_url` from the config (no trailing slash needed).
    pub fn first_page(self, base: &Url, query: &SearchQuery) -> Url {
        match self {
            EngineName::Bing => bing::first_page(base, query),
            EngineName::Duckduckgo => duckduckgo::first_page(base, query),
            EngineName::Openverse => openverse::first_page(base, query),
            EngineName::Wikimedia => wikimedia::first_page(base, query),
            EngineName::Google => google::first_page(base, query),
        }
    }

    /// Parses one fetched page. `url` is the URL that was fetched (engines read
    /// their paging state from it), `status` the HTTP status, `body` the text.
    pub fn parse_page(
        self,
        url: &Url,
        status: u16,
        body: &str,
        query: &SearchQuery,
    ) -> Result<EnginePage, EngineError> {
        match self {
            EngineName::Bing => bing::parse_page(url, status, body, query),
            EngineName::Duckduckgo => duckduckgo::parse_page(url, status, body, query),
            EngineName::Openverse => openverse::parse_page(url, status, body, query),
            EngineName::Wikimedia => wikimedia::parse_page(url, status, body, query),
            EngineName::Google => google::parse_page(url, status, body, query),
        }
    }
}

impl std::fmt::Display for EngineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an engine is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words searched for, e.g. "brown bear".
    pub text: String,
    /// Ask the engine to filter adult content.
    pub safe_search: bool,
}

/// One image result as the engine listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The original image (not the engine's thumbnail).
    pub image_url: String,
    /// The page the image appears on, when the engine says.
    pub page_url: Option<String>,
    /// The title or caption, with engine highlight markers removed.
    pub title: Option<String>,
    /// Licence and credit, from the engines that give them (Openverse, Wikimedia).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<Credit>,
}

/// One parsed result page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnginePage {
    /// Hits in the engine's order; may repeat an image URL (Bing pages do).
    pub hits: Vec<Hit>,
    /// The next page to fetch, or `None` when the engine says this was the last.
    pub next: Option<Url>,
}

/// Why an engine gave no usable page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The engine refused us: captcha, anomaly block, 403, 429 and the like.
    #[error("{engine} blocked the request: {reason}")]
    Blocked { engine: EngineName, reason: String },
    /// The page did not have the expected shape (the engine changed its markup).
    #[error("{engine} returned a page that could not be parsed: {reason}")]
    Unparseable { engine: EngineName, reason: String },
    /// Any other non-success HTTP status.
    #[error("{engine} answered HTTP {status}")]
    Status { engine: EngineName, status: u16 },
}

impl EngineError {
    fn blocked(engine: EngineName, reason: impl Into<String>) -> Self {
        EngineError::Blocked { engine, reason: reason.into() }
    }

    fn unparseable(engine: EngineName, reason: impl Into<String>) -> Self {
        EngineError::Unparseable { engine, reason: reason.into() }
    }
}

/// `base` with `path` appended to its own path, so a prefix such as `/bing` in
/// `http://127.0.0.1:9/bing` is kept; no query or fragment.
/// The status rule of the engines with no special cases: 200 goes on, 403 and 429 are
/// blocks, anything else is an error.
fn expect_ok(engine: EngineName, status: u16) -> Result<(), EngineError> {
    match status {
        200 => Ok(()),
        403 | 429 => Err(EngineError::blocked(engine, format!("HTTP {status}"))),
        _ => Err(EngineError::Status { engine, status }),
    }
}

fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// `url` with each `(key, value)` set: the first occurrence of an existing key
/// is replaced in place (later ones dropped), a new key is appended.
fn with_params(url: &Url, params: &[(&str, &str)]) -> Url {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in url.query_pairs() {
        match params.iter().find(|(k, _)| *k == key) {
            Some(_) if pairs.iter().any(|(k, _)| *k == key) => {}
            Some((_, new)) => pairs.push((key.into_owned(), (*new).to_owned())),
            None => pairs.push((key.into_owned(), value.into_owned())),
        }
    }
    for (key, value) in params {
        if !pairs.iter().any(|(k, _)| k == key) {
            pairs.push(((*key).to_owned(), (*value).to_owned()));
        }
    }
    let mut out = url.clone();
    out.set_fragment(None);
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

/// A selector from a constant CSS string.
fn selector(css: &'static str) -> scraper::Selector {
    scraper::Selector::parse(css).expect("constant CSS selector is valid")
}

/// The query parameter `key` of `url` as a number; `None` when absent.
fn query_number(engine: EngineName, url: &Url, key: &str) -> Result<Option<u64>, EngineError> {
    match url.query_pairs().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, value)) => value.parse().map(Some).map_err(|_| {
            EngineError::unparseable(
                engine,
                format!("query parameter `{key}={value}` in {url} is not a number"),
            )
        }),
    }
}
