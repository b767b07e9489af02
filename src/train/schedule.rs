//! What each epoch trains with: its phase, its learning rates, whether the encoder is
//! frozen; and when a run ends. A run is measured in epochs, or by a budget in minutes.
//!
//! On a budget the schedule is the same curve, drawn over time: each epoch starts at the
//! point `1 + total x elapsed / budget` of its epoch-count schedule (a fractional epoch), and
//! the run ends at the first epoch boundary past the budget. Epoch counts in the config are
//! then proportions. (Wall time differs between runs, so a budget run is not repeatable to
//! the bit; one measured in epochs is.)

use std::time::Duration;

use super::config::{Recipe, TrainConfig};

/// What the generator is trained against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// L1 alone, no discriminator (the pretrained recipe's first phase).
    L1,
    /// GAN + lambda_l1 x L1.
    Gan,
}

/// The settings of one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPlan {
    pub epoch: usize,
    pub phase: Phase,
    /// Learning rate of the generator (its decoder, for the pretrained recipe).
    pub lr_g: f64,
    pub lr_d: f64,
    /// The pretrained encoder's learning rate; `None` while it is frozen.
    pub lr_encoder: Option<f64>,
}

/// How long a run lasts.
#[derive(Debug, Clone)]
pub struct Schedule {
    config: TrainConfig,
    budget: Option<Duration>,
}

impl Schedule {
    pub fn new(config: &TrainConfig) -> Schedule {
        let budget = config.max_minutes.map(|m| Duration::from_secs_f64(m * 60.0));
        Schedule { config: config.clone(), budget }
    }

    /// Epochs in all; on a budget, of the schedule the budget stretches.
    pub fn total_epochs(&self) -> usize {
        self.config.total_epochs()
    }

    pub fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// The plan of 1-based `epoch`, which starts after `elapsed` of the run.
    pub fn plan(&self, epoch: usize, elapsed: Duration) -> EpochPlan {
        let at = match self.budget {
            None => epoch as f64,
            Some(budget) => {
                1.0 + self.total_epochs() as f64 * (elapsed.as_secs_f64() / budget.as_secs_f64())
            }
        };
        let c = &self.config;
        match c.recipe {
            Recipe::Pix2pix => {
                let lr = c.lr_at(at);
                EpochPlan { epoch, phase: Phase::Gan, lr_g: lr, lr_d: lr, lr_encoder: None }
            }
            Recipe::Pretrained => {
                let p = &c.pretrained;
                let pretrain = p.pretrain_epochs as f64;
                let lr_encoder = (at > p.freeze_epochs as f64).then_some(p.encoder_lr);
                if at <= pretrain {
                    return EpochPlan {
                        epoch,
                        phase: Phase::L1,
                        lr_g: p.lr,
                        lr_d: 0.0,
                        lr_encoder,
                    };
                }
                let decay = gan_decay(at - pretrain, p.epochs as f64);
                EpochPlan {
                    epoch,
                    phase: Phase::Gan,
                    lr_g: p.lr * decay,
                    lr_d: p.lr_d * decay,
                    lr_encoder: lr_encoder.map(|lr| lr * decay),
                }
            }
        }
    }

    /// Whether `epoch`, ending after `elapsed` of the run, is the last.
    pub fn is_last(&self, epoch: usize, elapsed: Duration) -> bool {
        match self.budget {
            None => epoch >= self.total_epochs(),
            Some(budget) => elapsed >= budget,
        }
    }
}

/// The GAN phase's multiplier at its (1-based, maybe fractional) epoch `at` of `epochs`:
/// constant for the first half, then down linearly, the last epoch still training.
fn gan_decay(at: f64, epochs: f64) -> f64 {
    let half = (epochs / 2.0).floor();
    let constant = epochs - half;
    if at <= constant { 1.0 } else { ((epochs - at + 1.0) / (half + 1.0)).clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretrained() -> TrainConfig {
        let mut c = TrainConfig { recipe: Recipe::Pretrained, ..TrainConfig::default() };
        c.pretrained.pretrain_epochs = 4;
        c.pretrained.epochs = 4;
        c.pretrained.freeze_epochs = 2;
        c
    }

    #[test]
    fn the_pretrained_recipe_pretrains_with_l1_then_decays_through_the_gan_phase() {
        let schedule = Schedule::new(&pretrained());
        let plans: Vec<EpochPlan> = (1..=8).map(|e| schedule.plan(e, Duration::ZERO)).collect();
        let phases: Vec<Phase> = plans.iter().map(|p| p.phase).collect();
        assert_eq!(phases[..4], [Phase::L1; 4]);
        assert_eq!(phases[4..], [Phase::Gan; 4]);
        assert_eq!(plans[1].lr_encoder, None, "frozen for 2 epochs");
        assert_eq!(plans[2].lr_encoder, Some(2e-5));
        let lr: Vec<f64> = plans[4..].iter().map(|p| p.lr_g / 2e-4).collect();
        assert_eq!(lr[..2], [1.0, 1.0]);
        assert!((lr[2] - 2.0 / 3.0).abs() < 1e-12 && (lr[3] - 1.0 / 3.0).abs() < 1e-12, "{lr:?}");
        assert!(schedule.is_last(8, Duration::ZERO) && !schedule.is_last(7, Duration::ZERO));
    }

    #[test]
    fn a_budget_draws_the_same_schedule_over_time() {
        let config = TrainConfig { max_minutes: Some(8.0), ..pretrained() };
        let schedule = Schedule::new(&config);
        let minute = Duration::from_secs(60);
        // Half the budget gone: epoch 5 of 8 starts, the first of the GAN phase.
        let plan = schedule.plan(17, 4 * minute);
        assert_eq!(plan.phase, Phase::Gan);
        assert_eq!(plan.lr_g, 2e-4);
        assert_eq!(schedule.plan(3, minute).phase, Phase::L1);
        assert!(!schedule.is_last(40, 7 * minute));
        assert!(schedule.is_last(41, 8 * minute));
    }

    #[test]
    fn pix2pix_keeps_the_reference_policy_per_epoch() {
        let config = TrainConfig { epochs: 2, epochs_decay: 2, ..TrainConfig::default() };
        let schedule = Schedule::new(&config);
        let lrs: Vec<f64> =
            (1..=4).map(|e| schedule.plan(e, Duration::ZERO).lr_g / 0.0002).collect();
        for (lr, expected) in lrs.iter().zip([1.0, 2.0 / 3.0, 1.0 / 3.0, 0.0]) {
            assert!((lr - expected).abs() < 1e-12, "{lrs:?}");
        }
    }
}
