//! One run's colorizer on a thread of its own, fed by a bounded queue: the model is loaded
//! once, inference never runs on the async threads, and a request finds the queue full at
//! once instead of waiting behind an unbounded backlog.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;

use image::{GrayImage, RgbImage};
use tokio::sync::{mpsc, oneshot};

use crate::eval::colorize::colorize_images;
use crate::eval::colorizer::Colorizer;
use crate::train::config::Recipe;
use crate::train::error::TrainError;

/// What the page and `GET /v1/runs` say of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunInfo {
    pub name: String,
    pub recipe: crate::train::config::Recipe,
    /// The epoch of the checkpoint served.
    pub epoch: usize,
    pub dataset: String,
    /// The side the network works at.
    pub crop: usize,
    /// The class head's default temperature (`?vividness=` sets another); absent for a
    /// run that predicts colours directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vividness: Option<f64>,
}

struct Job {
    image: GrayImage,
    /// The temperature asked for, when not the run's own.
    vividness: Option<f64>,
    reply: oneshot::Sender<Result<RgbImage, String>>,
}

/// A handle on a run's worker; clones share it. The thread ends when every handle is gone.
#[derive(Clone)]
pub struct Worker {
    pub info: RunInfo,
    /// Said to the user when `best` fell back to the last checkpoint.
    pub note: Option<String>,
    queue: mpsc::Sender<Job>,
}

fn info_of(colorizer: &Colorizer) -> RunInfo {
    RunInfo {
        name: colorizer.run.clone(),
        recipe: colorizer.record.config.recipe,
        epoch: colorizer.epoch,
        dataset: colorizer.record.dataset.clone(),
        crop: colorizer.crop,
        vividness: colorizer.vividness(),
    }
}

/// The most photos colorized as one batch.
const MAX_BATCH: usize = 4;

/// Colorizes the queue's photos until every handle is gone. Photos of one size and
/// temperature waiting together go through as one batch (up to [`MAX_BATCH`]), except for
/// pix2pix runs, whose dropout, drawn once a batch, would make a photo's colours depend on
/// its neighbours.
fn serve_queue(colorizer: &mut Colorizer, receiver: &mut mpsc::Receiver<Job>) {
    let default = colorizer.vividness();
    let batch = match colorizer.record.config.recipe {
        Recipe::Pretrained => MAX_BATCH,
        Recipe::Pix2pix => 1,
    };
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match receiver.blocking_recv() {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        // At most a batch out of the queue, so that the queue's bound still holds.
        while waiting.len() < batch
            && let Ok(job) = receiver.try_recv()
        {
            waiting.push_back(job);
        }
        // Jobs whose client gave up (timed out, went away) have nothing to colorize for.
        waiting.retain(|job| !job.reply.is_closed());
        let Some(first) = waiting.pop_front() else { continue };
        let key = (first.image.dimensions(), first.vividness);
        let mut jobs = vec![first];
        while jobs.len() < batch
            && let Some(k) =
                waiting.iter().position(|job| (job.image.dimensions(), job.vividness) == key)
        {
            jobs.extend(waiting.remove(k));
        }
        // The API admits a temperature only for a run with a class head.
        if let Some(t) = key.1.or(default) {
            let _ = colorizer.set_vividness(t);
        }
        // A panic in a batch's colorization answers that batch's requests only.
        let images: Vec<&GrayImage> = jobs.iter().map(|job| &job.image).collect();
        let colorized = AssertUnwindSafe(|| colorize_images(colorizer, &images));
        match std::panic::catch_unwind(colorized) {
            Ok(colorized) => {
                for (job, image) in jobs.into_iter().zip(colorized) {
                    let _ = job.reply.send(Ok(image));
                }
            }
            Err(_) => {
                for job in jobs {
                    let _ = job.reply.send(Err("the colorizer failed on this image".to_owned()));
                }
            }
        }
    }
}

/// The worker's queue is full.
#[derive(Debug)]
pub struct Busy;

impl Worker {
    /// Starts a run's thread, which opens its colorizer with `open` (all of a run's torch
    /// work stays on one thread: a colorizer opened on one thread and run on another ran
    /// at half speed, its OpenMP threads competing) and then serves `queue` waiting images.
    pub fn start(
        open: impl FnOnce() -> Result<Colorizer, TrainError> + Send + 'static,
        queue: usize,
    ) -> Result<Worker, TrainError> {
        let (sender, mut receiver) = mpsc::channel::<Job>(queue.max(1));
        let (opened, info) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("serve-run".into())
            .spawn(move || {
                let mut colorizer = match open() {
                    Ok(colorizer) => colorizer,
                    Err(e) => return drop(opened.send(Err(e))),
                };
                let _ = opened.send(Ok((info_of(&colorizer), colorizer.note.clone())));
                serve_queue(&mut colorizer, &mut receiver);
            })
            .expect("a thread for the run's worker");
        let (info, note) = info.recv().expect("the worker answers")?;
        Ok(Worker { info, note, queue: sender })
    }

    /// Queues `image`, to be decoded at `vividness` (the run's own when `None`); its
    /// colorization comes on the receiver.
    pub fn submit(
        &self,
        image: GrayImage,
        vividness: Option<f64>,
    ) -> Result<oneshot::Receiver<Result<RgbImage, String>>, Busy> {
        let (reply, receiver) = oneshot::channel();
        self.queue.try_send(Job { image, vividness, reply }).map_err(|_| Busy)?;
        Ok(receiver)
    }
}
