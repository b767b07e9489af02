//! Links on published pages (the report, dataset cards): what came from outside becomes a
//! link only when it is an http(s) URL, and a local file is shown by its name alone.
//!
//! Imports nothing of the crate.

/// The target of a link to `url`, if it may be one: http and https only, as parsed, so
/// the browser follows what was checked. `javascript:`, `data:`, `file:` and the rest
/// are shown as text.
pub fn href(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// A URL as a published page shows it: a local file by its name alone (its folders are
/// the importer's own), anything else as it is.
pub fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "file" => {
            let path = parsed.to_file_path().unwrap_or_default();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            format!("file {}", name.unwrap_or_default())
        }
        _ => url.to_owned(),
    }
}
