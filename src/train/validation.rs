//! Validation: every epoch, the generator colorizes the held-out part of the training split
//! (`train.val_fraction`, chosen by content hash), scored with `eval`'s metrics; the best
//! checkpoint is the one with the lowest validation ΔE00 among those whose colourfulness
//! is at least half the truth's, so a gray model never wins.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::loader::CenterCrops;
use crate::photo::quality::{self, PSNR_CAP_DB};

/// A model that colours less than this share of the truth's colourfulness is not a
/// candidate for `best`.
pub const MIN_COLORFULNESS_RATIO: f64 = 0.5;

/// Images colorized at once.
const CHUNK: usize = 16;

/// The validation metrics of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValScore {
    pub images: usize,
    /// Mean CIEDE2000 over the images' pixels.
    pub ciede2000: f64,
    /// Mean per-image PSNR (RGB), each capped at 60 dB.
    pub psnr: f64,
    /// Mean colourfulness of the colorized images over that of the originals.
    pub colorfulness_ratio: f64,
}

impl ValScore {
    /// Whether this epoch may be `best`.
    pub fn qualifies(&self) -> bool {
        self.colorfulness_ratio >= MIN_COLORFULNESS_RATIO
    }
}

/// Scores `colorize` (A on `device` in, B out) on `crops`.
pub fn score(
    crops: &CenterCrops,
    colorize: &dyn Fn(&Tensor) -> Tensor,
    device: Device,
) -> ValScore {
    let (c, n) = (crops.crop, crops.len());
    let (mut ciede, mut psnr, mut cf, mut cf_truth) = (0.0, 0.0, 0.0, 0.0);
    for (i, b) in crops.colorize(colorize, device, CHUNK).iter().enumerate() {
        let (pred, truth) = (crops.decode(i, b), crops.truth_rgb(i));
        let sizes_agree = "crops and predictions have the crop's size";
        ciede += quality::mean_ciede2000(&pred, &truth, c, c).expect(sizes_agree);
        psnr += quality::psnr(&pred, &truth, c, c).expect(sizes_agree).min(PSNR_CAP_DB);
        cf += quality::colorfulness(&pred, c, c).expect(sizes_agree);
        cf_truth += quality::colorfulness(&truth, c, c).expect(sizes_agree);
    }
    let mean = |sum: f64| sum / n.max(1) as f64;
    ValScore {
        images: n,
        ciede2000: mean(ciede),
        psnr: mean(psnr),
        colorfulness_ratio: cf / cf_truth.max(1e-9),
    }
}

/// The best of some scored candidates (the lowest ΔE00 of those that qualify), if any.
pub fn best<T>(candidates: impl IntoIterator<Item = (T, Option<ValScore>)>) -> Option<T> {
    candidates
        .into_iter()
        .filter_map(|(item, score)| score.filter(ValScore::qualifies).map(|s| (item, s)))
        .min_by(|(_, x), (_, y)| x.ciede2000.total_cmp(&y.ciede2000))
        .map(|(item, _)| item)
}
