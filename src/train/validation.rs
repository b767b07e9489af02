//! Validation: every epoch, the generator colorizes the held-out part of the training split
//! (`train.val_fraction`, chosen by content hash), scored with `eval`'s metrics; the best
//! checkpoint is the one with the lowest validation ΔE00 among those whose colourfulness
//! is at least `train.best_colorfulness` of the truth's (0.8), else at least half of it, so
//! that a pale model loses to a vivid one nearly as right and a gray model never wins.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::loader::CenterCrops;
use super::nets::Decodings;
use crate::photo::quality::{self, PSNR_CAP_DB};

/// A model that colours less than this share of the truth's colourfulness is never
/// `best`.
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
    /// The class head's temperature these are at, chosen on validation; absent for a
    /// generator that predicts colours directly (and in checkpoints written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vividness: Option<f64>,
}

/// Scores `colorize` (A on `device` in; B out, once, or at each temperature of a class
/// head) on `crops`. With several temperatures the score is the one [`best`]'s rule picks
/// at `colorfulness` (the most colourful when none passes), with its temperature: the
/// run's vividness is chosen on validation, epoch by epoch, with the checkpoint.
pub fn score(
    crops: &CenterCrops,
    colorize: &dyn Fn(&Tensor) -> Decodings,
    device: Device,
    colorfulness: f64,
) -> ValScore {
    let scores: Vec<ValScore> = crops
        .colorize_each(colorize, device, CHUNK)
        .into_iter()
        .map(|(vividness, predictions)| score_one(crops, &predictions, vividness))
        .collect();
    let candidates = scores.iter().map(|s| (*s, Some(*s)));
    best(candidates, colorfulness)
        .or_else(|| {
            scores
                .iter()
                .copied()
                .max_by(|x, y| x.colorfulness_ratio.total_cmp(&y.colorfulness_ratio))
        })
        .unwrap_or_else(|| score_one(crops, &[], None))
}

/// The metrics of `predictions` (B of each crop, planar) against the crops' truth.
fn score_one(crops: &CenterCrops, predictions: &[Vec<f32>], vividness: Option<f64>) -> ValScore {
    let (c, n) = (crops.crop, crops.len());
    let (mut ciede, mut psnr, mut cf, mut cf_truth) = (0.0, 0.0, 0.0, 0.0);
    for (i, b) in predictions.iter().enumerate() {
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
        vividness,
    }
}

/// The best of some scored candidates: the lowest ΔE00 among those whose colourfulness
/// ratio is at least `colorfulness`, else among those at least [`MIN_COLORFULNESS_RATIO`];
/// none when no candidate reaches that.
pub fn best<T>(
    candidates: impl IntoIterator<Item = (T, Option<ValScore>)>,
    colorfulness: f64,
) -> Option<T> {
    let mut scored: Vec<(T, ValScore)> =
        candidates.into_iter().filter_map(|(item, score)| score.map(|s| (item, s))).collect();
    for floor in [colorfulness, MIN_COLORFULNESS_RATIO] {
        let lowest = scored
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| s.colorfulness_ratio >= floor)
            .min_by(|(_, (_, x)), (_, (_, y))| x.ciede2000.total_cmp(&y.ciede2000))
            .map(|(i, _)| i);
        if let Some(i) = lowest {
            return Some(scored.swap_remove(i).0);
        }
    }
    None
}
