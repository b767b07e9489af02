//! The networks, one file each: `pix2pix` (the reference U-Net and PatchGAN), `efficientnet`
//! (EfficientNet-Lite0 with its ImageNet weights), `color_unet` (the pretrained recipe's
//! generator: that encoder under a U-Net decoder) and `critic` (the pretrained recipe's
//! spectral-norm PatchGAN).

pub mod color_unet;
pub mod critic;
pub mod efficientnet;
pub mod pix2pix;

use tch::Tensor;

/// LeakyReLU slope of both discriminators and of the pix2pix encoder.
const LEAKY_SLOPE: f64 = 0.2;

/// LeakyReLU(0.2) as one op: PReLU with a fixed, untrained slope (tch's `leaky_relu` has
/// no slope argument, and `max(x, 0.2 x)` costs two ops and a temporary each way).
fn leaky_relu(xs: &Tensor) -> Tensor {
    let slope = Tensor::from_slice(&[LEAKY_SLOPE as f32]).to_device(xs.device());
    xs.prelu(&slope)
}

/// The generator of either recipe, as inference builds and runs it.
pub enum Generator {
    Pix2pix(pix2pix::Generator),
    Pretrained(Box<color_unet::ColorUnet>),
}

impl Generator {
    /// The untrained generator a run of `config` trains, under `p`.
    pub fn new(p: &tch::nn::Path, config: &crate::train::config::TrainConfig) -> Generator {
        match config.recipe {
            crate::train::config::Recipe::Pix2pix => {
                Generator::Pix2pix(pix2pix::Generator::new(p, &pix2pix::NetConfig::of(config)))
            }
            crate::train::config::Recipe::Pretrained => {
                Generator::Pretrained(Box::new(color_unet::ColorUnet::new(p)))
            }
        }
    }

    /// B for A, as each recipe runs inference (no gradients).
    pub fn infer(&self, a: &Tensor) -> Tensor {
        match self {
            Generator::Pix2pix(g) => g.infer(a),
            Generator::Pretrained(g) => g.infer(a),
        }
    }
}
