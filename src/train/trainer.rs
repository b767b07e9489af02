//! The training loop: the reference pix2pix step, checkpoints, metrics and figures.
//!
//! A run lives in `store/runs/NAME/`:
//! ```text
//! config.json          the resolved TrainConfig, the dataset and its built version
//! metrics.jsonl        one line per step: epoch, step, G_GAN, G_L1, D_real, D_fake, lr, images/s
//! loss.svg             per-epoch mean losses (the paper's Figure 3), redrawn each epoch
//! samples/epoch-NNNNN.png   A | generated | B for the first test images
//! checkpoints/epoch-NNNNN/  nets.safetensors, adam.safetensors, state.json
//! ```
//! Randomness (weights, dropout, the loader's order, crops and flips) is seeded from
//! (seed, epoch), and checkpoints fall on epoch ends, so a resumed run computes exactly
//! what the uninterrupted run would have.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Reduction, Tensor};

use super::adam::Adam;
use super::config::{GanMode, TrainConfig};
use super::figures;
use super::loader::{self, LoaderConfig, Pairs};
use super::nets::pix2pix::{Discriminator, Generator, NetConfig};
use crate::dataset::{Built, DatasetError, Split};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: not a usable checkpoint: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.to_owned(), source }
}

/// `config.json` of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub dataset: String,
    pub version: String,
    pub config: TrainConfig,
}

/// `state.json` of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    pub epoch: usize,
    pub step: u64,
    /// Mean G_L1 of the epoch; the lowest marks the best checkpoint.
    pub g_l1: f64,
}

/// The losses of one step (or the mean of an epoch).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Losses {
    #[serde(rename = "G_GAN")]
    pub g_gan: f64,
    #[serde(rename = "G_L1")]
    pub g_l1: f64,
    #[serde(rename = "D_real")]
    pub d_real: f64,
    #[serde(rename = "D_fake")]
    pub d_fake: f64,
}

/// The two networks, their variables and optimizers.
pub struct Nets {
    pub g_vs: nn::VarStore,
    pub d_vs: nn::VarStore,
    pub g: Generator,
    pub d: Discriminator,
    opt_g: Adam,
    opt_d: Adam,
    config: TrainConfig,
}

impl Nets {
    /// Fresh networks, initialised from `config.seed`.
    pub fn new(config: &TrainConfig, device: Device) -> Result<Nets, TrainError> {
        tch::manual_seed(config.seed as i64);
        let net = NetConfig::of(config);
        let g_vs = nn::VarStore::new(device);
        let d_vs = nn::VarStore::new(device);
        let g = Generator::new(&(g_vs.root() / "G"), &net);
        let d = Discriminator::new(&(d_vs.root() / "D"), &net);
        let (b1, b2) = config.betas;
        let opt_g = Adam::new(&g_vs, config.lr, b1, b2)?;
        let opt_d = Adam::new(&d_vs, config.lr, b1, b2)?;
        Ok(Nets { g_vs, d_vs, g, d, opt_g, opt_d, config: config.clone() })
    }

    fn gan_loss(&self, logits: &Tensor, real: bool) -> Tensor {
        let target = if real { logits.ones_like() } else { logits.zeros_like() };
        match self.config.gan_mode {
            GanMode::Vanilla => logits.binary_cross_entropy_with_logits::<Tensor>(
                &target,
                None,
                None,
                Reduction::Mean,
            ),
            GanMode::Lsgan => logits.mse_loss(&target, Reduction::Mean),
        }
    }

    /// One pix2pix iteration (Pix2PixModel.optimize_parameters): G forward once; D step
    /// on the detached fake and the real pair, loss halved; G step against the updated D,
    /// GAN loss + lambda_L1 x L1.
    pub fn step(&mut self, a: &Tensor, b: &Tensor, lr: f64) -> Losses {
        self.opt_g.lr = lr;
        self.opt_d.lr = lr;
        let fake = self.g.forward_t(a, true);

        self.d_vs.unfreeze();
        self.opt_d.zero_grad();
        let pred_fake = self.d.forward_t(&Tensor::cat(&[a, &fake.detach()], 1), true);
        let pred_real = self.d.forward_t(&Tensor::cat(&[a, b], 1), true);
        let d_fake = self.gan_loss(&pred_fake, false);
        let d_real = self.gan_loss(&pred_real, true);
        ((&d_fake + &d_real) * 0.5).backward();
        self.opt_d.step(&self.d_vs);

        self.d_vs.freeze();
        self.opt_g.zero_grad();
        let pred_fake = self.d.forward_t(&Tensor::cat(&[a, &fake], 1), true);
        let g_gan = self.gan_loss(&pred_fake, true);
        let g_l1 = fake.l1_loss(b, Reduction::Mean) * self.config.lambda_l1;
        (&g_gan + &g_l1).backward();
        self.opt_g.step(&self.g_vs);

        let value = |t: &Tensor| t.double_value(&[]);
        Losses {
            g_gan: value(&g_gan),
            g_l1: value(&g_l1),
            d_real: value(&d_real),
            d_fake: value(&d_fake),
        }
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let mut nets: Vec<(String, Tensor)> = Vec::new();
        for (prefix, vs) in [("G", &self.g_vs), ("D", &self.d_vs)] {
            for (name, t) in vs.variables() {
                nets.push((format!("{prefix}:{name}"), t));
            }
        }
        Tensor::write_safetensors(&nets, dir.join("nets.safetensors"))?;
        let mut adam = self.opt_g.state("G");
        adam.extend(self.opt_d.state("D"));
        Tensor::write_safetensors(&adam, dir.join("adam.safetensors"))?;
        Ok(())
    }

    /// Loads a checkpoint folder written by [`Nets::save`].
    pub fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let corrupt =
            |path: &Path, reason: String| TrainError::Checkpoint { path: path.to_owned(), reason };
        let nets_path = dir.join("nets.safetensors");
        let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(&nets_path)
            .map_err(|e| corrupt(&nets_path, e.to_string()))?
            .into_iter()
            .collect();
        for (prefix, vs) in [("G", &mut self.g_vs), ("D", &mut self.d_vs)] {
            for (name, mut t) in vs.variables() {
                let source = saved
                    .get(&format!("{prefix}:{name}"))
                    .filter(|s| s.size() == t.size())
                    .ok_or_else(|| {
                        corrupt(&nets_path, format!("{prefix}:{name} is missing or misshapen"))
                    })?;
                tch::no_grad(|| t.copy_(source));
            }
        }
        let adam_path = dir.join("adam.safetensors");
        let adam: BTreeMap<String, Tensor> = Tensor::read_safetensors(&adam_path)
            .map_err(|e| corrupt(&adam_path, e.to_string()))?
            .into_iter()
            .collect();
        if !self.opt_g.restore("G", &adam) || !self.opt_d.restore("D", &adam) {
            return Err(corrupt(&adam_path, "optimizer state does not match the networks".into()));
        }
        Ok(())
    }
}

/// What `train` is asked to do.
pub struct Request<'a> {
    pub store: &'a Path,
    pub dataset: &'a str,
    pub run: &'a str,
    pub resume: bool,
    pub config: TrainConfig,
    pub device: Device,
    /// Called after each epoch with (epoch, total epochs, mean losses, images/s).
    pub on_epoch: &'a mut dyn FnMut(usize, usize, Losses, f64),
}

/// Trains (or resumes) a run to its last epoch; returns the run folder.
pub fn train(request: Request) -> Result<PathBuf, TrainError> {
    let run_dir = request.store.join("runs").join(request.run);
    let record_path = run_dir.join("config.json");
    let (record, built) = if request.resume {
        let text = fs::read(&record_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TrainError::Invalid(format!(
                "no run named {:?} to resume ({} is missing)",
                request.run,
                record_path.display()
            )),
            _ => TrainError::Io { path: record_path.clone(), source: e },
        })?;
        let record: RunRecord = serde_json::from_slice(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", record_path.display())))?;
        let built = Built::open(
            &crate::dataset::dataset_dir(request.store, &record.dataset).join(&record.version),
        )?;
        (record, built)
    } else {
        if run_dir.exists() {
            return Err(TrainError::Invalid(format!(
                "run {:?} exists already: continue it with --resume {0}, or choose another --run",
                request.run
            )));
        }
        let built = Built::latest(request.store, request.dataset)?;
        let record = RunRecord {
            dataset: request.dataset.to_owned(),
            version: built.manifest.version.clone(),
            config: request.config.clone(),
        };
        (record, built)
    };
    let config = record.config.clone();
    config.check().map_err(TrainError::Invalid)?;
    let pairs = Arc::new(Pairs::open(&built, Split::Train)?);
    if pairs.is_empty() {
        return Err(TrainError::Invalid(format!(
            "dataset {} has no training images",
            record.dataset
        )));
    }
    if config.crop > pairs.size() {
        return Err(TrainError::Invalid(format!(
            "train.crop {} is larger than the dataset's stored size {}: rebuild with --size",
            config.crop,
            pairs.size()
        )));
    }
    fs::create_dir_all(run_dir.join("checkpoints")).map_err(io(&run_dir))?;
    fs::write(&record_path, serde_json::to_vec_pretty(&record).expect("record serializes"))
        .map_err(io(&record_path))?;

    let mut nets = Nets::new(&config, request.device)?;
    let (mut first_epoch, mut step) = (1, 0u64);
    if request.resume
        && let Some((dir, state)) = latest_checkpoint(&run_dir)?
    {
        nets.load(&dir)?;
        first_epoch = state.epoch + 1;
        step = state.step;
    }
    let samples = figures::SampleSet::open(&built, config.crop, config.color)?;
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut metrics = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(io(&metrics_path))?;
    let mut history = read_epoch_means(&metrics_path);
    let loader_config = LoaderConfig {
        batch_size: config.batch_size,
        crop: config.crop,
        flip: config.flip,
        color: config.color,
        seed: config.seed,
        prefetch: 4,
    };
    for epoch in first_epoch..=config.total_epochs() {
        tch::manual_seed(config.seed as i64 + epoch as i64);
        let lr = config.lr_at(epoch);
        let started = Instant::now();
        let (mut sum, mut count, mut images) = (Losses::default(), 0.0, 0usize);
        for batch in loader::epoch(pairs.clone(), loader_config, epoch) {
            let step_started = Instant::now();
            let (a, b) = (batch.a.to_device(request.device), batch.b.to_device(request.device));
            let losses = nets.step(&a, &b, lr);
            step += 1;
            if ![losses.g_gan, losses.g_l1, losses.d_real, losses.d_fake]
                .iter()
                .all(|v| v.is_finite())
            {
                return Err(TrainError::Invalid(format!(
                    "training diverged: a loss is not finite at epoch {epoch}, step {step} ({losses:?}); \
                     the last checkpoint is intact"
                )));
            }
            let n = a.size()[0] as usize;
            images += n;
            let rate = n as f64 / step_started.elapsed().as_secs_f64();
            let line = serde_json::json!({
                "epoch": epoch, "step": step, "G_GAN": losses.g_gan, "G_L1": losses.g_l1,
                "D_real": losses.d_real, "D_fake": losses.d_fake, "lr": lr, "images_per_s": rate,
                "loader_ms": batch.assembly.as_secs_f64() * 1000.0,
            });
            writeln!(metrics, "{line}").map_err(io(&metrics_path))?;
            sum = Losses {
                g_gan: sum.g_gan + losses.g_gan,
                g_l1: sum.g_l1 + losses.g_l1,
                d_real: sum.d_real + losses.d_real,
                d_fake: sum.d_fake + losses.d_fake,
            };
            count += 1.0;
        }
        metrics.flush().map_err(io(&metrics_path))?;
        let mean = Losses {
            g_gan: sum.g_gan / count,
            g_l1: sum.g_l1 / count,
            d_real: sum.d_real / count,
            d_fake: sum.d_fake / count,
        };
        history.insert(epoch, mean);
        figures::loss_curve(&run_dir.join("loss.svg"), &history)
            .map_err(|e| TrainError::Invalid(format!("loss.svg: {e}")))?;
        samples.write_grid(
            &nets.g,
            request.device,
            &run_dir.join("samples").join(format!("epoch-{epoch:05}.png")),
        )?;
        if epoch % config.checkpoint_every.max(1) == 0 || epoch == config.total_epochs() {
            checkpoint(
                &nets,
                &run_dir,
                CheckpointState { epoch, step, g_l1: mean.g_l1 },
                config.keep_last,
            )?;
        }
        (request.on_epoch)(
            epoch,
            config.total_epochs(),
            mean,
            images as f64 / started.elapsed().as_secs_f64(),
        );
    }
    Ok(run_dir)
}

/// Per-epoch means of the losses already in `metrics.jsonl` (for the curve after a resume).
fn read_epoch_means(path: &Path) -> BTreeMap<usize, Losses> {
    let mut sums: BTreeMap<usize, (Losses, f64)> = BTreeMap::new();
    let text = fs::read_to_string(path).unwrap_or_default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let Some(epoch) = v["epoch"].as_u64() else { continue };
        let entry = sums.entry(epoch as usize).or_default();
        let get = |k: &str| v[k].as_f64().unwrap_or(0.0);
        entry.0.g_gan += get("G_GAN");
        entry.0.g_l1 += get("G_L1");
        entry.0.d_real += get("D_real");
        entry.0.d_fake += get("D_fake");
        entry.1 += 1.0;
    }
    sums.into_iter()
        .map(|(e, (s, n))| {
            (
                e,
                Losses {
                    g_gan: s.g_gan / n,
                    g_l1: s.g_l1 / n,
                    d_real: s.d_real / n,
                    d_fake: s.d_fake / n,
                },
            )
        })
        .collect()
}

/// Writes a checkpoint atomically (temp folder, then rename), then prunes: the last
/// `keep_last` and the best (lowest epoch-mean G_L1) stay.
fn checkpoint(
    nets: &Nets,
    run_dir: &Path,
    state: CheckpointState,
    keep_last: usize,
) -> Result<(), TrainError> {
    let root = run_dir.join("checkpoints");
    let partial = root.join(format!(".partial-{:05}", state.epoch));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(io(&partial))?;
    nets.save(&partial)?;
    let state_path = partial.join("state.json");
    fs::write(&state_path, serde_json::to_vec_pretty(&state).expect("state serializes"))
        .map_err(io(&state_path))?;
    for entry in fs::read_dir(&partial).map_err(io(&partial))?.flatten() {
        fs::File::open(entry.path()).and_then(|f| f.sync_all()).map_err(io(&entry.path()))?;
    }
    let done = root.join(format!("epoch-{:05}", state.epoch));
    let _ = fs::remove_dir_all(&done);
    fs::rename(&partial, &done).map_err(io(&done))?;
    let all = checkpoints(run_dir)?;
    let best = all.iter().min_by(|x, y| x.1.g_l1.total_cmp(&y.1.g_l1)).map(|(d, _)| d.clone());
    let keep_from = all.len().saturating_sub(keep_last.max(1));
    for (i, (dir, _)) in all.iter().enumerate() {
        if i < keep_from && Some(dir) != best.as_ref() {
            fs::remove_dir_all(dir).map_err(io(dir))?;
        }
    }
    Ok(())
}

/// Published checkpoints, oldest first.
fn checkpoints(run_dir: &Path) -> Result<Vec<(PathBuf, CheckpointState)>, TrainError> {
    let root = run_dir.join("checkpoints");
    let mut out = Vec::new();
    for entry in fs::read_dir(&root).map_err(io(&root))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("epoch-") {
            continue;
        }
        let path = entry.path().join("state.json");
        let text = fs::read(&path).map_err(io(&path))?;
        let state: CheckpointState = serde_json::from_slice(&text)
            .map_err(|e| TrainError::Checkpoint { path: path.clone(), reason: e.to_string() })?;
        out.push((entry.path(), state));
    }
    out.sort_by_key(|(_, s)| s.epoch);
    Ok(out)
}

/// The newest checkpoint of a run, if any.
pub fn latest_checkpoint(run_dir: &Path) -> Result<Option<(PathBuf, CheckpointState)>, TrainError> {
    Ok(checkpoints(run_dir)?.pop())
}
