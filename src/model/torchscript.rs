//! `colorizer.pt`: a run's whole colorization path ([`Colorizer::colorize`]) traced by
//! libtorch into a TorchScript module, so that PyTorch (`torch.jit.load`) or libtorch
//! anywhere runs it with nothing of ours. `forward` takes gray photos N x 1 x H x W in 0..1,
//! of any size, and returns RGB N x 3 x H x W in 0..1: what `colorize` writes for them.
//!
//! The generator's weights are constants of the graph.

use std::path::Path;

use tch::{CModule, Kind, Tensor};

use crate::eval::colorizer::Colorizer;
use crate::train::error::TrainError;

/// Traces the path on one gray image of the run's crop and saves the module to `path`.
pub fn save(colorizer: &Colorizer, path: &Path) -> Result<(), TrainError> {
    let side = colorizer.crop as i64;
    let example = Tensor::rand([1, 1, side, side], (Kind::Float, colorizer.device()));
    let mut traced = |inputs: &[Tensor]| vec![colorizer.colorize(&inputs[0])];
    let module = CModule::create_by_tracing("Colorizer", "forward", &[example], &mut traced)?;
    module.save(path)?;
    Ok(())
}
