//! Colour: Pillow's luma, planar <-> interleaved RGB, and sRGB <-> CIE L*a*b* (D65, 2° observer) with scikit-image's constants (`rgb2lab`,
//! `lab2rgb`; docs/pix2pix.md §2.8), so that Lab values match what the reference pix2pix
//! colorization mode trains on. Used by the trainer's Lab mode, `colorize` and `eval`
//! (through `crate::photo::quality`).
//!
//! Arithmetic is f64 inside, as skimage's float64; values are f32 at the interface. RGB is
//! 0..1 (8-bit values are divided by 255, as skimage's `img_as_float`); L is 0..100.

use std::sync::LazyLock;

/// Luma as Pillow's `convert("L")` computes it (ITU-R BT.601 weights 0.299, 0.587, 0.114 in
/// 16-bit fixed point, rounded): `(19595 R + 38470 G + 7471 B + 32768) >> 16`.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((19595 * u32::from(r) + 38470 * u32::from(g) + 7471 * u32::from(b) + 32768) >> 16) as u8
}

/// A photo's gray version, [`luma`] a pixel.
pub fn gray_image(photo: &image::RgbImage) -> image::GrayImage {
    let (w, h) = photo.dimensions();
    let pixels = photo.pixels().map(|p| luma(p[0], p[1], p[2])).collect();
    image::GrayImage::from_raw(w, h, pixels).expect("one value a pixel")
}

/// Planar RGB (three planes of `plane` values) -> interleaved RGB.
pub fn interleave(planes: &[u8], plane: usize) -> Vec<u8> {
    let (r, rest) = planes.split_at(plane);
    let (g, b) = rest.split_at(plane);
    (0..plane).flat_map(|i| [r[i], g[i], b[i]]).collect()
}

/// Linear sRGB -> XYZ, skimage's `xyz_from_rgb`.
pub const XYZ_FROM_RGB: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];

/// XYZ -> linear sRGB: the exact inverse, as skimage's `rgb_from_xyz = linalg.inv(xyz_from_rgb)`.
pub const RGB_FROM_XYZ: [[f64; 3]; 3] = invert3(XYZ_FROM_RGB);

/// Reference white, D65 / 2° observer (skimage `get_xyz_coords("D65", "2")`).
pub const WHITE: [f64; 3] = [0.95047, 1.0, 1.08883];

/// Below this X/Xn (and Y, Z), f(t) is linear.
pub const F_EPSILON: f64 = 0.008856;
/// Slope of the linear part of f(t).
pub const F_SLOPE: f64 = 7.787;
/// Offset of the linear part of f(t): 16/116.
pub const F_OFFSET: f64 = 16.0 / 116.0;
/// `lab2xyz`'s threshold on f, skimage's literal (about the cube root of `F_EPSILON`).
pub const F_INVERSE_THRESHOLD: f64 = 0.2068966;

/// Linear sRGB for each 8-bit value.
static SRGB8_LINEAR: LazyLock<[f64; 256]> =
    LazyLock::new(|| std::array::from_fn(|v| linearise(v as f64 / 255.0)));

/// A planar buffer whose length is not a multiple of 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a planar image of {0} values is not 3 equal planes")]
pub struct PlanarLengthError(pub usize);

/// Inverse of a 3x3 matrix by its adjugate (compile time).
const fn invert3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    [
        [
            c00 / det,
            (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det,
            (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det,
        ],
        [
            c01 / det,
            (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det,
            (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det,
        ],
        [
            c02 / det,
            (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det,
            (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det,
        ],
    ]
}

/// Matrix times column vector.
fn apply(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    m.map(|row| row[0] * v[0] + row[1] * v[1] + row[2] * v[2])
}

/// sRGB companding undone: encoded 0..1 -> linear light.
fn linearise(c: f64) -> f64 {
    if c > 0.04045 { ((c + 0.055) / 1.055).powf(2.4) } else { c / 12.92 }
}

/// Linear light -> sRGB-encoded (skimage `xyz2rgb`, before its clipping).
fn encode(c: f64) -> f64 {
    if c > 0.0031308 { 1.055 * c.powf(1.0 / 2.4) - 0.055 } else { 12.92 * c }
}

/// The CIE Lab f(t).
fn lab_f(t: f64) -> f64 {
    if t > F_EPSILON { t.cbrt() } else { F_SLOPE * t + F_OFFSET }
}

/// Inverse of [`lab_f`], with skimage's threshold.
fn lab_f_inverse(f: f64) -> f64 {
    if f > F_INVERSE_THRESHOLD { f * f * f } else { (f - F_OFFSET) / F_SLOPE }
}

/// Linear sRGB -> Lab.
fn linear_to_lab(linear: [f64; 3]) -> [f32; 3] {
    let xyz = apply(&XYZ_FROM_RGB, linear);
    let [fx, fy, fz] = [0, 1, 2].map(|i| lab_f(xyz[i] / WHITE[i]));
    [(116.0 * fy - 16.0) as f32, (500.0 * (fx - fy)) as f32, (200.0 * (fy - fz)) as f32]
}

/// sRGB (each 0..1, not clipped) -> Lab, as skimage `rgb2lab` on floats.
pub fn rgb_to_lab(rgb: [f32; 3]) -> [f32; 3] {
    linear_to_lab(rgb.map(|c| linearise(f64::from(c))))
}

/// 8-bit sRGB -> Lab, as skimage `rgb2lab` on a uint8 image.
pub fn rgb8_to_lab(rgb: [u8; 3]) -> [f32; 3] {
    linear_to_lab(rgb.map(|c| SRGB8_LINEAR[usize::from(c)]))
}

/// Lab -> linear sRGB, as skimage `lab2rgb` before companding: a negative f(Z) (b far
/// above the gamut) is set to 0 first.
fn lab_to_linear(lab: [f32; 3]) -> [f64; 3] {
    let [l, a, b] = lab.map(f64::from);
    let fy = (l + 16.0) / 116.0;
    let f = [a / 500.0 + fy, fy, (fy - b / 200.0).max(0.0)];
    let xyz = [0, 1, 2].map(|i| lab_f_inverse(f[i]) * WHITE[i]);
    apply(&RGB_FROM_XYZ, xyz)
}

/// Lab -> sRGB clipped to 0..1, as skimage `lab2rgb`: out-of-gamut colours are clipped per
/// channel.
pub fn lab_to_rgb(lab: [f32; 3]) -> [f32; 3] {
    lab_to_linear(lab).map(|c| encode(c).clamp(0.0, 1.0) as f32)
}

/// Lab -> 8-bit sRGB: [`lab_to_rgb`] times 255, rounded to nearest (the reference
/// visualisation truncates instead), the level looked up from the linear value
/// (`Srgb8::level`) instead of a power per channel.
pub fn lab_to_rgb8(lab: [f32; 3]) -> [u8; 3] {
    let srgb8 = &*SRGB8;
    lab_to_linear(lab).map(|c| srgb8.level(c as f32))
}

/// 8-bit sRGB of gray pixels' own L* with a*b* (one value a pixel each): [`lab_to_rgb8`]
/// over a photo, in f32, with L*'s share of the work looked up per gray level. What
/// `colorize` and `serve` make their pixels with (a 512 x 512 photo in about a millisecond).
pub fn gray_ab_to_rgb8(gray: &[u8], a: &[f32], b: &[f32], rgb: &mut [u8]) {
    let (levels, srgb8) = (&*GRAY_F_Y, &*SRGB8);
    let inverse = |f: f32| {
        let linear = (f - F_OFFSET as f32) / F_SLOPE as f32;
        if f > F_INVERSE_THRESHOLD as f32 { f * f * f } else { linear }
    };
    let m = RGB_FROM_XYZ.map(|row| row.map(|v| v as f32));
    let (white_x, white_z) = (WHITE[0] as f32, WHITE[2] as f32);
    for (((px, &v), &a), &b) in rgb.chunks_exact_mut(3).zip(gray).zip(a).zip(b) {
        let (fy, y) = levels[usize::from(v)];
        let x = inverse(a / 500.0 + fy) * white_x;
        let z = inverse((fy - b / 200.0).max(0.0)) * white_z;
        for (c, row) in px.iter_mut().zip(&m) {
            *c = srgb8.level(row[0] * x + row[1] * y + row[2] * z);
        }
    }
}

/// f(Y) and Y (= the linear value, white's Y being 1) of each 8-bit gray level, the L* of
/// a gray pixel being 116 f(Y) - 16.
static GRAY_F_Y: LazyLock<[(f32, f32); 256]> = LazyLock::new(|| {
    std::array::from_fn(|v| {
        let fy = (f64::from(rgb8_to_lab([v as u8; 3])[0]) + 16.0) / 116.0;
        (fy as f32, lab_f_inverse(fy) as f32)
    })
});

/// Linear light to 8-bit sRGB levels by table: where each level starts, and the level at
/// the start of each of [`Srgb8::BINS`] bins of linear 0..1.
struct Srgb8 {
    /// Level k (1..=255) from encoded (k - 0.5) / 255 on; [0] is -inf, [256] +inf.
    starts: [f32; 257],
    by_bin: Vec<u8>,
}

static SRGB8: LazyLock<Srgb8> = LazyLock::new(Srgb8::new);

impl Srgb8 {
    /// Narrower than the closest two level starts (1 / (255 x 12.92) apart, in the
    /// linear segment), so a bin holds at most one.
    const BINS: usize = 8192;

    fn new() -> Srgb8 {
        let starts: [f32; 257] = std::array::from_fn(|k| match k {
            0 => f32::NEG_INFINITY,
            256 => f32::INFINITY,
            k => linearise((k as f64 - 0.5) / 255.0) as f32,
        });
        let by_bin = (0..Srgb8::BINS)
            .map(|i| (starts.partition_point(|&s| s <= i as f32 / Srgb8::BINS as f32) - 1) as u8)
            .collect();
        Srgb8 { starts, by_bin }
    }

    /// The 8-bit level linear light `c` encodes to, clipped to 0..1 and rounded (0 for NaN).
    fn level(&self, c: f32) -> u8 {
        let bin = (c * Srgb8::BINS as f32).clamp(0.0, (Srgb8::BINS - 1) as f32) as usize;
        let level = self.by_bin[bin];
        level + u8::from(c >= self.starts[usize::from(level) + 1])
    }
}

/// Planar 8-bit RGB (an R plane, a G plane, a B plane, as in the A/B shards) -> planar Lab
/// (L plane, a plane, b plane), for building the trainer's L input and ab target.
pub fn rgb8_planar_to_lab(planes: &[u8]) -> Result<Vec<f32>, PlanarLengthError> {
    let n = plane_len(planes.len())?;
    let (r, gb) = planes.split_at(n);
    let (g, b) = gb.split_at(n);
    let mut out = vec![0.0; planes.len()];
    for (i, ((&r, &g), &b)) in r.iter().zip(g).zip(b).enumerate() {
        let [l, a, b] = rgb8_to_lab([r, g, b]);
        out[i] = l;
        out[n + i] = a;
        out[2 * n + i] = b;
    }
    Ok(out)
}

/// Planar Lab (L plane, a plane, b plane) -> planar 8-bit RGB via [`lab_to_rgb8`], for
/// turning the L input and a predicted ab back into an image.
pub fn lab_planar_to_rgb8(planes: &[f32]) -> Result<Vec<u8>, PlanarLengthError> {
    let n = plane_len(planes.len())?;
    let (l, ab) = planes.split_at(n);
    let (a, b) = ab.split_at(n);
    let mut out = vec![0; planes.len()];
    for (i, ((&l, &a), &b)) in l.iter().zip(a).zip(b).enumerate() {
        let [r, g, b] = lab_to_rgb8([l, a, b]);
        out[i] = r;
        out[n + i] = g;
        out[2 * n + i] = b;
    }
    Ok(out)
}

/// Size of one plane in a 3-plane buffer of `len` values.
fn plane_len(len: usize) -> Result<usize, PlanarLengthError> {
    if len.is_multiple_of(3) { Ok(len / 3) } else { Err(PlanarLengthError(len)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(got: [f32; 3], want: [f32; 3], tol: f32) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol, "got {got:?}, want {want:?} (tolerance {tol})");
        }
    }

    #[test]
    fn the_looked_up_level_is_the_rounded_encoded_value() {
        let srgb8 = Srgb8::new();
        // Linear light from below 0 to above 1 in steps that fall between level starts
        // (within a float's precision of a start, either level is right).
        for i in -1000..1_100_000 {
            let c = (f64::from(i) * 0.99999e-6 + 1.234e-9) as f32;
            let near_a_start = srgb8.starts.iter().any(|&s| (c - s).abs() <= s.abs() * 1e-6);
            let want = (encode(f64::from(c)).clamp(0.0, 1.0) * 255.0).round() as u8;
            assert!(near_a_start || srgb8.level(c) == want, "linear {c}");
        }
        for k in 1..256 {
            let start = srgb8.starts[k];
            assert_eq!(usize::from(srgb8.level(start * (1.0 + 1e-6))), k, "past level {k}'s start");
            assert_eq!(usize::from(srgb8.level(start * (1.0 - 1e-6))), k - 1, "before it");
        }
        assert_eq!((srgb8.level(f32::NAN), srgb8.level(-1.0), srgb8.level(7.0)), (0, 0, 255));
    }

    #[test]
    fn a_photo_at_once_matches_a_pixel_at_a_time() {
        let gray: Vec<u8> = (0..=255).collect();
        let a: Vec<f32> = (0..256).map(|i| (i * 37 % 220) as f32 - 110.0).collect();
        let b: Vec<f32> = (0..256).map(|i| (i * 53 % 220) as f32 - 110.0).collect();
        let mut rgb = vec![0; 3 * 256];
        gray_ab_to_rgb8(&gray, &a, &b, &mut rgb);
        let mut off = 0;
        for i in 0..256 {
            let l = rgb8_to_lab([gray[i]; 3])[0];
            let want = lab_to_rgb([l, a[i], b[i]]);
            let got = &rgb[3 * i..3 * i + 3];
            for (g, w) in got.iter().zip(want) {
                let w = (w * 255.0).round();
                assert!((f32::from(*g) - w).abs() <= 1.0, "pixel {i}: {got:?} vs {want:?}");
                off += usize::from(f32::from(*g) != w);
            }
        }
        assert!(off <= 4, "{off} of 768 channels a level off");
    }

    #[test]
    fn inverse_matrix_is_exact_inverse() {
        for j in 0..3 {
            let basis: [f64; 3] = std::array::from_fn(|i| if i == j { 1.0 } else { 0.0 });
            let back = apply(&RGB_FROM_XYZ, apply(&XYZ_FROM_RGB, basis));
            for (got, want) in back.iter().zip(basis) {
                assert!((got - want).abs() < 1e-12, "{basis:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn white_and_black() {
        // skimage's matrix rows sum to 0.950456 and 1.088754, not quite the white point, so
        // skimage's own white is (100, -0.0025, 0.0047): L is exact, a and b are near 0.
        let white = rgb_to_lab([1.0; 3]);
        assert!((white[0] - 100.0).abs() < 1e-3, "{white:?}");
        assert!(white[1].abs() < 0.01 && white[2].abs() < 0.01, "{white:?}");
        assert_close(rgb_to_lab([0.0; 3]), [0.0; 3], 1e-6);
        assert_eq!(rgb8_to_lab([255; 3]), white);
    }

    #[test]
    fn primaries_match_published_values() {
        assert_close(rgb_to_lab([1.0, 0.0, 0.0]), [53.2408, 80.0925, 67.2032], 0.01);
        assert_close(rgb_to_lab([0.0, 1.0, 0.0]), [87.7347, -86.1827, 83.1793], 0.01);
        assert_close(rgb_to_lab([0.0, 0.0, 1.0]), [32.2970, 79.1875, -107.8602], 0.01);
    }

    #[test]
    fn eight_bit_matches_float() {
        for v in 0..=255u8 {
            let rgb = [v, 255 - v, v / 3];
            // Not bit-equal: v / 255 is rounded to f32 on the float path.
            assert_close(rgb8_to_lab(rgb), rgb_to_lab(rgb.map(|c| f32::from(c) / 255.0)), 1e-4);
        }
    }

    #[test]
    fn round_trip_over_a_grid() {
        let steps = [0.0, 0.002, 0.01, 0.04, 0.05, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.9, 1.0];
        for r in steps {
            for g in steps {
                for b in steps {
                    let rgb = [r, g, b];
                    assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, 1e-4);
                }
            }
        }
    }

    #[test]
    fn out_of_gamut_is_clipped() {
        for lab in [[50.0, 120.0, -120.0], [0.0, 0.0, 200.0], [100.0, -128.0, 127.0], [-5.0; 3]] {
            let rgb = lab_to_rgb(lab);
            assert!(rgb.iter().all(|c| (0.0..=1.0).contains(c)), "{lab:?} -> {rgb:?}");
        }
    }

    #[test]
    fn planar_round_trip_is_lossless_in_8_bit() {
        let n = 7 * 7 * 7;
        let mut planes = vec![0u8; 3 * n];
        for i in 0..n {
            planes[i] = (i % 7 * 42) as u8;
            planes[n + i] = (i / 7 % 7 * 42 + 1) as u8;
            planes[2 * n + i] = (i / 49 * 42 + 2) as u8;
        }
        let lab = rgb8_planar_to_lab(&planes).unwrap();
        assert_eq!(lab[n - 1], rgb8_to_lab([252, 253, 254])[0]);
        assert_eq!(lab_planar_to_rgb8(&lab).unwrap(), planes);
        assert_eq!(rgb8_planar_to_lab(&[0; 4]), Err(PlanarLengthError(4)));
        assert_eq!(lab_planar_to_rgb8(&[0.0; 5]), Err(PlanarLengthError(5)));
    }

    #[test]
    fn luma_matches_pillow() {
        // Values Pillow 13 gives for Image.new("RGB", (1, 1), c).convert("L").
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
        assert_eq!(luma(100, 150, 200), 141);
    }

    #[test]
    fn interleave_takes_one_value_from_each_plane() {
        assert_eq!(interleave(&[1, 2, 10, 20, 100, 200], 2), [1, 10, 100, 2, 20, 200]);
    }
}
