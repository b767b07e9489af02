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

/// What the networks see: A (1 channel) and B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorSpace {
    /// A = the stored luma, B = RGB (3 channels); values x / 127.5 - 1.
    Rgb,
    /// CIE Lab from the RGB (skimage's constants): A = L / 50 - 1, B = (a, b) / 110.
    Lab,
}

impl ColorSpace {
    /// Channels of B.
    pub fn channels(self) -> usize {
        match self {
            ColorSpace::Rgb => 3,
            ColorSpace::Lab => 2,
        }
    }

    /// One pixel as the networks see it: returns A and writes B's channels into `b` (given
    /// `stride` apart), all in [-1, 1].
    pub fn encode(self, gray: u8, rgb: [u8; 3], b: &mut [f32], at: usize, stride: usize) -> f32 {
        let unit = |v: u8| f32::from(v) / 127.5 - 1.0;
        match self {
            ColorSpace::Rgb => {
                for (c, v) in rgb.into_iter().enumerate() {
                    b[c * stride + at] = unit(v);
                }
                unit(gray)
            }
            ColorSpace::Lab => {
                let [l, a, bb] = crate::color::rgb8_to_lab(rgb);
                b[at] = a / 110.0;
                b[stride + at] = bb / 110.0;
                l / 50.0 - 1.0
            }
        }
    }

    /// One generated pixel back to RGB: A in [-1, 1] and B's channels read `stride` apart.
    pub fn decode(self, a: f32, b: &[f32], at: usize, stride: usize) -> [u8; 3] {
        let byte = |v: f32| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
        match self {
            ColorSpace::Rgb => [byte(b[at]), byte(b[stride + at]), byte(b[2 * stride + at])],
            ColorSpace::Lab => {
                crate::color::lab_to_rgb8([(a + 1.0) * 50.0, b[at] * 110.0, b[stride + at] * 110.0])
            }
        }
    }
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
    /// rgb (the paper's pairs) or lab (the reference's colorization model).
    pub color: ColorSpace,
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
            color: ColorSpace::Rgb,
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
    fn encode_then_decode_gives_the_pixel_back() {
        for rgb in [[0u8, 0, 0], [255, 255, 255], [200, 30, 40], [12, 140, 250], [90, 90, 90]] {
            for color in [ColorSpace::Rgb, ColorSpace::Lab] {
                let mut b = vec![0f32; 3];
                let gray = crate::build::preprocess::luma(rgb[0], rgb[1], rgb[2]);
                let a = color.encode(gray, rgb, &mut b, 0, 1);
                let back = color.decode(a, &b, 0, 1);
                for c in 0..3 {
                    assert!(
                        (i32::from(back[c]) - i32::from(rgb[c])).abs() <= 1,
                        "{color:?} {rgb:?} -> {back:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn linear_policy_matches_the_reference() {
        let c = TrainConfig { epochs: 100, epochs_decay: 100, ..TrainConfig::default() };
        assert_eq!(c.lr_at(1), 0.0002);
        assert_eq!(c.lr_at(99), 0.0002);
        assert!((c.lr_at(100) - 0.0002 * 100.0 / 101.0).abs() < 1e-12, "decay starts in epoch 100");
        assert_eq!(c.lr_at(200), 0.0, "the last epoch runs at 0");
    }
}
