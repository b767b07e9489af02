//! One stored image in, a square (and an aligned A/B pair) out: what `build` stores, what
//! curation labels and what the report's thumbnails show.
//!
//! B is the color image at `size` x `size` (squashed as the reference pix2pix does, or
//! center-cropped), A is the luma of that same B, so the two align pixel for pixel.
//! JPEGs are decoded by libjpeg-turbo at the smallest DCT scale (1/2, 1/4 or 1/8) that keeps
//! both sides at least `size`, which skips most of the decode work before the resize. Every
//! decode holds its share of the process's decode budget (`photo::budget`) until its
//! pixels are resized, and other formats are decoded under `images.max_pixels`.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use std::io::Cursor;

use image::{ImageReader, Limits};

use serde::{Deserialize, Serialize};

use super::budget::{self, Permit};
use super::check::max_decode_memory;
use super::color::luma;
use super::jpeg;

/// How a non-square image becomes square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeMode {
    /// Resize the whole image to size x size, changing its aspect ratio (the reference
    /// pix2pix's `Resize([286, 286])`).
    Squash,
    /// Keep the aspect ratio: crop the centered largest square, then resize it.
    CenterCrop,
}

/// Why an image could not be preprocessed (it was valid when fetched: only a damaged blob
/// or an exotic encoding gets here).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PreprocessError(String);

/// Reusable decode and resize state; keep one per worker thread.
#[derive(Default)]
pub struct Preprocessor {
    resizer: Resizer,
    /// The size x size x 3 interleaved RGB result, before it is split into planes.
    rgb: Vec<u8>,
}

impl Preprocessor {
    /// Decodes `bytes` and writes B (3 planes of size x size) into `b` and A (one plane)
    /// into `a`.
    pub fn pair(
        &mut self,
        bytes: &[u8],
        size: u32,
        mode: ResizeMode,
        a: &mut [u8],
        b: &mut [u8],
    ) -> Result<(), PreprocessError> {
        self.square(bytes, size, mode)?;
        let plane = (size * size) as usize;
        let (r, rest) = b.split_at_mut(plane);
        let (g, bl) = rest.split_at_mut(plane);
        for (i, px) in self.rgb.chunks_exact(3).enumerate() {
            r[i] = px[0];
            g[i] = px[1];
            bl[i] = px[2];
            a[i] = luma(px[0], px[1], px[2]);
        }
        Ok(())
    }

    /// Decodes `bytes` and resizes it to `size` x `size`: interleaved RGB.
    pub fn square(
        &mut self,
        bytes: &[u8],
        size: u32,
        mode: ResizeMode,
    ) -> Result<&[u8], PreprocessError> {
        let (width, height, pixels, _memory) = decode(bytes, size)?;
        let source = Image::from_vec_u8(width, height, pixels, PixelType::U8x3)
            .map_err(|e| PreprocessError(e.to_string()))?;
        self.rgb.resize((size * size * 3) as usize, 0);
        let mut target = Image::from_slice_u8(size, size, &mut self.rgb, PixelType::U8x3)
            .map_err(|e| PreprocessError(e.to_string()))?;
        let mut options =
            ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
        if mode == ResizeMode::CenterCrop {
            options = options.fit_into_destination(Some((0.5, 0.5)));
        }
        self.resizer
            .resize(&source, &mut target, &options)
            .map_err(|e| PreprocessError(e.to_string()))?;
        Ok(&self.rgb)
    }
}

/// Pixels decoded: width, height, interleaved RGB, and the share of the decode budget
/// they hold.
type Decoded = (u32, u32, Vec<u8>, Permit);

/// Decodes to interleaved RGB, at a reduced DCT scale for JPEGs when both sides stay at
/// least `size`.
fn decode(bytes: &[u8], size: u32) -> Result<Decoded, PreprocessError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        && let Some(decoded) = decode_jpeg_scaled(bytes, size)
    {
        return Ok(decoded);
    }
    let fail = |e: image::ImageError| PreprocessError(e.to_string());
    let budget = budget::global();
    let reader = || ImageReader::new(Cursor::new(bytes)).with_guessed_format();
    let (w, h) =
        reader().map_err(|e| PreprocessError(e.to_string()))?.into_dimensions().map_err(fail)?;
    let pixels = u64::from(w) * u64::from(h);
    let max_pixels = budget.limits().max_pixels;
    if pixels > max_pixels {
        return Err(PreprocessError(format!(
            "{w}x{h} has more pixels than images.max_pixels {max_pixels}"
        )));
    }
    // The decoder's own allocation (at most 8 bytes a pixel), then the RGB copy.
    let memory = budget.take_blocking(11 * pixels);
    let mut decoder = reader().map_err(|e| PreprocessError(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_decode_memory(budget.limits()));
    decoder.limits(limits);
    let rgb = decoder.decode().map_err(fail)?.to_rgb8();
    Ok((rgb.width(), rgb.height(), rgb.into_raw(), memory))
}

/// `None` when libjpeg-turbo cannot decode it cleanly (the image crate then tries).
fn decode_jpeg_scaled(bytes: &[u8], size: u32) -> Option<Decoded> {
    let (w, h) = jpeg::dimensions(bytes).ok()?;
    let size = size as usize;
    // Only 1/2, 1/4 and 1/8: libjpeg-turbo's M/8 scales (3/8, 5/8, ...) have no SIMD and
    // measured slower on the bench corpus.
    let scale = [8, 4, 2].into_iter().find(|s| w / s >= size && h / s >= size).unwrap_or(1);
    let (sw, sh) = (w.div_ceil(scale), h.div_ceil(scale));
    let memory = budget::global().take_blocking(3 * (sw * sh) as u64);
    let decoded = jpeg::decode(bytes, sw, sh, turbojpeg::PixelFormat::RGB).ok()?;
    decoded.problem.is_none().then_some((sw as u32, sh as u32, decoded.pixels, memory))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20, finding 13: build, label and report decode through here, and share the
    /// process's one decode budget with fetch's validation.
    #[test]
    fn a_decode_waits_for_its_share_of_the_process_budget() {
        let photo = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([x as u8, y as u8, 60]));
        let (mut jpeg, mut png) = (Vec::new(), Vec::new());
        photo.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        photo.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        for bytes in [jpeg, png] {
            let everything = budget::global().take_blocking(u64::MAX);
            let (tx, rx) = std::sync::mpsc::channel();
            let decoding = std::thread::spawn(move || {
                let rgb = Preprocessor::default()
                    .square(&bytes, 64, ResizeMode::CenterCrop)
                    .map(<[u8]>::len);
                tx.send(rgb.unwrap()).unwrap();
            });
            let wait = std::time::Duration::from_millis(300);
            assert!(rx.recv_timeout(wait).is_err(), "it waits while the budget is held");
            drop(everything);
            assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap(), 64 * 64 * 3);
            decoding.join().unwrap();
        }
    }

    #[test]
    fn an_image_over_max_pixels_is_refused_before_it_is_decoded() {
        let limit = budget::global().limits().max_pixels;
        let side = (limit as f64).sqrt() as u32 + 2;
        let mut png = Vec::new();
        image::GrayImage::new(side, side)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let err = Preprocessor::default().square(&png, 64, ResizeMode::Squash).unwrap_err();
        assert!(err.to_string().contains("more pixels than images.max_pixels"), "{err}");
    }
}
