//! Inference with a trained run: `colorize` (image files or a built dataset) and `eval`
//! (quality metrics against the ground truth, beside the do-nothing baseline).
//!
//! The generator runs as the reference's test.py runs it (no `--eval`): in training mode at
//! batch 1, so batch norm normalises each image by its own statistics and dropout stays on,
//! with the dropout seed fixed so the same input always gives the same output.

use std::path::{Path, PathBuf};

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use super::config::ColorSpace;
use super::nets::pix2pix::{Generator, NetConfig};
use super::trainer::{RunRecord, TrainError, latest_checkpoint};
use crate::build::preprocess::luma;
use crate::dataset::{Built, Split};
use crate::metrics::Metrics;

/// Seed of the dropout masks at inference.
const INFERENCE_SEED: i64 = 0;

/// A run's generator, loaded from its newest checkpoint.
pub struct Colorizer {
    /// Owns the generator's parameters.
    _vs: nn::VarStore,
    g: Generator,
    pub crop: usize,
    pub color: ColorSpace,
    device: Device,
}

impl Colorizer {
    pub fn open(store: &Path, run: &str, device: Device) -> Result<Colorizer, TrainError> {
        let run_dir = store.join("runs").join(run);
        let record_path = run_dir.join("config.json");
        let text = std::fs::read(&record_path).map_err(|e| {
            TrainError::Invalid(format!("no run named {run:?} ({}: {e})", record_path.display()))
        })?;
        let record: RunRecord = serde_json::from_slice(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", record_path.display())))?;
        let (checkpoint, _) = latest_checkpoint(&run_dir)?
            .ok_or_else(|| TrainError::Invalid(format!("run {run:?} has no checkpoint yet")))?;
        let mut vs = nn::VarStore::new(device);
        let g = Generator::new(&(vs.root() / "G"), &NetConfig::of(&record.config));
        let path = checkpoint.join("nets.safetensors");
        let saved = Tensor::read_safetensors(&path)
            .map_err(|e| TrainError::Checkpoint { path: path.clone(), reason: e.to_string() })?;
        let saved: std::collections::BTreeMap<String, Tensor> = saved.into_iter().collect();
        for (name, mut t) in vs.variables() {
            let source = saved
                .get(&format!("G:{name}"))
                .filter(|s| s.size() == t.size())
                .ok_or_else(|| TrainError::Checkpoint {
                    path: path.clone(),
                    reason: format!("G:{name} is missing or misshapen"),
                })?;
            tch::no_grad(|| t.copy_(source));
        }
        vs.freeze();
        let (crop, color) = (record.config.crop, record.config.color);
        Ok(Colorizer { _vs: vs, g, crop, color, device })
    }

    /// Runs the generator on one crop x crop input A (values in [-1, 1]); returns B's
    /// planes (channels x crop²), in [-1, 1].
    pub fn generate(&self, a: &[f32]) -> Vec<f32> {
        let c = self.crop as i64;
        let input = Tensor::from_slice(a).view([1, 1, c, c]).to_device(self.device);
        tch::manual_seed(INFERENCE_SEED);
        let fake = tch::no_grad(|| self.g.forward_t(&input, true));
        Vec::<f32>::try_from(fake.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default()
    }

    /// Colorizes pair `n` of `pairs` (center crop): interleaved RGB, crop².
    fn colorize_pair(&self, pairs: &super::loader::Pairs, n: usize, offset: usize) -> Vec<u8> {
        let plane = self.crop * self.crop;
        let mut a = vec![0f32; plane];
        let mut scratch = vec![0f32; self.color.channels() * plane];
        pairs.write(n, self.crop, (offset, offset), false, self.color, &mut a, &mut scratch);
        let b = self.generate(&a);
        (0..plane).flat_map(|p| self.color.decode(a[p], &b, p, plane)).collect()
    }
}

/// Planar RGB -> interleaved.
fn interleave(planes: &[u8], pixels: usize) -> Vec<u8> {
    (0..pixels).flat_map(|i| [planes[i], planes[pixels + i], planes[2 * pixels + i]]).collect()
}

/// Resizes one f32 plane (Catmull-Rom).
fn resize_f32(values: &[f32], from: (u32, u32), to: (u32, u32)) -> Vec<f32> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    resize(&bytes, from, to, PixelType::F32)
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn resize(pixels: &[u8], (w, h): (u32, u32), (to_w, to_h): (u32, u32), kind: PixelType) -> Vec<u8> {
    let source = Image::from_vec_u8(w, h, pixels.to_vec(), kind).expect("buffer matches size");
    let mut target = Image::new(to_w, to_h, kind);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    Resizer::new().resize(&source, &mut target, &options).expect("same pixel type");
    target.into_vec()
}

/// Colorizes image files: each is grayscaled (BT.601 luma), squashed to the run's crop,
/// colorized, and resized back to its own size. With `side_by_side` the output is
/// gray | colorized | original. Returns the files written.
pub fn colorize_files(
    colorizer: &Colorizer,
    inputs: &[PathBuf],
    out: &Path,
    side_by_side: bool,
) -> Result<Vec<PathBuf>, TrainError> {
    std::fs::create_dir_all(out)
        .map_err(|source| TrainError::Io { path: out.to_owned(), source })?;
    let c = colorizer.crop as u32;
    let mut written = Vec::new();
    for input in inputs {
        let original = image::open(input)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", input.display())))?
            .to_rgb8();
        let (w, h) = original.dimensions();
        let gray: Vec<u8> = original.pixels().map(|p| luma(p[0], p[1], p[2])).collect();
        let full = match colorizer.color {
            // RGB: the network's output, resized back to the image's size.
            ColorSpace::Rgb => {
                let small = resize(&gray, (w, h), (c, c), PixelType::U8);
                let a: Vec<f32> = small.iter().map(|v| f32::from(*v) / 127.5 - 1.0).collect();
                let b = colorizer.generate(&a);
                let plane = (c * c) as usize;
                let rgb: Vec<u8> =
                    (0..plane).flat_map(|p| colorizer.color.decode(a[p], &b, p, plane)).collect();
                RgbImage::from_raw(w, h, resize(&rgb, (c, c), (w, h), PixelType::U8x3))
                    .expect("size")
            }
            // Lab: the predicted ab, upsampled onto the image's own full-resolution L.
            ColorSpace::Lab => {
                let l: Vec<f32> =
                    original.pixels().map(|p| crate::color::rgb8_to_lab(p.0)[0]).collect();
                let small = resize_f32(&l, (w, h), (c, c));
                let a: Vec<f32> = small.iter().map(|v| v / 50.0 - 1.0).collect();
                let b = colorizer.generate(&a);
                let plane = (c * c) as usize;
                let ab: Vec<Vec<f32>> = (0..2)
                    .map(|k| resize_f32(&b[k * plane..(k + 1) * plane], (c, c), (w, h)))
                    .collect();
                RgbImage::from_fn(w, h, |x, y| {
                    let i = (y * w + x) as usize;
                    image::Rgb(crate::color::lab_to_rgb8([
                        l[i],
                        ab[0][i] * 110.0,
                        ab[1][i] * 110.0,
                    ]))
                })
            }
        };
        let result = if side_by_side {
            let mut sheet = RgbImage::new(3 * w, h);
            for (x, y, p) in original.enumerate_pixels() {
                let v = gray[(y * w + x) as usize];
                sheet.put_pixel(x, y, image::Rgb([v, v, v]));
                sheet.put_pixel(w + x, y, *full.get_pixel(x, y));
                sheet.put_pixel(2 * w + x, y, *p);
            }
            sheet
        } else {
            full
        };
        let stem =
            input.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        let path = out.join(format!("{stem}.png"));
        result.save(&path).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

/// Means over a split of the model's metrics and of the do-nothing baseline's.
#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub images: usize,
    pub model: Metrics,
    /// The grayscale input itself as the output.
    pub baseline: Metrics,
}

/// Runs the generator on the center crop of every pair of `splits` and scores it.
pub fn evaluate(
    colorizer: &Colorizer,
    built: &Built,
    splits: &[Split],
) -> Result<Evaluation, TrainError> {
    let c = colorizer.crop;
    let (mut model, mut baseline) = (Vec::new(), Vec::new());
    for &split in splits {
        let pairs = super::loader::Pairs::open(built, split)?;
        if c > pairs.size() {
            return Err(TrainError::Invalid(format!(
                "the run's crop {c} is larger than the dataset's size {}",
                pairs.size()
            )));
        }
        let offset = (pairs.size() - c) / 2;
        for n in 0..pairs.len() {
            let (a, b) = pairs.center_crop(n, c, offset);
            let truth = interleave(&b, c * c);
            let predicted = colorizer.colorize_pair(&pairs, n, offset);
            let gray: Vec<u8> = a.iter().flat_map(|v| [*v; 3]).collect();
            let score = |pred: &[u8]| {
                Metrics::compute(pred, &truth, c, c)
                    .map_err(|e| TrainError::Invalid(format!("metrics: {e}")))
            };
            model.push(score(&predicted)?);
            baseline.push(score(&gray)?);
        }
    }
    if model.is_empty() {
        let names: Vec<&str> = splits.iter().map(|s| s.as_str()).collect();
        return Err(TrainError::Invalid(format!(
            "dataset {} has no {} images",
            built.manifest.dataset,
            names.join("/")
        )));
    }
    Ok(Evaluation { images: model.len(), model: mean(&model), baseline: mean(&baseline) })
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

/// Used by `eval` to print a table.
pub fn table(e: &Evaluation) -> String {
    let row = |name: &str, f: fn(&Metrics) -> f64| {
        format!("{name:<28} {:>10.4} {:>12.4}\n", f(&e.model), f(&e.baseline))
    };
    let mut out = format!("{:<28} {:>10} {:>12}\n", "metric", "model", "do-nothing");
    out += &row("PSNR (dB, RGB)", |m| m.psnr);
    out += &row("SSIM (RGB, 11x11 gauss)", |m| m.ssim);
    out += &row("SSIM (luma)", |m| m.ssim_luma);
    out += &row("colorfulness", |m| m.colorfulness);
    out += &row("colorfulness / truth", |m| m.colorfulness / m.colorfulness_truth.max(1e-9));
    out += &row("CIEDE2000 (mean)", |m| m.ciede2000);
    out + &format!("({} images; truth colorfulness {:.4})\n", e.images, e.model.colorfulness_truth)
}

/// Colorizes every pair of a built dataset (center crops), side by side: gray | colorized |
/// original, one PNG per member.
pub fn colorize_dataset(
    colorizer: &Colorizer,
    built: &Built,
    out: &Path,
) -> Result<Vec<PathBuf>, TrainError> {
    std::fs::create_dir_all(out)
        .map_err(|source| TrainError::Io { path: out.to_owned(), source })?;
    let c = colorizer.crop;
    let mut written = Vec::new();
    for split in [Split::Train, Split::Test] {
        let pairs = super::loader::Pairs::open(built, split)?;
        if pairs.is_empty() {
            continue;
        }
        let size = pairs.size();
        let (crop, offset) = if c <= size {
            (c, (size - c) / 2)
        } else {
            return Err(TrainError::Invalid(format!(
                "the run's crop {c} is larger than the dataset's size {size}"
            )));
        };
        let members: Vec<_> = built.manifest.members.iter().filter(|m| m.split == split).collect();
        for (n, member) in members.iter().enumerate() {
            let (a, b) = pairs.center_crop(n, crop, offset);
            let colored = colorizer.colorize_pair(&pairs, n, offset);
            let truth = interleave(&b, crop * crop);
            let w = crop as u32;
            let sheet = RgbImage::from_fn(3 * w, w, |x, y| {
                let (panel, x) = (x / w, x % w);
                let i = (y * w + x) as usize;
                match panel {
                    0 => image::Rgb([a[i]; 3]),
                    1 => image::Rgb([colored[3 * i], colored[3 * i + 1], colored[3 * i + 2]]),
                    _ => image::Rgb([truth[3 * i], truth[3 * i + 1], truth[3 * i + 2]]),
                }
            });
            let path = out.join(format!("{}.png", &member.id[..16]));
            sheet
                .save(&path)
                .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
            written.push(path);
        }
    }
    Ok(written)
}
