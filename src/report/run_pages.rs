//! The pages of training runs: one per run (facts, loss curves, sample grids with a
//! slider, scores beside the do-nothing baseline, best and worst five, the cross-domain
//! figures), one per dataset that several runs were scored on (side by side), and their
//! rows in the overview.

use std::collections::{HashMap, HashSet};

use askama::Template;

use super::pages::{RunRow, short_id};
use super::runs::RunView;
use super::scores::Scores;
use crate::eval::ROWS;

/// The page of run `run`.
pub fn run_page(run: &str) -> String {
    format!("run-{run}.html")
}

/// The side-by-side page of runs scored on `splits` ("test", "train+test") of `dataset`.
pub fn compare_page(dataset: &str, splits: &str) -> String {
    format!("compare-{dataset}-{}.html", splits.replace('+', "-"))
}

/// Images shown as the best and as the worst of a run's test split.
const EXTREMES: usize = 5;

/// Scores side by side, each run beside the do-nothing baseline (one baseline column when
/// the runs share it), as `eval` prints them.
pub struct EvalTable {
    pub caption: String,
    /// (heading, run name or "" for a baseline, "model" or "baseline").
    pub columns: Vec<(String, String, &'static str)>,
    pub rows: Vec<(&'static str, Vec<String>)>,
}

impl EvalTable {
    pub fn new(caption: String, scores: &[&Scores]) -> EvalTable {
        let shared = scores.windows(2).all(|w| w[0].baseline == w[1].baseline);
        let mut columns = Vec::new();
        let mut metrics = Vec::new();
        for s in scores {
            columns.push((format!("{} (epoch {})", s.run, s.checkpoint), s.run.clone(), "model"));
            metrics.push(s.model);
            if !shared {
                columns.push((format!("do-nothing ({})", s.run), s.run.clone(), "baseline"));
                metrics.push(s.baseline);
            }
        }
        if shared && let Some(first) = scores.first() {
            columns.push(("do-nothing".into(), String::new(), "baseline"));
            metrics.push(first.baseline);
        }
        let rows = ROWS
            .iter()
            .map(|(name, value)| {
                (*name, metrics.iter().map(|m| format!("{:.4}", value(m))).collect())
            })
            .collect();
        EvalTable { caption, columns, rows }
    }
}

/// Pictures of one image side by side: (label, src) each, e.g. gray | model | original.
pub struct Strip {
    pub id: String,
    pub caption: String,
    pub pictures: Vec<(String, String)>,
}

fn strip(scores: &[&Scores], id: &str, caption: String) -> Strip {
    let first = scores[0];
    let mut pictures = vec![("gray".to_owned(), first.gray(id))];
    for s in scores {
        pictures.push((s.run.clone(), s.colorized(id)));
    }
    pictures.push(("original".to_owned(), first.truth(id)));
    Strip { id: id.to_owned(), caption, pictures }
}

#[derive(Template)]
#[template(path = "report/run.html")]
pub struct RunPage<'a> {
    pub title: String,
    pub r: &'a RunView,
    pub facts: Vec<(&'static str, String)>,
    pub config: String,
    /// The sample grids' sources as a JSON array, for the slider.
    pub samples_json: String,
    pub tables: Vec<EvalTable>,
    pub best: Vec<Strip>,
    pub worst: Vec<Strip>,
    /// Every test image's metrics, the worst first: (id, CIEDE2000, PSNR, SSIM).
    pub per_image: Vec<(String, String, String, String)>,
    /// Cross-domain datasets: (name, every image as gray | model | original).
    pub cross: Vec<(String, Vec<Strip>)>,
}

impl RunPage<'_> {
    pub fn new(r: &RunView) -> RunPage<'_> {
        let mut tables = Vec::new();
        let (mut best, mut worst, mut cross) = (Vec::new(), Vec::new(), Vec::new());
        let mut per_image = Vec::new();
        for (i, s) in r.scores.iter().enumerate() {
            let caption = format!(
                "{} ({}, {} images, {} px center crops)",
                s.dataset,
                s.splits_label(),
                s.images.len(),
                s.crop
            );
            tables.push(EvalTable::new(caption, &[s]));
            let line = |m: &crate::photo::quality::Metrics| {
                format!("CIEDE2000 {:.2} · PSNR {:.2} dB", m.ciede2000, m.psnr)
            };
            if i == 0 {
                let mut order: Vec<_> = s.images.iter().collect();
                order.sort_by(|a, b| a.metrics.ciede2000.total_cmp(&b.metrics.ciede2000));
                best = order
                    .iter()
                    .take(EXTREMES)
                    .map(|x| strip(&[s], &x.id, line(&x.metrics)))
                    .collect();
                per_image = order
                    .iter()
                    .rev()
                    .map(|x| {
                        let m = &x.metrics;
                        let cell = |v: f64| format!("{v:.4}");
                        (short_id(&x.id).to_owned(), cell(m.ciede2000), cell(m.psnr), cell(m.ssim))
                    })
                    .collect();
                worst = order
                    .iter()
                    .rev()
                    .take(EXTREMES)
                    .map(|x| strip(&[s], &x.id, line(&x.metrics)))
                    .collect();
            } else {
                cross.push((
                    s.dataset.clone(),
                    s.images.iter().map(|x| strip(&[s], &x.id, line(&x.metrics))).collect(),
                ));
            }
        }
        let sources: Vec<&str> = r.samples.iter().map(|(_, src)| src.as_str()).collect();
        RunPage {
            title: format!("run {}", r.name),
            facts: facts(r),
            config: r
                .record
                .as_ref()
                .map(|rec| serde_json::to_string_pretty(&rec.config).expect("config serializes"))
                .unwrap_or_default(),
            samples_json: serde_json::to_string(&sources).expect("strings serialize"),
            r,
            tables,
            best,
            worst,
            per_image,
            cross,
        }
    }

    pub fn last_sample(&self) -> Option<&(usize, String)> {
        self.r.samples.last()
    }
}

fn facts(r: &RunView) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(rec) = &r.record {
        out.push(("recipe", format!("{:?}", rec.config.recipe).to_lowercase()));
        out.push(("trained on", format!("{} (build {})", rec.dataset, rec.version)));
        out.push(("device", rec.device.clone().unwrap_or_else(|| "not recorded".into())));
    }
    if let Some(last) = r.history.keys().max() {
        out.push(("epochs logged", last.to_string()));
    }
    if let Some(last) = &r.last {
        out.push(("trained for", wall(last.elapsed_s)));
    }
    if let Some(best) = &r.best {
        out.push(("checkpoint shown", format!("epoch {} (best)", best.epoch)));
    }
    if let Some(note) = &r.best_note {
        out.push(("note", note.clone()));
    }
    out
}

fn wall(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

/// The run's row in the overview.
pub fn row(r: &RunView) -> RunRow {
    let rec = r.record.as_ref();
    let best = match r.best.as_ref().and_then(|b| b.val.map(|v| (b.epoch, v))) {
        Some((epoch, v)) => format!(
            "{:.2}, {:.2} dB, {:.2} (epoch {epoch})",
            v.ciede2000, v.psnr, v.colorfulness_ratio
        ),
        None if r.history.is_empty() => "no metrics yet".into(),
        None => "no validation scores".into(),
    };
    RunRow {
        name: r.name.clone(),
        link: run_page(&r.name),
        recipe: rec.map_or_else(|| "?".into(), |x| format!("{:?}", x.config.recipe).to_lowercase()),
        dataset: rec.map_or_else(|| "?".into(), |x| x.dataset.clone()),
        epochs: r.history.keys().max().map_or_else(|| "0".into(), ToString::to_string),
        best,
        device: rec.and_then(|x| x.device.clone()).unwrap_or_else(|| "not recorded".into()),
        wall: r.last.as_ref().map_or_else(|| "-".into(), |l| wall(l.elapsed_s)),
    }
}

#[derive(Template)]
#[template(path = "report/compare.html")]
pub struct ComparePage {
    pub title: String,
    pub dataset: String,
    pub table: EvalTable,
    pub strips: Vec<Strip>,
}

/// Side-by-side pages: every dataset that two or more runs were scored on (the same
/// splits of the same build), with the images they all colorized.
pub fn compares(runs: &[RunView]) -> Vec<(String, ComparePage)> {
    // Groups in the order they are first met, found by key (no scan per score).
    let mut groups: Vec<Vec<&Scores>> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for s in runs.iter().flat_map(|r| &r.scores) {
        let key = format!("{}-{}-{}", s.dataset, s.version, s.splits_label());
        let at = *by_key.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(s);
    }
    groups
        .into_iter()
        .filter(|scores| scores.len() > 1)
        .map(|scores| {
            let first = scores[0];
            let scored: Vec<HashSet<&str>> =
                scores.iter().map(|s| s.images.iter().map(|i| i.id.as_str()).collect()).collect();
            let ids: Vec<&str> = first
                .images
                .iter()
                .map(|i| i.id.as_str())
                .filter(|id| scored.iter().all(|set| set.contains(id)))
                .collect();
            let caption =
                format!("{} ({}, {} images)", first.dataset, first.splits_label(), ids.len());
            let page = ComparePage {
                title: format!("{} side by side", first.dataset),
                dataset: first.dataset.clone(),
                table: EvalTable::new(caption, &scores),
                strips: ids.iter().map(|id| strip(&scores, id, short_id(id).to_owned())).collect(),
            };
            (compare_page(&first.dataset, &first.splits_label()), page)
        })
        .collect()
}
