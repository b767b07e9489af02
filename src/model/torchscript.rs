//! `colorizer.pt`: a run's whole colorization path traced by libtorch into a TorchScript
//! module, so that PyTorch (`torch.jit.load`) or libtorch anywhere runs it with nothing of
//! ours. `forward` takes gray images N x 1 x H x W in 0..1 (H and W multiples of the
//! network's stride) and returns RGB N x 3 x H x W in 0..1.
//!
//! The path, as `colorize` runs it on a gray photo at the network's size:
//! - RGB runs: A = 2 gray - 1, RGB = (B + 1) / 2;
//! - Lab runs: L* of the gray sRGB value, A = L*/50 - 1, a*b* = 110 B, then L*a*b* -> sRGB.
//!
//! The generator's weights are constants of the graph.

use std::path::Path;

use tch::{CModule, Kind, Tensor};

use crate::eval::color;
use crate::eval::colorizer::Colorizer;
use crate::train::config::ColorSpace;
use crate::train::error::TrainError;

/// RGB (N x 3 x H x W, 0..1) for gray images (N x 1 x H x W, 0..1): the function traced.
pub fn colorize(colorizer: &Colorizer, gray: &Tensor) -> Tensor {
    match colorizer.color {
        ColorSpace::Rgb => {
            let b = colorizer.generate_batch(&(gray * 2.0 - 1.0));
            ((b + 1.0) / 2.0).clamp(0.0, 1.0)
        }
        ColorSpace::Lab => {
            let l = color::gray_to_l(gray);
            let ab = colorizer.generate_batch(&(&l / 50.0 - 1.0)) * 110.0;
            color::lab_to_rgb(&l, &ab)
        }
    }
}

/// Traces [`colorize`] on one image of the run's crop and saves the module to `path`.
pub fn save(colorizer: &Colorizer, path: &Path) -> Result<(), TrainError> {
    let side = colorizer.crop as i64;
    let example = Tensor::rand([1, 1, side, side], (Kind::Float, colorizer.device()));
    let mut traced = |inputs: &[Tensor]| vec![colorize(colorizer, &inputs[0])];
    let module = CModule::create_by_tracing("Colorizer", "forward", &[example], &mut traced)?;
    module.save(path)?;
    Ok(())
}
