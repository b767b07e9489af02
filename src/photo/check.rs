//! The `validate` stage: is this body a usable image?
//!
//! Checks, in order: magic bytes (the format comes from the bytes, never from the URL or
//! Content-Type), dimensions from the header against `images.min_side` and
//! `images.max_pixels` (before any pixel is allocated, so a decompression bomb costs
//! nothing), then a decode of the whole stream. JPEG, most of what engines return, is
//! decoded by libjpeg-turbo at 1/8 scale: every scan is still entropy-decoded, so truncated
//! and corrupt files are caught, at a fraction of the cost. The small decoded image also
//! gives the perceptual hash used for near-duplicate detection.

use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Limits, RgbImage};
use image_hasher::{HashAlg, Hasher, HasherConfig};
use turbojpeg::PixelFormat;

use crate::photo::color::gray_image;
use crate::photo::config::ImagesConfig;
use crate::photo::jpeg;

/// A 256-bit gradient hash (image_hasher, 16x16): neighbouring-pixel brightness
/// differences of a 17x16 grayscale copy. Measured on the bench corpus (2000 distinct
/// photos, 60 re-encoded/resized/cropped copies), a Hamming distance of 16 catches 50 of
/// the 60 copies while merging 4 pairs of distinct crops; the 64-bit version could not
/// separate the two at any threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PerceptualHash(pub [u64; 4]);

impl PerceptualHash {
    fn from_bytes(bytes: &[u8]) -> PerceptualHash {
        let mut words = [0u64; 4];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_be_bytes(buf);
        }
        PerceptualHash(words)
    }

    /// Bits that differ.
    pub fn distance(&self, other: &PerceptualHash) -> u32 {
        self.0.iter().zip(other.0).map(|(a, b)| (a ^ b).count_ones()).sum()
    }
}

/// Formats accepted into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
}

impl Format {
    /// The blob's file extension.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Bmp => "bmp",
        }
    }

    /// The format stored under extension `ext`.
    pub fn from_ext(ext: &str) -> Option<Format> {
        [Format::Jpeg, Format::Png, Format::Gif, Format::Webp, Format::Bmp]
            .into_iter()
            .find(|f| f.ext() == ext)
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::Gif => ImageFormat::Gif,
            Format::Webp => ImageFormat::WebP,
            Format::Bmp => ImageFormat::Bmp,
        }
    }
}

/// A body that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// Size of the encoded file.
    pub bytes: u64,
    /// Perceptual hash of the whole image.
    pub phash: PerceptualHash,
}

/// Why a body was rejected. `reason()` is the stable name counted in stats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("empty body")]
    Empty,
    #[error("an HTML page, not an image")]
    Html,
    #[error("not an image (unrecognised leading bytes)")]
    NotImage,
    #[error("{0} images are not supported")]
    Unsupported(&'static str),
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("cannot be decoded: {0}")]
    Undecodable(String),
    #[error("{width}x{height} is smaller than images.min_side {min_side}")]
    TooSmall { width: u32, height: u32, min_side: u32 },
    #[error("{width}x{height} has more pixels than images.max_pixels {max_pixels}")]
    TooManyPixels { width: u32, height: u32, max_pixels: u64 },
}

impl Rejection {
    /// The stable name this rejection is counted under.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Empty => "empty",
            Rejection::Html => "html",
            Rejection::NotImage => "not-image",
            Rejection::Unsupported(_) => "unsupported-format",
            Rejection::Truncated(_) => "truncated",
            Rejection::Undecodable(_) => "undecodable",
            Rejection::TooSmall { .. } => "too-small",
            Rejection::TooManyPixels { .. } => "too-many-pixels",
        }
    }

    /// Whether libjpeg-turbo's verdict on a JPEG stands. Otherwise the image crate reads it
    /// again: libjpeg-turbo refuses some valid files (CMYK, arithmetic coding) that it
    /// reads, while truncation and the size limits are final either way.
    fn is_final(&self) -> bool {
        matches!(
            self,
            Rejection::Truncated(_) | Rejection::TooSmall { .. } | Rejection::TooManyPixels { .. }
        )
    }
}

/// Identifies the format from the leading bytes (signatures as gallery-dl's table).
pub fn sniff(bytes: &[u8]) -> Result<Format, Rejection> {
    let starts = |sig: &[u8]| bytes.starts_with(sig);
    if bytes.is_empty() {
        Err(Rejection::Empty)
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Ok(Format::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Ok(Format::Png)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Ok(Format::Gif)
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Ok(Format::Webp)
    } else if starts(b"BM") && bytes.len() > 26 {
        Ok(Format::Bmp)
    } else if bytes.get(4..8) == Some(b"ftyp") {
        let brand = bytes.get(8..12).unwrap_or_default();
        Err(Rejection::Unsupported(if brand.starts_with(b"avi") { "AVIF" } else { "HEIF" }))
    } else if looks_like_html(bytes) {
        Err(Rejection::Html)
    } else {
        Err(Rejection::NotImage)
    }
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head).trim_start().to_ascii_lowercase();
    text.starts_with('<')
        && (text.contains("<html")
            || text.contains("<!doctype")
            || text.contains("<head")
            || text.contains("<body"))
        || text.starts_with("<!doctype")
}

/// Validates bodies; holds a hasher, so keep one per worker thread.
pub struct Validator {
    limits: ImagesConfig,
    hasher: Hasher,
}

/// The side of the image the perceptual hash is computed from.
const HASH_SOURCE_SIDE: u32 = 64;

impl Validator {
    pub fn new(limits: ImagesConfig) -> Validator {
        let hasher = HasherConfig::new().hash_alg(HashAlg::Gradient).hash_size(16, 16).to_hasher();
        Validator { limits, hasher }
    }

    /// Checks `bytes` and returns what the store records about the image.
    pub fn check(&self, bytes: &[u8]) -> Result<ImageInfo, Rejection> {
        let format = sniff(bytes)?;
        let jpeg = (format == Format::Jpeg).then(|| self.decode_jpeg(bytes, 8, PixelFormat::RGB));
        let (width, height, thumb) = match jpeg {
            Some(Ok((width, height, pixels))) => {
                let (w, h) = (width.div_ceil(8), height.div_ceil(8));
                (width, height, RgbImage::from_raw(w, h, pixels).expect("sized for the image"))
            }
            Some(Err(rejection)) if rejection.is_final() => return Err(rejection),
            _ => {
                let (width, height, image) = self.decode_any(bytes, format)?;
                (width, height, image.thumbnail(HASH_SOURCE_SIDE, HASH_SOURCE_SIDE).to_rgb8())
            }
        };
        let hash = self.hasher.hash_image(&DynamicImage::ImageRgb8(thumb));
        Ok(ImageInfo {
            format,
            width,
            height,
            bytes: bytes.len() as u64,
            phash: PerceptualHash::from_bytes(hash.as_bytes()),
        })
    }

    /// The same checks as [`Validator::check`], ending in the whole image decoded in gray
    /// (Pillow's luma; a JPEG's own stored luma, with no chroma work): what `serve`
    /// colorizes. One decode, no hash.
    pub fn decode_gray(&self, bytes: &[u8]) -> Result<GrayImage, Rejection> {
        let format = sniff(bytes)?;
        let jpeg = (format == Format::Jpeg).then(|| self.decode_jpeg(bytes, 1, PixelFormat::GRAY));
        match jpeg {
            Some(Ok((width, height, pixels))) => {
                Ok(GrayImage::from_raw(width, height, pixels).expect("sized for the image"))
            }
            Some(Err(rejection)) if rejection.is_final() => Err(rejection),
            _ => Ok(gray_image(&self.decode_any(bytes, format)?.2.into_rgb8())),
        }
    }

    /// Full size, and the pixels decoded by libjpeg-turbo at 1/`divisor` of each side (1,
    /// 2, 4 or 8). At 1/8 most of the inverse transform is skipped; the entropy decode,
    /// where truncation and corruption show, stays complete.
    fn decode_jpeg(
        &self,
        bytes: &[u8],
        divisor: u32,
        format: PixelFormat,
    ) -> Result<(u32, u32, Vec<u8>), Rejection> {
        let undecodable = |e: turbojpeg::Error| Rejection::Undecodable(e.to_string());
        let (width, height) = jpeg::dimensions(bytes).map_err(undecodable)?;
        let (width, height) = (width as u32, height as u32);
        check_size(&self.limits, width, height)?;
        let (w, h) = (width.div_ceil(divisor) as usize, height.div_ceil(divisor) as usize);
        let decoded = jpeg::decode(bytes, w, h, format).map_err(undecodable)?;
        if let Some(message) = decoded.problem.filter(|m| !tolerable_jpeg_warning(m)) {
            return Err(if is_truncation(&message) {
                Rejection::Truncated(message)
            } else {
                Rejection::Undecodable(message)
            });
        }
        Ok((width, height, decoded.pixels))
    }

    /// Full size and the whole image, through the image crate (every non-JPEG format, and
    /// the JPEGs libjpeg-turbo refuses).
    fn decode_any(
        &self,
        bytes: &[u8],
        format: Format,
    ) -> Result<(u32, u32, DynamicImage), Rejection> {
        let undecodable = |e: image::ImageError| Rejection::Undecodable(e.to_string());
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
        let (width, height) = reader.into_dimensions().map_err(undecodable)?;
        check_size(&self.limits, width, height)?;
        reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
        let mut limits = Limits::default();
        limits.max_image_width = Some(width);
        limits.max_image_height = Some(height);
        limits.max_alloc = Some(max_decode_memory(&self.limits));
        reader.limits(limits);
        let image = reader.decode().map_err(|e| match e {
            image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                Rejection::Truncated(io.to_string())
            }
            other => undecodable(other),
        })?;
        Ok((width, height, image))
    }
}

/// Bytes a check of `bytes` may allocate, from the header alone: a JPEG decodes at 1/8
/// scale (3 bytes a pixel); other formats in full, up to the decoder's allocation cap of
/// 8 bytes a pixel. 0 when there is no header to read (the check fails at once).
pub fn decode_memory(bytes: &[u8], limits: &ImagesConfig) -> u64 {
    let cap = max_decode_memory(limits);
    let pixels = |w: u64, h: u64| w.saturating_mul(h);
    // What the image crate's full decode takes (also the JPEG fallback `check` uses).
    let full = |format: Format| {
        ImageReader::with_format(Cursor::new(bytes), format.image_format())
            .into_dimensions()
            .map_or(0, |(w, h)| 8 * pixels(w.into(), h.into()))
    };
    let cost = match sniff(bytes) {
        Ok(Format::Jpeg) => jpeg::dimensions(bytes).map_or_else(
            |_| full(Format::Jpeg),
            |(w, h)| 3 * pixels((w as u64).div_ceil(8), (h as u64).div_ceil(8)),
        ),
        Ok(format) => full(format),
        Err(_) => 0,
    };
    cost.min(cap)
}

/// The most one check may allocate: the decoder's cap for the largest image allowed.
pub fn max_decode_memory(limits: &ImagesConfig) -> u64 {
    limits.max_pixels.saturating_mul(8)
}

fn check_size(limits: &ImagesConfig, width: u32, height: u32) -> Result<(), Rejection> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Rejection::TooManyPixels { width, height, max_pixels: limits.max_pixels });
    }
    if width.min(height) < limits.min_side {
        return Err(Rejection::TooSmall { width, height, min_side: limits.min_side });
    }
    Ok(())
}

/// libjpeg warns about stray bytes between segments in many real, intact photos.
fn tolerable_jpeg_warning(message: &str) -> bool {
    message.contains("extraneous bytes before marker")
}

fn is_truncation(message: &str) -> bool {
    message.contains("Premature end") || message.contains("premature end")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_bytes() {
        assert_eq!(sniff(b""), Err(Rejection::Empty));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Ok(Format::Jpeg));
        assert_eq!(sniff(b"  <!DOCTYPE html><html>"), Err(Rejection::Html));
        assert_eq!(sniff(b"\0\0\0\x1cftypavif"), Err(Rejection::Unsupported("AVIF")));
        assert_eq!(sniff(b"hello world"), Err(Rejection::NotImage));
    }
}
