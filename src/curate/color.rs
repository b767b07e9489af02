//! The color check: is an image a color photo, a gray one, or one tinted with a single
//! color (sepia, cyanotype, a duotone)? Measured in CIE Lab on the labelling thumbnail
//! averaged over 4x4 blocks (56 px), no model needed: the averaging evens out JPEG's
//! chroma noise at edges, which made toned JPEGs look colored, and keeps the colors of
//! objects.
//!
//! - `chroma`: the mean of `sqrt(a² + b²)` over all pixels. A gray photo, even one saved
//!   as RGB JPEG, stays near 0.
//! - `spread`: how much colors differ between pixels of the same lightness: the RMS
//!   distance of each pixel's (a, b) from the mean (a, b) of its lightness band. A toned
//!   photo's color is a function of its lightness, so the spread is near 0 however strong
//!   the tint; a color photo mixes fur, grass, water and sky at every lightness. (The hue
//!   angle's spread does not separate them: a brown bear on brown earth has a narrower
//!   hue range than a sepia print, whose hue drifts from shadows to highlights.)

use serde::{Deserialize, Serialize};

use crate::photo::color::rgb8_to_lab;

/// Lightness bands (L* 0..100) for the spread.
const BANDS: usize = 20;
/// Side of the pixel blocks averaged before measuring.
const BLOCK: usize = 4;

/// What the color check measured on one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorStats {
    /// Mean Lab chroma.
    pub chroma: f32,
    /// RMS distance in (a, b) of pixels from their lightness band's mean color.
    pub spread: f32,
}

/// The color check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colorfulness {
    Color,
    Gray,
    /// Sepia or another single tint.
    Tinted,
}

impl ColorStats {
    /// Measures a square thumbnail of planar 8-bit RGB (`side` a multiple of `BLOCK`),
    /// averaged over blocks of `BLOCK`².
    pub fn of_thumbnail(planes: &[u8], side: usize) -> ColorStats {
        let small = side / BLOCK;
        let mut averaged = vec![0u8; 3 * small * small];
        for (c, out) in averaged.chunks_exact_mut(small * small).enumerate() {
            let plane = &planes[c * side * side..(c + 1) * side * side];
            for (i, value) in out.iter_mut().enumerate() {
                let (y, x) = (i / small * BLOCK, i % small * BLOCK);
                let sum: u32 = (0..BLOCK)
                    .flat_map(|dy| &plane[(y + dy) * side + x..(y + dy) * side + x + BLOCK])
                    .map(|&p| u32::from(p))
                    .sum();
                *value = ((sum + (BLOCK * BLOCK / 2) as u32) / (BLOCK * BLOCK) as u32) as u8;
            }
        }
        ColorStats::of_planes(&averaged, small * small)
    }

    /// Measures planar 8-bit RGB (an R, a G and a B plane of `plane` pixels each).
    fn of_planes(planes: &[u8], plane: usize) -> ColorStats {
        let (r, rest) = planes.split_at(plane);
        let (g, b) = rest.split_at(plane);
        let lab: Vec<[f32; 3]> = (0..plane).map(|i| rgb8_to_lab([r[i], g[i], b[i]])).collect();
        let band = |l: f32| ((l / 100.0 * BANDS as f32) as usize).min(BANDS - 1);
        let mut sums = [(0.0f64, 0.0f64, 0u32); BANDS];
        let mut chroma = 0.0f64;
        for &[l, a, b] in &lab {
            chroma += f64::from(a.hypot(b));
            let s = &mut sums[band(l)];
            *s = (s.0 + f64::from(a), s.1 + f64::from(b), s.2 + 1);
        }
        let means = sums.map(|(a, b, n)| (a / f64::from(n.max(1)), b / f64::from(n.max(1))));
        let squares: f64 = lab
            .iter()
            .map(|&[l, a, b]| {
                let (ma, mb) = means[band(l)];
                (f64::from(a) - ma).powi(2) + (f64::from(b) - mb).powi(2)
            })
            .sum();
        let n = plane.max(1) as f64;
        ColorStats { chroma: (chroma / n) as f32, spread: (squares / n).sqrt() as f32 }
    }

    /// Gray below `min_chroma`; tinted when colored but with a spread below `min_spread`.
    pub fn verdict(&self, min_chroma: f32, min_spread: f32) -> Colorfulness {
        if self.chroma < min_chroma {
            Colorfulness::Gray
        } else if self.spread < min_spread {
            Colorfulness::Tinted
        } else {
            Colorfulness::Color
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planes(pixels: &[[u8; 3]]) -> Vec<u8> {
        (0..3).flat_map(|c| pixels.iter().map(move |p| p[c])).collect()
    }

    #[test]
    fn gray_has_no_chroma_and_a_tint_has_no_spread() {
        let gray = planes(&[[10, 10, 10], [200, 200, 200], [128, 128, 128]]);
        let stats = ColorStats::of_planes(&gray, 3);
        assert!(stats.chroma < 0.01, "{stats:?}");
        assert_eq!(stats.verdict(4.0, 3.0), Colorfulness::Gray);

        let sepia = planes(&[[112, 66, 20], [224, 132, 40], [56, 33, 10]]);
        let stats = ColorStats::of_planes(&sepia, 3);
        assert!(stats.chroma > 20.0 && stats.spread < 0.01, "{stats:?}");
        assert_eq!(stats.verdict(4.0, 3.0), Colorfulness::Tinted);

        // Red, green and blue of about the same lightness: one band, far apart.
        let mixed = planes(&[[210, 90, 90], [70, 140, 70], [100, 120, 240]]);
        let stats = ColorStats::of_planes(&mixed, 3);
        assert!(stats.spread > 30.0, "{stats:?}");
        assert_eq!(stats.verdict(4.0, 3.0), Colorfulness::Color);
    }

    #[test]
    fn a_thumbnail_is_measured_on_its_block_averages() {
        // 8x8: four 4x4 blocks; the first alternates two colors whose mean is its first
        // color, the others are uniform.
        let side = 8;
        let colors = [[150, 100, 150], [70, 140, 70], [100, 120, 240], [140, 115, 80]];
        let mut thumbnail = vec![0u8; 3 * side * side];
        for y in 0..side {
            for x in 0..side {
                let mut color = colors[(y / 4) * 2 + x / 4];
                if y < 4 && x < 4 {
                    color = if (x + y) % 2 == 0 { [200, 100, 100] } else { [100, 100, 200] };
                }
                for c in 0..3 {
                    thumbnail[c * side * side + y * side + x] = color[c];
                }
            }
        }
        let measured = ColorStats::of_thumbnail(&thumbnail, side);
        assert_eq!(measured, ColorStats::of_planes(&planes(&colors), 4));
        assert!(measured.spread > 0.0);
    }
}
