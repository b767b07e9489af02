//! `pipeline report`: the store as a static website, a folder that opens from `file://`
//! or any static host (HTML, one stylesheet, a few lines of script for the sample slider,
//! small JPEGs; nothing fetched from elsewhere).
//!
//! ```text
//! OUT/
//!   index.html                          overview: datasets, builds, runs
//!   dataset-NAME.html, -p2.html, ...    gallery, `report.page_size` thumbnails a page
//!   dataset-NAME-failures.html          failures by reason with their URLs, duplicates
//!   run-RUN.html                        a run: curves, samples, scores, best/worst five
//!   compare-DATASET-SPLITS.html         runs side by side on the same images
//!   thumbs/ab/<id>.jpg                  thumbnails, by content hash (`thumbs`)
//!   crops/, runs/RUN/                   what runs were scored on, and made (`scores`)
//! ```
//!
//! Views are read from the store (`datasets`, `runs`), pages rendered by askama templates
//! (`pages`, `run_pages`) and written by `site` only when they change.
//!
//! Owns `[report]`; imports `dataset`, `store`, `train`, `eval`, `photo`, `durable`,
//! `setting`.

pub mod config;
mod datasets;
mod pages;
#[cfg(feature = "train")]
mod run_pages;
#[cfg(feature = "train")]
mod runs;
#[cfg(feature = "train")]
mod scores;
mod site;
mod thumbs;
#[cfg(feature = "train")]
mod tradeoff;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use askama::Template;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::store::Store;
use datasets::DatasetView;
use pages::{DatasetRow, DuplicateRow, FailuresPage, GalleryPage, Overview, Tile};
use site::Site;

/// Shown in every page's footer.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    #[error("rendering {page}: {source}")]
    Render { page: String, source: askama::Error },
    #[error("{0}")]
    Picture(String),
    #[error("no run named {0:?} in the store (store/runs/{0} is missing)")]
    NoRun(String),
    #[cfg(feature = "train")]
    #[error(transparent)]
    Train(#[from] crate::train::error::TrainError),
}

impl ReportError {}

/// What to report on.
pub struct Request<'a> {
    pub out: &'a Path,
    /// Only these runs (all when empty).
    pub runs: &'a [String],
    pub config: &'a config::ReportConfig,
    /// Where runs colorize what they are scored on.
    #[cfg(feature = "train")]
    pub device: tch::Device,
}

impl<'a> Request<'a> {
    /// A report into `out` of `runs` (every run when empty), which are scored on `device`
    /// (`auto`, `cpu`, `cuda`, `cuda:N`: without the `train` feature, no run is scored).
    pub fn new(
        config: &'a config::ReportConfig,
        out: &'a Path,
        runs: &'a [String],
        device: &str,
    ) -> Result<Request<'a>, ReportError> {
        #[cfg(feature = "train")]
        let device = crate::train::device::pick(device).map_err(ReportError::Picture)?;
        #[cfg(not(feature = "train"))]
        let _ = device;
        Ok(Request {
            out,
            runs,
            config,
            #[cfg(feature = "train")]
            device,
        })
    }
}

/// What a report did (`report --json`).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub out: PathBuf,
    pub datasets: usize,
    pub runs: usize,
    /// Pages in the folder, and how many of them changed.
    pub pages: usize,
    pub pages_written: usize,
    pub thumbnails_made: usize,
    pub thumbnails_cached: usize,
    /// What could not be shown: images without a thumbnail, runs not scored.
    pub problems: Vec<String>,
}

/// Writes the report of `store` into `request.out`.
pub fn write(
    store: &Store,
    request: &Request,
    bar: &dyn Fn(&str) -> ProgressBar,
) -> Result<Summary, ReportError> {
    // A run asked for by name must exist before anything is written.
    let mut problems = Vec::new();
    let names = run_names(store.root(), request.runs, &mut problems)?;
    let site = Site::create(request.out)?;
    let mut summary = Summary { out: request.out.to_owned(), problems, ..Summary::default() };
    let mut views = Vec::new();
    for (name, record) in store.index.datasets()? {
        views.push(DatasetView::read(store, &name, record)?);
    }
    summary.datasets = views.len();

    let mut images: Vec<(String, String)> = views
        .iter()
        .flat_map(|d| d.members.iter().map(|m| (m.id.clone(), m.ext.clone())))
        .collect();
    images.sort();
    images.dedup();
    let made = thumbs::ensure(&site, &store.blobs, &images, &bar("thumbnails"))?;
    summary.thumbnails_made = made.made;
    summary.thumbnails_cached = made.cached;
    let no_thumb: BTreeMap<String, String> =
        made.failed.into_iter().map(|(id, why)| (id, on_page(store.root(), &why))).collect();
    for (id, why) in &no_thumb {
        summary.problems.push(format!("image {id}: no thumbnail: {why}"));
    }

    let mut pages: Vec<(String, String)> = Vec::new();
    for d in &views {
        gallery(d, &no_thumb, request.config.page_size, &mut pages)?;
        pages.push((pages::failures_page(&d.name), failures(d)?));
    }

    summary.runs = names.len();
    let part = runs(store.root(), request, &site, &names, bar)?;
    summary.problems.extend(part.problems);
    pages.extend(part.pages);
    let overview = Overview {
        title: "overview".into(),
        // The folder's name, not its path: the site may be published.
        store: store.root().file_name().map_or_else(
            || store.root().display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        ),
        datasets: views.iter().map(DatasetRow::new).collect(),
        runs: part.rows,
        runs_note: part.note,
        compares: part.compares,
    };
    pages.push(("index.html".into(), render("index.html", &overview)?));

    site.write("style.css", pages::STYLE.as_bytes())?;
    summary.pages = pages.len();
    for (rel, html) in &pages {
        summary.pages_written += usize::from(site.write(rel, html.as_bytes())?);
    }
    Ok(summary)
}

/// `text` as a page may show it: the store's own path cut to its folder's name (the site
/// may be published; where the store sits on this machine is nobody's business).
fn on_page(root: &Path, text: &str) -> String {
    let Some(name) = root.file_name() else { return text.to_owned() };
    let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
    let shown = Path::new(name).display().to_string();
    text.replace(&absolute.display().to_string(), &shown)
        .replace(&root.display().to_string(), &shown)
}

fn render(page: &str, template: &impl Template) -> Result<String, ReportError> {
    template.render().map_err(|source| ReportError::Render { page: page.to_owned(), source })
}

/// The gallery pages of a dataset.
fn gallery(
    d: &DatasetView,
    no_thumb: &BTreeMap<String, String>,
    page_size: usize,
    pages: &mut Vec<(String, String)>,
) -> Result<(), ReportError> {
    let count = d.members.len().div_ceil(page_size).max(1);
    for page in 1..=count {
        let start = (page - 1) * page_size;
        let members =
            &d.members[start.min(d.members.len())..(start + page_size).min(d.members.len())];
        let file = pages::gallery_page(&d.name, page);
        let html = render(
            &file,
            &GalleryPage {
                title: format!("dataset {} (page {page} of {count})", d.name),
                d,
                tiles: members.iter().map(|m| Tile::new(m, no_thumb.get(&m.id))).collect(),
                page,
                pages: count,
            },
        )?;
        pages.push((file, html));
    }
    Ok(())
}

fn failures(d: &DatasetView) -> Result<String, ReportError> {
    let members: HashSet<&str> = d.members.iter().map(|m| m.id.as_str()).collect();
    let duplicates = d
        .duplicates
        .iter()
        .map(|(url, r)| DuplicateRow {
            url,
            exact: r.exact,
            of: &r.of,
            thumb: members.contains(r.of.as_str()).then(|| thumbs::rel(&r.of)),
        })
        .collect();
    let page = FailuresPage {
        title: format!("dataset {}: failures", d.name),
        d,
        bars: pages::bars(&d.record.failures),
        duplicates,
    };
    render(&pages::failures_page(&d.name), &page)
}

/// The runs to report on: those asked for (each must exist), or every run folder whose
/// name is a run name (others, which `train` never makes, are named in `problems`, as
/// their names would not make safe file names and links).
fn run_names(
    root: &Path,
    asked: &[String],
    problems: &mut Vec<String>,
) -> Result<Vec<String>, ReportError> {
    if !asked.is_empty() {
        for run in asked {
            if !crate::train::run_record::run_dir(root, run).is_dir() {
                return Err(ReportError::NoRun(run.clone()));
            }
        }
        return Ok(asked.to_vec());
    }
    let mut names = Vec::new();
    for (name, _) in crate::durable::subfolders(&crate::train::run_record::runs_dir(root))? {
        match crate::dataset::check_name(&name) {
            Ok(()) => names.push(name),
            Err(allowed) => {
                problems.push(format!("runs/{name}: left out, not a run name ({allowed})"))
            }
        }
    }
    Ok(names)
}

/// The runs' share of the report: overview rows, pages, and what could not be shown.
#[derive(Default)]
struct RunsPart {
    rows: Vec<pages::RunRow>,
    /// Side-by-side pages: (what, file, runs).
    compares: Vec<(String, String, String)>,
    pages: Vec<(String, String)>,
    problems: Vec<String>,
    note: Option<String>,
}

#[cfg(feature = "train")]
fn runs(
    root: &Path,
    request: &Request,
    site: &Site,
    names: &[String],
    bar: &dyn Fn(&str) -> ProgressBar,
) -> Result<RunsPart, ReportError> {
    let mut part = RunsPart::default();
    let mut views = Vec::new();
    for name in names {
        let mut view =
            runs::read(site, root, name, &request.config.cross_domain, request.device, bar)?;
        view.problems = view.problems.iter().map(|p| on_page(root, p)).collect();
        part.problems.extend(view.problems.iter().map(|p| format!("run {name}: {p}")));
        views.push(view);
    }
    for view in &views {
        part.rows.push(run_pages::row(view));
        let file = run_pages::run_page(&view.name);
        part.pages.push((file.clone(), render(&file, &run_pages::RunPage::new(view))?));
    }
    for (file, page) in run_pages::compares(&views) {
        let runs: Vec<&str> =
            page.table.columns.iter().filter(|c| c.2 == "model").map(|c| c.1.as_str()).collect();
        part.compares.push((page.table.caption.clone(), file.clone(), runs.join(" | ")));
        part.pages.push((file.clone(), render(&file, &page)?));
    }
    Ok(part)
}

#[cfg(not(feature = "train"))]
fn runs(
    _root: &Path,
    _request: &Request,
    _site: &Site,
    names: &[String],
    _bar: &dyn Fn(&str) -> ProgressBar,
) -> Result<RunsPart, ReportError> {
    let mut part = RunsPart::default();
    if !names.is_empty() {
        part.note = Some(format!(
            "{} run(s) not shown: this pipeline was built without the `train` feature \
             (scripts/run builds it with).",
            names.len()
        ));
    }
    Ok(part)
}
