//! The validate stage: hashes and checks each downloaded body on the blocking pool, one
//! body per core at a time. Results leave in order, from a window of several bodies per
//! core, so one large image does not leave the other cores idle. Decodes also share one
//! memory budget, whatever the number of cores: the most a single check may allocate
//! (`images.max_pixels` x 8 bytes), each check taking what its header says it needs.

use std::cell::RefCell;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{Receiver, Sender};

use super::{Context, Item, RunError, State};
use crate::config::ImagesConfig;
use crate::photo::check::{Validator, decode_memory, max_decode_memory};

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
    let memory = Arc::new(Semaphore::new(mib(max_decode_memory(&ctx.config.images)) as usize));
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

/// Whole MiB, rounded up: the memory budget's unit.
fn mib(bytes: u64) -> u32 {
    bytes.div_ceil(1 << 20).clamp(1, u64::from(u32::MAX >> 3)) as u32
}

async fn check(
    limits: ImagesConfig,
    cpu: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    mut item: Item,
) -> Result<Item, RunError> {
    let State::Downloaded(body) = item.state else { return Ok(item) };
    let url = item.candidate.location.url().to_owned();
    // Memory first, then a core, in the same order everywhere.
    let need = mib(decode_memory(&body, &limits));
    let _memory = memory.acquire_many_owned(need).await.expect("memory semaphore never closes");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A check never asks for more than the whole budget, so it can always run, and the
    /// budget does not grow with the cores.
    #[test]
    fn checks_take_what_their_header_says_from_one_budget() {
        let limits = ImagesConfig { min_side: 16, max_pixels: 1_000_000 };
        let budget = mib(max_decode_memory(&limits));
        assert_eq!(budget, 8);
        let png = |w: u32, h: u32| {
            let mut out = std::io::Cursor::new(Vec::new());
            image::RgbImage::new(w, h).write_to(&mut out, image::ImageFormat::Png).unwrap();
            out.into_inner()
        };
        assert_eq!(decode_memory(&png(500, 250), &limits), 500 * 250 * 8);
        assert_eq!(mib(decode_memory(&png(500, 250), &limits)), 1);
        assert_eq!(mib(decode_memory(&png(4000, 4000), &limits)), budget, "capped");
        let mut jpeg = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(512, 384).write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
        assert_eq!(decode_memory(jpeg.get_ref(), &limits), 3 * 64 * 48, "1/8 scale");
        assert_eq!(decode_memory(b"not an image", &limits), 0);
        // A JPEG whose header cannot be read fails at once: it takes nothing.
        assert_eq!(decode_memory(&jpeg.get_ref()[..24], &limits), 0);
    }
}
