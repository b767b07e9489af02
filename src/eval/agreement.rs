//! Semantic interpretability (Zhang, Isola & Efros 2016, §3.1): does an ImageNet
//! classifier, shown the colorized photo, name the class it names for the original? A
//! colorizer that puts the right colours in the right places helps it; gray (the
//! do-nothing baseline) is the bar to clear. The classifier is the one curation labels
//! with (EfficientNet-Lite0), on the picture scaled to its 224 px input.

use image::RgbImage;
use image::imageops::{self, FilterType};
use serde::Serialize;

use crate::curate::labels::{Classify, SIDE};

/// The share of images whose top-1 class, colorized or left gray, is the original's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Agreement {
    pub model: f64,
    pub baseline: f64,
}

/// Counts agreements image by image.
pub struct Tally<'a> {
    classifier: &'a dyn Classify,
    images: usize,
    model: usize,
    baseline: usize,
}

impl<'a> Tally<'a> {
    pub fn new(classifier: &'a dyn Classify) -> Tally<'a> {
        Tally { classifier, images: 0, model: 0, baseline: 0 }
    }

    /// One image's three pictures: interleaved RGB, `side` x `side`.
    pub fn add(&mut self, truth: &[u8], colorized: &[u8], baseline: &[u8], side: usize) {
        let truth = self.top1(truth, side);
        self.images += 1;
        self.model += usize::from(self.top1(colorized, side) == truth);
        self.baseline += usize::from(self.top1(baseline, side) == truth);
    }

    /// The shares so far; `None` before any image.
    pub fn agreement(&self) -> Option<Agreement> {
        let n = self.images as f64;
        (self.images > 0)
            .then(|| Agreement { model: self.model as f64 / n, baseline: self.baseline as f64 / n })
    }

    /// The classifier's most likely class for a picture.
    fn top1(&self, rgb: &[u8], side: usize) -> u16 {
        let picture = RgbImage::from_raw(side as u32, side as u32, rgb.to_vec())
            .expect("an interleaved RGB picture of side x side");
        let scaled = imageops::resize(&picture, SIDE as u32, SIDE as u32, FilterType::Triangle);
        let plane = SIDE * SIDE;
        let mut planar = vec![0u8; 3 * plane];
        for (i, pixel) in scaled.pixels().enumerate() {
            for c in 0..3 {
                planar[c * plane + i] = pixel[c];
            }
        }
        self.classifier.top5(&planar).first().map_or(u16::MAX, |class| class.index)
    }
}
