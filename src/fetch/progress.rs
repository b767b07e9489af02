//! The progress line: one indicatif bar fed from [`Stats`](super::Stats) by a ticker task.
//! Stages never touch it. Drawn only when the caller says so (`terminal::show_progress`).

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Context, Job};

const TICK: Duration = Duration::from_millis(150);

pub struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(ctx: Arc<Context>, job: &Job, before: usize, shown: bool) -> Progress {
        let bar = ProgressBar::new(job.top.unwrap_or(before) as u64);
        // Hidden from the start when not shown: a bar drawn once, then hidden, leaves its
        // first frames behind.
        bar.set_draw_target(match shown {
            true => ProgressDrawTarget::stderr_with_hz(8),
            false => ProgressDrawTarget::hidden(),
        });
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(job.dataset.clone());
        bar.set_position(before as u64);
        let ticking = bar.clone();
        let open_ended = job.top.is_none();
        let ticker = tokio::spawn(async move {
            loop {
                let s = &ctx.stats;
                if open_ended {
                    // Imports: the length is what the source has produced so far.
                    ticking.set_length(before as u64 + s.candidates.get());
                }
                ticking.set_position(before as u64 + s.accepted.get());
                ticking.set_message(format!(
                    "pages {} · downloaded {} · dup {} · failed {} · known {}",
                    s.pages.get(),
                    s.downloaded.get(),
                    s.duplicates.get(),
                    s.failed(),
                    s.known.get()
                ));
                tokio::time::sleep(TICK).await;
            }
        });
        Progress { bar, ticker }
    }

    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
