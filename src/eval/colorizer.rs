//! A trained run's generator, loaded from one of its checkpoints (`best` by default, or
//! `last`, or `epoch-N`), ready to colorize: what `colorize` and `eval` use.

use std::path::Path;

use tch::{Device, Tensor, nn};

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
        let (dir, state, note) =
            checkpoint::choose(&crate::train::run_record::run_dir(store, run), choice)?;
        let mut vs = nn::VarStore::new(device);
        let g = Generator::new(&(vs.root() / "G"), &record.config);
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

    /// B for one crop x crop input A (values in [-1, 1]): its planes, channels x crop².
    pub fn generate_one(&self, a: &[f32]) -> Vec<f32> {
        let c = self.crop as i64;
        let input = Tensor::from_slice(a).view([1, 1, c, c]).to_device(self.device);
        Vec::<f32>::try_from(self.generate(&input).to_device(Device::Cpu).flatten(0, -1))
            .unwrap_or_default()
    }
}
