//! Labels: what curation measures on each stored image, once, stored in the index's
//! `labels` tree and shared by every dataset holding the image.
//!
//! An image is labelled on a 224 px center crop (the classifier's input, decoded at the
//! smallest JPEG DCT scale that keeps it): the color statistics always, the classifier's
//! top 5 when there is a classifier. rayon's workers, one per core, decode, measure and
//! classify one image at a time, each with its own copy of the network on one libtorch
//! thread (on 2 cores twice the rate of one network on two threads, whose batches thrash
//! the cache); the labels are stored once they are all measured.

use std::collections::BTreeMap;
use std::fs;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::CurateError;
use super::color::{ColorStats, Colorfulness};
use crate::dataset::curation::CurateConfig;
use crate::photo::resize::Preprocessor;
use crate::photo::resize::ResizeMode;
use crate::store::{ImageRecord, Store, StoreError, Tree};

/// Bumped when a label of the same image would come out different.
pub const VERSION: u32 = 1;
/// Side of the labelling thumbnail.
pub const SIDE: usize = 224;
/// Classes kept per image.
pub const TOP: usize = 5;

/// One class among an image's top 5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    /// ImageNet class index (0..1000).
    pub index: u16,
    /// Its first name, e.g. "brown bear".
    pub name: String,
    /// Softmax probability.
    pub p: f32,
}

/// What curation knows of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub version: u32,
    pub color: ColorStats,
    /// The classifier's top 5, most probable first; absent when labelled without it.
    pub classes: Option<Vec<ClassScore>>,
}

/// Top-5 classes of a thumbnail.
pub trait Classify {
    /// `pixels`: planar RGB of [`SIDE`]².
    fn top5(&self, pixels: &[u8]) -> Vec<ClassScore>;
}

/// Loads one classifier per labelling worker.
pub type LoadClassifier = dyn Fn() -> Result<Box<dyn Classify>, CurateError> + Sync;

/// What a labelling pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct LabelReport {
    /// Labelled now.
    pub labelled: usize,
    /// Already labelled.
    pub reused: usize,
    /// Images that could not be read or decoded: id and why.
    pub failed: Vec<(String, String)>,
}

/// An image (by its place in the list) and its label, or why it has none.
type Measured = (usize, Result<Label, String>);

/// Labels every image of `images` whose label is missing, out of date, or lacks classes
/// that a classifier from `classifier` would give; returns the labels of all of them that
/// have one.
pub fn ensure(
    store: &Store,
    images: &[(&str, &ImageRecord)],
    classifier: Option<&LoadClassifier>,
    progress: &ProgressBar,
) -> Result<(Vec<Option<Label>>, LabelReport), CurateError> {
    let mut report = LabelReport::default();
    let mut labels = Vec::with_capacity(images.len());
    let mut todo = Vec::new();
    for (i, (id, _)) in images.iter().enumerate() {
        // A label is a measurement: a damaged one is measured again.
        let label: Option<Label> = match store.index.record(&Tree::Labels, id) {
            Err(StoreError::Corrupt { .. }) => None,
            found => found?,
        };
        let current = label
            .as_ref()
            .is_some_and(|l| l.version == VERSION && (classifier.is_none() || l.classes.is_some()));
        if current {
            report.reused += 1;
        } else {
            todo.push(i);
        }
        labels.push(label.filter(|_| current));
    }
    if todo.is_empty() {
        return Ok((labels, report));
    }
    progress.set_length(todo.len() as u64);
    // One classifier a worker (they keep state), each on one libtorch thread.
    let threads = classifier.map(|_| tch_threads(1));
    let measured: Result<Vec<Measured>, String> = todo
        .par_iter()
        .map_init(
            || classifier.map(|load| load()).transpose().map_err(|e| e.to_string()),
            |model, &i| {
                let model = model.as_ref().map_err(Clone::clone)?;
                let (id, image) = images[i];
                let label = thumbnail(&store.blobs.path(id, &image.ext)).map(|pixels| Label {
                    version: VERSION,
                    color: ColorStats::of_thumbnail(&pixels, SIDE),
                    classes: model.as_ref().map(|m| m.top5(&pixels)),
                });
                progress.inc(1);
                Ok((i, label))
            },
        )
        .collect();
    if let Some(threads) = threads {
        tch_threads(threads);
    }
    for (i, label) in measured.map_err(CurateError::Weights)? {
        let id = images[i].0;
        match label {
            Ok(label) => {
                store.index.put(&Tree::Labels, id, &label)?;
                labels[i] = Some(label);
                report.labelled += 1;
            }
            Err(reason) => report.failed.push((id.to_owned(), reason)),
        }
    }
    Ok((labels, report))
}

/// Top-1 class name -> how many of `labels` have it.
pub fn top_classes<'a>(labels: impl Iterator<Item = &'a Label>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for classes in labels.filter_map(|l| l.classes.as_ref()) {
        if let Some(top) = classes.first() {
            *counts.entry(top.name.clone()).or_default() += 1;
        }
    }
    counts
}

/// How many of `labels` the color check of `rules` calls `verdict`.
pub fn verdicts<'a>(
    labels: impl Iterator<Item = &'a Label>,
    rules: &CurateConfig,
    verdict: Colorfulness,
) -> usize {
    labels.filter(|l| l.color.verdict(rules.min_chroma, rules.min_spread) == verdict).count()
}

/// Every readable label of the store's images in `ids` (a damaged one is measured again
/// by the next build or `label`).
pub fn stored(store: &Store, ids: &[&str]) -> Result<Vec<Label>, StoreError> {
    let mut out = Vec::new();
    for id in ids {
        match store.index.record::<Label>(&Tree::Labels, id) {
            Ok(Some(label)) => out.push(label),
            Ok(None) | Err(StoreError::Corrupt { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Sets libtorch's intra-op threads, returning the previous count.
#[cfg(feature = "train")]
fn tch_threads(n: i32) -> i32 {
    let previous = tch::get_num_threads();
    tch::set_num_threads(n);
    previous
}

#[cfg(not(feature = "train"))]
fn tch_threads(_n: i32) -> i32 {
    1
}

/// The 224 px center crop of the blob at `path`, planar RGB.
fn thumbnail(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let plane = SIDE * SIDE;
    let (mut a, mut b) = (vec![0u8; plane], vec![0u8; 3 * plane]);
    Preprocessor::default()
        .pair(&bytes, SIDE as u32, ResizeMode::CenterCrop, &mut a, &mut b)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::check::PerceptualHash;

    /// A store holding one 224 px color PNG; returns its id and record.
    fn store_with_one_image(dir: &std::path::Path) -> (Store, String, ImageRecord) {
        let store = Store::open(dir).unwrap();
        let photo = image::RgbImage::from_fn(224, 224, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut png = Vec::new();
        photo.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let id = blake3::hash(&png).to_hex().to_string();
        store.blobs.write(&id, "png", &png).unwrap();
        let record = ImageRecord {
            ext: "png".into(),
            width: 224,
            height: 224,
            bytes: png.len() as u64,
            phash: PerceptualHash([0; 4]),
            added_at: 0,
        };
        (store, id, record)
    }

    #[test]
    fn a_damaged_label_is_measured_again_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id, record) = store_with_one_image(dir.path());
        store.index.put(&Tree::Labels, &id, &"not a label").unwrap();
        let progress = ProgressBar::hidden();
        let (labels, report) = ensure(&store, &[(&id, &record)], None, &progress).unwrap();
        assert_eq!((report.labelled, report.reused), (1, 0));
        let label = labels[0].as_ref().expect("labelled");
        assert!(label.color.chroma > 10.0, "{label:?}");
        let stored: Option<Label> = store.index.record(&Tree::Labels, &id).unwrap();
        assert_eq!(stored.as_ref(), Some(label), "the damaged record is replaced");
    }
}
