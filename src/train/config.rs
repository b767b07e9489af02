//! `[train]` in pipeline.toml: the reference recipe by default (shared docs/pix2pix.md),
//! and `[train.pretrained]`, the recipe that starts from ImageNet (docs/colorizer.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::setting::Invalid;

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
                let [l, a, bb] = crate::photo::color::rgb8_to_lab(rgb);
                b[at] = a / 110.0;
                b[stride + at] = bb / 110.0;
                l / 50.0 - 1.0
            }
        }
    }

    /// What a colorizer that does nothing shows for a pixel of stored gray value `gray` and
    /// network input `a`: the gray itself (RGB), or the pixel's own L with a = b = 0 (Lab).
    pub fn do_nothing(self, gray: u8, a: f32) -> [u8; 3] {
        match self {
            ColorSpace::Rgb => [gray; 3],
            ColorSpace::Lab => crate::photo::color::lab_to_rgb8([(a + 1.0) * 50.0, 0.0, 0.0]),
        }
    }

    /// One generated pixel back to RGB: A in [-1, 1] and B's channels read `stride` apart.
    pub fn decode(self, a: f32, b: &[f32], at: usize, stride: usize) -> [u8; 3] {
        let byte = |v: f32| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
        match self {
            ColorSpace::Rgb => [byte(b[at]), byte(b[stride + at]), byte(b[2 * stride + at])],
            ColorSpace::Lab => crate::photo::color::lab_to_rgb8([
                (a + 1.0) * 50.0,
                b[at] * 110.0,
                b[stride + at] * 110.0,
            ]),
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

/// How a run trains: the paper's recipe, or one that starts from ImageNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// The reference pix2pix, from scratch (the `[train]` keys).
    Pix2pix,
    /// An EfficientNet-Lite0 U-Net, L1 then GAN (the `[train.pretrained]` keys).
    Pretrained,
}

/// A DiffAugment transform (Zhao et al. 2020), applied alike to the real and the fake pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    /// Shift by up to 1/8 of the side, zero-filled.
    Translation,
    /// Zero a random square of half the side.
    Cutout,
}

/// How the pretrained recipe's generator predicts colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorHead {
    /// ab itself (tanh), trained with L1: safe and pale.
    Regression,
    /// A distribution over the ab cells (Zhang et al. 2016), trained with a rebalanced
    /// cross-entropy and decoded by the annealed mean at `vividness`.
    Classes,
}

/// Every hyper-parameter of a run; saved as `config.json` in the run folder. The flat keys
/// are the reference recipe's and the run's; `pretrained` holds the second recipe's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub recipe: Recipe,
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
    /// Checkpoint every this many epochs (and at the end, and at each new best); keep this
    /// many, plus the best.
    pub checkpoint_every: usize,
    pub keep_last: usize,
    /// Share of the train split held out to pick the best checkpoint, by content hash.
    pub val_fraction: f64,
    /// A budget: the run ends at the first epoch boundary past it, with the schedule's
    /// epoch counts read as proportions of it.
    pub max_minutes: Option<f64>,
    /// `best` is the lowest validation ΔE00 among epochs whose colourfulness is at least
    /// this share of the truth's (else at least half of it).
    pub best_colorfulness: f64,
    pub pretrained: PretrainedConfig,
}

/// `[train.pretrained]`: the pretrained recipe (shared docs/colorizer.md §2). Always Lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainedConfig {
    /// Side of the random crop, a multiple of 32 (the encoder's stride).
    pub crop: usize,
    pub batch_size: usize,
    /// Epochs of G alone with L1 (no discriminator), then `epochs` of GAN + lambda_l1 x L1.
    pub pretrain_epochs: usize,
    pub epochs: usize,
    /// The ImageNet encoder is frozen for this many epochs, then fine-tuned at `encoder_lr`.
    pub freeze_epochs: usize,
    /// Adam for the decoder, for the encoder once unfrozen, and for the discriminator.
    pub lr: f64,
    pub encoder_lr: f64,
    pub lr_d: f64,
    pub betas: (f64, f64),
    pub lambda_l1: f64,
    /// The PatchGAN: filters, layers (3: 70x70 patches), spectral norm instead of batch norm.
    pub ndf: i64,
    pub n_layers: i64,
    pub spectral_norm: bool,
    pub diffaugment: Vec<Augment>,
    /// Decay of the moving average of G used for validation and inference (0: none).
    pub ema: f64,
    /// EfficientNet-Lite0's ImageNet weights, as `scripts/weights` writes them.
    pub weights: PathBuf,
    /// The generator's colour head. A run recorded before heads existed had regression.
    #[serde(default = "regression")]
    pub head: ColorHead,
    /// The class head's loss: lambda_ce x cross-entropy, its pixels weighted by how rare
    /// their colour is in the training data (Zhang's rebalancing, the uniform
    /// distribution's share `rebalance`: 1 is none), beside lambda_l1 x L1 of the decoded
    /// colours and, in the GAN phase, the GAN loss.
    pub lambda_ce: f64,
    pub rebalance: f64,
    /// The annealed mean's temperature (0 < T <= 1; lower nears the most likely colour)
    /// the L1 and GAN losses decode with. Inference decodes at the one validation chose
    /// with the checkpoint (among `ab_classes::VIVIDNESS_CHOICES`, by `best`'s rule), at
    /// this one when the run has no validation split.
    pub vividness: f64,
}

fn regression() -> ColorHead {
    ColorHead::Regression
}

impl Default for PretrainedConfig {
    fn default() -> Self {
        PretrainedConfig {
            crop: 256,
            batch_size: 16,
            pretrain_epochs: 10,
            epochs: 10,
            freeze_epochs: 5,
            lr: 2e-4,
            encoder_lr: 2e-5,
            lr_d: 4e-4,
            betas: (0.5, 0.999),
            lambda_l1: 100.0,
            ndf: 32,
            n_layers: 3,
            spectral_norm: true,
            diffaugment: vec![Augment::Translation, Augment::Cutout],
            ema: 0.995,
            weights: PathBuf::from(".weights/efficientnet-lite0.safetensors"),
            head: ColorHead::Regression,
            lambda_ce: 1.0,
            // Zhang et al.'s lambda: half the uniform distribution.
            rebalance: 0.5,
            vividness: 0.38,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            recipe: Recipe::Pix2pix,
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
            val_fraction: 0.1,
            max_minutes: None,
            best_colorfulness: 0.8,
            pretrained: PretrainedConfig::default(),
        }
    }
}

/// What the loader feeds a run, whichever recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    pub crop: usize,
    pub batch_size: usize,
    pub color: ColorSpace,
}

impl TrainConfig {
    pub fn data_shape(&self) -> DataShape {
        match self.recipe {
            Recipe::Pix2pix => {
                DataShape { crop: self.crop, batch_size: self.batch_size, color: self.color }
            }
            Recipe::Pretrained => DataShape {
                crop: self.pretrained.crop,
                batch_size: self.pretrained.batch_size,
                color: ColorSpace::Lab,
            },
        }
    }

    /// Epochs of a run that is not given a budget.
    pub fn total_epochs(&self) -> usize {
        match self.recipe {
            Recipe::Pix2pix => self.epochs + self.epochs_decay,
            Recipe::Pretrained => self.pretrained.pretrain_epochs + self.pretrained.epochs,
        }
    }

    /// `--epochs N`: N in all, split in two halves as the recipe splits its schedule
    /// (constant and decaying learning rate; L1 alone and GAN).
    pub fn set_total_epochs(&mut self, total: usize) {
        match self.recipe {
            Recipe::Pix2pix => {
                self.epochs = total - total / 2;
                self.epochs_decay = total / 2;
            }
            Recipe::Pretrained => {
                self.pretrained.pretrain_epochs = total - total / 2;
                self.pretrained.epochs = total / 2;
            }
        }
    }

    /// The reference's learning rate during (1-based) `epoch`: its linear policy stepped at
    /// the start of each epoch, constant, then down to 0 in the last epoch. A fractional
    /// epoch is a point of a run on a budget.
    pub fn lr_at(&self, epoch: f64) -> f64 {
        let over = (epoch + 1.0 - self.epochs as f64).max(0.0);
        self.lr * (1.0 - over / (self.epochs_decay as f64 + 1.0)).max(0.0)
    }

    /// The first value out of range, named by key.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.ngf < 1 || self.ndf < 1 {
            return Invalid::err(
                "train.ngf",
                format!("{}, ndf {}", self.ngf, self.ndf),
                "at least 1",
            );
        }
        if !(1..=6).contains(&self.n_layers) {
            return Invalid::err("train.n_layers", self.n_layers, "1 to 6");
        }
        if self.batch_size == 0 {
            return Invalid::err("train.batch_size", 0, "at least 1");
        }
        if !self.crop.is_power_of_two() || !(32..=1024).contains(&self.crop) {
            let allowed = "a power of two from 32 to 1024 (the U-Net halves it to 1x1)";
            return Invalid::err("train.crop", self.crop, allowed);
        }
        if patch_side(self.crop, self.n_layers) < 1 {
            return Invalid::err("train.n_layers", self.n_layers, too_deep(self.crop));
        }
        if self.epochs + self.epochs_decay == 0 {
            return Invalid::err("train.epochs", 0, "epochs + epochs_decay must be at least 1");
        }
        if self.lr.is_nan() || self.lr <= 0.0 {
            return Invalid::err("train.lr", self.lr, "above 0");
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Invalid::err(
                "train.val_fraction",
                self.val_fraction,
                "0 up to (not including) 1",
            );
        }
        if let Some(minutes) = self.max_minutes.filter(|m| m.is_nan() || *m <= 0.0) {
            return Invalid::err("train.max_minutes", minutes, "above 0");
        }
        if !(0.0..=1.0).contains(&self.best_colorfulness) {
            return Invalid::err("train.best_colorfulness", self.best_colorfulness, "0 to 1");
        }
        self.check_pretrained()
    }

    fn check_pretrained(&self) -> Result<(), Invalid> {
        let p = &self.pretrained;
        if !p.crop.is_multiple_of(32) || !(64..=1024).contains(&p.crop) {
            let allowed = "a multiple of 32 from 64 to 1024 (the encoder's stride)";
            return Invalid::err("train.pretrained.crop", p.crop, allowed);
        }
        if p.batch_size < 2 {
            let allowed = "at least 2 (the decoder's batch norm)";
            return Invalid::err("train.pretrained.batch_size", p.batch_size, allowed);
        }
        if p.pretrain_epochs + p.epochs == 0 {
            let allowed = "pretrain_epochs + epochs must be at least 1";
            return Invalid::err("train.pretrained.epochs", 0, allowed);
        }
        for (key, value) in [
            ("train.pretrained.lr", p.lr),
            ("train.pretrained.encoder_lr", p.encoder_lr),
            ("train.pretrained.lr_d", p.lr_d),
        ] {
            if value.is_nan() || value < 0.0 {
                return Invalid::err(key, value, "0 or above");
            }
        }
        if p.ndf < 1 || !(1..=6).contains(&p.n_layers) {
            let value = format!("{}, n_layers {}", p.ndf, p.n_layers);
            return Invalid::err("train.pretrained.ndf", value, "ndf at least 1, n_layers 1 to 6");
        }
        if patch_side(p.crop, p.n_layers) < 1 {
            return Invalid::err("train.pretrained.n_layers", p.n_layers, too_deep(p.crop));
        }
        if !(0.0..1.0).contains(&p.ema) {
            return Invalid::err("train.pretrained.ema", p.ema, "0 (off) up to (not including) 1");
        }
        if !(p.vividness > 0.0 && p.vividness <= 1.0) {
            return Invalid::err("train.pretrained.vividness", p.vividness, "above 0, at most 1");
        }
        if !(0.0..=1.0).contains(&p.rebalance) || p.lambda_ce.is_nan() || p.lambda_ce < 0.0 {
            let value = format!("{}, lambda_ce {}", p.rebalance, p.lambda_ce);
            return Invalid::err(
                "train.pretrained.rebalance",
                value,
                "0 to 1, lambda_ce 0 or above",
            );
        }
        Ok(())
    }
}

/// The side of the PatchGAN's output for a `crop`-pixel input: `n_layers` stride-2 4x4
/// convolutions halve it, the two stride-1 4x4 ones take a pixel each.
pub fn patch_side(crop: usize, n_layers: i64) -> i64 {
    (crop as i64 >> n_layers.clamp(0, 62)) - 2
}

fn too_deep(crop: usize) -> String {
    let most = (0..=6).rev().find(|&n| patch_side(crop, n) >= 1).unwrap_or(0);
    format!("at most {most} with a {crop}-pixel crop (the PatchGAN's output would be empty)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patchgan_with_an_empty_output_is_refused() {
        let shallow = TrainConfig { crop: 32, n_layers: 3, ..TrainConfig::default() };
        assert_eq!(patch_side(32, 3), 2);
        assert!(shallow.check().is_ok());
        let deep = TrainConfig { crop: 32, n_layers: 4, ..TrainConfig::default() };
        assert_eq!(
            deep.check().unwrap_err().to_string(),
            "train.n_layers = 4: at most 3 with a 32-pixel crop (the PatchGAN's output would be empty)"
        );
        let mut pre = TrainConfig::default();
        pre.pretrained.crop = 64;
        pre.pretrained.n_layers = 5;
        let err = pre.check().unwrap_err().to_string();
        assert!(err.starts_with("train.pretrained.n_layers = 5: at most 4"), "{err}");
    }

    #[test]
    fn keys_left_out_take_the_defaults_a_new_run_gets() {
        // A run record of before the class head and the colourful `best` reads as one
        // written now would: regression head, best at 0.8 of the truth's colour.
        let json = serde_json::json!({ "recipe": "pretrained", "pretrained": { "crop": 128 } });
        let read: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(read.best_colorfulness, TrainConfig::default().best_colorfulness);
        assert_eq!(read.best_colorfulness, 0.8);
        assert_eq!(read.pretrained.head, ColorHead::Regression);
        assert_eq!(read.pretrained.vividness, 0.38);
    }

    #[test]
    fn encode_then_decode_gives_the_pixel_back() {
        for rgb in [[0u8, 0, 0], [255, 255, 255], [200, 30, 40], [12, 140, 250], [90, 90, 90]] {
            for color in [ColorSpace::Rgb, ColorSpace::Lab] {
                let mut b = vec![0f32; 3];
                let gray = crate::photo::color::luma(rgb[0], rgb[1], rgb[2]);
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
        assert_eq!(c.lr_at(1.0), 0.0002);
        assert_eq!(c.lr_at(99.0), 0.0002);
        assert!(
            (c.lr_at(100.0) - 0.0002 * 100.0 / 101.0).abs() < 1e-12,
            "decay starts in epoch 100"
        );
        assert_eq!(c.lr_at(200.0), 0.0, "the last epoch runs at 0");
    }
}
