//! Opening a run for training: a new one on its dataset's latest build, or a resumed one
//! from its record and newest checkpoint; its ranks agreeing on it; its data, networks,
//! log, schedule and loader; and where it starts (or that it has nothing left to train).

use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::checkpoint::{self, CheckpointState, Unfinished};
use super::config::TrainConfig;
use super::dist::Group;
use super::error::TrainError;
use super::loader::{CenterCrops, LoaderConfig, Pairs};
use super::metrics_log::{MetricsLog, Opened};
use super::recipes::{self, Trainer};
use super::request::Request;
use super::run_record::{self, RunRecord, RunRecordError};
use super::schedule::Schedule;
use crate::dataset::{Built, Split};

/// Images in each epoch's sample grid.
const SAMPLES: usize = 4;

/// A run opened for training: everything the loop reads and writes.
pub(super) struct Run {
    pub dir: PathBuf,
    pub config: TrainConfig,
    pub group: Option<Rc<Group>>,
    pub recipe: Box<dyn Trainer>,
    pub data: Data,
    /// Rank 0's metrics log (the others write nothing).
    pub log: Option<Opened>,
    pub schedule: Schedule,
    pub loader: LoaderConfig,
    pub start: Start,
}

impl Run {
    /// Opens the run `request` names: its record (written by rank 0), its ranks' group
    /// (once they agree on what they train), its data and networks, where it starts.
    pub fn open(request: &mut Request) -> Result<Run, TrainError> {
        let dir = run_record::run_dir(request.store, request.run);
        let (mut record, built) = open_record(request, &dir)?;
        let group = match request.dist.take() {
            Some(rendezvous) => Some(Rc::new(rendezvous.agree(&settings(request, &record))?)),
            None => None,
        };
        let leader = group.as_ref().is_none_or(|g| g.is_leader());
        let ranks = group.as_ref().map_or(1, |g| g.world);
        if request.resume && record.ranks.unwrap_or(1) != ranks && leader {
            eprintln!(
                "note: run {} trained on {} rank(s) and goes on with {ranks}: each step now \
                 sees {ranks} batches of {}",
                request.run,
                record.ranks.unwrap_or(1),
                record.config.data_shape().batch_size
            );
        }
        record.device = Some(super::device::name(request.device));
        record.ranks = Some(ranks);
        let config = record.config.clone();
        config.check().map_err(|e| TrainError::Invalid(e.to_string()))?;
        let schedule = Schedule::new(&config);
        let resumed = if request.resume { checkpoint::resume_point(&dir)? } else { None };
        let start = Start::of(resumed.as_ref().map(|(_, state)| state));
        start.check_length(request.run, &schedule)?;
        let data = Data::open(&built, &config)?;
        let from = resumed.as_ref().map(|(dir, _)| dir.as_path());
        let mut recipe = recipes::start(&config, request.device, from, &data.pairs)?;
        if let Some(group) = &group {
            recipe.distribute(group)?;
        }
        if leader {
            fs::create_dir_all(dir.join("checkpoints")).map_err(crate::durable::at(&dir))?;
            record.write(request.store, request.run)?;
        }
        let log =
            if leader { Some(MetricsLog::open(&dir, start.epoch, start.step)?) } else { None };
        let shape = config.data_shape();
        let loader = LoaderConfig {
            batch_size: shape.batch_size,
            crop: shape.crop,
            flip: config.flip,
            color: shape.color,
            seed: config.seed,
            prefetch: 4,
            rank: group.as_ref().map_or((0, 1), |g| (g.rank, g.world)),
        };
        Ok(Run { dir, config, group, recipe, data, log, schedule, loader, start })
    }

    pub fn ranks(&self) -> usize {
        self.group.as_ref().map_or(1, |g| g.world)
    }

    /// Whether the run has trained its whole length already (a resumed run whose last
    /// checkpoint ends it): the epochs it trained.
    pub fn complete(&self) -> Option<usize> {
        let trained = self.start.epoch - 1;
        let done = match self.schedule.budget() {
            None => trained >= self.schedule.total_epochs(),
            Some(budget) => trained > 0 && self.start.before >= budget,
        };
        (done && self.start.unfinished.is_none()).then_some(trained)
    }
}

/// The record of the run `request` names and the build it trains on: a resumed run's
/// saved ones (its settings as the command resolved them: its own, with the length it was
/// given), or new ones on the dataset's latest build.
fn open_record(request: &Request, dir: &Path) -> Result<(RunRecord, Built), TrainError> {
    if request.resume {
        let mut record = RunRecord::read(request.store, request.run).map_err(|e| match e {
            RunRecordError::Missing { .. } => {
                TrainError::Invalid(format!("no run named {:?} to resume", request.run))
            }
            other => other.into(),
        })?;
        record.config = request.config.clone();
        let built = Built::open(
            &crate::dataset::dataset_dir(request.store, &record.dataset).join(&record.version),
        )?;
        return Ok((record, built));
    }
    if dir.exists() {
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
        device: None,
        ranks: None,
    };
    Ok((record, built))
}

/// What the ranks of a distributed run must agree on before they train together.
fn settings(request: &Request, record: &RunRecord) -> serde_json::Value {
    serde_json::json!({
        "run": request.run,
        "resume": request.resume,
        "dataset": record.dataset,
        "version": record.version,
        "train": record.config,
        "pipeline": env!("CARGO_PKG_VERSION"),
    })
}

/// Where a run (re)starts: its first epoch, the batches of it already done, the step
/// count and training time before.
pub(super) struct Start {
    pub epoch: usize,
    pub unfinished: Option<Unfinished>,
    pub step: u64,
    pub before: Duration,
}

impl Start {
    fn of(resumed: Option<&CheckpointState>) -> Start {
        match resumed {
            None => Start { epoch: 1, unfinished: None, step: 0, before: Duration::ZERO },
            Some(state) => Start {
                // An unfinished epoch goes on; a finished one is followed by the next.
                epoch: if state.unfinished.is_some() { state.epoch } else { state.epoch + 1 },
                unfinished: state.unfinished,
                step: state.step,
                before: Duration::from_secs_f64(state.elapsed_s),
            },
        }
    }

    /// Refuses a run in epochs shorter than what it has trained.
    fn check_length(&self, run: &str, schedule: &Schedule) -> Result<(), TrainError> {
        let trained = self.epoch - 1 + usize::from(self.unfinished.is_some());
        let total = schedule.total_epochs();
        if schedule.budget().is_none() && total < trained {
            return Err(TrainError::Invalid(format!(
                "run {run} has trained {trained} epochs: --epochs {total} would end it before \
                 that (give at least {trained})"
            )));
        }
        Ok(())
    }
}

/// What a run trains on (the train split less the held-out validation share), validates
/// on (center crops of that share) and shows in its sample grids.
pub(super) struct Data {
    pub pairs: Arc<Pairs>,
    pub val: CenterCrops,
    pub samples: CenterCrops,
}

impl Data {
    fn open(built: &Built, config: &TrainConfig) -> Result<Data, TrainError> {
        let shape = config.data_shape();
        let held_out = |id: &str| Split::is_validation(id, config.val_fraction);
        let pairs = Arc::new(Pairs::open_where(built, Split::Train, |id| !held_out(id))?);
        if pairs.is_empty() {
            return Err(TrainError::Invalid(format!(
                "dataset {} has no training images",
                built.manifest.dataset
            )));
        }
        if shape.crop > pairs.size() {
            return Err(TrainError::Invalid(format!(
                "the crop {} is larger than the dataset's stored size {}: rebuild with --size",
                shape.crop,
                pairs.size()
            )));
        }
        let val_pairs = Pairs::open_where(built, Split::Train, held_out)?;
        let val = CenterCrops::new(&val_pairs, 0..val_pairs.len(), shape.crop, shape.color);
        let samples = {
            let mut shown = Pairs::open(built, Split::Test)?;
            if shown.is_empty() {
                shown = Pairs::open(built, Split::Train)?;
            }
            CenterCrops::new(&shown, 0..shown.len().min(SAMPLES), shape.crop, shape.color)
        };
        Ok(Data { pairs, val, samples })
    }
}
