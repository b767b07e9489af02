//! `colorize`: photos of any size colorized at their own resolution by one run or several
//! side by side, from image files or from a dataset's stored originals.
//!
//! Each photo is grayscaled, squashed to the run's crop and colorized; in Lab the predicted
//! ab, upsampled, goes onto the photo's own full-resolution L (the conversions on tensors:
//! `color`), in RGB the network's output is resized back. A sheet shows gray | each run's colorization | original.

use std::path::{Path, PathBuf};

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use tch::{Kind, Tensor};

use super::color;
use super::colorizer::Colorizer;
use crate::dataset::{Built, Split};
use crate::photo::color::luma;
use crate::train::config::ColorSpace;
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

/// `original` colorized by `colorizer` from its gray version, at the original's size.
pub fn colorize_image(colorizer: &Colorizer, original: &RgbImage) -> RgbImage {
    let (w, h) = original.dimensions();
    let c = colorizer.crop as u32;
    let plane = (c * c) as usize;
    match colorizer.color {
        ColorSpace::Rgb => {
            let gray: Vec<u8> = original.pixels().map(|p| luma(p[0], p[1], p[2])).collect();
            let small = resize(&gray, (w, h), (c, c), PixelType::U8);
            let a: Vec<f32> = small.iter().map(|v| f32::from(*v) / 127.5 - 1.0).collect();
            let b = colorizer.generate_one(&a);
            let rgb: Vec<u8> =
                (0..plane).flat_map(|p| colorizer.color.decode(a[p], &b, p, plane)).collect();
            RgbImage::from_raw(w, h, resize(&rgb, (c, c), (w, h), PixelType::U8x3)).expect("size")
        }
        ColorSpace::Lab => {
            // On tensors: the per-pixel colour maths of a whole photo, vectorised.
            let (wi, hi) = (i64::from(w), i64::from(h));
            let rgb = Tensor::from_slice(original.as_raw()).view([hi, wi, 3]).permute([2, 0, 1]);
            let l = color::rgb_to_l(&(rgb.unsqueeze(0).to_kind(Kind::Float) / 255.0));
            let small = resize_f32(&floats(&l), (w, h), (c, c));
            let a: Vec<f32> = small.iter().map(|v| v / 50.0 - 1.0).collect();
            let b = colorizer.generate_one(&a);
            let ab: Vec<f32> = (0..2)
                .flat_map(|k| resize_f32(&b[k * plane..(k + 1) * plane], (c, c), (w, h)))
                .collect();
            let ab = Tensor::from_slice(&ab).view([1, 2, hi, wi]) * 110.0;
            let rgb = (color::lab_to_rgb(&l, &ab) * 255.0).round().to_kind(Kind::Uint8);
            let pixels = rgb.squeeze_dim(0).permute([1, 2, 0]).contiguous().flatten(0, -1);
            let pixels = Vec::<u8>::try_from(pixels).expect("u8 pixels");
            RgbImage::from_raw(w, h, pixels).expect("size")
        }
    }
}

/// The values of an f32 tensor, in order.
fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).expect("f32 values")
}

/// Colorizes `inputs` with every colorizer. One run without `side_by_side` writes the
/// colorized photo; otherwise a sheet: gray | each run | original. Returns the files written.
pub fn colorize(
    colorizers: &[Colorizer],
    inputs: &[Input],
    out: &Path,
    side_by_side: bool,
) -> Result<Vec<PathBuf>, TrainError> {
    std::fs::create_dir_all(out).map_err(|source| {
        TrainError::Io(crate::durable::PathError { path: out.to_owned(), source })
    })?;
    let mut written = Vec::new();
    for input in inputs {
        let original = image::open(&input.path)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", input.path.display())))?
            .to_rgb8();
        let colorized: Vec<RgbImage> =
            colorizers.iter().map(|c| colorize_image(c, &original)).collect();
        let result = if side_by_side || colorizers.len() > 1 {
            let (w, h) = original.dimensions();
            let gray = RgbImage::from_fn(w, h, |x, y| {
                let p = original.get_pixel(x, y);
                image::Rgb([luma(p[0], p[1], p[2]); 3])
            });
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
    }
    Ok(written)
}
