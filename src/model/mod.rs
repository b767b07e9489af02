//! `export-model`: a trained run handed on in the layout people load elsewhere (the
//! Hugging Face one): `model.safetensors` (the generator's weights, averaged when the run
//! kept an average) with `config.json` (`config`), `colorizer.pt` (`torchscript`: the
//! whole path as a TorchScript module, colour conversion included), and `README.md`
//! (`card`), whose scores are `eval`'s, made here.
//!
//! The files are written into a fresh folder beside OUT, then renamed onto it: OUT is never
//! half written, and only an empty folder or an earlier export is replaced.

pub mod card;
pub mod config;
pub mod torchscript;

use std::path::{Path, PathBuf};

use crate::dataset::{Built, Split};
use crate::eval::colorizer::Colorizer;
use crate::eval::{self, Evaluation};
use crate::train::error::TrainError;
use config::ModelConfig;

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TORCHSCRIPT_FILE: &str = "colorizer.pt";
pub const CARD_FILE: &str = "README.md";

/// `eval` of the exported checkpoint on one dataset.
pub struct Scored {
    pub dataset: String,
    /// `test`, or `train+test` for a dataset the run never saw.
    pub splits: &'static str,
    pub evaluation: Evaluation,
}

/// What `export-model` is asked to do.
pub struct Request<'a> {
    pub store: &'a Path,
    pub run: &'a str,
    pub choice: crate::train::choice::Choice,
    /// Datasets the run never saw, scored whole (their latest build).
    pub cross_domain: &'a [String],
    pub out: &'a Path,
    pub device: tch::Device,
}

/// The export written, with the scores its card shows.
pub struct Exported {
    pub epoch: usize,
    pub files: Vec<PathBuf>,
    pub scores: Vec<Scored>,
    /// Said to the user when `best` fell back to the last checkpoint.
    pub note: Option<String>,
}

/// Exports `request.run` into `request.out`.
pub fn export(request: &Request) -> Result<Exported, TrainError> {
    let out = &std::path::absolute(request.out).map_err(crate::durable::at(request.out))?;
    check_out(out)?;
    let colorizer = Colorizer::open(request.store, request.run, request.choice, request.device)?;
    let record = &colorizer.record;
    let trained = Built::open(
        &crate::dataset::dataset_dir(request.store, &record.dataset).join(&record.version),
    )?;
    let scores = score(&colorizer, &trained, request)?;
    let m = &trained.manifest;
    let config = ModelConfig::of(
        &colorizer,
        config::TrainedOn {
            dataset: m.dataset.clone(),
            version: m.version.clone(),
            train_pairs: m.counts.train,
            test_pairs: m.counts.test,
        },
    );
    let partial = sibling(out, "partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(crate::durable::at(&partial))?;
    tch::Tensor::write_safetensors(&colorizer.weights(), partial.join(WEIGHTS_FILE))?;
    let json = serde_json::to_vec_pretty(&config).expect("config serializes");
    write(&partial.join(config::FILE), &json)?;
    torchscript::save(&colorizer, &partial.join(TORCHSCRIPT_FILE))?;
    write(&partial.join(CARD_FILE), card::card(&config, m, &scores).as_bytes())?;
    publish(&partial, out)?;
    let files = [WEIGHTS_FILE, config::FILE, TORCHSCRIPT_FILE, CARD_FILE]
        .iter()
        .map(|f| out.join(f))
        .collect();
    Ok(Exported { epoch: colorizer.epoch, files, scores, note: colorizer.note.clone() })
}

/// The run's own test split, then every cross-domain dataset whole.
fn score(
    colorizer: &Colorizer,
    trained: &Built,
    request: &Request,
) -> Result<Vec<Scored>, TrainError> {
    let own = &trained.manifest.dataset;
    let mut scores = vec![Scored {
        dataset: own.clone(),
        splits: "test",
        evaluation: eval::evaluate::<TrainError>(
            colorizer,
            trained,
            &[Split::Test],
            None,
            &mut |_| Ok(()),
        )?,
    }];
    for dataset in request.cross_domain.iter().filter(|d| *d != own) {
        let built = Built::latest(request.store, dataset)?;
        let evaluation = eval::evaluate::<TrainError>(
            colorizer,
            &built,
            &[Split::Train, Split::Test],
            None,
            &mut |_| Ok(()),
        )?;
        scores.push(Scored { dataset: dataset.clone(), splits: "train+test", evaluation });
    }
    Ok(scores)
}

/// OUT may be absent, an empty folder or an earlier export: nothing else is replaced.
fn check_out(out: &Path) -> Result<(), TrainError> {
    let Ok(mut entries) = std::fs::read_dir(out) else {
        return match out.exists() {
            true => Err(TrainError::Invalid(format!("{} is not a folder", out.display()))),
            false => Ok(()),
        };
    };
    if entries.next().is_none() {
        return Ok(());
    }
    let earlier = std::fs::read(out.join(config::FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|v| v["exported_by"] == config::EXPORTED_BY);
    match earlier {
        true => Ok(()),
        false => Err(TrainError::Invalid(format!(
            "{} holds files that are not an earlier export-model: name an empty or new folder",
            out.display()
        ))),
    }
}

/// `.NAME.suffix` beside `out`.
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let name = out.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.{suffix}"))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    Ok(std::fs::write(path, bytes).map_err(crate::durable::at(path))?)
}

/// Puts the finished `partial` in place of `out` (an earlier export is removed after).
fn publish(partial: &Path, out: &Path) -> Result<(), TrainError> {
    let old = sibling(out, "old");
    let _ = std::fs::remove_dir_all(&old);
    if out.exists() {
        std::fs::rename(out, &old).map_err(crate::durable::at(out))?;
    }
    crate::durable::publish_folder(partial, out)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}
