//! The pix2pix networks, layer for layer as the reference (junyanz/pytorch-CycleGAN-and-
//! pix2pix `networks.py`, see shared docs/pix2pix.md §2.2-2.4): a U-Net generator with 8
//! downsamplings (`unet_256`) and a 70x70 PatchGAN discriminator.
//!
//! Faithfulness details that change the network if missed:
//! - skip connections carry the *activated* encoder output (the reference's LeakyReLU runs
//!   in place before the tensor is concatenated);
//! - with batch norm no convolution has a bias except the generator's last transposed
//!   convolution and the discriminator's first and last layers;
//! - weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0;
//! - LeakyReLU slope 0.2 (tch's `leaky_relu` is fixed at 0.01).

use serde::{Deserialize, Serialize};
use tch::Tensor;
use tch::nn::{self, ModuleT};

use super::LeakyRelu;
pub use crate::train::config::Norm;
use crate::train::config::TrainConfig;

/// The shape of both networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Channels of A (1: gray or L) and of the generated B (3: RGB, 2: ab).
    pub input_nc: i64,
    pub output_nc: i64,
    /// Filters in the generator's first and the discriminator's first layer (64).
    pub ngf: i64,
    pub ndf: i64,
    /// Discriminator conv layers with stride 2 (3: the 70x70 PatchGAN).
    pub n_layers: i64,
    pub norm: Norm,
    /// Dropout 0.5 in the `num_downs - 5` decoder blocks next to the innermost one.
    pub dropout: bool,
    /// Generator downsamplings, log2 of the crop: 8 takes 256 px to 1x1 (`unet_256`), 7
    /// is `unet_128`. At least 5.
    pub num_downs: usize,
}

impl NetConfig {
    /// The networks of a run: 1-channel A to B (3 channels RGB, or 2 channels ab).
    pub fn of(config: &TrainConfig) -> NetConfig {
        NetConfig {
            input_nc: 1,
            output_nc: config.color.channels() as i64,
            ngf: config.ngf,
            ndf: config.ndf,
            n_layers: config.n_layers,
            norm: config.norm,
            dropout: config.dropout,
            num_downs: config.crop.trailing_zeros() as usize,
        }
    }
}

/// The reference gives convolutions a bias only under instance norm.
fn conv_bias(norm: Norm) -> bool {
    norm == Norm::Instance
}

const INIT_STD: f64 = 0.02;
pub const DROPOUT: f64 = 0.5;

fn conv(p: nn::Path, c_in: i64, c_out: i64, stride: i64, bias: bool) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: 1,
        bias,
        ws_init: nn::Init::Randn { mean: 0.0, stdev: INIT_STD },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, 4, config)
}

fn conv_transpose(p: nn::Path, c_in: i64, c_out: i64, bias: bool) -> nn::ConvTranspose2D {
    let config = nn::ConvTransposeConfig {
        stride: 2,
        padding: 1,
        bias,
        ws_init: nn::Init::Randn { mean: 0.0, stdev: INIT_STD },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv_transpose2d(p, c_in, c_out, 4, config)
}

/// Whose statistics batch norm normalises by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statistics {
    /// The batch's in training, the running averages otherwise: `forward_t`.
    Batch,
    /// Each image's own, with the layer's scale and shift: batch norm in training mode at
    /// batch 1 (how the reference's test.py runs), for a batch of any size.
    Image,
}

/// A normalisation layer of `channels`, or nothing.
#[derive(Debug)]
enum NormLayer {
    Batch(nn::BatchNorm),
    Instance,
    None,
}

impl NormLayer {
    fn new(p: nn::Path, channels: i64, norm: Norm) -> NormLayer {
        match norm {
            Norm::Batch => {
                let config = nn::BatchNormConfig {
                    ws_init: nn::Init::Randn { mean: 1.0, stdev: INIT_STD },
                    bs_init: nn::Init::Const(0.0),
                    ..Default::default()
                };
                NormLayer::Batch(nn::batch_norm2d(p, channels, config))
            }
            Norm::Instance => NormLayer::Instance,
            Norm::None => NormLayer::None,
        }
    }

    fn forward(&self, xs: &Tensor, train: bool, statistics: Statistics) -> Tensor {
        match self {
            NormLayer::Batch(bn) if statistics == Statistics::Image => {
                let none = None::<&Tensor>;
                xs.instance_norm(bn.ws.as_ref(), bn.bs.as_ref(), none, none, true, 0.1, 1e-5, false)
            }
            NormLayer::Batch(bn) => xs.apply_t(bn, train),
            NormLayer::Instance => {
                let none = None::<Tensor>;
                xs.instance_norm(
                    none.as_ref(),
                    none.as_ref(),
                    none.as_ref(),
                    none.as_ref(),
                    true,
                    0.1,
                    1e-5,
                    false,
                )
            }
            NormLayer::None => xs.shallow_clone(),
        }
    }
}

/// One U-Net level: a down convolution and the matching up convolution.
#[derive(Debug)]
struct Level {
    down: nn::Conv2D,
    /// None on the outermost and innermost levels.
    down_norm: Option<NormLayer>,
    up: nn::ConvTranspose2D,
    /// None on the outermost level (tanh there instead).
    up_norm: Option<NormLayer>,
    dropout: bool,
}

/// The U-Net generator, levels from the outermost (image in, image out) inwards.
#[derive(Debug)]
pub struct Generator {
    levels: Vec<Level>,
    leaky: LeakyRelu,
}

impl Generator {
    pub fn new(p: &nn::Path, c: &NetConfig) -> Generator {
        let bias = conv_bias(c.norm);
        let ngf = c.ngf;
        // (down in, down out, up out) per level, outermost first.
        let mut shapes =
            vec![(c.input_nc, ngf, c.output_nc), (ngf, ngf * 2, ngf), (ngf * 2, ngf * 4, ngf * 2)];
        shapes.push((ngf * 4, ngf * 8, ngf * 4));
        shapes.extend(std::iter::repeat_n((ngf * 8, ngf * 8, ngf * 8), c.num_downs - 4));
        let innermost = c.num_downs - 1;
        let levels = shapes
            .into_iter()
            .enumerate()
            .map(|(i, (down_in, down_out, up_out))| {
                let q = p / format!("level{i}");
                let outermost = i == 0;
                // The innermost level's up path takes only the bottleneck; the others take
                // the bottleneck-side output concatenated with the skip (2x channels).
                let up_in = if i == innermost { down_out } else { down_out * 2 };
                Level {
                    down: conv(&q / "down", down_in, down_out, 2, bias),
                    down_norm: (!outermost && i != innermost)
                        .then(|| NormLayer::new(&q / "down_norm", down_out, c.norm)),
                    up: conv_transpose(&q / "up", up_in, up_out, outermost || bias),
                    up_norm: (!outermost).then(|| NormLayer::new(&q / "up_norm", up_out, c.norm)),
                    dropout: c.dropout && (4..innermost).contains(&i),
                }
            })
            .collect();
        Generator { levels, leaky: LeakyRelu::on(p.device()) }
    }

    fn level(&self, i: usize, xs: &Tensor, train: bool, statistics: Statistics) -> Tensor {
        let level = &self.levels[i];
        let outermost = i == 0;
        // The tensor the skip connection carries: activated, except at the image itself.
        let input = if outermost { xs.shallow_clone() } else { self.leaky.forward(xs) };
        let mut down = input.apply(&level.down);
        if let Some(norm) = &level.down_norm {
            down = norm.forward(&down, train, statistics);
        }
        let inner = match i + 1 < self.levels.len() {
            true => self.level(i + 1, &down, train, statistics),
            false => down,
        };
        let mut up = inner.relu().apply(&level.up);
        if outermost {
            return up.tanh();
        }
        if let Some(norm) = &level.up_norm {
            up = norm.forward(&up, train, statistics);
        }
        if level.dropout {
            up = up.dropout(DROPOUT, train);
        }
        Tensor::cat(&[input, up], 1)
    }
}

impl ModuleT for Generator {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.level(0, xs, train, Statistics::Batch)
    }
}

/// Seed of the dropout masks at inference, set before each image.
pub const INFERENCE_SEED: i64 = 0;

impl Generator {
    /// B for A as the reference's test.py computes it (no `--eval`): batch norm normalises
    /// each image by its own statistics and dropout stays on, seeded alike for every image
    /// so that the same input always gives the same output.
    pub fn infer(&self, a: &Tensor) -> Tensor {
        let images: Vec<Tensor> = (0..a.size()[0])
            .map(|k| {
                tch::manual_seed(INFERENCE_SEED);
                self.infer_unseeded(&a.narrow(0, k, 1))
            })
            .collect();
        Tensor::cat(&images, 0)
    }

    /// [`Generator::infer`] without the seeding, for a batch of any size: each image
    /// normalised by its own statistics, dropout drawing from the global generator (what
    /// an exported TorchScript module records).
    pub fn infer_unseeded(&self, a: &Tensor) -> Tensor {
        tch::no_grad(|| self.level(0, a, true, Statistics::Image))
    }
}

/// The PatchGAN discriminator: logits for overlapping 70x70 patches of cat(A, B).
#[derive(Debug)]
pub struct Discriminator {
    layers: Vec<(nn::Conv2D, Option<NormLayer>)>,
    leaky: LeakyRelu,
}

impl Discriminator {
    pub fn new(p: &nn::Path, c: &NetConfig) -> Discriminator {
        let bias = conv_bias(c.norm);
        let mut layers = vec![(conv(p / "conv0", c.input_nc + c.output_nc, c.ndf, 2, true), None)];
        let mut mult = 1;
        for n in 1..=c.n_layers {
            let previous = mult;
            mult = 2i64.pow(n as u32).min(8);
            let stride = if n == c.n_layers { 1 } else { 2 };
            let q = p / format!("conv{n}");
            let layer = conv(q, c.ndf * previous, c.ndf * mult, stride, bias);
            layers
                .push((layer, Some(NormLayer::new(p / format!("norm{n}"), c.ndf * mult, c.norm))));
        }
        let last = c.n_layers + 1;
        layers.push((conv(p / format!("conv{last}"), c.ndf * mult, 1, 1, true), None));
        Discriminator { layers, leaky: LeakyRelu::on(p.device()) }
    }
}

impl ModuleT for Discriminator {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.layers.len() - 1;
        let mut h = xs.shallow_clone();
        for (i, (conv, norm)) in self.layers.iter().enumerate() {
            h = h.apply(conv);
            if let Some(norm) = norm {
                h = norm.forward(&h, train, Statistics::Batch);
            }
            if i < last {
                h = self.leaky.forward(&h);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn reference(input_nc: i64, output_nc: i64) -> NetConfig {
        NetConfig {
            input_nc,
            output_nc,
            ngf: 64,
            ndf: 64,
            n_layers: 3,
            norm: Norm::Batch,
            dropout: true,
            num_downs: 8,
        }
    }

    fn parameters(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
    }

    #[test]
    fn full_size_parameter_counts_equal_the_reference() {
        for (input_nc, output_nc, g_count, d_count) in
            [(3, 3, 54_413_955, 2_768_705), (1, 2, 54_409_858, 2_765_633)]
        {
            let config = reference(input_nc, output_nc);
            let g_vs = nn::VarStore::new(Device::Cpu);
            Generator::new(&g_vs.root(), &config);
            let d_vs = nn::VarStore::new(Device::Cpu);
            Discriminator::new(&d_vs.root(), &config);
            assert_eq!(parameters(&g_vs), g_count, "G {input_nc}->{output_nc}");
            assert_eq!(parameters(&d_vs), d_count, "D {input_nc}->{output_nc}");
        }
    }

    #[test]
    fn inference_normalises_each_image_of_a_batch_as_a_batch_of_one() {
        // Dropout off, so that only the normalisation differs.
        let config = NetConfig { ngf: 8, ndf: 8, dropout: false, num_downs: 6, ..reference(1, 3) };
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Generator::new(&(vs.root() / "G"), &config);
        let a = Tensor::randn([3, 1, 64, 64], (Kind::Float, Device::Cpu));
        let batch = g.infer_unseeded(&a);
        for k in 0..3 {
            let one = tch::no_grad(|| g.forward_t(&a.narrow(0, k, 1), true));
            let diff = (batch.narrow(0, k, 1) - one).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "image {k}: {diff}");
        }
    }

    #[test]
    fn output_shapes() {
        let config = NetConfig { ngf: 8, ndf: 8, ..reference(1, 3) };
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Generator::new(&(vs.root() / "G"), &config);
        let d = Discriminator::new(&(vs.root() / "D"), &config);
        let a = Tensor::randn([2, 1, 256, 256], (Kind::Float, Device::Cpu));
        let fake = g.forward_t(&a, true);
        assert_eq!(fake.size(), [2, 3, 256, 256]);
        let max = fake.abs().max().double_value(&[]);
        assert!(max <= 1.0, "tanh output");
        let patches = d.forward_t(&Tensor::cat(&[a, fake], 1), true);
        assert_eq!(patches.size(), [2, 1, 30, 30], "30x30 logits at 256 px");
        // The config's rule for the PatchGAN's output side is the network's.
        for (crop, n_layers) in [(256, 3), (64, 3), (32, 3), (64, 4)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let d = Discriminator::new(&vs.root(), &NetConfig { n_layers, ..config });
            let side = crate::train::config::patch_side(crop, n_layers);
            let pair = Tensor::zeros([1, 4, crop as i64, crop as i64], (Kind::Float, Device::Cpu));
            assert_eq!(
                d.forward_t(&pair, false).size(),
                [1, 1, side, side],
                "{crop} px, {n_layers}"
            );
        }
    }
}
