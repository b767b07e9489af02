//! The source stage: turns a [`Source`] into candidates, in rank order.
//!
//! Search results come from `search`; a URL list is read line by line (a line that is
//! not an http(s) URL becomes a counted "bad-url" failure naming the file and line); a
//! folder is walked recursively in sorted order, keeping image file extensions: the only
//! source of local files.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc::Sender;
use url::Url;

use super::{
    Candidate, Context, Demand, Emitter, Item, ItemError, Location, RunError, Source, State,
    UrlList, search,
};

/// File extensions `import` picks up from a folder (the bytes decide the real format).
const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "gif", "webp", "bmp", "jfif"];

/// Runs the source; returns the engine failures met on the way (empty for imports).
pub async fn run(
    ctx: Arc<Context>,
    source: Source,
    demand: Arc<Demand>,
    tx: Sender<Item>,
) -> Result<Vec<String>, RunError> {
    let out = Emitter { ctx: &ctx, demand: &demand, tx: &tx };
    if ctx.stop.is_cancelled() {
        return Ok(Vec::new());
    }
    match source {
        Source::Search { query, engines } => Ok(search::run(&out, &query, &engines).await),
        Source::UrlList(list) => {
            let text = tokio::fs::read_to_string(&list.path)
                .await
                .map_err(crate::durable::at(&list.path))?;
            for item in url_list_items(&list, &text) {
                if !out.emit(item).await {
                    break;
                }
            }
            Ok(Vec::new())
        }
        Source::Folder(path) => {
            let files = tokio::task::spawn_blocking(move || image_files(&path))
                .await
                .map_err(|e| RunError::Stage { stage: "source", message: e.to_string() })??;
            for item in files {
                if !out.emit(item).await {
                    break;
                }
            }
            Ok(Vec::new())
        }
    }
}

/// One item per non-empty, non-comment line; rank = line number in the whole list.
fn url_list_items(list: &UrlList, text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = list.first_line + index;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (location, state) = match Location::remote(line) {
            Ok(location) => (location, State::New),
            Err(why) => (Location::Remote(line.to_owned()), bad_url(&list.name, line_no, why)),
        };
        let candidate = Candidate {
            rank: line_no as u64,
            location,
            source: "import".into(),
            query: list.name.clone(),
            page_url: None,
            title: None,
            credit: None,
        };
        items.push(Item { candidate, state });
    }
    items
}

fn bad_url(list: &str, line: usize, why: String) -> State {
    State::Failed { error: ItemError::BadUrl(why), at: format!("{list}:{line}") }
}

/// Image files under `root`, sorted, as `file://` candidates, with what the tree's
/// `CREDITS.tsv` files say of them.
fn image_files(root: &Path) -> Result<Vec<Item>, RunError> {
    let root = std::path::absolute(root).map_err(crate::durable::at(root))?;
    let mut credits = super::credits::read_tree(&root)?;
    let mut items = Vec::new();
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(&root).to_owned();
            let why =
                e.into_io_error().unwrap_or_else(|| std::io::Error::other("file system loop"));
            crate::durable::at(&path)(why)
        })?;
        let is_image = entry
            .path()
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()));
        if !entry.file_type().is_file() || !is_image {
            continue;
        }
        let url = Url::from_file_path(entry.path()).map_err(|()| {
            let why = std::io::Error::other("path cannot be written as a file URL");
            crate::durable::at(entry.path())(why)
        })?;
        let credited = credits.remove(entry.path());
        let candidate = Candidate {
            rank: items.len() as u64 + 1,
            location: Location::Local { path: entry.path().to_owned(), url: url.into() },
            source: "import".into(),
            query: root.display().to_string(),
            page_url: credited.as_ref().and_then(|c| c.page_url.clone()),
            title: credited.as_ref().and_then(|c| c.title.clone()),
            credit: credited.map(|c| c.credit),
        };
        items.push(Item { candidate, state: State::New });
    }
    Ok(items)
}
