//! One memory budget for the process's image decodes, whoever runs them (fetch's
//! validation, a bucket pull, and through the preprocessor build, label and report): the
//! most a single decode may allocate (`images.max_pixels` x 8 bytes), each decode taking
//! what its header says it needs, so that the budget holds whatever the number of cores.
//! Async stages wait for it with `take`, thread pools with `take_blocking`. There is one a
//! process ([`global`]), sized from the config when a command starts ([`install`]).

use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::check::{decode_memory, max_decode_memory};
use crate::photo::config::ImagesConfig;

/// Held while a decode runs; dropping it returns its share of the budget.
pub type Permit = OwnedSemaphorePermit;

/// A budget shared by clones.
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    limits: ImagesConfig,
    mib: Arc<Semaphore>,
}

static GLOBAL: OnceLock<DecodeBudget> = OnceLock::new();

/// Sizes the process's budget from the config's `images` settings; once, before any
/// decode (a later call keeps the first).
pub fn install(limits: &ImagesConfig) {
    let _ = GLOBAL.set(DecodeBudget::new(limits));
}

/// The process's budget: the installed one, else the default settings'.
pub fn global() -> &'static DecodeBudget {
    GLOBAL.get_or_init(|| DecodeBudget::new(&ImagesConfig::default()))
}

impl DecodeBudget {
    fn new(limits: &ImagesConfig) -> DecodeBudget {
        let total = mib(max_decode_memory(limits)) as usize;
        DecodeBudget { limits: limits.clone(), mib: Arc::new(Semaphore::new(total)) }
    }

    /// The settings it was sized from.
    pub fn limits(&self) -> &ImagesConfig {
        &self.limits
    }

    /// Waits until a validating decode of `bytes` (`check::Validator`) fits.
    pub async fn take(&self, bytes: &[u8]) -> Permit {
        self.take_bytes(decode_memory(bytes, &self.limits)).await
    }

    /// Waits until `bytes` of decoding fit (at most the whole budget is asked for).
    pub async fn take_bytes(&self, bytes: u64) -> Permit {
        let need = mib(bytes.min(max_decode_memory(&self.limits)));
        self.mib.clone().acquire_many_owned(need).await.expect("the budget never closes")
    }

    /// `take_bytes`, from a thread that is not async (a rayon worker).
    pub fn take_blocking(&self, bytes: u64) -> Permit {
        futures::executor::block_on(self.take_bytes(bytes))
    }
}

/// Whole MiB, rounded up: the budget's unit.
fn mib(bytes: u64) -> u32 {
    bytes.div_ceil(1 << 20).clamp(1, u64::from(u32::MAX >> 3)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check never asks for more than the whole budget, so it can always run, and the
    /// budget does not grow with the cores.
    #[test]
    fn decodes_take_what_their_header_says_from_one_budget() {
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

    #[test]
    fn a_thread_pool_waits_for_what_an_async_stage_holds() {
        let limits = ImagesConfig { min_side: 16, max_pixels: 1_000_000 };
        let budget = DecodeBudget::new(&limits);
        let mut big = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(1000, 1000).write_to(&mut big, image::ImageFormat::Png).unwrap();
        let held = futures::executor::block_on(budget.take(big.get_ref()));
        let (tx, rx) = std::sync::mpsc::channel();
        let other = budget.clone();
        let waiter = std::thread::spawn(move || {
            let _permit = other.take_blocking(1);
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err(), "it waits");
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("then it runs");
        waiter.join().unwrap();
    }
}
