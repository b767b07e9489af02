//! The pretrained recipe's discriminator: a PatchGAN on cat(L, ab) as the reference's
//! (4x4 convolutions, stride 2 then 1, LeakyReLU 0.2, logits per patch; `n_layers` = 3
//! sees 70x70 patches), with spectral normalisation (Miyato et al. 2018) in place of
//! batch norm when asked (shared docs/colorizer.md §2, rank 6).
//!
//! Spectral norm divides each weight by its largest singular value, estimated by one
//! power-iteration step per training forward pass from persistent vectors `u` and `v`.
//! They are variables that are not trained, so checkpoints save and restore them.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use super::LeakyRelu;

const KERNEL: i64 = 4;
const INIT_STD: f64 = 0.02;
/// Keeps the normalisations away from a division by zero.
const EPS: f64 = 1e-12;
/// Power-iteration steps at construction, so that the first training steps already divide
/// by a close estimate of sigma (PyTorch's `spectral_norm` does the same 15).
const WARMUP_STEPS: usize = 15;

/// One 4x4 convolution with a bias, spectrally normalised or plain.
#[derive(Debug)]
struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    /// Left and right singular-vector estimates, when spectrally normalised.
    power: Option<(Tensor, Tensor)>,
}

fn unit(t: &Tensor) -> Tensor {
    t / (t.norm() + EPS)
}

impl Conv {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64, spectral: bool) -> Conv {
        let weight = p.var(
            "weight",
            &[c_out, c_in, KERNEL, KERNEL],
            nn::Init::Randn { mean: 0.0, stdev: INIT_STD },
        );
        let bias = p.var("bias", &[c_out], nn::Init::Const(0.0));
        let power = spectral.then(|| {
            let mut u = p.zeros_no_train("sn_u", &[c_out]);
            let mut v = p.zeros_no_train("sn_v", &[c_in * KERNEL * KERNEL]);
            tch::no_grad(|| {
                u.copy_(&unit(&Tensor::randn([c_out], (Kind::Float, u.device()))));
                v.copy_(&unit(&Tensor::randn([c_in * KERNEL * KERNEL], (Kind::Float, v.device()))));
            });
            (u, v)
        });
        let conv = Conv { weight, bias, stride, power };
        for _ in 0..WARMUP_STEPS {
            conv.refine_singular_vectors();
        }
        conv
    }

    /// One power-iteration step on u and v (a no-op without spectral norm).
    fn refine_singular_vectors(&self) {
        let Some((u, v)) = &self.power else { return };
        let matrix = self.weight.flatten(1, -1);
        tch::no_grad(|| {
            let new_v = unit(&matrix.transpose(0, 1).mv(u));
            let new_u = unit(&matrix.mv(&new_v));
            v.shallow_clone().copy_(&new_v);
            u.shallow_clone().copy_(&new_u);
        });
    }

    /// The weight to convolve with: W / sigma(W) under spectral norm. In training, one
    /// power-iteration step first refines u and v.
    fn weight(&self, train: bool) -> Tensor {
        let Some((u, v)) = &self.power else { return self.weight.shallow_clone() };
        if train {
            self.refine_singular_vectors();
        }
        let matrix = self.weight.flatten(1, -1);
        // Copies: the next forward pass refines u and v in place before this one's backward.
        let sigma = u.copy().dot(&matrix.mv(&v.copy()));
        &self.weight / sigma
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.conv2d(&self.weight(train), Some(&self.bias), [self.stride], [1], [1], 1)
    }
}

/// The PatchGAN: logits for overlapping patches of cat(L, ab).
#[derive(Debug)]
pub struct Critic {
    layers: Vec<Conv>,
    leaky: LeakyRelu,
}

impl Critic {
    /// `input_nc` channels in; `ndf` filters first, doubling to at most 8 ndf.
    pub fn new(p: &nn::Path, input_nc: i64, ndf: i64, n_layers: i64, spectral: bool) -> Critic {
        let mut layers = vec![Conv::new(p / "conv0", input_nc, ndf, 2, spectral)];
        let mut mult = 1;
        for n in 1..=n_layers {
            let previous = mult;
            mult = 2i64.pow(n as u32).min(8);
            let stride = if n == n_layers { 1 } else { 2 };
            layers.push(Conv::new(
                p / format!("conv{n}"),
                ndf * previous,
                ndf * mult,
                stride,
                spectral,
            ));
        }
        layers.push(Conv::new(p / format!("conv{}", n_layers + 1), ndf * mult, 1, 1, spectral));
        Critic { layers, leaky: LeakyRelu::on(p.device()) }
    }
}

impl ModuleT for Critic {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.layers.len() - 1;
        let mut h = xs.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h, train);
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
    use tch::Device;

    /// Every layer's largest singular value after spectral normalisation.
    fn largest_singular_values(critic: &Critic) -> Vec<f64> {
        let largest = |layer: &Conv| {
            let w = layer.weight(false).flatten(1, -1);
            let gram = w.mm(&w.transpose(0, 1));
            Tensor::linalg_eigvalsh(&gram, "L").max().double_value(&[]).sqrt()
        };
        critic.layers.iter().map(largest).collect()
    }

    // Several seeds: torch's generator is shared by tests running in parallel, so one seed
    // does not pin the weights, and power iteration converges at a rate set by them.
    #[test]
    fn spectral_norm_brings_the_largest_singular_value_to_one() {
        for seed in 0..8 {
            tch::manual_seed(seed);
            let vs = nn::VarStore::new(Device::Cpu);
            let critic = Critic::new(&vs.root(), 3, 8, 3, true);
            for (layer, largest) in largest_singular_values(&critic).iter().enumerate() {
                assert!(
                    (largest - 1.0).abs() < 0.1,
                    "seed {seed}, layer {layer}, at construction: {largest}"
                );
            }
            let xs = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
            for _ in 0..200 {
                let _ = critic.forward_t(&xs, true);
            }
            for (layer, largest) in largest_singular_values(&critic).iter().enumerate() {
                assert!((largest - 1.0).abs() < 0.001, "seed {seed}, layer {layer}: {largest}");
            }
            let patches = critic.forward_t(&xs, false);
            assert_eq!(patches.size(), [2, 1, 6, 6], "6x6 logits at 64 px");
        }
    }
}
