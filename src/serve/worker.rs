//! One run's colorizer on a thread of its own, fed by a bounded queue: the model is loaded
//! once, inference never runs on the async threads, and a request finds the queue full at
//! once instead of waiting behind an unbounded backlog.

use std::panic::AssertUnwindSafe;

use image::RgbImage;
use tokio::sync::{mpsc, oneshot};

use crate::eval::colorize::colorize_image;
use crate::eval::colorizer::Colorizer;
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
}

struct Job {
    image: RgbImage,
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
                let colorizer = match open() {
                    Ok(colorizer) => colorizer,
                    Err(e) => return drop(opened.send(Err(e))),
                };
                let _ = opened.send(Ok((info_of(&colorizer), colorizer.note.clone())));
                while let Some(job) = receiver.blocking_recv() {
                    // Its client gave up (timed out, went away): nothing to colorize for.
                    if job.reply.is_closed() {
                        continue;
                    }
                    // A panic in one image's colorization answers that request only.
                    let colorized = AssertUnwindSafe(|| colorize_image(&colorizer, &job.image));
                    let result = std::panic::catch_unwind(colorized)
                        .map_err(|_| "the colorizer failed on this image".to_owned());
                    let _ = job.reply.send(result);
                }
            })
            .expect("a thread for the run's worker");
        let (info, note) = info.recv().expect("the worker answers")?;
        Ok(Worker { info, note, queue: sender })
    }

    /// Queues `image`; its colorization comes on the receiver.
    pub fn submit(
        &self,
        image: RgbImage,
    ) -> Result<oneshot::Receiver<Result<RgbImage, String>>, Busy> {
        let (reply, receiver) = oneshot::channel();
        self.queue.try_send(Job { image, reply }).map_err(|_| Busy)?;
        Ok(receiver)
    }
}
