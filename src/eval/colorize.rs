//! `colorize`: photos of any size colorized at their own resolution by one run or several
//! side by side, from image files or from a dataset's stored originals.
//!
//! Each photo is grayscaled (Pillow's luma) and colorized by the run's whole path
//! ([`Colorizer::colours_u8`]: the path an exported `colorizer.pt` holds, its last step,
//! a Lab run's L*a*b* -> sRGB, done a pixel at a time by table). A sheet shows
//! gray | each run's colorization | original.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, RgbImage};
use tch::{Device, Kind, Tensor};

use super::colorizer::{Colorizer, Colours};
use crate::dataset::{Built, Split};
use crate::photo::color::gray_ab_to_rgb8;
use crate::train::error::TrainError;

/// One photo to colorize and the name its output takes.
pub struct Input {
    pub path: PathBuf,
    pub name: String,
}

/// Image files, each named after its file stem; two files with the same stem would write
/// the same output, which is refused, naming both.
pub fn file_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, TrainError> {
    let mut named: std::collections::HashMap<String, &Path> = std::collections::HashMap::new();
    let mut inputs = Vec::new();
    for path in paths {
        let name =
            path.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        if let Some(first) = named.insert(name.clone(), path) {
            return Err(TrainError::Invalid(format!(
                "{} and {} would both be written as {name}.png: colorize them into separate --out folders",
                first.display(),
                path.display()
            )));
        }
        inputs.push(Input { path: path.clone(), name });
    }
    Ok(inputs)
}

/// The stored originals of a built dataset's members in `splits`, named by their id.
pub fn dataset_inputs(
    store: &Path,
    built: &Built,
    splits: &[Split],
) -> Result<Vec<Input>, TrainError> {
    built
        .manifest
        .members
        .iter()
        .filter(|m| splits.contains(&m.split))
        .map(|m| {
            let path = crate::store::Blobs::find(store, &m.id).ok_or_else(|| {
                TrainError::Invalid(format!(
                    "dataset {}: the image of member {} is missing from the store (pipeline verify)",
                    built.manifest.dataset, m.id
                ))
            })?;
            Ok(Input { path, name: m.id[..16].to_owned() })
        })
        .collect()
}

/// `gray` colorized by `colorizer` ([`Colorizer::colours_u8`]), at its own size.
pub fn colorize_image(colorizer: &Colorizer, gray: &GrayImage) -> RgbImage {
    colorize_images(colorizer, &[gray]).pop().expect("one image in, one out")
}

/// Photos of one size colorized as one batch (the network's work a photo shrinks with the
/// batch: 13 % at 4 photos of 512 x 512 on 2 cores).
pub fn colorize_images(colorizer: &Colorizer, grays: &[&GrayImage]) -> Vec<RgbImage> {
    let (w, h) = grays[0].dimensions();
    assert!(grays.iter().all(|g| g.dimensions() == (w, h)), "a batch has photos of one size");
    let shape = [1, 1, i64::from(h), i64::from(w)];
    let planes: Vec<Tensor> =
        grays.iter().map(|g| Tensor::from_slice(g.as_raw()).view(shape)).collect();
    let input = Tensor::cat(&planes, 0).to_device(colorizer.device());
    match colorizer.colours_u8(&input) {
        Colours::Rgb(mut rgb) => {
            rgb *= 255.0;
            let rgb = rgb.round_().to_kind(Kind::Uint8).permute([0, 2, 3, 1]).contiguous();
            let rgb = rgb.to_device(Device::Cpu);
            (0..grays.len() as i64)
                .map(|k| {
                    let pixels = Vec::<u8>::try_from(rgb.get(k).flatten(0, -1)).expect("u8 pixels");
                    RgbImage::from_raw(w, h, pixels).expect("size")
                })
                .collect()
        }
        Colours::Ab(ab) => {
            let ab =
                Vec::<f32>::try_from(ab.to_device(Device::Cpu).flatten(0, -1)).expect("f32 a*b*");
            let plane = (w * h) as usize;
            grays
                .iter()
                .zip(ab.chunks_exact(2 * plane))
                .map(|(gray, ab)| with_colours(gray, ab))
                .collect()
        }
    }
}

/// `gray` (its L*) with a*b* (two planes of its size) as 8-bit sRGB.
fn with_colours(gray: &GrayImage, ab: &[f32]) -> RgbImage {
    let (a, b) = ab.split_at(ab.len() / 2);
    let mut rgb = RgbImage::new(gray.width(), gray.height());
    gray_ab_to_rgb8(gray.as_raw(), a, b, &mut rgb);
    rgb
}

/// Colorizes `inputs` with every colorizer. One run without `side_by_side` writes the
/// colorized photo; otherwise a sheet: gray | each run | original. Returns the files written.
pub fn colorize(
    colorizers: &[Colorizer],
    inputs: &[Input],
    out: &Path,
    side_by_side: bool,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<PathBuf>, TrainError> {
    progress.set_length(inputs.len() as u64);
    std::fs::create_dir_all(out).map_err(|source| {
        TrainError::Io(crate::durable::PathError { path: out.to_owned(), source })
    })?;
    let mut written = Vec::new();
    for input in inputs {
        let original = image::open(&input.path)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", input.path.display())))?
            .to_rgb8();
        let gray = crate::photo::color::gray_image(&original);
        let colorized: Vec<RgbImage> =
            colorizers.iter().map(|c| colorize_image(c, &gray)).collect();
        let result = if side_by_side || colorizers.len() > 1 {
            let (w, h) = original.dimensions();
            let gray = DynamicImage::ImageLuma8(gray).to_rgb8();
            let panels: Vec<&RgbImage> = std::iter::once(&gray)
                .chain(&colorized)
                .chain(std::iter::once(&original))
                .collect();
            let mut sheet = RgbImage::new(panels.len() as u32 * w, h);
            for (k, panel) in panels.iter().enumerate() {
                image::imageops::replace(&mut sheet, *panel, i64::from(k as u32 * w), 0);
            }
            sheet
        } else {
            colorized.into_iter().next().expect("one colorizer at least")
        };
        let path = out.join(format!("{}.png", input.name));
        result.save(&path).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
        written.push(path);
        progress.inc(1);
    }
    Ok(written)
}
