//! Whether progress is drawn: on a terminal (stdout and stderr both), unless the user
//! asked for quiet (`-q`). Off a terminal (cron, pipes) nothing is drawn.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// `-q`: no progress and no notes, for the rest of the process.
pub fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Whether progress should be drawn at all.
pub fn show_progress() -> bool {
    !quiet() && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}
