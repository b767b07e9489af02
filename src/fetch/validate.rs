//! The validate stage: hashes and checks each downloaded body on its own threads, one a
//! core, each keeping its validator (decoder state, hasher). Bodies wait for them in a
//! queue, so a thread that finishes one starts the next at once, with no round trip
//! through the async workers in between (while those were busy downloading, that round
//! trip left a core without a body for a fifth of a run). Results leave in order, from a window of several bodies per
//! core, so one large image does not leave the other cores idle. Decodes also share one
//! memory budget (`photo::budget`), whatever the number of cores.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio::sync::oneshot;

use super::{Context, Item, RunError, State};
use crate::photo::budget::{self, Permit};
use crate::photo::check::Validator;
use crate::photo::config::ImagesConfig;

/// Bodies in the ordered window, per core.
const WINDOW_PER_CORE: usize = 4;

/// One body for a validating thread, and where its verdict goes.
struct Job {
    body: Bytes,
    url: String,
    /// Its share of the decode budget, held until the check ends.
    memory: Permit,
    verdict: oneshot::Sender<State>,
}

pub async fn run(
    ctx: Arc<Context>,
    mut rx: Receiver<Item>,
    tx: Sender<Item>,
) -> Result<(), RunError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let window = cores * WINDOW_PER_CORE;
    let (jobs, queue) = mpsc::channel(window);
    let queue = Arc::new(Mutex::new(queue));
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (queue, limits) = (queue.clone(), ctx.config.images.clone());
            tokio::task::spawn_blocking(move || validate_queued(&queue, limits))
        })
        .collect();
    let incoming = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
    let mut done = incoming.map(|item| check(&jobs, item)).buffered(window);
    while let Some(item) = done.next().await {
        if tx.send(item?).await.is_err() {
            break;
        }
    }
    // Closing the queue ends the threads once they finish what they hold.
    drop(done);
    drop(jobs);
    for thread in threads {
        thread.await.map_err(stopped)?;
    }
    Ok(())
}

/// Queues `item`'s body for a validating thread and waits for the verdict.
async fn check(jobs: &mpsc::Sender<Job>, mut item: Item) -> Result<Item, RunError> {
    let State::Downloaded(body) = item.state else { return Ok(item) };
    let url = item.candidate.location.url().to_owned();
    let memory = budget::global().take(&body).await;
    let (verdict, received) = oneshot::channel();
    let job = Job { body, url, memory, verdict };
    jobs.send(job).await.map_err(stopped)?;
    item.state = received.await.map_err(stopped)?;
    Ok(item)
}

/// A validating thread: checks queued bodies until the queue closes.
fn validate_queued(queue: &Mutex<mpsc::Receiver<Job>>, limits: ImagesConfig) {
    let validator = Validator::new(limits);
    loop {
        // The lock is held only while waiting for the next body, never during a check.
        let next = queue.lock().expect("a validating thread panicked").blocking_recv();
        let Some(job) = next else { return };
        let Job { body, url, memory, verdict } = job;
        let hash = blake3::hash(&body).to_hex().to_string();
        let state = match validator.check(&body) {
            Ok(info) => State::Checked { hash, info, body },
            Err(r) => State::Failed { error: r.into(), at: url },
        };
        drop(memory);
        // The stage may have stopped waiting (the run is ending): nothing to tell.
        let _ = verdict.send(state);
    }
}

/// A validating thread that is gone (it panicked): the stage cannot go on.
fn stopped(e: impl std::fmt::Display) -> RunError {
    RunError::Stage { stage: "validate", message: format!("a validating thread stopped: {e}") }
}
