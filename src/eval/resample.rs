//! Resampling on tensors for the colorization path: a gray photo down to the network's
//! side, the network's colours back up to the photo's size. No size is read off a tensor
//! into a number, so a graph traced through them (an exported `colorizer.pt`) runs at any
//! image size.

use tch::{Kind, Tensor};

/// `images` (N x C x H x W) resized to `side` x `side`: antialiased bicubic (a = -0.5,
/// Pillow's BICUBIC), in either direction.
pub fn to_square(images: &Tensor, side: i64) -> Tensor {
    images.internal_upsample_bicubic2d_aa([side, side], false, None, None)
}

/// `small` (N x C x h x w) bilinearly resized to the height and width of `like`
/// (N x 1 x H x W), as `interpolate(mode="bilinear", align_corners=False)` resizes: one
/// axis, then the other. The sample positions are computed from a row and a column of
/// `like` itself, which is how a trace keeps the output size free.
pub fn to_size_of(small: &Tensor, like: &Tensor) -> Tensor {
    let row = like.select(0, 0).select(0, 0);
    let along_width = along(small, 3, &row.select(0, 0));
    along(&along_width, 2, &row.select(1, 0))
}

/// `t` resized along `dim` to the length of `target` (a 1-D tensor): each output pixel
/// takes the two input pixels around its centre's position, weighted by distance.
fn along(t: &Tensor, dim: i64, target: &Tensor) -> Tensor {
    let input = t.size()[dim as usize];
    let index = target.ones_like().to_kind(Kind::Float).cumsum(0, Kind::Float);
    // Output pixel i (1-based) of n has its centre at (i - 0.5) / n of the axis, which is
    // input position (i - 0.5) input / n - 0.5; positions before the first centre clamp.
    let position = ((&index - 0.5) * (input as f64) / index.max() - 0.5).clamp_min(0.0);
    let low = position.floor();
    let weight = (&position - &low).view(shape_along(t.dim(), dim).as_slice());
    let low = low.to_kind(Kind::Int64).clamp_max(input - 1);
    let high = (&low + 1).clamp_max(input - 1);
    let (a, b) = (t.index_select(dim, &low), t.index_select(dim, &high));
    &a + (b - &a) * weight
}

/// [1, .., -1, .., 1]: a 1-D tensor viewed to broadcast along `dim` of a `dims`-D one.
fn shape_along(dims: usize, dim: i64) -> Vec<i64> {
    (0..dims as i64).map(|d| if d == dim { -1 } else { 1 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_size_of_matches_interpolate_at_any_size() {
        let small = Tensor::rand([2, 2, 8, 8], (Kind::Float, tch::Device::Cpu));
        for (h, w) in [(8, 8), (37, 20), (64, 96), (5, 3)] {
            let like = Tensor::zeros([2, 1, h, w], (Kind::Float, tch::Device::Cpu));
            let got = to_size_of(&small, &like);
            let want = small.upsample_bilinear2d([h, w], false, None, None);
            assert_eq!(got.size(), [2, 2, h, w]);
            let error = f64::try_from((got - want).abs().max()).unwrap();
            assert!(error < 1e-5, "{h}x{w}: off by {error}");
        }
    }

    #[test]
    fn to_square_keeps_a_flat_image_flat() {
        let flat = Tensor::full([1, 1, 50, 70], 0.25, (Kind::Float, tch::Device::Cpu));
        let small = to_square(&flat, 16);
        assert_eq!(small.size(), [1, 1, 16, 16]);
        let error = f64::try_from((small - 0.25).abs().max()).unwrap();
        assert!(error < 1e-6, "off by {error}");
    }
}
