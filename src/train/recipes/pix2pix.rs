//! The reference recipe (Pix2PixModel.optimize_parameters, shared docs/pix2pix.md §2.5):
//! G forward once; D step on the detached fake and the real pair, loss halved; G step
//! against the updated D, GAN loss + lambda_L1 x L1. Adam for each, one learning rate.

use std::path::Path;
use std::rc::Rc;

use tch::nn::{self, ModuleT};
use tch::{Device, Reduction, Tensor};

use super::{Adversaries, Losses, Trainer};
use crate::train::checkpoint::{self, Saved};
use crate::train::config::{GanMode, TrainConfig};
use crate::train::dist::Group;
use crate::train::error::TrainError;
use crate::train::nets::Decodings;
use crate::train::nets::pix2pix::{Discriminator, Generator, NetConfig};
use crate::train::schedule::EpochPlan;

pub struct Pix2pix {
    vars: Adversaries,
    g: Generator,
    d: Discriminator,
    gan_mode: GanMode,
    lambda_l1: f64,
}

impl Pix2pix {
    pub fn start(
        config: &TrainConfig,
        device: Device,
        checkpoint: Option<&Path>,
    ) -> Result<Pix2pix, TrainError> {
        let net = NetConfig::of(config);
        let g_vs = nn::VarStore::new(device);
        let d_vs = nn::VarStore::new(device);
        let g = Generator::new(&(g_vs.root() / "G"), &net);
        let d = Discriminator::new(&(d_vs.root() / "D"), &net);
        let vars = Adversaries::new(g_vs, d_vs, (config.lr, config.lr), config.betas)?;
        let mut recipe =
            Pix2pix { vars, g, d, gan_mode: config.gan_mode, lambda_l1: config.lambda_l1 };
        if let Some(dir) = checkpoint {
            recipe.vars.restore(&Saved::read(dir)?)?;
        }
        Ok(recipe)
    }
}

/// The adversarial loss of patch logits against all-real or all-fake targets.
pub fn gan_loss(mode: GanMode, logits: &Tensor, real: bool) -> Tensor {
    let target = if real { logits.ones_like() } else { logits.zeros_like() };
    match mode {
        GanMode::Vanilla => {
            logits.binary_cross_entropy_with_logits::<Tensor>(&target, None, None, Reduction::Mean)
        }
        GanMode::Lsgan => logits.mse_loss(&target, Reduction::Mean),
    }
}

impl Trainer for Pix2pix {
    fn begin_epoch(&mut self, plan: &EpochPlan) {
        self.vars.opt_g.lr = plan.lr_g;
        self.vars.opt_d.lr = plan.lr_d;
    }

    /// pix2pix draws only from torch's stream (dropout), which the trainer seeds.
    fn seed_step(&mut self, _seed: u64) {}

    fn distribute(&mut self, group: &Rc<Group>) -> Result<(), TrainError> {
        self.vars.distribute(group)
    }

    fn replicas_agree(&self, group: &Group) -> Result<bool, TrainError> {
        self.vars.replicas_agree(group)
    }

    fn step(&mut self, a: &Tensor, b: &Tensor) -> Result<Losses, TrainError> {
        let fake = self.g.forward_t(a, true);

        self.vars.d.unfreeze();
        self.vars.opt_d.zero_grad();
        let pred_fake = self.d.forward_t(&Tensor::cat(&[a, &fake.detach()], 1), true);
        let pred_real = self.d.forward_t(&Tensor::cat(&[a, b], 1), true);
        let d_fake = gan_loss(self.gan_mode, &pred_fake, false);
        let d_real = gan_loss(self.gan_mode, &pred_real, true);
        ((&d_fake + &d_real) * 0.5).backward();
        self.vars.opt_d.step(&self.vars.d)?;

        self.vars.d.freeze();
        self.vars.opt_g.zero_grad();
        let pred_fake = self.d.forward_t(&Tensor::cat(&[a, &fake], 1), true);
        let g_gan = gan_loss(self.gan_mode, &pred_fake, true);
        let g_l1 = fake.l1_loss(b, Reduction::Mean) * self.lambda_l1;
        (&g_gan + &g_l1).backward();
        self.vars.opt_g.step(&self.vars.g)?;

        Ok(Losses::of_gan_step(&g_gan, &g_l1, &d_real, &d_fake))
    }

    fn colorize_each(&self, a: &Tensor, _temperatures: &[f64]) -> Decodings {
        vec![(None, self.g.infer(a))]
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let (nets, adam) = self.vars.state();
        checkpoint::save(dir, &nets, &adam)
    }
}
