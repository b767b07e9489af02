//! The validate stage: hashes and checks each downloaded body on the blocking pool, one
//! body per core in flight, in order.

use std::cell::RefCell;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc::{Receiver, Sender};

use super::{Context, Item, RunError, State};
use crate::config::ImagesConfig;
use crate::validate::Validator;

thread_local! {
    /// One validator (decoder state, hasher) per blocking-pool thread.
    static VALIDATOR: RefCell<Option<Validator>> = const { RefCell::new(None) };
}

pub async fn run(
    ctx: Arc<Context>,
    mut rx: Receiver<Item>,
    tx: Sender<Item>,
) -> Result<(), RunError> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let incoming = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
    let mut done = incoming.map(|item| check(ctx.config.images.clone(), item)).buffered(workers);
    while let Some(item) = done.next().await {
        if tx.send(item?).await.is_err() {
            break;
        }
    }
    Ok(())
}

async fn check(limits: ImagesConfig, mut item: Item) -> Result<Item, RunError> {
    let State::Downloaded(body) = item.state else { return Ok(item) };
    let url = item.candidate.url.clone();
    item.state = tokio::task::spawn_blocking(move || {
        let hash = blake3::hash(&body).to_hex().to_string();
        let verdict = VALIDATOR.with_borrow_mut(|slot| {
            slot.get_or_insert_with(|| Validator::new(limits)).check(&body)
        });
        match verdict {
            Ok(info) => State::Checked { hash, info, body },
            Err(r) => State::Failed {
                reason: r.reason().into(),
                detail: format!("{url}: {}", r.to_string().trim_end()),
                retry: false,
            },
        }
    })
    .await
    .map_err(|e| RunError::Stage { stage: "validate", message: e.to_string() })?;
    Ok(item)
}
