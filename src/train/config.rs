//! `[train]` in pipeline.toml: the reference recipe by default (shared docs/pix2pix.md).

use serde::{Deserialize, Serialize};

/// Normalisation layers, as the reference's `--norm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// BatchNorm2d, affine, running statistics (pix2pix's choice).
    Batch,
    /// InstanceNorm2d without affine parameters or running statistics.
    Instance,
    None,
}

/// The adversarial loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GanMode {
    /// BCE with logits (pix2pix).
    Vanilla,
    /// Least squares.
    Lsgan,
}

/// Every hyper-parameter of a run; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub ngf: i64,
    pub ndf: i64,
    pub n_layers: i64,
    pub norm: Norm,
    pub dropout: bool,
    pub gan_mode: GanMode,
    pub lambda_l1: f64,
    pub lr: f64,
    pub betas: (f64, f64),
    /// Epochs at the full learning rate, then `epochs_decay` decaying linearly to 0.
    pub epochs: usize,
    pub epochs_decay: usize,
    pub batch_size: usize,
    /// Side of the random training crop (<= the dataset's stored size).
    pub crop: usize,
    pub flip: bool,
    pub seed: u64,
    /// Checkpoint every this many epochs (and at the end); keep this many, plus the best.
    pub checkpoint_every: usize,
    pub keep_last: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            ngf: 64,
            ndf: 64,
            n_layers: 3,
            norm: Norm::Batch,
            dropout: true,
            gan_mode: GanMode::Vanilla,
            lambda_l1: 100.0,
            lr: 0.0002,
            betas: (0.5, 0.999),
            epochs: 100,
            epochs_decay: 100,
            batch_size: 1,
            crop: 256,
            flip: true,
            seed: 0,
            checkpoint_every: 5,
            keep_last: 3,
        }
    }
}

impl TrainConfig {
    pub fn total_epochs(&self) -> usize {
        self.epochs + self.epochs_decay
    }

    /// The learning rate during 1-based `epoch`, as the reference's linear policy stepped at
    /// the start of each epoch: constant, then down to 0 in the last epoch.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let over = (epoch + 1).saturating_sub(self.epochs) as f64;
        self.lr * (1.0 - over / (self.epochs_decay as f64 + 1.0)).max(0.0)
    }

    /// Problems with the values, named by key.
    pub fn check(&self) -> Result<(), String> {
        let bad = |key: &str, allowed: &str| Err(format!("train.{key}: {allowed}"));
        if self.ngf < 1 || self.ndf < 1 {
            return bad("ngf/ndf", "at least 1");
        }
        if !(1..=6).contains(&self.n_layers) {
            return bad("n_layers", "1 to 6");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "at least 1");
        }
        if !self.crop.is_power_of_two() || !(32..=1024).contains(&self.crop) {
            return bad("crop", "a power of two from 32 to 1024 (the U-Net halves it to 1x1)");
        }
        if self.epochs + self.epochs_decay == 0 {
            return bad("epochs", "epochs + epochs_decay must be at least 1");
        }
        if self.lr.is_nan() || self.lr <= 0.0 {
            return bad("lr", "above 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_policy_matches_the_reference() {
        let c = TrainConfig { epochs: 100, epochs_decay: 100, ..TrainConfig::default() };
        assert_eq!(c.lr_at(1), 0.0002);
        assert_eq!(c.lr_at(99), 0.0002);
        assert!((c.lr_at(100) - 0.0002 * 100.0 / 101.0).abs() < 1e-12, "decay starts in epoch 100");
        assert_eq!(c.lr_at(200), 0.0, "the last epoch runs at 0");
    }
}
