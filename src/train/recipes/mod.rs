//! Training recipes: how a step trains the networks, what a checkpoint holds of them, and
//! which network colorizes. `pix2pix` is the paper's reference, `pretrained` starts from
//! ImageNet (shared docs/colorizer.md).

mod pix2pix;
mod pretrained;

use std::path::Path;

use std::rc::Rc;

use serde::Serialize;
use tch::{Device, Tensor, nn};

use super::adam::Adam;
use super::checkpoint::{self, Named, Saved};
use super::config::{Recipe as RecipeName, TrainConfig};
use super::dist::{Group, tensors_by_name};
use super::error::TrainError;
use super::nets::Decodings;
use super::schedule::EpochPlan;

/// The losses of one step (or their means over an epoch); the GAN terms are absent in the
/// L1-only phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Losses {
    #[serde(rename = "G_GAN", skip_serializing_if = "Option::is_none")]
    pub g_gan: Option<f64>,
    #[serde(rename = "G_L1")]
    pub g_l1: f64,
    /// The class head's rebalanced cross-entropy (times lambda_ce), when it has one.
    #[serde(rename = "G_CE", skip_serializing_if = "Option::is_none")]
    pub g_ce: Option<f64>,
    #[serde(rename = "D_real", skip_serializing_if = "Option::is_none")]
    pub d_real: Option<f64>,
    #[serde(rename = "D_fake", skip_serializing_if = "Option::is_none")]
    pub d_fake: Option<f64>,
}

impl Losses {
    /// The four losses of a GAN step, read from their scalar tensors.
    pub fn of_gan_step(g_gan: &Tensor, g_l1: &Tensor, d_real: &Tensor, d_fake: &Tensor) -> Losses {
        let value = |t: &Tensor| t.double_value(&[]);
        Losses {
            g_gan: Some(value(g_gan)),
            g_l1: value(g_l1),
            g_ce: None,
            d_real: Some(value(d_real)),
            d_fake: Some(value(d_fake)),
        }
    }

    /// The mean of each loss over some steps (absent where no step has it).
    pub fn mean(all: &[Losses]) -> Losses {
        let mean_of = |f: fn(&Losses) -> Option<f64>| {
            let values: Vec<f64> = all.iter().filter_map(f).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        Losses {
            g_gan: mean_of(|l| l.g_gan),
            g_l1: mean_of(|l| Some(l.g_l1)).unwrap_or(f64::NAN),
            g_ce: mean_of(|l| l.g_ce),
            d_real: mean_of(|l| l.d_real),
            d_fake: mean_of(|l| l.d_fake),
        }
    }

    /// Whether every loss present is a finite number.
    pub fn is_finite(&self) -> bool {
        [self.g_gan, Some(self.g_l1), self.g_ce, self.d_real, self.d_fake]
            .iter()
            .flatten()
            .all(|v| v.is_finite())
    }
}

/// The variables of a generator and a discriminator and their optimizers, as both recipes
/// keep them: checkpointed as `G:`, `D:` and the optimizers `G.`, `D.`.
struct Adversaries {
    g: nn::VarStore,
    d: nn::VarStore,
    opt_g: Adam,
    opt_d: Adam,
}

impl Adversaries {
    /// Adam for each store, once its network is built in it.
    fn new(
        g: nn::VarStore,
        d: nn::VarStore,
        (lr_g, lr_d): (f64, f64),
        (b1, b2): (f64, f64),
    ) -> Result<Adversaries, TrainError> {
        let opt_g = Adam::new(&g, lr_g, b1, b2)?;
        let opt_d = Adam::new(&d, lr_d, b1, b2)?;
        Ok(Adversaries { g, d, opt_g, opt_d })
    }

    fn restore(&mut self, saved: &Saved) -> Result<(), TrainError> {
        saved.restore("G", &self.g)?;
        saved.restore("D", &self.d)?;
        saved.restore_adam("G", &mut self.opt_g)?;
        saved.restore_adam("D", &mut self.opt_d)
    }

    /// Takes rank 0's networks (parameters and buffers), and makes both optimizers
    /// average gradients over the ranks.
    fn distribute(&mut self, group: &Rc<Group>) -> Result<(), TrainError> {
        for vs in [&self.g, &self.d] {
            group.broadcast(&tensors_by_name(vs), 0)?;
        }
        self.opt_g.distribute(group.clone());
        self.opt_d.distribute(group.clone());
        Ok(())
    }

    /// Whether this rank's weights still equal rank 0's: each trained variable's sum,
    /// compared bit for bit with rank 0's (buffers are rank-local between steps: D's
    /// batch-norm statistics move in G's step, and become rank 0's again at D's next).
    fn replicas_agree(&self, group: &Group) -> Result<bool, TrainError> {
        let sums: Vec<f64> = [&self.g, &self.d]
            .iter()
            // In the order the networks were built: the same on every rank.
            .flat_map(|vs| vs.trainable_variables())
            .map(|t| t.sum(tch::Kind::Double).double_value(&[]))
            .collect();
        let theirs = Tensor::from_slice(&sums);
        group.broadcast(std::slice::from_ref(&theirs), 0)?;
        Ok(Vec::<f64>::try_from(&theirs)? == sums)
    }

    /// The networks' and the optimizers' tensors, for [`checkpoint::save`].
    fn state(&self) -> (Named, Named) {
        let mut nets = checkpoint::named("G", &self.g);
        nets.extend(checkpoint::named("D", &self.d));
        let mut adam = self.opt_g.state("G");
        adam.extend(self.opt_d.state("D"));
        (nets, adam)
    }
}

/// A recipe's networks and optimizers, in training.
pub trait Trainer {
    /// Applies the epoch's plan: learning rates, phase, frozen layers.
    fn begin_epoch(&mut self, plan: &EpochPlan);
    /// Seeds the recipe's own random streams (beside torch's) for the next step.
    fn seed_step(&mut self, seed: u64);
    /// Joins a distributed run: rank 0's networks everywhere, gradients averaged at
    /// every step.
    fn distribute(&mut self, group: &Rc<Group>) -> Result<(), TrainError>;
    /// Whether this rank's networks still equal rank 0's.
    fn replicas_agree(&self, group: &Group) -> Result<bool, TrainError>;
    /// One optimisation step on a batch (on the training device).
    fn step(&mut self, a: &Tensor, b: &Tensor) -> Result<Losses, TrainError>;
    /// B for A, as inference will compute it (no gradients): decoded at each of
    /// `temperatures` when the generator has a class head (one forward pass), else once.
    fn colorize_each(&self, a: &Tensor, temperatures: &[f64]) -> Decodings;
    /// Writes the networks and optimizer states into a checkpoint folder.
    fn save(&self, dir: &Path) -> Result<(), TrainError>;
}

/// The recipe's networks on `device`: from a checkpoint folder, or freshly initialised
/// (seeded from `config.seed`; the pretrained encoder from its ImageNet weights, a class
/// head's rebalancing from the colours of the training `pairs`).
pub fn start(
    config: &TrainConfig,
    device: Device,
    checkpoint: Option<&Path>,
    pairs: &super::loader::Pairs,
) -> Result<Box<dyn Trainer>, TrainError> {
    tch::manual_seed(config.seed as i64);
    Ok(match config.recipe {
        RecipeName::Pix2pix => Box::new(pix2pix::Pix2pix::start(config, device, checkpoint)?),
        RecipeName::Pretrained => {
            Box::new(pretrained::Pretrained::start(config, device, checkpoint, pairs)?)
        }
    })
}
