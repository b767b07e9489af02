//! Image-quality metrics for colorization results (docs/pix2pix.md §4): PSNR, SSIM (Wang et
//! al. 2004, on RGB and on luma), colourfulness (Hasler & Süsstrunk 2003, signed variant) and
//! mean CIEDE2000. Images are 8-bit RGB, interleaved (`3 * width * height` bytes, row-major),
//! as decoded by the `image` crate or libjpeg-turbo. Used by `eval`.

use serde::{Deserialize, Serialize};

use crate::photo::color::{self, luma};

/// Side of the SSIM Gaussian window.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM Gaussian window, in pixels.
const SSIM_SIGMA: f64 = 1.5;
/// SSIM stabilising constants, (K L)^2 with K1 = 0.01, K2 = 0.03 and L = 255.
const SSIM_C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const SSIM_C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// PSNR above this is counted as this: a gray photo's do-nothing colorization is exact
/// (infinite PSNR), and one such image would make the mean over a set infinite.
pub const PSNR_CAP_DB: f64 = 60.0;

/// Why a metric cannot be computed for the images given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("an image with no pixels ({width}x{height})")]
    Empty { width: usize, height: usize },
    #[error("an RGB image of {width}x{height} needs {expected} bytes, got {actual}")]
    Length { width: usize, height: usize, expected: usize, actual: usize },
    #[error("SSIM needs at least {n}x{n} pixels, got {width}x{height}", n = SSIM_WINDOW)]
    TooSmallForSsim { width: usize, height: usize },
}

/// All metrics for one prediction against its ground truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// [`psnr`], dB, capped at [`PSNR_CAP_DB`] (identical images would give infinity).
    pub psnr: f64,
    /// [`ssim`] over RGB.
    pub ssim: f64,
    /// [`ssim_luma`], SSIM on BT.601 luma only.
    pub ssim_luma: f64,
    /// [`colorfulness`] of the prediction.
    pub colorfulness: f64,
    /// [`colorfulness`] of the ground truth.
    pub colorfulness_truth: f64,
    /// [`mean_ciede2000`].
    pub ciede2000: f64,
}

impl Metrics {
    /// Computes every metric for `pred` against `truth`, both `width` x `height` RGB.
    pub fn compute(
        pred: &[u8],
        truth: &[u8],
        width: usize,
        height: usize,
    ) -> Result<Self, MetricsError> {
        Ok(Self {
            psnr: psnr(pred, truth, width, height)?.min(PSNR_CAP_DB),
            ssim: ssim(pred, truth, width, height)?,
            ssim_luma: ssim_luma(pred, truth, width, height)?,
            colorfulness: colorfulness(pred, width, height)?,
            colorfulness_truth: colorfulness(truth, width, height)?,
            ciede2000: mean_ciede2000(pred, truth, width, height)?,
        })
    }
}

/// Checks that `rgb` is a non-empty `width` x `height` RGB image.
fn check(rgb: &[u8], width: usize, height: usize) -> Result<(), MetricsError> {
    if width == 0 || height == 0 {
        return Err(MetricsError::Empty { width, height });
    }
    // Saturating: a size that overflows cannot match any slice's length anyway.
    let expected = width.saturating_mul(height).saturating_mul(3);
    if rgb.len() != expected {
        return Err(MetricsError::Length { width, height, expected, actual: rgb.len() });
    }
    Ok(())
}

/// Checks both images of a pair.
fn check_pair(pred: &[u8], truth: &[u8], width: usize, height: usize) -> Result<(), MetricsError> {
    check(pred, width, height)?;
    check(truth, width, height)
}

/// Peak signal-to-noise ratio in dB over all three RGB channels, peak 255:
/// `10 log10(255^2 / MSE)`. Identical images give `f64::INFINITY`.
pub fn psnr(pred: &[u8], truth: &[u8], width: usize, height: usize) -> Result<f64, MetricsError> {
    check_pair(pred, truth, width, height)?;
    let sum: f64 = pred
        .iter()
        .zip(truth)
        .map(|(&p, &t)| {
            let d = f64::from(p) - f64::from(t);
            d * d
        })
        .sum();
    let mse = sum / pred.len() as f64;
    Ok(if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() })
}

/// Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) computed on each RGB channel
/// and averaged over the three. Window: 11x11 Gaussian, sigma 1.5, normalised; K1 = 0.01,
/// K2 = 0.03, L = 255; local variances and covariance are the Gaussian-weighted population
/// ones (no N/(N-1)). The SSIM map covers the "valid" region only (window fully inside the
/// image, no padding), `(width - 10) x (height - 10)`, and is averaged. No downsampling
/// (Wang's MATLAB reference downsamples images larger than 256 px on the short side).
/// Images smaller than 11 px on a side are an error, [`MetricsError::TooSmallForSsim`].
pub fn ssim(pred: &[u8], truth: &[u8], width: usize, height: usize) -> Result<f64, MetricsError> {
    check_ssim_pair(pred, truth, width, height)?;
    let channel = |rgb: &[u8], c: usize| -> Vec<f64> {
        rgb.iter().skip(c).step_by(3).map(|&v| f64::from(v)).collect()
    };
    let total: f64 =
        (0..3).map(|c| ssim_plane(&channel(pred, c), &channel(truth, c), width, height)).sum();
    Ok(total / 3.0)
}

/// [`ssim`]'s definition on luma only: each image is first reduced to ITU-R BT.601 luma exactly
/// as Pillow's `convert("L")` does (`(19595 R + 38470 G + 7471 B + 32768) >> 16`).
pub fn ssim_luma(
    pred: &[u8],
    truth: &[u8],
    width: usize,
    height: usize,
) -> Result<f64, MetricsError> {
    check_ssim_pair(pred, truth, width, height)?;
    let luma = |rgb: &[u8]| -> Vec<f64> {
        rgb.chunks_exact(3).map(|p| f64::from(luma(p[0], p[1], p[2]))).collect()
    };
    Ok(ssim_plane(&luma(pred), &luma(truth), width, height))
}

/// [`check_pair`], and the SSIM window must fit.
fn check_ssim_pair(
    pred: &[u8],
    truth: &[u8],
    width: usize,
    height: usize,
) -> Result<(), MetricsError> {
    check_pair(pred, truth, width, height)?;
    if width < SSIM_WINDOW || height < SSIM_WINDOW {
        return Err(MetricsError::TooSmallForSsim { width, height });
    }
    Ok(())
}

/// The normalised 1-D Gaussian; the 2-D window is its outer product with itself.
fn gaussian_window() -> [f64; SSIM_WINDOW] {
    let centre = (SSIM_WINDOW / 2) as f64;
    let raw: [f64; SSIM_WINDOW] = std::array::from_fn(|i| {
        let d = i as f64 - centre;
        (-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp()
    });
    let sum: f64 = raw.iter().sum();
    raw.map(|g| g / sum)
}

/// Separable "valid" filtering of a `width` x `height` plane by `window` in both directions:
/// the result is `(width - 10) x (height - 10)`, row-major.
fn filter_valid(plane: &[f64], width: usize, height: usize, window: &[f64]) -> Vec<f64> {
    let out_width = width - window.len() + 1;
    let horizontal: Vec<f64> = plane
        .chunks_exact(width)
        .flat_map(|row| {
            row.windows(window.len()).map(|w| w.iter().zip(window).map(|(v, g)| v * g).sum())
        })
        .collect();
    let mut out = Vec::with_capacity(out_width * (height - window.len() + 1));
    for rows in horizontal.chunks_exact(out_width).collect::<Vec<_>>().windows(window.len()) {
        let mut acc = vec![0.0; out_width];
        for (row, g) in rows.iter().zip(window) {
            for (a, v) in acc.iter_mut().zip(row.iter()) {
                *a += g * v;
            }
        }
        out.extend(acc);
    }
    out
}

/// Mean SSIM between two planes (0..255 values) of `width` x `height`, both at least the window.
fn ssim_plane(x: &[f64], y: &[f64], width: usize, height: usize) -> f64 {
    let window = gaussian_window();
    let filter = |plane: &[f64]| filter_valid(plane, width, height, &window);
    let product =
        |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(u, v)| u * v).collect() };
    let (mu_x, mu_y) = (filter(x), filter(y));
    let xx = filter(&product(x, x));
    let yy = filter(&product(y, y));
    let xy = filter(&product(x, y));
    let n = mu_x.len();
    let sum: f64 = (0..n)
        .map(|i| {
            let (mx, my) = (mu_x[i], mu_y[i]);
            let var_x = xx[i] - mx * mx;
            let var_y = yy[i] - my * my;
            let cov = xy[i] - mx * my;
            ((2.0 * mx * my + SSIM_C1) * (2.0 * cov + SSIM_C2))
                / ((mx * mx + my * my + SSIM_C1) * (var_x + var_y + SSIM_C2))
        })
        .sum();
    sum / n as f64
}

/// Colourfulness of Hasler & Süsstrunk (2003), the **signed** variant of the paper (DDColor's
/// code takes absolute values instead): per pixel rg = R - G and yb = (R + G)/2 - B, then
/// `sqrt(var_rg + var_yb) + 0.3 sqrt(mean_rg^2 + mean_yb^2)` with population variances, on
/// the 0..255 scale. A grey image scores 0.
pub fn colorfulness(rgb: &[u8], width: usize, height: usize) -> Result<f64, MetricsError> {
    check(rgb, width, height)?;
    let opponent: Vec<(f64, f64)> = rgb
        .chunks_exact(3)
        .map(|p| {
            let [r, g, b] = [p[0], p[1], p[2]].map(f64::from);
            (r - g, 0.5 * (r + g) - b)
        })
        .collect();
    let n = opponent.len() as f64;
    let (sum_rg, sum_yb) = opponent.iter().fold((0.0, 0.0), |(s, t), (rg, yb)| (s + rg, t + yb));
    let (mean_rg, mean_yb) = (sum_rg / n, sum_yb / n);
    let (ss_rg, ss_yb) = opponent.iter().fold((0.0, 0.0), |(s, t), (rg, yb)| {
        (s + (rg - mean_rg) * (rg - mean_rg), t + (yb - mean_yb) * (yb - mean_yb))
    });
    Ok((ss_rg / n + ss_yb / n).sqrt() + 0.3 * (mean_rg * mean_rg + mean_yb * mean_yb).sqrt())
}

/// CIEDE2000 colour difference between two Lab colours (L 0..100), the full formula of
/// Sharma, Wu & Dalal (2005) with kL = kC = kH = 1. Symmetric in its arguments.
pub fn ciede2000(lab1: [f64; 3], lab2: [f64; 3]) -> f64 {
    let [l1, a1, b1] = lab1;
    let [l2, a2, b2] = lab2;
    let pow25_7 = 25f64.powi(7);

    let c_bar = (a1.hypot(b1) + a2.hypot(b2)) / 2.0;
    let g = 0.5 * (1.0 - (c_bar.powi(7) / (c_bar.powi(7) + pow25_7)).sqrt());
    let (a1p, a2p) = ((1.0 + g) * a1, (1.0 + g) * a2);
    let (c1p, c2p) = (a1p.hypot(b1), a2p.hypot(b2));
    let (h1p, h2p) = (hue_degrees(a1p, b1), hue_degrees(a2p, b2));
    let chroma_product = c1p * c2p;

    let delta_l = l2 - l1;
    let delta_c = c2p - c1p;
    let delta_h = if chroma_product == 0.0 {
        0.0
    } else {
        let d = h2p - h1p;
        if d > 180.0 {
            d - 360.0
        } else if d < -180.0 {
            d + 360.0
        } else {
            d
        }
    };
    let delta_big_h = 2.0 * chroma_product.sqrt() * (delta_h / 2.0).to_radians().sin();

    let l_bar = (l1 + l2) / 2.0;
    let c_bar_p = (c1p + c2p) / 2.0;
    let h_sum = h1p + h2p;
    let h_bar = if chroma_product == 0.0 {
        h_sum
    } else if (h1p - h2p).abs() <= 180.0 {
        h_sum / 2.0
    } else if h_sum < 360.0 {
        (h_sum + 360.0) / 2.0
    } else {
        (h_sum - 360.0) / 2.0
    };

    let cos_deg = |deg: f64| deg.to_radians().cos();
    let t = 1.0 - 0.17 * cos_deg(h_bar - 30.0)
        + 0.24 * cos_deg(2.0 * h_bar)
        + 0.32 * cos_deg(3.0 * h_bar + 6.0)
        - 0.20 * cos_deg(4.0 * h_bar - 63.0);
    let delta_theta = 30.0 * (-((h_bar - 275.0) / 25.0).powi(2)).exp();
    let r_c = 2.0 * (c_bar_p.powi(7) / (c_bar_p.powi(7) + pow25_7)).sqrt();
    let l_offset = (l_bar - 50.0).powi(2);
    let s_l = 1.0 + 0.015 * l_offset / (20.0 + l_offset).sqrt();
    let s_c = 1.0 + 0.045 * c_bar_p;
    let s_h = 1.0 + 0.015 * c_bar_p * t;
    let r_t = -(2.0 * delta_theta).to_radians().sin() * r_c;

    let (dl, dc, dh) = (delta_l / s_l, delta_c / s_c, delta_big_h / s_h);
    (dl * dl + dc * dc + dh * dh + r_t * dc * dh).sqrt()
}

/// Hue angle in degrees, 0..360; 0 for a neutral colour (a = b = 0).
fn hue_degrees(a: f64, b: f64) -> f64 {
    if a == 0.0 && b == 0.0 { 0.0 } else { b.atan2(a).to_degrees().rem_euclid(360.0) }
}

/// [`ciede2000`] averaged over all pixels, both images converted to Lab by
/// [`color::rgb8_to_lab`] (sRGB, D65/2°, scikit-image constants).
pub fn mean_ciede2000(
    pred: &[u8],
    truth: &[u8],
    width: usize,
    height: usize,
) -> Result<f64, MetricsError> {
    check_pair(pred, truth, width, height)?;
    let lab = |p: &[u8]| color::rgb8_to_lab([p[0], p[1], p[2]]).map(f64::from);
    let sum: f64 = pred
        .chunks_exact(3)
        .zip(truth.chunks_exact(3))
        .map(|(p, t)| ciede2000(lab(p), lab(t)))
        .sum();
    Ok(sum / (width * height) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic test image with edges, gradients and some colour.
    fn test_image(width: usize, height: usize) -> Vec<u8> {
        (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                [
                    (x * 7) as u8,
                    (y * 9 + if x > width / 2 { 60 } else { 0 }) as u8,
                    ((x * y) % 200) as u8,
                ]
            })
            .collect()
    }

    /// Deterministic noise in -amplitude..=amplitude (a multiplicative hash).
    fn add_noise(rgb: &[u8], amplitude: i32) -> Vec<u8> {
        rgb.iter()
            .enumerate()
            .map(|(i, &v)| {
                let h = ((i as u32).wrapping_mul(2654435761) >> 16) as i32;
                (i32::from(v) + h % (2 * amplitude + 1) - amplitude).clamp(0, 255) as u8
            })
            .collect()
    }

    /// Sharma, Wu & Dalal (2005), Table 1: (L1, a1, b1), (L2, a2, b2), ΔE00 for all 34 pairs.
    const SHARMA: [([f64; 3], [f64; 3], f64); 34] = [
        ([50.0000, 2.6772, -79.7751], [50.0000, 0.0000, -82.7485], 2.0425),
        ([50.0000, 3.1571, -77.2803], [50.0000, 0.0000, -82.7485], 2.8615),
        ([50.0000, 2.8361, -74.0200], [50.0000, 0.0000, -82.7485], 3.4412),
        ([50.0000, -1.3802, -84.2814], [50.0000, 0.0000, -82.7485], 1.0000),
        ([50.0000, -1.1848, -84.8006], [50.0000, 0.0000, -82.7485], 1.0000),
        ([50.0000, -0.9009, -85.5211], [50.0000, 0.0000, -82.7485], 1.0000),
        ([50.0000, 0.0000, 0.0000], [50.0000, -1.0000, 2.0000], 2.3669),
        ([50.0000, -1.0000, 2.0000], [50.0000, 0.0000, 0.0000], 2.3669),
        ([50.0000, 2.4900, -0.0010], [50.0000, -2.4900, 0.0009], 7.1792),
        ([50.0000, 2.4900, -0.0010], [50.0000, -2.4900, 0.0010], 7.1792),
        ([50.0000, 2.4900, -0.0010], [50.0000, -2.4900, 0.0011], 7.2195),
        ([50.0000, 2.4900, -0.0010], [50.0000, -2.4900, 0.0012], 7.2195),
        ([50.0000, -0.0010, 2.4900], [50.0000, 0.0009, -2.4900], 4.8045),
        ([50.0000, -0.0010, 2.4900], [50.0000, 0.0010, -2.4900], 4.8045),
        ([50.0000, -0.0010, 2.4900], [50.0000, 0.0011, -2.4900], 4.7461),
        ([50.0000, 2.5000, 0.0000], [50.0000, 0.0000, -2.5000], 4.3065),
        ([50.0000, 2.5000, 0.0000], [73.0000, 25.0000, -18.0000], 27.1492),
        ([50.0000, 2.5000, 0.0000], [61.0000, -5.0000, 29.0000], 22.8977),
        ([50.0000, 2.5000, 0.0000], [56.0000, -27.0000, -3.0000], 31.9030),
        ([50.0000, 2.5000, 0.0000], [58.0000, 24.0000, 15.0000], 19.4535),
        ([50.0000, 2.5000, 0.0000], [50.0000, 3.1736, 0.5854], 1.0000),
        ([50.0000, 2.5000, 0.0000], [50.0000, 3.2972, 0.0000], 1.0000),
        ([50.0000, 2.5000, 0.0000], [50.0000, 1.8634, 0.5757], 1.0000),
        ([50.0000, 2.5000, 0.0000], [50.0000, 3.2592, 0.3350], 1.0000),
        ([60.2574, -34.0099, 36.2677], [60.4626, -34.1751, 39.4387], 1.2644),
        ([63.0109, -31.0961, -5.8663], [62.8187, -29.7946, -4.0864], 1.2630),
        ([61.2901, 3.7196, -5.3901], [61.4292, 2.2480, -4.9620], 1.8731),
        ([35.0831, -44.1164, 3.7933], [35.0232, -40.0716, 1.5901], 1.8645),
        ([22.7233, 20.0904, -46.6940], [23.0331, 14.9730, -42.5619], 2.0373),
        ([36.4612, 47.8580, 18.3852], [36.2715, 50.5065, 21.2231], 1.4146),
        ([90.8027, -2.0831, 1.4410], [91.1528, -1.6435, 0.0447], 1.4441),
        ([90.9257, -0.5406, -0.9208], [88.6381, -0.8985, -0.7239], 1.5381),
        ([6.7747, -0.2908, -2.4247], [5.8714, -0.0985, -2.2286], 0.6377),
        ([2.0776, 0.0795, -1.1350], [0.9033, -0.0636, -0.5514], 0.9082),
    ];

    #[test]
    fn ciede2000_matches_sharma_table() {
        for (i, (lab1, lab2, want)) in SHARMA.iter().enumerate() {
            let got = ciede2000(*lab1, *lab2);
            assert!((got - want).abs() < 1e-4, "pair {}: got {got}, want {want}", i + 1);
            let swapped = ciede2000(*lab2, *lab1);
            assert!((got - swapped).abs() < 1e-12, "pair {} not symmetric", i + 1);
        }
        assert_eq!(ciede2000([40.0, 12.0, -7.0], [40.0, 12.0, -7.0]), 0.0);
    }

    #[test]
    fn mean_ciede2000_of_flat_images_is_the_pair_difference() {
        let (red, grey) = ([200u8, 30, 40], [128u8, 128, 128]);
        let flat = |p: [u8; 3]| p.repeat(12);
        let want = ciede2000(
            color::rgb8_to_lab(red).map(f64::from),
            color::rgb8_to_lab(grey).map(f64::from),
        );
        let got = mean_ciede2000(&flat(red), &flat(grey), 4, 3).unwrap();
        assert!((got - want).abs() < 1e-12 && want > 10.0, "{got} vs {want}");
        assert_eq!(mean_ciede2000(&flat(red), &flat(red), 4, 3), Ok(0.0));
    }

    #[test]
    fn psnr_identical_and_known_offset() {
        let image = test_image(16, 12).iter().map(|v| v % 250).collect::<Vec<_>>();
        assert_eq!(psnr(&image, &image, 16, 12), Ok(f64::INFINITY));
        let brighter: Vec<u8> = image.iter().map(|v| v + 5).collect();
        let got = psnr(&brighter, &image, 16, 12).unwrap();
        assert!((got - 20.0 * (255.0f64 / 5.0).log10()).abs() < 1e-9, "{got}");
    }

    #[test]
    fn ssim_identity_noise_and_symmetry() {
        let (w, h) = (40, 30);
        let image = test_image(w, h);
        assert!((ssim(&image, &image, w, h).unwrap() - 1.0).abs() < 1e-12);
        assert!((ssim_luma(&image, &image, w, h).unwrap() - 1.0).abs() < 1e-12);
        let slightly = add_noise(&image, 4);
        let very = add_noise(&image, 40);
        let s_slight = ssim(&slightly, &image, w, h).unwrap();
        let s_very = ssim(&very, &image, w, h).unwrap();
        assert!(s_very < s_slight && s_slight < 0.999 && s_very > 0.0, "{s_slight} {s_very}");
        // Reference values from a direct (not separable) 11x11 computation in plain Python.
        assert!((s_slight - 0.9882329339396269).abs() < 1e-9, "{s_slight}");
        assert!((s_very - 0.5970653608910934).abs() < 1e-9, "{s_very}");
        assert!((ssim_luma(&very, &image, w, h).unwrap() - 0.5004969110623043).abs() < 1e-9);
        assert!((ssim(&image, &very, w, h).unwrap() - s_very).abs() < 1e-12);
    }

    #[test]
    fn ssim_window_is_normalised_gaussian() {
        let window = gaussian_window();
        assert!((window.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!((window[5] / window[6] - (1.0 / 4.5f64).exp()).abs() < 1e-12);
        assert_eq!(window[0], window[10]);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let image = test_image(10, 20);
        assert_eq!(
            ssim(&image, &image, 10, 20),
            Err(MetricsError::TooSmallForSsim { width: 10, height: 20 })
        );
        assert_eq!(
            psnr(&image, &image[3..], 10, 20),
            Err(MetricsError::Length { width: 10, height: 20, expected: 600, actual: 597 })
        );
        assert_eq!(colorfulness(&[], 0, 5), Err(MetricsError::Empty { width: 0, height: 5 }));
        assert!(matches!(
            Metrics::compute(&image, &image, usize::MAX, 3),
            Err(MetricsError::Length { .. })
        ));
    }

    #[test]
    fn colorfulness_of_grey_and_of_pure_red() {
        let grey: Vec<u8> = (0..64u8).flat_map(|v| [v * 4; 3]).collect();
        assert_eq!(colorfulness(&grey, 8, 8), Ok(0.0));
        let red = [255u8, 0, 0].repeat(20);
        let want = 0.3 * (255.0f64.powi(2) + 127.5f64.powi(2)).sqrt();
        assert_eq!(colorfulness(&red, 5, 4), Ok(want));
        // Half red, half blue: rg in {255, 0}, yb in {127.5, -255}.
        let mixed = [[255u8, 0, 0].repeat(2), [0u8, 0, 255].repeat(2)].concat();
        let var = 127.5f64.powi(2) + 191.25f64.powi(2);
        let mean = 127.5f64.hypot(-63.75);
        assert!((colorfulness(&mixed, 2, 2).unwrap() - (var.sqrt() + 0.3 * mean)).abs() < 1e-9);
    }

    #[test]
    fn compute_on_identical_images() {
        let image = test_image(20, 20);
        assert_eq!(psnr(&image, &image, 20, 20).unwrap(), f64::INFINITY);
        let m = Metrics::compute(&image, &image, 20, 20).unwrap();
        assert_eq!(m.psnr, PSNR_CAP_DB, "capped, so that a mean over images stays finite");
        assert!((m.ssim - 1.0).abs() < 1e-12 && (m.ssim_luma - 1.0).abs() < 1e-12);
        assert_eq!(m.colorfulness, m.colorfulness_truth);
        assert_eq!(m.ciede2000, 0.0);
    }
}
