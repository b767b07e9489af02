//! The colour conversions of `colorize` as tensor operations, with scikit-image's constants
//! (the ones `photo::color` computes with, in f64 a pixel): sRGB -> L* in, L*a*b* -> sRGB
//! out. `colorize` runs them on whole photos at once (vectorised, on every core), and an
//! exported module holds them, so the two agree.
//!
//! Only element-wise operations on scalars: a traced graph holds no tensor of a fixed size,
//! so it runs at any image size.

use tch::Tensor;

use crate::photo::color::{
    F_EPSILON, F_INVERSE_THRESHOLD, F_OFFSET, F_SLOPE, RGB_FROM_XYZ, WHITE, XYZ_FROM_RGB,
};

/// sRGB companding undone: encoded 0..1 -> linear light.
fn linearise(encoded: &Tensor) -> Tensor {
    let low = encoded / 12.92;
    ((encoded + 0.055) / 1.055).pow_tensor_scalar(2.4).where_self(&encoded.gt(0.04045), &low)
}

/// L* (0..100) of the luminance Y (0..1).
fn l_of_y(y: &Tensor) -> Tensor {
    let fy = y.pow_tensor_scalar(1.0 / 3.0).where_self(&y.gt(F_EPSILON), &(y * F_SLOPE + F_OFFSET));
    fy * 116.0 - 16.0
}

/// L* (N x 1 x H x W) of sRGB images (N x 3 x H x W, 0..1).
pub fn rgb_to_l(rgb: &Tensor) -> Tensor {
    let linear = linearise(rgb);
    let [r, g, b] = XYZ_FROM_RGB[1];
    let y = linear.narrow(1, 0, 1) * r + linear.narrow(1, 1, 1) * g + linear.narrow(1, 2, 1) * b;
    l_of_y(&y)
}

/// L* of gray sRGB values in 0..1: a gray pixel's luminance Y is its linear value (the row
/// of skimage's RGB -> XYZ matrix for Y sums to 1).
pub fn gray_to_l(gray: &Tensor) -> Tensor {
    l_of_y(&linearise(gray))
}

/// sRGB in 0..1, N x 3 x H x W, of L* (N x 1 x H x W) and a*b* (N x 2 x H x W), as
/// skimage `lab2rgb`: a negative f(Z) is set to 0, out-of-gamut colours are clipped.
pub fn lab_to_rgb(l: &Tensor, ab: &Tensor) -> Tensor {
    let fy = (l + 16.0) / 116.0;
    let fx = ab.narrow(1, 0, 1) / 500.0 + &fy;
    let fz = (&fy - ab.narrow(1, 1, 1) / 200.0).clamp_min(0.0);
    let inverse = |f: &Tensor| {
        f.pow_tensor_scalar(3.0).where_self(&f.gt(F_INVERSE_THRESHOLD), &((f - F_OFFSET) / F_SLOPE))
    };
    let xyz = [inverse(&fx) * WHITE[0], inverse(&fy) * WHITE[1], inverse(&fz) * WHITE[2]];
    let channels: Vec<Tensor> = RGB_FROM_XYZ
        .iter()
        .map(|row| {
            let linear = &xyz[0] * row[0] + &xyz[1] * row[1] + &xyz[2] * row[2];
            let low = &linear * 12.92;
            let encoded = (linear.pow_tensor_scalar(1.0 / 2.4) * 1.055 - 0.055)
                .where_self(&linear.gt(0.0031308), &low);
            encoded.clamp(0.0, 1.0)
        })
        .collect();
    Tensor::cat(&channels, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::color;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).expect("f32 tensor")
    }

    #[test]
    fn gray_to_l_equals_the_per_pixel_conversion() {
        let gray: Vec<f32> = (0..=255u8).map(|v| f32::from(v) / 255.0).collect();
        let got = values(&gray_to_l(&Tensor::from_slice(&gray).view([1, 1, 16, 16])));
        for v in 0..=255u8 {
            let want = color::rgb8_to_lab([v, v, v])[0];
            let got = got[usize::from(v)];
            assert!((got - want).abs() < 1e-3, "gray {v}: L {got}, want {want}");
        }
    }

    #[test]
    fn rgb_to_l_equals_the_per_pixel_conversion() {
        let mut rgb = Vec::new();
        for r in (0..=255u8).step_by(15) {
            for g in (0..=255u8).step_by(15) {
                for b in (0..=255u8).step_by(15) {
                    rgb.push([r, g, b]);
                }
            }
        }
        let n = rgb.len() as i64;
        let planes: Vec<f32> =
            (0..3).flat_map(|k| rgb.iter().map(move |p| f32::from(p[k]) / 255.0)).collect();
        let got = values(&rgb_to_l(&Tensor::from_slice(&planes).view([1, 3, 1, n])));
        for (i, p) in rgb.iter().enumerate() {
            let want = color::rgb8_to_lab(*p)[0];
            assert!((got[i] - want).abs() < 1e-3, "{p:?}: L {}, want {want}", got[i]);
        }
    }

    #[test]
    fn lab_to_rgb_equals_the_per_pixel_conversion() {
        // L, a and b over their range and beyond the gamut (clipped alike).
        let mut lab = Vec::new();
        for l in (0..=100).step_by(10) {
            for a in (-110..=110).step_by(20) {
                for b in (-110..=110).step_by(20) {
                    lab.push([l as f32, a as f32, b as f32]);
                }
            }
        }
        let n = lab.len() as i64;
        let plane = |k: usize| Tensor::from_slice(&lab.iter().map(|p| p[k]).collect::<Vec<_>>());
        let l = plane(0).view([1, 1, 1, n]);
        let ab = Tensor::cat(&[plane(1).view([1, 1, 1, n]), plane(2).view([1, 1, 1, n])], 1);
        let rgb = values(&lab_to_rgb(&l, &ab));
        for (i, p) in lab.iter().enumerate() {
            let want = color::lab_to_rgb(*p);
            for (k, want) in want.iter().enumerate() {
                let got = rgb[k * lab.len() + i];
                assert!((got - want).abs() < 1e-4, "{p:?} channel {k}: {got}, want {want}");
            }
        }
    }
}
