//! A run's scores on a dataset, and the pictures behind them, made once per checkpoint:
//! `eval`'s numbers (the same function, so the page equals `eval --json`) with each
//! image's own metrics, its colorization (`runs/RUN/<key>/<id>.jpg`) and its gray and true
//! crops (`crops/<dataset>-<version>-<crop>/`, shared by every run of that crop). The
//! numbers are kept beside the pictures (`scores.json`): a later report reads them back
//! instead of colorizing again, until the run's best checkpoint or the build changes. A
//! checkpoint is known by its epoch and its weights' hash, so a run deleted and trained
//! again under the same name is scored again.

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::ReportError;
use super::site::Site;
use crate::dataset::{Built, Split};
use crate::eval::colorizer::Colorizer;
use crate::eval::{self, Scored};
use crate::photo::jpeg;
use crate::photo::quality::Metrics;
use crate::train::error::TrainError;

const QUALITY: i32 = 90;

/// One run's evaluation of one dataset's splits at one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scores {
    pub run: String,
    pub dataset: String,
    pub version: String,
    pub splits: Vec<Split>,
    /// The epoch of the checkpoint scored.
    pub checkpoint: usize,
    pub crop: usize,
    pub model: Metrics,
    pub baseline: Metrics,
    /// Every image in split order, with its metrics.
    pub images: Vec<ImageScore>,
    /// The folder of the colorizations, in the report.
    pub folder: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageScore {
    pub id: String,
    pub metrics: Metrics,
}

impl Scores {
    /// The colorization of image `id`.
    pub fn colorized(&self, id: &str) -> String {
        format!("{}/{id}.jpg", self.folder)
    }

    /// The gray crop the model saw.
    pub fn gray(&self, id: &str) -> String {
        format!("{}/{id}-gray.jpg", self.crops())
    }

    /// The true colors of that crop.
    pub fn truth(&self, id: &str) -> String {
        format!("{}/{id}.jpg", self.crops())
    }

    fn crops(&self) -> String {
        format!("crops/{}-{}-{}", self.dataset, self.version, self.crop)
    }

    /// Which splits, for people: "test", "train+test".
    pub fn splits_label(&self) -> String {
        let names: Vec<&str> = self.splits.iter().map(|s| s.as_str()).collect();
        names.join("+")
    }
}

/// The checkpoint scored: its epoch and the first hex digits of its weights' blake3.
pub struct Checkpoint {
    pub epoch: usize,
    pub weights: String,
}

impl Checkpoint {
    /// The checkpoint in the folder `dir` of epoch `epoch`.
    pub fn read(dir: &std::path::Path, epoch: usize) -> Result<Checkpoint, ReportError> {
        let nets = dir.join("nets.safetensors");
        let mut hasher = blake3::Hasher::new();
        let file = std::fs::File::open(&nets).map_err(crate::durable::at(&nets))?;
        hasher.update_reader(file).map_err(crate::durable::at(&nets))?;
        Ok(Checkpoint { epoch, weights: hasher.finalize().to_hex()[..12].to_owned() })
    }
}

/// The scores of `run` at `checkpoint` on `splits` of `built`: read back when the report
/// made them before, else made with the colorizer `open` gives (loaded once).
pub fn ensure(
    site: &Site,
    run: &str,
    checkpoint: &Checkpoint,
    built: &Built,
    splits: &[Split],
    open: &mut dyn FnMut() -> Result<std::rc::Rc<Colorizer>, TrainError>,
    bar: &ProgressBar,
) -> Result<Scores, ReportError> {
    let m = &built.manifest;
    let names: Vec<&str> = splits.iter().map(|s| s.as_str()).collect();
    let Checkpoint { epoch, weights } = checkpoint;
    let folder =
        format!("runs/{run}/{}-{}-{}-e{epoch}-{weights}", m.dataset, m.version, names.join("+"));
    let saved = format!("{folder}/scores.json");
    if let Ok(bytes) = std::fs::read(site.path(&saved))
        && let Ok(scores) = serde_json::from_slice::<Scores>(&bytes)
    {
        return Ok(scores);
    }
    let colorizer = open()?;
    let mut scores = Scores {
        run: run.to_owned(),
        dataset: m.dataset.clone(),
        version: m.version.clone(),
        splits: splits.to_vec(),
        checkpoint: colorizer.epoch,
        crop: colorizer.crop,
        model: Metrics::default(),
        baseline: Metrics::default(),
        images: Vec::new(),
        folder,
    };
    bar.set_length(m.members.iter().filter(|x| splits.contains(&x.split)).count() as u64);
    let mut images = Vec::new();
    let mut each = |image: Scored| -> Result<(), ReportError> {
        let c = image.crop;
        let gray: Vec<u8> = image.gray.iter().flat_map(|v| [*v; 3]).collect();
        for (rel, rgb) in [
            (scores.gray(image.id), gray.as_slice()),
            (scores.truth(image.id), image.truth),
            (scores.colorized(image.id), image.colorized),
        ] {
            if !site.has(&rel) {
                let bytes = jpeg::encode_rgb(rgb, c, c, QUALITY)
                    .map_err(|e| ReportError::Picture(format!("{rel}: {e}")))?;
                site.write(&rel, &bytes)?;
            }
        }
        images.push(ImageScore { id: image.id.to_owned(), metrics: *image.model });
        bar.inc(1);
        Ok(())
    };
    let evaluation = eval::evaluate(&colorizer, built, splits, None, &mut each)?;
    bar.finish_and_clear();
    scores.model = evaluation.model;
    scores.baseline = evaluation.baseline;
    scores.images = images;
    let json = serde_json::to_vec_pretty(&scores).expect("scores serialize");
    site.write(&saved, &json)?;
    Ok(scores)
}
