//! The class check's model: EfficientNet-Lite0 with its ImageNet head, on libtorch (CPU),
//! giving each labelling thumbnail its top 5 of the 1,000 ImageNet classes.
//!
//! Weights and inputs are kept channels-last (NHWC strides), which libtorch's CPU
//! convolutions run faster for this network's depthwise layers (measured: about 1.3x).

use std::path::Path;

use tch::nn;
use tch::{Device, Kind, Tensor};

use super::classes::ClassNames;
use super::labels::{ClassScore, Classify, SIDE, TOP};
use crate::train::nets::efficientnet::{self, EfficientNetLite0, Input};

pub struct Classifier {
    /// Owns the network's variables.
    _vs: nn::VarStore,
    net: EfficientNetLite0,
    names: ClassNames,
}

impl Classifier {
    /// Loads the weights (blake3-checked) and the class names.
    pub fn load(
        weights: &Path,
        names: ClassNames,
    ) -> Result<Classifier, efficientnet::WeightsError> {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = EfficientNetLite0::new(&(vs.root() / "lite0"), Input::Rgb, true);
        efficientnet::load_imagenet(&net, &vs, "lite0", weights)?;
        for (_, mut variable) in vs.variables() {
            if variable.dim() == 4 {
                let nhwc = channels_last(&variable);
                tch::no_grad(|| variable.set_data(&nhwc));
            }
        }
        Ok(Classifier { _vs: vs, net, names })
    }
}

/// The same values with channels-last strides (tch 0.24 has no memory-format call).
fn channels_last(xs: &Tensor) -> Tensor {
    xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

impl Classify for Classifier {
    fn top5(&self, pixels: &[u8]) -> Vec<ClassScore> {
        let side = SIDE as i64;
        let input = Tensor::from_slice(pixels).view([1, 3, side, side]).to_kind(Kind::Float);
        let probabilities = tch::no_grad(|| {
            let input = channels_last(&efficientnet::normalise(&input));
            self.net.classify(&input).softmax(1, Kind::Float)
        });
        let (p, index) = probabilities.topk(TOP as i64, 1, true, true);
        let p: Vec<f32> = Vec::try_from(p.flatten(0, -1)).expect("f32 probabilities");
        let index: Vec<i64> = Vec::try_from(index.flatten(0, -1)).expect("i64 indices");
        p.iter()
            .zip(index)
            .map(|(&p, i)| ClassScore {
                index: i as u16,
                name: self.names.name(i as usize).to_owned(),
                p,
            })
            .collect()
    }
}
