//! The networks, one file each: `pix2pix` (the reference U-Net and PatchGAN), `efficientnet`
//! (EfficientNet-Lite0 with its ImageNet weights), `color_unet` (the pretrained recipe's
//! generator: that encoder under a U-Net decoder) and `critic` (the pretrained recipe's
//! spectral-norm PatchGAN).

pub mod ab_classes;
pub mod color_unet;
pub mod critic;
pub mod efficientnet;
pub mod pix2pix;

use tch::{Device, Tensor};

/// A batch's colours at each temperature asked for, from one forward pass; one, at
/// `None`, from a generator without a class head.
pub type Decodings = Vec<(Option<f64>, Tensor)>;

/// LeakyReLU slope of both discriminators and of the pix2pix encoder.
const LEAKY_SLOPE: f64 = 0.2;

/// LeakyReLU(0.2) as one op: PReLU with a fixed, untrained slope (tch's `leaky_relu` has
/// no slope argument, and `max(x, 0.2 x)` costs two ops and a temporary each way). The
/// slope is put on the network's device once, not copied there on every call.
#[derive(Debug)]
struct LeakyRelu {
    slope: Tensor,
}

impl LeakyRelu {
    fn on(device: Device) -> LeakyRelu {
        LeakyRelu { slope: Tensor::from_slice(&[LEAKY_SLOPE as f32]).to_device(device) }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.prelu(&self.slope)
    }
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
                Generator::Pretrained(Box::new(color_unet::ColorUnet::new(p, &config.pretrained)))
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

    /// Decodes colours at `vividness` from now on; `false` when the generator has no
    /// class head, hence no temperature.
    pub fn set_vividness(&mut self, vividness: f64) -> bool {
        match self {
            Generator::Pix2pix(_) => false,
            Generator::Pretrained(g) => g.set_vividness(vividness),
        }
    }

    /// B for a batch as one graph of tensor operations, what an exported TorchScript
    /// module records: [`Generator::infer`] itself for the pretrained recipe; for pix2pix,
    /// each image normalised by its own statistics and dropout drawn from the global
    /// generator, not reseeded per image.
    pub fn infer_batch(&self, a: &Tensor) -> Tensor {
        match self {
            Generator::Pix2pix(g) => g.infer_unseeded(a),
            Generator::Pretrained(g) => g.infer(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaky_relu_keeps_positives_and_scales_negatives_by_the_slope() {
        let xs = Tensor::from_slice(&[-2.0f32, -0.5, 0.0, 3.0]).view([1, 4]);
        let ys =
            Vec::<f32>::try_from(LeakyRelu::on(Device::Cpu).forward(&xs).flatten(0, -1)).unwrap();
        assert_eq!(ys, [-0.4, -0.1, 0.0, 3.0]);
    }
}
