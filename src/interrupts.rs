//! SIGINT (Ctrl-C) and SIGTERM (a Slurm time limit, `scancel`, a pod's deletion) for every
//! long command: the first signal asks the command to stop at its next safe point (fetch
//! drains what is in flight, a shard worker removes its scratch store, `train` writes a
//! resumable checkpoint); a second one, or a stop that outlasts its deadline, ends the
//! process at once. The exit status is 128 + the signal, as shells report it: 130 for
//! SIGINT, 143 for SIGTERM.
//!
//! Imports nothing of the crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::warn;

/// Whether a signal came, and which: shared with the thread that waits for them.
#[derive(Debug, Clone)]
pub struct Interrupts {
    /// 0 until a signal comes, then the exit status it asks for.
    code: Arc<AtomicU8>,
}

impl Interrupts {
    /// Listens from now on. On the first signal `stop` runs (it must not block: cancel a
    /// token, set a flag); a second signal, or `deadline` after the first, exits.
    pub fn listen(
        stop: impl FnOnce() + Send + 'static,
        deadline: Option<Duration>,
    ) -> std::io::Result<Interrupts> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let code = Arc::new(AtomicU8::new(0));
        let seen = code.clone();
        std::thread::spawn(move || {
            let Some(signal) = signals.forever().next() else { return };
            let status = 128 + signal as u8;
            seen.store(status, Ordering::SeqCst);
            let name = if signal == SIGTERM { "SIGTERM" } else { "Interrupted" };
            warn!("{name}: stopping at the next safe point (Ctrl-C again to quit now).");
            stop();
            if let Some(deadline) = deadline {
                std::thread::spawn(move || {
                    std::thread::sleep(deadline);
                    std::process::exit(i32::from(status));
                });
            }
            signals.forever().next();
            std::process::exit(i32::from(status));
        });
        Ok(Interrupts { code })
    }

    /// The exit status the signal that came asks for (130 or 143), if one came.
    pub fn code(&self) -> Option<u8> {
        Some(self.code.load(Ordering::SeqCst)).filter(|&c| c != 0)
    }
}
