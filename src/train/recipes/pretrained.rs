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
//! - With the class head (`head = "classes"`), every phase adds lambda_ce x its
//!   cross-entropy against the truth's soft encoding, each pixel weighted by how rare its
//!   colour is in the training pairs (counted once, when the run starts, and saved with G).

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
use crate::train::loader::Pairs;
use crate::train::nets::Decodings;
use crate::train::nets::ab_classes::AbClasses;
use crate::train::nets::color_unet::{self, ClassHead, ColorUnet};
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
    lambda_ce: f64,
}

/// The encoder's variables, as named in G's store.
fn encoder_prefix() -> String {
    format!("G.{}.", color_unet::ENCODER)
}

impl Pretrained {
    /// The recipe's networks; a fresh class head's rebalancing weights come from `pairs`.
    pub fn start(
        config: &TrainConfig,
        device: Device,
        checkpoint: Option<&Path>,
        pairs: &Pairs,
    ) -> Result<Pretrained, TrainError> {
        let p = &config.pretrained;
        let g_vs = nn::VarStore::new(device);
        let d_vs = nn::VarStore::new(device);
        let g = ColorUnet::new(&(g_vs.root() / "G"), p);
        let d = Critic::new(&(d_vs.root() / "D"), D_INPUT, p.ndf, p.n_layers, p.spectral_norm);
        if checkpoint.is_none() {
            let prefix = format!("G.{}", color_unet::ENCODER);
            efficientnet::load_imagenet(&g.encoder, &g_vs, &prefix, &p.weights)?;
            if let Some(head) = g.class_head() {
                start_class_head(head, pairs, p.rebalance);
            }
        }
        let ema = (p.ema > 0.0).then(|| {
            let vs = nn::VarStore::new(device);
            let net = ColorUnet::new(&(vs.root() / "G"), p);
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
            lambda_ce: p.lambda_ce,
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
        let prediction = self.g.predict(a, true);
        let fake = prediction.ab;
        let g_l1 = fake.l1_loss(b, Reduction::Mean) * self.lambda_l1;
        let g_ce = match (self.g.class_head(), &prediction.logits) {
            (Some(head), Some(logits)) => Some(class_loss(head, logits, b) * self.lambda_ce),
            _ => None,
        };
        let g_pixels = match &g_ce {
            Some(g_ce) => &g_l1 + g_ce,
            None => g_l1.shallow_clone(),
        };
        let ce_value = g_ce.as_ref().map(|t| t.double_value(&[]));
        if self.phase == Phase::L1 {
            self.vars.opt_g.zero_grad();
            g_pixels.backward();
            self.vars.opt_g.step(&self.vars.g)?;
            self.update_ema();
            let g_l1 = g_l1.double_value(&[]);
            return Ok(Losses { g_l1, g_ce: ce_value, ..Losses::default() });
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
        (&g_gan + &g_pixels).backward();
        self.vars.opt_g.step(&self.vars.g)?;
        self.update_ema();

        Ok(Losses { g_ce: ce_value, ..Losses::of_gan_step(&g_gan, &g_l1, &d_real, &d_fake) })
    }

    fn colorize_each(&self, a: &Tensor, temperatures: &[f64]) -> Decodings {
        match &self.ema {
            Some((_, _, average)) => average.infer_each(a, temperatures),
            None => self.g.infer_each(a, temperatures),
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

/// How often each ab class is the colour of a pixel of the training pairs (at their stored
/// size): what the class head's rebalancing weights come from.
fn class_counts(classes: &AbClasses, pairs: &Pairs) -> Vec<f64> {
    let by_cell = classes.classes_by_cell();
    let mut counts = vec![0.0; classes.count() as usize];
    let plane = pairs.size() * pairs.size();
    for n in 0..pairs.len() {
        let lab = pairs.lab(n);
        let (a, b) = lab[plane..].split_at(plane);
        for (&a, &b) in a.iter().zip(b) {
            if let Some(class) = by_cell[AbClasses::cell_index(a, b)] {
                counts[class] += 1.0;
            }
        }
    }
    counts
}

/// A fresh class head: its rebalancing weights from the training pairs' colours, and its
/// bias their log-distribution, so that it starts out predicting the data's colours
/// (decoded at T = 1, their mean) rather than every cell alike (a colour cast).
fn start_class_head(head: &ClassHead, pairs: &Pairs, mix: f64) {
    let prior = head.classes.prior(&class_counts(&head.classes, pairs));
    let weights = head.classes.rebalance(&prior, mix);
    tch::no_grad(|| {
        head.weights.shallow_clone().copy_(&weights);
        if let Some(bias) = &head.logits.bs {
            bias.shallow_clone().copy_(&prior.clamp_min(1e-8).log());
        }
    });
}

/// The class head's loss: the cross-entropy of its logits (at a quarter of the side)
/// against the soft encoding of the truth averaged to that side, each pixel weighted by
/// its nearest class's rebalancing weight (0 for a colour out of every cell).
fn class_loss(head: &ClassHead, logits: &Tensor, b: &Tensor) -> Tensor {
    let s = color_unet::CLASS_STRIDE;
    let truth = b.avg_pool2d([s, s], [s, s], [0, 0], false, true, None::<i64>);
    let targets = head.classes.soft_targets(&truth);
    let weights = Tensor::cat(&[&head.weights, &head.weights.zeros_like().narrow(0, 0, 1)], 0);
    let nearest = &targets.nearest;
    let pixel_weight = weights.index_select(0, &nearest.flatten(0, -1)).view_as(nearest);
    let log_p = logits.log_softmax(1, tch::Kind::Float).gather(1, &targets.classes, false);
    let entropy = -(log_p * &targets.weights).sum_dim_intlist(1, false, tch::Kind::Float);
    (entropy * pixel_weight).mean(tch::Kind::Float)
}
