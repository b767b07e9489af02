//! The pretrained recipe's generator: L in, ab out, through a U-Net whose encoder is
//! EfficientNet-Lite0 with its ImageNet weights (shared docs/colorizer.md §2, rank 2).
//!
//! ```text
//! L ─► gray sRGB ─► Lite0 ─► skips at strides 2, 4, 8, 16 ─────────────┐
//!                      └──► head (1280 ch, stride 32) ─► 1x1 ─► up+cat ─► ... ─► ab/2 ─► ab
//! ```
//! - Input: the L channel is turned into the sRGB gray value of (L, 0, 0) and fed to a
//!   one-channel stem whose kernels are the RGB stem's summed over RGB: exact for a gray
//!   photo, since Lite0's normalisation is the same for every channel.
//! - Decoder: per skip, nearest 2x upsampling, concatenation, two 3x3 conv + batch norm +
//!   ReLU; it stops at stride 2, where a 3x3 conv and tanh give ab, upsampled bilinearly
//!   to the input size. Colour is low-frequency (Zhang et al. 2016 predict at a quarter of
//!   the resolution), and the full-resolution stage would cost as much as the encoder.
//! - No dropout (Shariatnia's U-Net had none). The encoder's batch norm keeps its ImageNet
//!   statistics; the decoder's learns its own.
//! - Or, with the class head (`head = "classes"`), a 1x1 conv at stride 4 gives logits over
//!   the ab cells ([`AbClasses`]), decoded by their annealed mean at the run's vividness;
//!   the rebalancing weights of its loss live beside it, so that a checkpoint holds them.

use tch::Tensor;
use tch::nn::{self, ModuleT};

use super::Decodings;
use super::ab_classes::AbClasses;
use super::efficientnet::{self, EfficientNetLite0, HEAD_CHANNELS, Input, SKIP_CHANNELS};
use crate::train::config::{ColorHead, PretrainedConfig};

/// Channels of the decoder blocks, deepest first (they meet the skips at strides 16, 8, 4
/// and 2).
const DECODER: [i64; 4] = [128, 64, 32, 16];
/// Channels the head is reduced to before the first decoder block.
const BOTTLENECK: i64 = 256;
/// The class head's features are scaled up by this before its 1x1 conv: Adam moves each
/// weight by about the learning rate a step, and at 1 the logits (which must span several
/// units to pick a colour) moved too slowly for a 15-minute run.
const LOGIT_GAIN: f64 = 16.0;
/// The class head predicts at a quarter of the side (as Zhang et al. do): a stride-2 head
/// made the pretrained recipe's step three times slower (its loss and decode touch every
/// cell of every pixel) for colour, which is low-frequency anyway.
pub const CLASS_STRIDE: i64 = 4;
/// The input side must be a multiple of the encoder's stride.
pub const STRIDE: i64 = 32;

fn conv3(p: nn::Path, c_in: i64, c_out: i64) -> nn::Conv2D {
    nn::conv2d(p, c_in, c_out, 3, nn::ConvConfig { padding: 1, bias: false, ..Default::default() })
}

fn batch_norm(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), ..Default::default() };
    nn::batch_norm2d(p, channels, config)
}

/// Two 3x3 conv + batch norm + ReLU.
#[derive(Debug)]
struct DecoderBlock {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
}

impl DecoderBlock {
    fn new(p: nn::Path, c_in: i64, c_out: i64) -> DecoderBlock {
        DecoderBlock {
            conv1: conv3(&p / "conv1", c_in, c_out),
            bn1: batch_norm(&p / "bn1", c_out),
            conv2: conv3(&p / "conv2", c_out, c_out),
            bn2: batch_norm(&p / "bn2", c_out),
        }
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let h = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        h.apply(&self.conv2).apply_t(&self.bn2, train).relu()
    }
}

/// The generator: [N, 1, S, S] of L/50 - 1 to [N, 2, S, S] of ab/110, S a multiple of 32.
#[derive(Debug)]
pub struct ColorUnet {
    pub encoder: EfficientNetLite0,
    bottleneck: nn::Conv2D,
    bottleneck_bn: nn::BatchNorm,
    decoder: Vec<DecoderBlock>,
    out: Head,
}

/// The last layer: ab itself, or a distribution over the ab cells.
#[derive(Debug)]
enum Head {
    Regression(nn::Conv2D),
    Classes(ClassHead),
}

#[derive(Debug)]
pub struct ClassHead {
    pub logits: nn::Conv2D,
    pub classes: AbClasses,
    /// Each class's weight in the loss (rebalancing), saved with the networks.
    pub weights: Tensor,
    /// The annealed mean's temperature.
    pub vividness: f64,
}

/// What the generator predicts for a batch: ab, and the logits they were decoded from
/// when the head predicts classes (at a quarter of the side).
pub struct Prediction {
    pub ab: Tensor,
    pub logits: Option<Tensor>,
}

impl ClassHead {
    fn logits_of(&self, h: &Tensor) -> Tensor {
        (h * LOGIT_GAIN).apply(&self.logits)
    }
}

/// ab predicted at 1/`stride` of the side, bilinearly up to the input's.
fn to_input_size(ab: Tensor, stride: i64) -> Tensor {
    let by = stride as f64;
    ab.upsample_bilinear2d_vec(None::<&[i64]>, false, [by, by])
}

/// Name of the encoder's sub-path, under the generator's.
pub const ENCODER: &str = "encoder";

impl ColorUnet {
    /// The networks, with an untrained encoder: [`efficientnet::load_imagenet`] fills it.
    pub fn new(p: &nn::Path, config: &PretrainedConfig) -> ColorUnet {
        let bottleneck = nn::conv2d(
            p / "bottleneck",
            HEAD_CHANNELS,
            BOTTLENECK,
            1,
            nn::ConvConfig { bias: false, ..Default::default() },
        );
        let mut decoder = Vec::new();
        let mut c_in = BOTTLENECK;
        // The class head reads the stride-4 stage: the stride-2 block is not built.
        let blocks = match config.head {
            ColorHead::Regression => DECODER.len(),
            ColorHead::Classes => DECODER.len() - 1,
        };
        let stages = DECODER.iter().zip(SKIP_CHANNELS.iter().rev()).take(blocks);
        for (i, (&c_out, &skip)) in stages.enumerate() {
            decoder.push(DecoderBlock::new(p / format!("up{i}"), c_in + skip, c_out));
            c_in = c_out;
        }
        let out = match config.head {
            // Zero weights: an untrained generator predicts a = b = 0, the do-nothing
            // colorizer, instead of random saturated colour (a fresh class head predicts
            // the training colours' distribution: the recipe sets its bias).
            ColorHead::Regression => Head::Regression(nn::conv2d(
                p / "out",
                c_in,
                2,
                3,
                nn::ConvConfig { padding: 1, ws_init: nn::Init::Const(0.0), ..Default::default() },
            )),
            ColorHead::Classes => {
                let classes = AbClasses::new(p.device());
                let zero = nn::ConvConfig { ws_init: nn::Init::Const(0.0), ..Default::default() };
                Head::Classes(ClassHead {
                    logits: nn::conv2d(p / "classes", c_in, classes.count(), 1, zero),
                    weights: p.ones_no_train("class_weights", &[classes.count()]),
                    classes,
                    vividness: config.vividness,
                })
            }
        };
        ColorUnet {
            encoder: EfficientNetLite0::new(&(p / ENCODER), Input::Gray, false),
            bottleneck,
            bottleneck_bn: batch_norm(p / "bottleneck_bn", BOTTLENECK),
            decoder,
            out,
        }
    }

    /// The encoder's input for L/50 - 1: the sRGB gray value of (L, 0, 0), normalised as
    /// ImageNet training did. Inverse of skimage's f(t) for Y, then sRGB companding.
    fn encoder_input(a: &Tensor) -> Tensor {
        let fy = (a + 1.0) * (50.0 / 116.0) + 16.0 / 116.0;
        let cubic = fy.pow_tensor_scalar(3.0);
        let linear = (&fy - 16.0 / 116.0) / 7.787;
        let y = cubic.where_self(&fy.gt(0.2068966), &linear).clamp(0.0, 1.0);
        let gamma = y.pow_tensor_scalar(1.0 / 2.4) * 1.055 - 0.055;
        let srgb = gamma.where_self(&y.gt(0.0031308), &(&y * 12.92));
        efficientnet::normalise(&(srgb * 255.0))
    }
}

impl ColorUnet {
    /// ab for a batch (and the class head's logits).
    pub fn predict(&self, a: &Tensor, train: bool) -> Prediction {
        let h = self.decode(a, train);
        match &self.out {
            Head::Regression(out) => {
                Prediction { ab: to_input_size(h.apply(out).tanh(), 2), logits: None }
            }
            Head::Classes(head) => {
                let logits = head.logits_of(&h);
                let ab = head.classes.annealed_mean(&logits, head.vividness);
                Prediction { ab: to_input_size(ab, CLASS_STRIDE), logits: Some(logits) }
            }
        }
    }

    /// ab for a batch as inference runs it, decoded at each of `temperatures` from one
    /// forward pass: one per temperature with a class head, else the one ab.
    pub fn infer_each(&self, a: &Tensor, temperatures: &[f64]) -> Decodings {
        tch::no_grad(|| {
            let h = self.decode(a, false);
            match &self.out {
                Head::Regression(out) => vec![(None, to_input_size(h.apply(out).tanh(), 2))],
                Head::Classes(head) => {
                    let logits = head.logits_of(&h);
                    let at = |t: f64| {
                        to_input_size(head.classes.annealed_mean(&logits, t), CLASS_STRIDE)
                    };
                    temperatures.iter().map(|&t| (Some(t), at(t))).collect()
                }
            }
        })
    }

    /// The decoder's last stage for a batch: stride 2 (regression) or 4 (class head).
    fn decode(&self, a: &Tensor, train: bool) -> Tensor {
        let input = Self::encoder_input(a);
        let features = if self.encoder.trains() {
            self.encoder.features(&input)
        } else {
            tch::no_grad(|| self.encoder.features(&input))
        };
        let mut h =
            features.head.apply(&self.bottleneck).apply_t(&self.bottleneck_bn, train).relu();
        // Every stage halves the side exactly (the input is a multiple of 32), so the
        // upsampling is by a factor of 2, not to a size read off a tensor: a traced
        // TorchScript module then works at any input size, not only the traced one.
        for (block, skip) in self.decoder.iter().zip(features.skips.iter().rev()) {
            h = h.upsample_nearest2d_vec(None::<&[i64]>, [2.0, 2.0]);
            h = block.forward(&Tensor::cat(&[&h, skip], 1), train);
        }
        h
    }

    /// The class head, when the generator has one.
    pub fn class_head(&self) -> Option<&ClassHead> {
        match &self.out {
            Head::Classes(head) => Some(head),
            Head::Regression(_) => None,
        }
    }

    /// Decodes the class head's colours at `vividness` from now on; `false` when the
    /// generator predicts ab directly and has no temperature to set.
    pub fn set_vividness(&mut self, vividness: f64) -> bool {
        match &mut self.out {
            Head::Classes(head) => {
                head.vividness = vividness;
                true
            }
            Head::Regression(_) => false,
        }
    }

    /// ab for a batch, as inference runs it: eval mode, no gradients.
    pub fn infer(&self, a: &Tensor) -> Tensor {
        tch::no_grad(|| self.predict(a, false).ab)
    }
}

impl ModuleT for ColorUnet {
    fn forward_t(&self, a: &Tensor, train: bool) -> Tensor {
        self.predict(a, train).ab
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn ab_comes_out_at_the_input_size() {
        for head in [ColorHead::Regression, ColorHead::Classes] {
            let vs = nn::VarStore::new(Device::Cpu);
            let config = PretrainedConfig { head, ..PretrainedConfig::default() };
            let g = ColorUnet::new(&vs.root(), &config);
            for side in [64, 128, 256] {
                let a = Tensor::rand([2, 1, side, side], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
                let prediction = g.predict(&a, true);
                assert_eq!(prediction.ab.size(), [2, 2, side, side]);
                assert!(prediction.ab.abs().max().double_value(&[]) <= 1.0, "ab in range");
                if let Some(logits) = prediction.logits {
                    assert_eq!(logits.size()[2..], [side / CLASS_STRIDE, side / CLASS_STRIDE]);
                }
            }
        }
    }
}
