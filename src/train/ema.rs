//! A moving average of the generator's weights (Yazıcı et al. 2019; StyleGAN2-ADA's
//! `G_ema`), used for validation and inference when `train.pretrained.ema` > 0. Trained
//! weights are averaged; batch-norm statistics are copied, not averaged. The decay warms
//! up as `min(decay, (1 + n) / (10 + n))` after n updates, so the random start fades fast.

use tch::{Tensor, nn};

pub struct Ema {
    decay: f64,
    pub updates: i64,
    /// (a live variable, its average, whether it is a trained weight).
    pairs: Vec<(Tensor, Tensor, bool)>,
}

impl Ema {
    /// Pairs every variable of `live` with the same-named one of `average`, copied over.
    pub fn new(live: &nn::VarStore, average: &nn::VarStore, decay: f64) -> Ema {
        let averages = average.variables();
        let weights = live.trainable_variables();
        let pairs = live
            .variables()
            .into_iter()
            .map(|(name, t)| {
                let mut shadow = averages[&name].shallow_clone();
                tch::no_grad(|| shadow.copy_(&t));
                let weight = weights.iter().any(|w| w.is_set_to(&t));
                (t, shadow, weight)
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
            for (live, shadow, weight) in &mut self.pairs {
                match (*weight, live.requires_grad()) {
                    (true, true) => {
                        let _ = shadow.lerp_(live, 1.0 - decay);
                    }
                    // A frozen weight does not change: its average stays what it was.
                    (true, false) => {}
                    // Batch-norm statistics are copied.
                    (false, _) => shadow.copy_(live),
                }
            }
        });
    }
}
