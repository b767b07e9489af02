//! A moving average of the generator's weights (Yazıcı et al. 2019; StyleGAN2-ADA's
//! `G_ema`), used for validation and inference when `train.pretrained.ema` > 0. Trained
//! weights are averaged; batch-norm statistics are copied, not averaged. The decay warms
//! up as `min(decay, (1 + n) / (10 + n))` after n updates, so the random start fades fast.

use tch::{Tensor, nn};

pub struct Ema {
    decay: f64,
    pub updates: i64,
    /// (a live variable, its average).
    pairs: Vec<(Tensor, Tensor)>,
}

impl Ema {
    /// Pairs every variable of `live` with the same-named one of `average`, copied over.
    pub fn new(live: &nn::VarStore, average: &nn::VarStore, decay: f64) -> Ema {
        let averages = average.variables();
        let pairs = live
            .variables()
            .into_iter()
            .map(|(name, t)| {
                let mut shadow = averages[&name].shallow_clone();
                tch::no_grad(|| shadow.copy_(&t));
                (t, shadow)
            })
            .collect();
        Ema { decay, updates: 0, pairs }
    }

    /// Moves the average towards the live weights.
    pub fn update(&mut self) {
        let n = self.updates as f64;
        let decay = self.decay.min((1.0 + n) / (10.0 + n));
        self.updates += 1;
        tch::no_grad(|| {
            for (live, shadow) in &mut self.pairs {
                // Frozen weights and batch-norm statistics track no gradient: copied.
                if live.requires_grad() {
                    let _ = shadow.lerp_(live, 1.0 - decay);
                } else {
                    shadow.copy_(live);
                }
            }
        });
    }
}
