//! An import's credits: a `CREDITS.tsv` file in any folder of an imported tree names, for
//! the images of that folder, their licence and whom to credit. Tab-separated, a header
//! row naming the columns: `file` (the image's name, relative to the TSV's folder) is
//! required; `license` (an SPDX-like id such as `CC0-1.0` or `CC-BY-4.0`, or a Creative
//! Commons code; "Public Domain" is `PDM`), `license_url`, `author` (or `creator`),
//! `attribution`, `source` (the page the image came from) and `title` are read when
//! present, other columns are ignored. `../shared/data/demo_cc0/CREDITS.tsv` is one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::credit::{Credit, license_id};
use crate::durable::PathError;

/// File name of the sidecar, in any case.
const SIDECAR: &str = "credits.tsv";

/// What a `CREDITS.tsv` says of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credited {
    pub credit: Credit,
    pub page_url: Option<String>,
    pub title: Option<String>,
}

/// Why a `CREDITS.tsv` cannot be used: the file and line, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CreditsError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("{path}:{line}: {message}")]
    Bad { path: PathBuf, line: usize, message: String },
}

/// The credits of every image `CREDITS.tsv` files under `root` name, by the image's path.
pub fn read_tree(root: &Path) -> Result<HashMap<PathBuf, Credited>, CreditsError> {
    let mut out = HashMap::new();
    let sidecars = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case(SIDECAR));
    for sidecar in sidecars {
        let text =
            std::fs::read_to_string(sidecar.path()).map_err(crate::durable::at(sidecar.path()))?;
        let folder = sidecar.path().parent().unwrap_or(root);
        for (file, credited) in parse(sidecar.path(), &text)? {
            out.insert(folder.join(file), credited);
        }
    }
    Ok(out)
}

/// The rows of one `CREDITS.tsv` (`path` for messages): file name and credits.
fn parse(path: &Path, text: &str) -> Result<Vec<(String, Credited)>, CreditsError> {
    let bad =
        |line: usize, message: String| CreditsError::Bad { path: path.to_owned(), line, message };
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else { return Ok(Vec::new()) };
    let columns: Vec<String> = header.split('\t').map(|c| c.trim().to_ascii_lowercase()).collect();
    let at = |names: &[&str]| columns.iter().position(|c| names.contains(&c.as_str()));
    let file = at(&["file"]).ok_or_else(|| bad(1, "the header names no `file` column".into()))?;
    let [license, license_url, creator, attribution, source, title] = [
        at(&["license", "licence"]),
        at(&["license_url", "licence_url"]),
        at(&["author", "creator", "artist"]),
        at(&["attribution"]),
        at(&["source", "page", "page_url"]),
        at(&["title"]),
    ];
    let mut rows = Vec::new();
    for (index, line) in lines {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if fields.len() != columns.len() {
            let message = format!("{} fields where the header has {}", fields.len(), columns.len());
            return Err(bad(index + 1, message));
        }
        let get = |column: Option<usize>| {
            column.map(|c| fields[c]).filter(|v| !v.is_empty()).map(str::to_owned)
        };
        let given_license = get(license);
        let credit = Credit {
            // An id the file gives that is no Creative Commons code is taken as it is: the
            // person who wrote the file said so.
            license: given_license.map(|l| license_id(&l.replace(' ', "-"), None).unwrap_or(l)),
            license_url: get(license_url),
            creator: get(creator),
            attribution: get(attribution),
        };
        let credited = Credited { credit, page_url: get(source), title: get(title) };
        rows.push((fields[file].to_owned(), credited));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_header_and_a_bad_row_named_by_line() {
        let text = "file\twidth\tlicense\tauthor\tsource\na.jpg\t512\tCC0-1.0\tAnn\thttps://x/a\n\nb.jpg\t9\tPublic Domain\t\t\n";
        let rows = parse(Path::new("CREDITS.tsv"), text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1.credit.license.as_deref(), Some("CC0-1.0"));
        assert_eq!(rows[0].1.credit.creator.as_deref(), Some("Ann"));
        assert_eq!(rows[0].1.page_url.as_deref(), Some("https://x/a"));
        assert_eq!(rows[1].1.credit.license.as_deref(), Some("PDM"));
        assert_eq!(rows[1].1.credit.creator, None);
        let err = parse(Path::new("CREDITS.tsv"), "file\tlicense\nc.jpg\n").unwrap_err();
        assert_eq!(err.to_string(), "CREDITS.tsv:2: 1 fields where the header has 2");
        let err = parse(Path::new("C.tsv"), "name\tlicense\n").unwrap_err();
        assert_eq!(err.to_string(), "C.tsv:1: the header names no `file` column");
    }
}
