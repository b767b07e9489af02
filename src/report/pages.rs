//! The report's pages: askama templates (templates/report/) filled from the views. Every
//! page sits at the top of the report's folder, so every link is a plain relative path.
//! What came from outside (search results, URL lists, buckets) is escaped by askama, and
//! links to it only when it is an http(s) URL (`link::href`): anything else is text.

use askama::Template;

use super::datasets::{DatasetView, MemberView, Placement};
use super::thumbs;
use crate::link::{href, shown};

/// The stylesheet every page links.
pub const STYLE: &str = include_str!("../../templates/report/style.css");

/// A failure reason as a bar of a chart: reason, count, width in percent of the largest.
pub struct Bar {
    pub label: String,
    pub count: u64,
    pub width: f64,
}

/// Bars for `counts`, the largest first.
pub fn bars<'a>(counts: impl IntoIterator<Item = (&'a String, &'a u64)>) -> Vec<Bar> {
    let mut bars: Vec<Bar> =
        counts.into_iter().map(|(r, n)| Bar { label: r.clone(), count: *n, width: 0.0 }).collect();
    bars.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    let top = bars.first().map_or(1, |b| b.count.max(1)) as f64;
    for bar in &mut bars {
        bar.width = 100.0 * bar.count as f64 / top;
    }
    bars
}

/// The file name of a dataset's gallery page `page` (1-based).
pub fn gallery_page(dataset: &str, page: usize) -> String {
    if page == 1 {
        format!("dataset-{dataset}.html")
    } else {
        format!("dataset-{dataset}-p{page}.html")
    }
}

pub fn failures_page(dataset: &str) -> String {
    format!("dataset-{dataset}-failures.html")
}

/// The first 16 hex digits of an image id, as pages show it.
pub fn short_id(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// One member in a gallery.
pub struct Tile<'a> {
    pub m: &'a MemberView,
    /// Its thumbnail, or why there is none.
    pub thumb: Result<String, String>,
    /// Where the image came from (its page, else the image), when that is an http(s) URL.
    pub link: Option<String>,
    pub class: &'static str,
    pub tag: String,
}

impl<'a> Tile<'a> {
    pub fn new(m: &'a MemberView, failed: Option<&String>) -> Tile<'a> {
        let (class, tag) = match &m.placement {
            Placement::Unbuilt => ("", String::new()),
            Placement::Train => ("", "train".to_owned()),
            Placement::Test => ("test", "test".to_owned()),
            Placement::Left { reason, .. } => ("left", format!("left out: {reason}")),
        };
        Tile {
            m,
            thumb: failed.map_or_else(|| Ok(thumbs::rel(&m.id)), |why| Err(why.clone())),
            link: href(m.member.page_url.as_deref().unwrap_or(&m.member.url)),
            class,
            tag,
        }
    }

    /// Its caption: the title the engine gave, else the file name in its URL.
    pub fn caption(&self) -> &str {
        let url = self.m.member.url.trim_end_matches('/');
        let name = url.rsplit('/').next().unwrap_or(url);
        self.m.member.title.as_deref().unwrap_or(name)
    }

    /// Its licence and whom to credit ("CC-BY-2.0 · Ann"), what of it is known.
    pub fn credit_text(&self) -> Option<String> {
        let credit = self.m.member.credit.as_ref()?;
        let parts: Vec<&str> =
            [credit.license.as_deref(), credit.creator.as_deref()].into_iter().flatten().collect();
        (!parts.is_empty()).then(|| parts.join(" · "))
    }

    /// A link to its licence's text, when that is an http(s) URL.
    pub fn license_href(&self) -> Option<String> {
        href(self.m.member.credit.as_ref()?.license_url.as_deref()?)
    }

    /// Hover text: title, measurement of a drop, URL.
    pub fn hover(&self) -> String {
        let mut parts = Vec::new();
        if let Some(title) = &self.m.member.title {
            parts.push(title.clone());
        }
        if let Placement::Left { detail, .. } = &self.m.placement {
            parts.push(detail.clone());
        }
        parts.push(shown(&self.m.member.url));
        parts.join("\n")
    }
}

#[derive(Template)]
#[template(path = "report/dataset.html")]
pub struct GalleryPage<'a> {
    pub title: String,
    pub d: &'a DatasetView,
    pub tiles: Vec<Tile<'a>>,
    pub page: usize,
    pub pages: usize,
}

impl GalleryPage<'_> {
    pub fn page_link(&self, page: &usize) -> String {
        gallery_page(&self.d.name, *page)
    }

    pub fn failures_link(&self) -> String {
        failures_page(&self.d.name)
    }
}

/// A near or exact duplicate beside the member it duplicates.
pub struct DuplicateRow<'a> {
    pub url: &'a str,
    pub exact: bool,
    pub of: &'a str,
    /// The member's thumbnail, when the member is in the gallery.
    pub thumb: Option<String>,
}

#[derive(Template)]
#[template(path = "report/failures.html")]
pub struct FailuresPage<'a> {
    pub title: String,
    pub d: &'a DatasetView,
    pub bars: Vec<Bar>,
    pub duplicates: Vec<DuplicateRow<'a>>,
}

impl FailuresPage<'_> {
    pub fn time(&self, at: &u64) -> String {
        crate::store::rfc3339(*at)
    }

    pub fn href(&self, url: &str) -> Option<String> {
        href(url)
    }

    pub fn shown(&self, url: &str) -> String {
        shown(url)
    }
}

/// A dataset in the overview.
pub struct DatasetRow {
    pub name: String,
    pub link: String,
    pub query: String,
    pub images: usize,
    pub sources: String,
    pub last_fetch: String,
    pub duplicates: u64,
    pub failed: u64,
    pub bars: Vec<Bar>,
    pub builds: Vec<BuildRow>,
}

/// A built version in the overview.
pub struct BuildRow {
    pub version: String,
    pub latest: bool,
    pub size: u32,
    pub train: usize,
    pub test: usize,
    /// Left out by curation, by reason, and skipped.
    pub left_out: String,
}

impl DatasetRow {
    pub fn new(d: &DatasetView) -> DatasetRow {
        let sources: Vec<String> = d.sources.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let builds = d
            .builds
            .iter()
            .map(|b| {
                let c = &b.manifest.counts;
                let mut left: Vec<String> =
                    c.dropped.iter().map(|(r, n)| format!("{r} {n}")).collect();
                if c.skipped > 0 {
                    left.push(format!("skipped {}", c.skipped));
                }
                BuildRow {
                    version: b.version.clone(),
                    latest: b.latest,
                    size: b.manifest.settings.size,
                    train: c.train,
                    test: c.test,
                    left_out: if left.is_empty() { "none".into() } else { left.join(", ") },
                }
            })
            .collect();
        DatasetRow {
            name: d.name.clone(),
            link: gallery_page(&d.name, 1),
            query: d.record.query.clone().unwrap_or_default(),
            images: d.members.len(),
            sources: sources.join(", "),
            last_fetch: d.record.last_fetch.map_or_else(|| "never".into(), crate::store::rfc3339),
            duplicates: d.record.duplicates,
            failed: d.record.failures.values().sum(),
            bars: bars(&d.record.failures),
            builds,
        }
    }
}

/// A run in the overview.
pub struct RunRow {
    pub name: String,
    pub link: String,
    pub recipe: String,
    pub dataset: String,
    pub epochs: String,
    pub best: String,
    pub device: String,
    pub wall: String,
}

#[derive(Template)]
#[template(path = "report/overview.html")]
pub struct Overview {
    pub title: String,
    pub store: String,
    pub datasets: Vec<DatasetRow>,
    pub runs: Vec<RunRow>,
    /// Why runs are not shown, when they cannot be.
    pub runs_note: Option<String>,
    /// Comparison pages: (dataset, link, runs).
    pub compares: Vec<(String, String, String)>,
}
