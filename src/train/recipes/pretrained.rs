//! The pretrained recipe (shared docs/colorizer.md §2): in Lab, a U-Net on an ImageNet
//! EfficientNet-Lite0 encoder predicts ab from L.
//!
//! - L1 phase (`pretrain_epochs`): G alone, lambda_l1 x L1, no discriminator (NoGAN's
//!   pretraining). The encoder is frozen for `freeze_epochs`, then fine-tuned at
//!   `encoder_lr` while the decoder trains at `lr`.
//! - GAN phase (`epochs`): the reference's update order, GAN + lambda_l1 x L1, against a
//!   spectral-norm PatchGAN trained at its own `lr_d` (TTUR), seeing every pair through
//!   DiffAugment's translation and cutout.
//! - Optionally a moving average of G (`ema`) is what validation and inference use.

use std::path::Path;
use std::rc::Rc;

use tch::nn::{self, ModuleT};
use tch::{Device, Reduction, Tensor};

use super::pix2pix::gan_loss;
use super::{Adversaries, Losses, Trainer};
use crate::train::checkpoint::{self, Saved};
use crate::train::config::{GanMode, TrainConfig};
use crate::train::diffaugment::DiffAugment;
use crate::train::dist::{Group, tensors_by_name};
use crate::train::ema::Ema;
use crate::train::error::TrainError;
use crate::train::nets::color_unet::{self, ColorUnet};
use crate::train::nets::critic::Critic;
use crate::train::nets::efficientnet;
use crate::train::schedule::{EpochPlan, Phase};

/// Where a checkpoint keeps the moving average's update count.
const EMA_UPDATES: &str = "ema.updates";

/// The discriminator sees cat(L, ab).
const D_INPUT: i64 = 3;

pub struct Pretrained {
    vars: Adversaries,
    g: ColorUnet,
    d: Critic,
    /// The moving average of G and its networks, when kept.
    ema: Option<(Ema, nn::VarStore, ColorUnet)>,
    augment: DiffAugment,
    /// The encoder's trained weights (not its batch-norm statistics), frozen or not.
    encoder_weights: Vec<Tensor>,
    phase: Phase,
    lambda_l1: f64,
}

/// The encoder's variables, as named in G's store.
fn encoder_prefix() -> String {
    format!("G.{}.", color_unet::ENCODER)
}

impl Pretrained {
    pub fn start(
        config: &TrainConfig,
        device: Device,
        checkpoint: Option<&Path>,
    ) -> Result<Pretrained, TrainError> {
        let p = &config.pretrained;
        let g_vs = nn::VarStore::new(device);
        let d_vs = nn::VarStore::new(device);
        let g = ColorUnet::new(&(g_vs.root() / "G"));
        let d = Critic::new(&(d_vs.root() / "D"), D_INPUT, p.ndf, p.n_layers, p.spectral_norm);
        if checkpoint.is_none() {
            let prefix = format!("G.{}", color_unet::ENCODER);
            efficientnet::load_imagenet(&g.encoder, &g_vs, &prefix, &p.weights)?;
        }
        let ema = (p.ema > 0.0).then(|| {
            let vs = nn::VarStore::new(device);
            let net = ColorUnet::new(&(vs.root() / "G"));
            (Ema::new(&g_vs, &vs, p.ema), vs, net)
        });
        let encoder_weights = g_vs
            .variables()
            .into_iter()
            .filter(|(name, t)| name.starts_with(&encoder_prefix()) && t.requires_grad())
            .map(|(_, t)| t)
            .collect();
        let vars = Adversaries::new(g_vs, d_vs, (p.lr, p.lr_d), p.betas)?;
        let mut recipe = Pretrained {
            vars,
            g,
            d,
            ema,
            augment: DiffAugment::new(&p.diffaugment),
            encoder_weights,
            phase: Phase::L1,
            lambda_l1: p.lambda_l1,
        };
        if let Some(dir) = checkpoint {
            recipe.load(dir)?;
        }
        Ok(recipe)
    }

    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let saved = Saved::read(dir)?;
        self.vars.restore(&saved)?;
        if let Some((ema, vs, _)) = &mut self.ema {
            saved.restore("G_ema", vs)?;
            let updates = saved.optimizers.get(EMA_UPDATES).ok_or_else(|| {
                saved.unusable(
                    "adam.safetensors",
                    format!("no {EMA_UPDATES}: the run had no moving average"),
                )
            })?;
            ema.updates = updates.int64_value(&[0]);
        }
        Ok(())
    }

    /// Freezes or unfreezes the encoder's weights.
    fn set_encoder_trains(&mut self, trains: bool) {
        for t in &self.encoder_weights {
            let _ = t.set_requires_grad(trains);
        }
    }

    fn update_ema(&mut self) {
        if let Some((ema, _, _)) = &mut self.ema {
            ema.update();
        }
    }
}

impl Trainer for Pretrained {
    fn begin_epoch(&mut self, plan: &EpochPlan) {
        self.phase = plan.phase;
        self.vars.opt_g.lr = plan.lr_g;
        self.vars.opt_d.lr = plan.lr_d;
        self.vars.opt_g.lr_by_prefix = vec![(encoder_prefix(), plan.lr_encoder.unwrap_or(0.0))];
        self.set_encoder_trains(plan.lr_encoder.is_some());
    }

    fn seed_step(&mut self, seed: u64) {
        self.augment.reseed(seed);
    }

    fn distribute(&mut self, group: &Rc<Group>) -> Result<(), TrainError> {
        self.vars.distribute(group)?;
        if let Some((_, vs, _)) = &self.ema {
            group.broadcast(&tensors_by_name(vs), 0)?;
        }
        Ok(())
    }

    fn replicas_agree(&self, group: &Group) -> Result<bool, TrainError> {
        self.vars.replicas_agree(group)
    }

    fn step(&mut self, a: &Tensor, b: &Tensor) -> Result<Losses, TrainError> {
        let fake = self.g.forward_t(a, true);
        let g_l1 = fake.l1_loss(b, Reduction::Mean) * self.lambda_l1;
        if self.phase == Phase::L1 {
            self.vars.opt_g.zero_grad();
            g_l1.backward();
            self.vars.opt_g.step(&self.vars.g)?;
            self.update_ema();
            return Ok(Losses { g_l1: g_l1.double_value(&[]), ..Losses::default() });
        }

        let draw = self.augment.draw(a.size()[0] as usize, a.size()[2]);
        let seen = |pair: Tensor| if self.augment.is_off() { pair } else { draw.apply(&pair) };
        self.vars.d.unfreeze();
        self.vars.opt_d.zero_grad();
        let pred_fake = self.d.forward_t(&seen(Tensor::cat(&[a, &fake.detach()], 1)), true);
        let pred_real = self.d.forward_t(&seen(Tensor::cat(&[a, b], 1)), true);
        let d_fake = gan_loss(GanMode::Vanilla, &pred_fake, false);
        let d_real = gan_loss(GanMode::Vanilla, &pred_real, true);
        ((&d_fake + &d_real) * 0.5).backward();
        self.vars.opt_d.step(&self.vars.d)?;

        self.vars.d.freeze();
        self.vars.opt_g.zero_grad();
        let pred_fake = self.d.forward_t(&seen(Tensor::cat(&[a, &fake], 1)), true);
        let g_gan = gan_loss(GanMode::Vanilla, &pred_fake, true);
        (&g_gan + &g_l1).backward();
        self.vars.opt_g.step(&self.vars.g)?;
        self.update_ema();

        Ok(Losses::of_gan_step(&g_gan, &g_l1, &d_real, &d_fake))
    }

    fn colorize(&self, a: &Tensor) -> Tensor {
        match &self.ema {
            Some((_, _, average)) => average.infer(a),
            None => self.g.infer(a),
        }
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let (mut nets, mut adam) = self.vars.state();
        if let Some((ema, vs, _)) = &self.ema {
            nets.extend(checkpoint::named("G_ema", vs));
            adam.push((EMA_UPDATES.into(), Tensor::from_slice(&[ema.updates])));
        }
        checkpoint::save(dir, &nets, &adam)
    }
}
