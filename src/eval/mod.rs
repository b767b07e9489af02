//! Using a trained colorizer: `colorizer` (a run's generator at a checkpoint), `colorize`
//! (photos in, colour photos out, with `color`'s conversions on tensors) and, here, `eval`: a run's colorizations of a dataset
//! split scored against the truth, beside the do-nothing baseline scored by the same code
//! on the same pixels. Needs the `train` feature; imports `train` (the networks, the
//! loader), `dataset` and `photo` (the image-quality measures).
//!
//! Protocol (also in `eval --json`): each image of the split is the center crop, at the
//! run's training crop, of its stored build (the photo resized to `build.size`, squashed or
//! center-cropped as built); the model sees its gray version; the do-nothing baseline is
//! the image's own L with a = b = 0 (Lab runs) or its luma as RGB (RGB runs). PSNR is over
//! RGB per image, capped at 60 dB, then averaged; SSIM has an 11x11 Gaussian window (sigma
//! 1.5) per RGB channel, valid region; CIEDE2000 is the mean over pixels (D65); colourfulness
//! is Hasler & Süsstrunk's signed variant, and its ratio is mean(model) / mean(truth);
//! classifier agreement is `agreement`'s (the share of images an ImageNet classifier names
//! as it names the original), when a classifier is given.

use serde::Serialize;

pub mod agreement;
pub mod color;
pub mod colorize;
pub mod colorizer;
pub mod resample;

use crate::curate::labels::Classify;
use crate::dataset::{Built, Split};
use crate::photo::quality::{Metrics, PSNR_CAP_DB, SSIM_WINDOW};
use crate::train::config::ColorSpace;
use crate::train::error::TrainError;
use crate::train::loader::{CenterCrops, Pairs};
use colorizer::Colorizer;

/// Images colorized at once.
const CHUNK: usize = 16;

/// How the numbers were made, so that they are only compared with like ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Protocol {
    pub input: &'static str,
    pub build_size: u32,
    pub build_resize: crate::photo::resize::ResizeMode,
    pub crop: usize,
    pub color: ColorSpace,
    pub baseline: &'static str,
    pub psnr: String,
    pub ssim: String,
    pub ciede2000: &'static str,
    pub colorfulness: &'static str,
}

/// Means over a split of the model's metrics and of the do-nothing baseline's.
#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub run: String,
    /// The epoch of the checkpoint scored.
    pub checkpoint: usize,
    pub images: usize,
    /// The class head's annealed-mean temperature the colours were decoded at; absent
    /// for a generator that predicts ab directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vividness: Option<f64>,
    pub model: Metrics,
    pub baseline: Metrics,
    /// Top-1 agreement of the ImageNet classifier with its class for the original.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<agreement::Agreement>,
    pub protocol: Protocol,
}

/// One image of an evaluation, as people see it: crop x crop pictures, interleaved RGB
/// (gray is one plane).
pub struct Scored<'a> {
    /// The member's id (blake3 hex).
    pub id: &'a str,
    pub crop: usize,
    pub gray: &'a [u8],
    pub colorized: &'a [u8],
    pub truth: &'a [u8],
    pub model: &'a Metrics,
}

/// Colorizes the center crop of every pair of `splits` and scores it, with the
/// `classifier`'s agreement when given; `each` sees every image with its scores.
pub fn evaluate<E: From<TrainError>>(
    colorizer: &Colorizer,
    built: &Built,
    splits: &[Split],
    classifier: Option<&dyn Classify>,
    each: &mut dyn FnMut(Scored) -> Result<(), E>,
) -> Result<Evaluation, E> {
    let c = colorizer.crop;
    let (mut model, mut baseline) = (Vec::new(), Vec::new());
    let mut tally = classifier.map(agreement::Tally::new);
    for &split in splits {
        let pairs = Pairs::open(built, split).map_err(TrainError::from)?;
        if c > pairs.size() {
            return Err(E::from(TrainError::Invalid(format!(
                "run {}: its crop {c} is larger than dataset {}'s stored size {}",
                colorizer.run,
                built.manifest.dataset,
                pairs.size()
            ))));
        }
        let crops = CenterCrops::new(&pairs, 0..pairs.len(), c, colorizer.color);
        let predictions = crops.colorize(&|a| colorizer.generate(a), colorizer.device(), CHUNK);
        for (i, b) in predictions.iter().enumerate() {
            let truth = crops.truth_rgb(i);
            let score = |pred: &[u8]| {
                Metrics::compute(pred, &truth, c, c)
                    .map_err(|e| TrainError::Invalid(format!("metrics: {e}")))
            };
            let colorized = crops.decode(i, b);
            let do_nothing = crops.do_nothing(i);
            if let Some(tally) = &mut tally {
                tally.add(&truth, &colorized, &do_nothing, c);
            }
            let scores = score(&colorized)?;
            each(Scored {
                id: pairs.id(i),
                crop: c,
                gray: &crops.gray[i],
                colorized: &colorized,
                truth: &truth,
                model: &scores,
            })?;
            model.push(scores);
            baseline.push(score(&do_nothing)?);
        }
    }
    if model.is_empty() {
        let names: Vec<&str> = splits.iter().map(|s| s.as_str()).collect();
        return Err(E::from(TrainError::Invalid(format!(
            "dataset {} has no {} images",
            built.manifest.dataset,
            names.join("/")
        ))));
    }
    let protocol = protocol(colorizer, built);
    Ok(Evaluation {
        run: colorizer.run.clone(),
        checkpoint: colorizer.epoch,
        images: model.len(),
        vividness: colorizer.vividness(),
        model: mean(&model),
        baseline: mean(&baseline),
        agreement: tally.and_then(|t| t.agreement()),
        protocol,
    })
}

/// How `colorizer`'s scores on `built` are made.
fn protocol(colorizer: &Colorizer, built: &Built) -> Protocol {
    let settings = &built.manifest.settings;
    Protocol {
        input: "center crop of the stored build, at the run's crop",
        build_size: settings.size,
        build_resize: settings.resize,
        crop: colorizer.crop,
        color: colorizer.color,
        baseline: match colorizer.color {
            ColorSpace::Lab => "the image's own L with a = b = 0",
            ColorSpace::Rgb => "the image's luma as RGB",
        },
        psnr: format!("RGB, per image, capped at {PSNR_CAP_DB} dB, then averaged"),
        ssim: format!(
            "{SSIM_WINDOW}x{SSIM_WINDOW} Gaussian window, sigma 1.5, per RGB channel, valid region"
        ),
        ciede2000: "mean over pixels, sRGB D65",
        colorfulness: "Hasler & Suesstrunk, signed rg/yb; ratio = mean(model) / mean(truth)",
    }
}

fn mean(all: &[Metrics]) -> Metrics {
    let n = all.len() as f64;
    let avg = |f: fn(&Metrics) -> f64| all.iter().map(f).sum::<f64>() / n;
    Metrics {
        psnr: avg(|m| m.psnr),
        ssim: avg(|m| m.ssim),
        ssim_luma: avg(|m| m.ssim_luma),
        colorfulness: avg(|m| m.colorfulness),
        colorfulness_truth: avg(|m| m.colorfulness_truth),
        ciede2000: avg(|m| m.ciede2000),
    }
}

/// A row of an evaluation table: its name and how it reads the metrics.
pub type Row = (&'static str, fn(&Metrics) -> f64);

/// The rows of an evaluation table (`eval` prints them, the report shows them).
pub const ROWS: [Row; 6] = [
    ("PSNR (dB, RGB)", |m| m.psnr),
    ("SSIM (RGB, 11x11 gauss)", |m| m.ssim),
    ("SSIM (luma)", |m| m.ssim_luma),
    ("colorfulness", |m| m.colorfulness),
    ("colorfulness / truth", |m| m.colorfulness / m.colorfulness_truth.max(1e-9)),
    ("CIEDE2000 (mean)", |m| m.ciede2000),
];

/// The runs side by side, each beside the do-nothing baseline of its protocol (one
/// baseline column when they share it).
pub fn table(evaluations: &[Evaluation]) -> String {
    let shared = evaluations.windows(2).all(|w| w[0].protocol == w[1].protocol);
    let agreement =
        |e: &Evaluation, of: fn(&agreement::Agreement) -> f64| e.agreement.map(|a| of(&a));
    let mut columns: Vec<(String, &Metrics, Option<f64>)> = Vec::new();
    for e in evaluations {
        let name = match e.vividness {
            Some(t) => format!("{} (ep {}, T {t})", e.run, e.checkpoint),
            None => format!("{} (ep {})", e.run, e.checkpoint),
        };
        columns.push((name, &e.model, agreement(e, |a| a.model)));
        if !shared {
            columns.push((
                format!("do-nothing ({})", e.run),
                &e.baseline,
                agreement(e, |a| a.baseline),
            ));
        }
    }
    if shared {
        let first = &evaluations[0];
        columns.push(("do-nothing".into(), &first.baseline, agreement(first, |a| a.baseline)));
    }
    let width = columns.iter().map(|(name, _, _)| name.len()).max().unwrap_or(10).max(10) + 2;
    let mut out = format!("{:<26}", "metric");
    for (name, _, _) in &columns {
        out += &format!("{name:>width$}");
    }
    out.push('\n');
    for (name, value) in ROWS {
        out += &format!("{name:<26}");
        for (_, metrics, _) in &columns {
            out += &format!("{:>width$.4}", value(metrics));
        }
        out.push('\n');
    }
    if columns.iter().any(|(_, _, agreement)| agreement.is_some()) {
        out += &format!("{:<26}", "ImageNet top-1 agreement");
        for (_, _, agreement) in &columns {
            match agreement {
                Some(share) => out += &format!("{share:>width$.4}"),
                None => out += &format!("{:>width$}", "-"),
            }
        }
        out.push('\n');
    }
    let first = &evaluations[0];
    out + &format!(
        "({} images, center crops of {} px at {} px, {:?}; truth colorfulness {:.4})\n",
        first.images,
        first.protocol.build_size,
        first.protocol.crop,
        first.protocol.color,
        first.model.colorfulness_truth
    )
}
