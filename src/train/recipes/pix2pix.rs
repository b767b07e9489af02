//! The reference recipe (Pix2PixModel.optimize_parameters, shared docs/pix2pix.md §2.5):
//! G forward once; D step on the detached fake and the real pair, loss halved; G step
//! against the updated D, GAN loss + lambda_L1 x L1. Adam for each, one learning rate.

use std::path::Path;

use tch::nn::{self, ModuleT};
use tch::{Device, Reduction, Tensor};

use super::{Losses, Trainer};
use crate::train::adam::Adam;
use crate::train::checkpoint::{self, Saved};
use crate::train::config::{GanMode, TrainConfig};
use crate::train::error::TrainError;
use crate::train::nets::pix2pix::{Discriminator, Generator, NetConfig};
use crate::train::schedule::EpochPlan;

pub struct Pix2pix {
    g_vs: nn::VarStore,
    d_vs: nn::VarStore,
    g: Generator,
    d: Discriminator,
    opt_g: Adam,
    opt_d: Adam,
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
        let (b1, b2) = config.betas;
        let opt_g = Adam::new(&g_vs, config.lr, b1, b2)?;
        let opt_d = Adam::new(&d_vs, config.lr, b1, b2)?;
        let mut recipe = Pix2pix {
            g_vs,
            d_vs,
            g,
            d,
            opt_g,
            opt_d,
            gan_mode: config.gan_mode,
            lambda_l1: config.lambda_l1,
        };
        if let Some(dir) = checkpoint {
            recipe.load(dir)?;
        }
        Ok(recipe)
    }

    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let saved = Saved::read(dir)?;
        saved.restore("G", &self.g_vs)?;
        saved.restore("D", &self.d_vs)?;
        saved.restore_adam("G", &mut self.opt_g)?;
        saved.restore_adam("D", &mut self.opt_d)
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
    fn begin_epoch(&mut self, plan: &EpochPlan, _seed: u64) {
        self.opt_g.lr = plan.lr_g;
        self.opt_d.lr = plan.lr_d;
    }

    fn step(&mut self, a: &Tensor, b: &Tensor) -> Losses {
        let fake = self.g.forward_t(a, true);

        self.d_vs.unfreeze();
        self.opt_d.zero_grad();
        let pred_fake = self.d.forward_t(&Tensor::cat(&[a, &fake.detach()], 1), true);
        let pred_real = self.d.forward_t(&Tensor::cat(&[a, b], 1), true);
        let d_fake = gan_loss(self.gan_mode, &pred_fake, false);
        let d_real = gan_loss(self.gan_mode, &pred_real, true);
        ((&d_fake + &d_real) * 0.5).backward();
        self.opt_d.step(&self.d_vs);

        self.d_vs.freeze();
        self.opt_g.zero_grad();
        let pred_fake = self.d.forward_t(&Tensor::cat(&[a, &fake], 1), true);
        let g_gan = gan_loss(self.gan_mode, &pred_fake, true);
        let g_l1 = fake.l1_loss(b, Reduction::Mean) * self.lambda_l1;
        (&g_gan + &g_l1).backward();
        self.opt_g.step(&self.g_vs);

        let value = |t: &Tensor| t.double_value(&[]);
        Losses {
            g_gan: Some(value(&g_gan)),
            g_l1: value(&g_l1),
            d_real: Some(value(&d_real)),
            d_fake: Some(value(&d_fake)),
        }
    }

    fn colorize(&self, a: &Tensor) -> Tensor {
        self.g.infer(a)
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let mut nets = checkpoint::named("G", &self.g_vs);
        nets.extend(checkpoint::named("D", &self.d_vs));
        let mut adam = self.opt_g.state("G");
        adam.extend(self.opt_d.state("D"));
        checkpoint::save(dir, &nets, &adam)
    }
}
