//! A trained run's generator, loaded from one of its checkpoints (`best` by default, or
//! `last`, or `epoch-N`), ready to colorize: what `colorize` and `eval` use.

use std::path::Path;

use tch::{Device, Kind, Tensor, nn};

use super::{color, resample};
use crate::train::checkpoint::{self, Choice, Saved};
use crate::train::config::{ColorSpace, Recipe};
use crate::train::error::TrainError;
use crate::train::nets::Generator;
use crate::train::run_record::RunRecord;

pub struct Colorizer {
    /// Owns the generator's parameters.
    vs: nn::VarStore,
    g: Generator,
    pub run: String,
    pub record: RunRecord,
    /// The epoch of the checkpoint in use.
    pub epoch: usize,
    /// Side the generator works at (the run's training crop).
    pub crop: usize,
    pub color: ColorSpace,
    device: Device,
    /// Said to the user when `best` fell back to the last checkpoint.
    pub note: Option<String>,
}

impl Colorizer {
    pub fn open(
        store: &Path,
        run: &str,
        choice: Choice,
        device: Device,
    ) -> Result<Colorizer, TrainError> {
        let record = RunRecord::read(store, run)?;
        let run_dir = crate::train::run_record::run_dir(store, run);
        let (dir, state, note) =
            checkpoint::choose(&run_dir, choice, record.config.best_colorfulness)?;
        let mut vs = nn::VarStore::new(device);
        let mut g = Generator::new(&(vs.root() / "G"), &record.config);
        // A class head decodes at the temperature validation chose with this checkpoint.
        if let Some(t) = state.val.and_then(|v| v.vividness) {
            g.set_vividness(t);
        }
        // The moving average, when the run kept one, is the generator to use.
        let averaged =
            record.config.recipe == Recipe::Pretrained && record.config.pretrained.ema > 0.0;
        Saved::read_nets(&dir)?.restore(if averaged { "G_ema" } else { "G" }, &vs)?;
        // Inference needs no gradients; a traced module can only hold weights without.
        vs.freeze();
        let shape = record.config.data_shape();
        Ok(Colorizer {
            vs,
            g,
            run: run.to_owned(),
            epoch: state.epoch,
            crop: shape.crop,
            color: shape.color,
            record,
            device,
            note,
        })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Decodes the class head's colours at `vividness` (0 < T <= 1, lower nears the most
    /// likely colour); refused for a run whose generator predicts ab directly.
    pub fn set_vividness(&mut self, vividness: f64) -> Result<(), TrainError> {
        match self.g.set_vividness(vividness) {
            true => Ok(()),
            false => Err(TrainError::Invalid(format!(
                "run {}: its generator predicts colours directly (no class head), so it has \
                 no vividness to set; train with train.pretrained.head = \"classes\"",
                self.run
            ))),
        }
    }

    /// The temperature colours are decoded at, for a generator with a class head.
    pub fn vividness(&self) -> Option<f64> {
        match &self.g {
            Generator::Pretrained(g) => g.class_head().map(|head| head.vividness),
            Generator::Pix2pix(_) => None,
        }
    }

    /// B for A ([n, 1, crop, crop] on the colorizer's device).
    pub fn generate(&self, a: &Tensor) -> Tensor {
        self.g.infer(a)
    }

    /// B for A as one graph, what an exported module records (see
    /// [`Generator::infer_batch`]).
    pub fn generate_batch(&self, a: &Tensor) -> Tensor {
        self.g.infer_batch(a)
    }

    /// The generator's weights, named as in its checkpoint (`G.…`).
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }

    /// RGB (N x 3 x H x W, 0..1) of gray photos (N x 1 x H x W, 0..1, on the colorizer's
    /// device) of any size: the whole path, what an exported `colorizer.pt` holds. The
    /// photo is squashed to the network's side; its colours come back up to the photo's
    /// size, where in Lab they go onto the photo's own L*.
    /// - RGB runs: A = 2 gray - 1, RGB = (B + 1) / 2;
    /// - Lab runs: L* of the gray sRGB value, A = L*/50 - 1, a*b* = 110 B, L*a*b* -> sRGB.
    pub fn colorize(&self, gray: &Tensor) -> Tensor {
        match self.color {
            ColorSpace::Rgb => self.colorize_signal(gray),
            ColorSpace::Lab => self.colorize_signal(&color::gray_to_l(gray)),
        }
    }

    /// [`Colorizer::colorize`] of 8-bit gray photos (Uint8), what `colorize` and `serve`
    /// run, up to the last step: L* (or the gray value) is looked up in a table of the 256
    /// levels' instead of computed a pixel at a time, and a Lab run's colours come back as
    /// a*b* at the photo's size, which [`crate::photo::color::gray_ab_to_rgb8`] turns into
    /// pixels with the photo's own L*, without the tensor path's powers.
    pub fn colours_u8(&self, gray: &Tensor) -> Colours {
        let levels = Tensor::arange(256, (Kind::Float, self.device)) / 255.0;
        let table = match self.color {
            ColorSpace::Rgb => levels,
            ColorSpace::Lab => color::gray_to_l(&levels),
        };
        let signal = table.index_select(0, &gray.flatten(0, -1).to_kind(Kind::Int64));
        let signal = signal.view_as(gray);
        match self.color {
            ColorSpace::Rgb => Colours::Rgb(self.colorize_signal(&signal)),
            ColorSpace::Lab => Colours::Ab(self.ab_of(&signal)),
        }
    }

    /// The path after the first step: `signal` is the gray values (RGB runs) or their L*.
    fn colorize_signal(&self, signal: &Tensor) -> Tensor {
        match self.color {
            ColorSpace::Rgb => {
                let small = self.squashed(signal);
                let b = self.generate_batch(&(small * 2.0 - 1.0));
                resample::to_size_of(&((b + 1.0) / 2.0), signal).clamp(0.0, 1.0)
            }
            ColorSpace::Lab => color::lab_to_rgb(signal, &self.ab_of(signal)),
        }
    }

    /// a*b* (N x 2 x H x W) for L* (N x 1 x H x W), at its size.
    fn ab_of(&self, l: &Tensor) -> Tensor {
        let b = self.generate_batch(&(self.squashed(l) / 50.0 - 1.0));
        resample::to_size_of(&b, l) * 110.0
    }

    /// `signal` squashed to the network's side. Seeds libtorch first, so that a photo
    /// always gets the same colours (pix2pix keeps dropout on at inference); a traced
    /// graph does not hold the seed.
    fn squashed(&self, signal: &Tensor) -> Tensor {
        tch::manual_seed(crate::train::nets::pix2pix::INFERENCE_SEED);
        resample::to_square(signal, self.crop as i64)
    }
}

/// A batch's colours as [`Colorizer::colours_u8`] gives them.
pub enum Colours {
    /// RGB in 0..1, N x 3 x H x W (RGB runs).
    Rgb(Tensor),
    /// a*b*, N x 2 x H x W (Lab runs).
    Ab(Tensor),
}
