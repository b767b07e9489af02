//! What one run of the graph is asked to do: fill a dataset from a search, a URL list or a
//! folder, up to `top` images or all. A search's job is resolved here from the command
//! line's choices, the query file's, then pipeline.toml's.

use std::path::PathBuf;

use crate::config::Config;
use crate::config::query::{QueryFile, slug};
use crate::engines::{EngineName, SearchQuery};

/// `--top` when neither the command nor a query file gives one.
pub const DEFAULT_TOP: usize = 100;

/// Where a run's candidates come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Search engines, tried in order, results merged by URL.
    Search { query: SearchQuery, engines: Vec<EngineName> },
    /// A text file of http(s) URLs, one a line.
    UrlList(UrlList),
    /// A folder of image files, walked recursively.
    Folder(PathBuf),
}

/// A URL list to read: the whole list a user gave, or one shard's slice of it.
#[derive(Debug, Clone)]
pub struct UrlList {
    /// The file to read.
    pub path: PathBuf,
    /// What to call it in members' `query` and in messages: the list's path as given.
    pub name: String,
    /// The list's line number of the file's first line (1, unless a shard's slice).
    pub first_line: usize,
}

impl UrlList {
    /// The whole list at `path`.
    pub fn whole(path: PathBuf) -> UrlList {
        let name = path.display().to_string();
        UrlList { path, name, first_line: 1 }
    }
}

/// One run of the graph.
#[derive(Debug, Clone)]
pub struct Job {
    pub dataset: String,
    pub source: Source,
    /// Stop once the dataset holds this many images (`None`: take everything).
    pub top: Option<usize>,
}

/// What the command line chose for a search; unset ones come from the query file, then
/// from the config.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub dataset: Option<String>,
    pub engines: Vec<EngineName>,
    pub top: Option<usize>,
}

impl Job {
    /// The job that searches for `text`: into the dataset, with the engines and up to the
    /// count the command line chose, else the query file, else the config (and the
    /// query's slug, and [`DEFAULT_TOP`]).
    pub fn search(
        config: &Config,
        text: String,
        file: Option<&QueryFile>,
        choices: Choices,
    ) -> Job {
        let dataset = choices
            .dataset
            .or_else(|| file.and_then(|f| f.dataset.clone()))
            .unwrap_or_else(|| slug(&text));
        let engines = if !choices.engines.is_empty() {
            choices.engines
        } else if let Some(engines) = file.and_then(|f| f.engines.clone()) {
            engines
        } else {
            config.fetch.engines.clone()
        };
        let top = choices.top.or(file.map(|f| f.top)).unwrap_or(DEFAULT_TOP);
        let safe_search = file.is_none_or(|f| f.filters.safe_search);
        let query = SearchQuery { text, safe_search };
        Job { dataset, source: Source::Search { query, engines }, top: Some(top) }
    }
}
