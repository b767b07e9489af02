//! The validate stage: hashes and checks each downloaded body on the blocking pool, one
//! body per core at a time. Results leave in order, from a window of several bodies per
//! core, so one large image does not leave the other cores idle. Decodes also share one
//! memory budget (`photo::budget`), whatever the number of cores.

use std::cell::RefCell;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{Receiver, Sender};

use super::{Context, Item, RunError, State};
use crate::photo::budget::{self, DecodeBudget};
use crate::photo::check::Validator;
use crate::photo::config::ImagesConfig;

thread_local! {
    /// One validator (decoder state, hasher) per blocking-pool thread.
    static VALIDATOR: RefCell<Option<Validator>> = const { RefCell::new(None) };
}

/// Bodies in the ordered window, per core.
const WINDOW_PER_CORE: usize = 4;

pub async fn run(
    ctx: Arc<Context>,
    mut rx: Receiver<Item>,
    tx: Sender<Item>,
) -> Result<(), RunError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cpu = Arc::new(Semaphore::new(cores));
    let memory = budget::global().clone();
    let incoming = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
    let mut done = incoming
        .map(|item| check(ctx.config.images.clone(), cpu.clone(), memory.clone(), item))
        .buffered(cores * WINDOW_PER_CORE);
    while let Some(item) = done.next().await {
        if tx.send(item?).await.is_err() {
            break;
        }
    }
    Ok(())
}

async fn check(
    limits: ImagesConfig,
    cpu: Arc<Semaphore>,
    memory: DecodeBudget,
    mut item: Item,
) -> Result<Item, RunError> {
    let State::Downloaded(body) = item.state else { return Ok(item) };
    let url = item.candidate.location.url().to_owned();
    // Memory first, then a core, in the same order everywhere.
    let _memory = memory.take(&body).await;
    let _core = cpu.acquire_owned().await.expect("cpu semaphore never closes");
    item.state = tokio::task::spawn_blocking(move || {
        let hash = blake3::hash(&body).to_hex().to_string();
        let verdict = VALIDATOR.with_borrow_mut(|slot| {
            slot.get_or_insert_with(|| Validator::new(limits)).check(&body)
        });
        match verdict {
            Ok(info) => State::Checked { hash, info, body },
            Err(r) => State::Failed { error: r.into(), at: url },
        }
    })
    .await
    .map_err(|e| RunError::Stage { stage: "validate", message: e.to_string() })?;
    Ok(item)
}
