//! Curation: which members of a dataset a build keeps, and why the others are left out.
//!
//! ```text
//! members ──► labels (once per image: color stats, top-5 ImageNet classes) ──► rules
//!         ──► kept / dropped (gray, tinted, off-topic) ──► splits ──► leak check
//! ```
//!
//! - `color`: the gray and tint measures (no model); `classes`: ImageNet's names and
//!   synonyms; `classifier` (the `train` feature): EfficientNet-Lite0's top 5;
//! - `labels`: computing and storing what is measured per image; `decide`: the rules;
//!   `leaks`: test images nearly duplicating training images. The `[curate]` rules and
//!   what a build records of them are `dataset::curation`'s.
//!
//! Members are never deleted: a build records what it left out and why in its manifest,
//! so changing a threshold and rebuilding brings images back.
//!
//! Imports `dataset`, `store`, `photo`, `train` (the classifier's network).

pub mod classes;
#[cfg(feature = "train")]
pub mod classifier;
pub mod color;
pub mod decide;
pub mod labels;
pub mod leaks;

use indicatif::ProgressBar;

use crate::dataset::curation::{CurateConfig, Dropped, Leak, OnLeak, Reason};
use crate::dataset::{Built, DatasetError, Split};
use crate::store::{ImageRecord, Member, Store, StoreError};
use classes::{ClassError, ClassNames};
use decide::Rules;
use labels::{Label, LabelReport, LoadClassifier};
use leaks::TrainImage;

#[derive(Debug, thiserror::Error)]
pub enum CurateError {
    #[error(transparent)]
    Classes(#[from] ClassError),
    #[error("{0}")]
    Weights(String),
    #[error(
        "the class check (curate.require) needs the ImageNet classifier, and this binary was built \
         without it: build with `--features train` (scripts/run does)"
    )]
    NoClassifier,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

impl CurateError {
    /// Whether a rule the user wrote is at fault (an unknown class name).
    pub fn is_bad_rule(&self) -> bool {
        matches!(self, CurateError::Classes(ClassError::Unknown { .. }))
    }
}

/// Loads the ImageNet classifier with its class names from the files `config` names, one
/// per labelling worker, and only when some image needs its classes: labels already
/// stored (by any build, on any machine) need neither the files nor libtorch.
pub fn classifier(config: &CurateConfig) -> Box<LoadClassifier> {
    let (weights, classes) = (config.weights.clone(), config.classes.clone());
    Box::new(move || load_classifier(&weights, &classes))
}

#[cfg(feature = "train")]
fn load_classifier(
    weights: &std::path::Path,
    classes: &std::path::Path,
) -> Result<Box<dyn labels::Classify>, CurateError> {
    let names = ClassNames::load(classes, CLASSES)?;
    let loaded = classifier::Classifier::load(weights, names)
        .map_err(|e| CurateError::Weights(e.to_string()))?;
    Ok(Box::new(loaded))
}

/// Without the `train` feature there is no classifier.
#[cfg(not(feature = "train"))]
fn load_classifier(
    _weights: &std::path::Path,
    _classes: &std::path::Path,
) -> Result<Box<dyn labels::Classify>, CurateError> {
    Err(CurateError::NoClassifier)
}

/// ImageNet-1k's classes (the network's own constant needs the `train` feature).
const CLASSES: usize = 1000;

/// The rules of `config`, with the classifier when they need one.
pub fn rules(config: &CurateConfig) -> Result<(Rules, Option<Box<LoadClassifier>>), CurateError> {
    if config.require.is_empty() {
        return Ok((Rules::new(config, None)?, None));
    }
    let names = ClassNames::load(&config.classes, CLASSES)?;
    let rules = Rules::new(config, Some(&names))?;
    Ok((rules, Some(classifier(config))))
}

/// A dataset's members after curation.
pub struct Selection<'a> {
    /// The members a build holds, with their split.
    pub kept: Vec<(&'a (String, Member, ImageRecord), Split)>,
    pub dropped: Vec<Dropped>,
    /// Leaks still in `kept` (none with `on_leak = "drop"`).
    pub leaks: Vec<Leak>,
    pub labels: LabelReport,
}

/// Labels what needs it, applies the rules of `config`, splits what is kept by
/// `test_fraction` and checks the test split for leaks into this dataset's training split
/// and every other dataset's latest build.
pub fn select<'a>(
    store: &Store,
    dataset: &str,
    members: &'a [(String, Member, ImageRecord)],
    config: &CurateConfig,
    test_fraction: f64,
    progress: &ProgressBar,
) -> Result<Selection<'a>, CurateError> {
    let (rules, classifier) = rules(config)?;
    let (members, mut dropped) = licensed(members, &config.licenses);
    let images: Vec<(&str, &ImageRecord)> =
        members.iter().map(|(id, _, image)| (id.as_str(), image)).collect();
    let (labels, report) = labels::ensure(store, &images, classifier.as_deref(), progress)?;
    let mut kept = Vec::new();
    for (&member, label) in members.iter().zip(&labels) {
        // An image that cannot be labelled cannot be decoded: the build reports it.
        match label.as_ref().and_then(|l: &Label| rules.judge(l)) {
            Some((reason, detail)) => {
                dropped.push(Dropped { id: member.0.clone(), reason, detail })
            }
            None => kept.push((member, Split::of(&member.0, test_fraction))),
        }
    }
    let leaks = find_leaks(store, dataset, &kept, config.leak_distance)?;
    let mut selection = Selection { kept, dropped, leaks, labels: report };
    if config.on_leak == OnLeak::Drop {
        for leak in std::mem::take(&mut selection.leaks) {
            selection.kept.retain(|(m, _)| m.0 != leak.test);
            let detail =
                format!("{} bits from train {} of {}", leak.distance, leak.train, leak.dataset);
            selection.dropped.push(Dropped { id: leak.test, reason: Reason::Leak, detail });
        }
    }
    Ok(selection)
}

/// The members whose licence is one of `licenses` (all of them when it is empty), and the
/// others, left out (an unknown licence is not one of them).
fn licensed<'a>(
    members: &'a [(String, Member, ImageRecord)],
    licenses: &[String],
) -> (Vec<&'a (String, Member, ImageRecord)>, Vec<Dropped>) {
    if licenses.is_empty() {
        return (members.iter().collect(), Vec::new());
    }
    let mut dropped = Vec::new();
    let kept = members
        .iter()
        .filter(|(id, member, _)| {
            let license = member.credit.as_ref().and_then(|c| c.license.as_deref());
            let allowed = license.is_some_and(|l| licenses.iter().any(|a| a == l));
            if !allowed {
                let detail = format!("licence {}", license.unwrap_or(crate::credit::UNKNOWN));
                dropped.push(Dropped { id: id.clone(), reason: Reason::License, detail });
            }
            allowed
        })
        .collect();
    (kept, dropped)
}

/// Test images of `kept` within `max_distance` bits of a training image of `kept` or of
/// another dataset's latest build.
fn find_leaks(
    store: &Store,
    dataset: &str,
    kept: &[(&(String, Member, ImageRecord), Split)],
    max_distance: u32,
) -> Result<Vec<Leak>, CurateError> {
    let test: Vec<(&str, &_)> = kept
        .iter()
        .filter(|(_, split)| *split == Split::Test)
        .map(|((id, _, image), _)| (id.as_str(), &image.phash))
        .collect();
    if test.is_empty() {
        return Ok(Vec::new());
    }
    let mut others = Vec::new();
    for (name, _) in store.index.datasets()? {
        if name == dataset {
            continue;
        }
        let built = match Built::latest(store.root(), &name) {
            Ok(built) => built,
            Err(DatasetError::NotBuilt(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for member in built.manifest.members.iter().filter(|m| m.split == Split::Train) {
            if let Some(image) = store.index.image(&member.id)? {
                others.push((name.clone(), member.id.clone(), image.phash));
            }
        }
    }
    let mut train: Vec<TrainImage> = kept
        .iter()
        .filter(|(_, split)| *split == Split::Train)
        .map(|((id, _, image), _)| TrainImage { id, dataset, phash: &image.phash })
        .collect();
    train.extend(others.iter().map(|(name, id, phash)| TrainImage { id, dataset: name, phash }));
    Ok(leaks::find(&test, &train, max_distance))
}
