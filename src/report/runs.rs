//! What the report shows of a training run: its record, its per-epoch history, the
//! checkpoint `best` picks, the sample grids and loss curves it drew, and its scores on
//! its own dataset's test split and on the cross-domain datasets (see `scores`).
//! Whatever is missing (a run that logged nothing yet, a dataset never built) becomes a
//! line on its page, never a failed report.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use indicatif::ProgressBar;

use super::ReportError;
use super::scores::{self, Checkpoint, Scores};
use super::site::Site;
use super::tradeoff;
use crate::dataset::{Built, Split};
use crate::eval::colorizer::Colorizer;
use crate::train::checkpoint::{self, CheckpointState};
use crate::train::choice::Choice;
use crate::train::metrics_log::{EpochRecord, read_history};
use crate::train::run_record::RunRecord;

const SAMPLE_QUALITY: i32 = 85;

pub struct RunView {
    pub name: String,
    pub record: Option<RunRecord>,
    /// Per-epoch mean losses and validation scores.
    pub history: BTreeMap<usize, EpochRecord>,
    /// The checkpoint `best` picks, and the note when it fell back to the last.
    pub best: Option<CheckpointState>,
    pub best_note: Option<String>,
    /// The newest checkpoint: how long the run has trained.
    pub last: Option<CheckpointState>,
    /// Per-epoch sample grids (gray | colorized | original), oldest first.
    pub samples: Vec<(usize, String)>,
    pub loss_curves: Option<String>,
    /// A class-head run's error against colour per temperature, on its test split.
    pub tradeoff: Option<String>,
    /// Its own dataset's test split first, then the cross-domain datasets.
    pub scores: Vec<Scores>,
    /// What could not be shown, and why.
    pub problems: Vec<String>,
}

/// Reads run `name` of the store at `root` into the report, scoring it where it has not
/// been yet.
pub fn read(
    site: &Site,
    root: &Path,
    name: &str,
    cross_domain: &[String],
    device: tch::Device,
    bar: &dyn Fn(&str) -> ProgressBar,
) -> Result<RunView, ReportError> {
    let dir = crate::train::run_record::run_dir(root, name);
    let mut view = RunView {
        name: name.to_owned(),
        record: None,
        history: BTreeMap::new(),
        best: None,
        best_note: None,
        last: None,
        samples: Vec::new(),
        loss_curves: None,
        tradeoff: None,
        scores: Vec::new(),
        problems: Vec::new(),
    };
    match RunRecord::read(root, name) {
        Ok(record) => view.record = Some(record),
        Err(e) => view.problems.push(e.to_string()),
    }
    match read_history(&dir) {
        Ok(history) => view.history = history,
        Err(e) => view.problems.push(e.to_string()),
    }
    if view.history.is_empty() {
        view.problems.push("no metrics yet: the run has not logged a training step".into());
    }
    match checkpoint::latest(&dir) {
        Ok(last) => view.last = last.map(|(_, state)| state),
        Err(e) => view.problems.push(e.to_string()),
    }
    let mut best_dir = None;
    if view.last.is_some()
        && let Some(record) = &view.record
        && let Ok((path, state, note)) =
            checkpoint::choose(&dir, Choice::Best, record.config.best_colorfulness)
    {
        view.best = Some(state);
        view.best_note = note;
        best_dir = Some(path);
    }
    view.samples = samples(site, &dir, name)?;
    let curves = dir.join("loss.svg");
    if let Ok(svg) = std::fs::read(&curves) {
        let rel = format!("runs/{name}/loss.svg");
        site.write(&rel, &svg)?;
        view.loss_curves = Some(rel);
    }
    if let (Some(record), Some(best), Some(best_dir)) = (&view.record, &view.best, &best_dir) {
        let checkpoint = Checkpoint::read(best_dir, best.epoch)?;
        let mut targets = vec![(record.dataset.clone(), vec![Split::Test])];
        for other in cross_domain.iter().filter(|d| **d != record.dataset) {
            targets.push((other.clone(), vec![Split::Train, Split::Test]));
        }
        let (scores, problems) = score(site, root, name, &checkpoint, &targets, device, bar);
        view.scores = scores;
        view.problems.extend(problems);
        if record.config.recipe == crate::train::config::Recipe::Pretrained
            && record.config.pretrained.head == crate::train::config::ColorHead::Classes
        {
            let drawn = draw_tradeoff(site, root, name, &record.dataset, &checkpoint, device);
            match drawn {
                Ok(rel) => view.tradeoff = Some(rel),
                Err(e) => view.problems.push(format!("no trade-off picture: {e}")),
            }
        }
    }
    Ok(view)
}

/// The trade-off picture of class-head run `name` at `checkpoint` on its `dataset`.
fn draw_tradeoff(
    site: &Site,
    root: &Path,
    name: &str,
    dataset: &str,
    checkpoint: &Checkpoint,
    device: tch::Device,
) -> Result<String, String> {
    let built = Built::latest(root, dataset).map_err(|e| e.to_string())?;
    let mut colorizer =
        Colorizer::open(root, name, Choice::Best, device).map_err(|e| e.to_string())?;
    tradeoff::ensure(site, &mut colorizer, checkpoint, &built).map_err(|e| e.to_string())
}

/// The run's scores on each of `targets` (a dataset and its splits) at `checkpoint`, and
/// why it could not be scored on the others. The colorizer is loaded once, if needed.
fn score(
    site: &Site,
    root: &Path,
    name: &str,
    checkpoint: &Checkpoint,
    targets: &[(String, Vec<Split>)],
    device: tch::Device,
    bar: &dyn Fn(&str) -> ProgressBar,
) -> (Vec<Scores>, Vec<String>) {
    let (mut scored, mut problems) = (Vec::new(), Vec::new());
    let mut colorizer: Option<Rc<Colorizer>> = None;
    let mut open = || -> Result<Rc<Colorizer>, crate::train::error::TrainError> {
        if colorizer.is_none() {
            colorizer = Some(Rc::new(Colorizer::open(root, name, Choice::Best, device)?));
        }
        Ok(colorizer.clone().expect("opened"))
    };
    for (dataset, splits) in targets {
        let built = match Built::latest(root, dataset) {
            Ok(built) => built,
            Err(e) => {
                problems.push(format!("not scored on {dataset}: {e}"));
                continue;
            }
        };
        let progress = bar(&format!("scoring {name} on {dataset}"));
        match scores::ensure(site, name, checkpoint, &built, splits, &mut open, &progress) {
            Ok(scores) => scored.push(scores),
            Err(e) => problems.push(format!("not scored on {dataset}: {e}")),
        }
    }
    (scored, problems)
}

/// The run's sample grids as JPEGs in the report (made again when the run redrew one).
fn samples(site: &Site, dir: &Path, name: &str) -> Result<Vec<(usize, String)>, ReportError> {
    let folder = dir.join("samples");
    let Ok(entries) = std::fs::read_dir(&folder) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(epoch) = file
            .strip_prefix("epoch-")
            .and_then(|f| f.strip_suffix(".png"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let rel = format!("runs/{name}/samples/epoch-{epoch:05}.jpg");
        let drawn = entry.metadata().and_then(|m| m.modified()).ok();
        let made = std::fs::metadata(site.path(&rel)).and_then(|m| m.modified()).ok();
        if made.is_none() || drawn > made {
            let Ok(grid) = image::open(entry.path()) else { continue };
            let rgb = grid.to_rgb8();
            let (w, h) = (rgb.width() as usize, rgb.height() as usize);
            let bytes = crate::photo::jpeg::encode_rgb(rgb.as_raw(), w, h, SAMPLE_QUALITY)
                .map_err(|e| ReportError::Picture(format!("{}: {e}", entry.path().display())))?;
            site.write(&rel, &bytes)?;
        }
        out.push((epoch, rel));
    }
    out.sort();
    Ok(out)
}
