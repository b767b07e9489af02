//! DiffAugment (Zhao et al. 2020, shared docs/colorizer.md §2 rank 5): the discriminator
//! sees every pair, real and generated, through the same random translation and cutout,
//! in its own step and in the generator's. The transforms are differentiable, so the
//! generator's gradient passes through them. No colour transform: colour is what the
//! discriminator judges.
//!
//! One draw of parameters per training step is applied to the real and to the fake batch
//! alike (sample k of both gets the same shift and hole), to L and ab alike.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::config::Augment;

/// Largest shift, as a fraction of the side (DiffAugment's `ratio=0.125`).
const TRANSLATION: f64 = 0.125;
/// Side of the cutout square, as a fraction of the side (DiffAugment's `ratio=0.5`).
const CUTOUT: f64 = 0.5;

/// The transform of one sample: its shift and its hole's top-left corner.
#[derive(Debug, Clone, Copy)]
struct SampleDraw {
    shift: (i64, i64),
    hole: Option<(i64, i64)>,
}

/// The draw of one step, to apply to any batch of the same shape.
pub struct Draw {
    samples: Vec<SampleDraw>,
    translate: bool,
    hole_side: i64,
}

/// Random parameters, seeded per epoch so a resumed run draws the same ones.
pub struct DiffAugment {
    policy: Vec<Augment>,
    rng: ChaCha8Rng,
}

impl DiffAugment {
    pub fn new(policy: &[Augment]) -> DiffAugment {
        DiffAugment { policy: policy.to_vec(), rng: ChaCha8Rng::seed_from_u64(0) }
    }

    pub fn is_off(&self) -> bool {
        self.policy.is_empty()
    }

    /// Seeds the stream for one step (see `trainer::step_seed`).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Parameters for a batch of `n` samples of `side` x `side`.
    pub fn draw(&mut self, n: usize, side: i64) -> Draw {
        let translate = self.policy.contains(&Augment::Translation);
        let cutout = self.policy.contains(&Augment::Cutout);
        let reach = (side as f64 * TRANSLATION).round() as i64;
        let hole_side = (side as f64 * CUTOUT).round() as i64;
        let samples = (0..n)
            .map(|_| SampleDraw {
                shift: if translate {
                    (self.rng.random_range(-reach..=reach), self.rng.random_range(-reach..=reach))
                } else {
                    (0, 0)
                },
                hole: cutout.then(|| {
                    // The hole's centre anywhere in the image, as DiffAugment; clipped.
                    let corner = |rng: &mut ChaCha8Rng| rng.random_range(0..side) - hole_side / 2;
                    (corner(&mut self.rng), corner(&mut self.rng))
                }),
            })
            .collect();
        Draw { samples, translate, hole_side }
    }
}

impl Draw {
    /// The batch [N, C, S, S] seen through this draw.
    pub fn apply(&self, xs: &Tensor) -> Tensor {
        let size = xs.size();
        let side = size[2];
        let reach = if self.translate { (side as f64 * TRANSLATION).round() as i64 } else { 0 };
        let padded = if reach > 0 { xs.constant_pad_nd([reach; 4]) } else { xs.shallow_clone() };
        let samples: Vec<Tensor> =
            self.samples
                .iter()
                .enumerate()
                .map(|(k, draw)| {
                    let (dx, dy) = draw.shift;
                    let mut sample = padded
                        .narrow(0, k as i64, 1)
                        .narrow(2, reach - dy, side)
                        .narrow(3, reach - dx, side);
                    if let Some((x0, y0)) = draw.hole {
                        let (x1, y1) =
                            ((x0 + self.hole_side).min(side), (y0 + self.hole_side).min(side));
                        let (x0, y0) = (x0.max(0), y0.max(0));
                        let keep = Tensor::ones([1, 1, side, side], (xs.kind(), xs.device()));
                        let _ = keep.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).fill_(0.0);
                        sample *= keep;
                    }
                    sample
                })
                .collect();
        Tensor::cat(&samples, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn real_and_fake_get_the_same_shift_and_hole() {
        let mut augment = DiffAugment::new(&[Augment::Translation, Augment::Cutout]);
        augment.reseed(7);
        let real = Tensor::rand([3, 3, 32, 32], (Kind::Float, Device::Cpu)) + 1.0;
        let fake = &real * 2.0;
        let draw = augment.draw(3, 32);
        let (r, f) = (draw.apply(&real), draw.apply(&fake));
        assert_eq!(r.size(), [3, 3, 32, 32]);
        assert!(f.allclose(&(&r * 2.0), 1e-6, 1e-6, false), "one transform for both");
        // The hole and the shift's border are zero; half the side squared at most.
        let zeros = r.eq(0.0).to_kind(Kind::Float).sum(Kind::Float).double_value(&[]);
        assert!(zeros > 0.0 && zeros < 3.0 * 3.0 * 32.0 * 32.0 * 0.6, "{zeros}");
    }
}
