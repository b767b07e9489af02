//! One run's colorizer on a thread of its own, fed by a bounded queue: the model is loaded
//! once, inference never runs on the async threads, and a request finds the queue full at
//! once instead of waiting behind an unbounded backlog.

use std::panic::AssertUnwindSafe;

use image::RgbImage;
use tokio::sync::{mpsc, oneshot};

use crate::eval::colorize::colorize_image;
use crate::eval::colorizer::Colorizer;

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
    queue: mpsc::Sender<Job>,
}

/// The worker's queue is full.
#[derive(Debug)]
pub struct Busy;

impl Worker {
    /// Starts `colorizer`'s thread with room for `queue` waiting images.
    pub fn start(colorizer: Colorizer, queue: usize) -> Worker {
        let info = RunInfo {
            name: colorizer.run.clone(),
            recipe: colorizer.record.config.recipe,
            epoch: colorizer.epoch,
            dataset: colorizer.record.dataset.clone(),
            crop: colorizer.crop,
        };
        let (sender, mut receiver) = mpsc::channel::<Job>(queue.max(1));
        std::thread::Builder::new()
            .name(format!("serve-{}", info.name))
            .spawn(move || {
                while let Some(job) = receiver.blocking_recv() {
                    // A panic in one image's colorization answers that request only.
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        colorize_image(&colorizer, &job.image)
                    }))
                    .map_err(|_| "the colorizer failed on this image".to_owned());
                    let _ = job.reply.send(result);
                }
            })
            .expect("a thread for the run's worker");
        Worker { info, queue: sender }
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
