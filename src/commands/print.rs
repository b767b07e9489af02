//! What more than one command prints: a path, a progress bar (hidden off a terminal), a
//! fetch's summary, a build's outcome, a report's summary.

use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::build::Outcome;
use crate::fetch::Summary;
use crate::printable::printable;

/// A path as messages show it.
pub fn display(path: &Path) -> String {
    path.display().to_string()
}

/// A progress bar counting images, labelled `prefix`, hidden off a terminal.
pub fn progress_bar(prefix: &str) -> ProgressBar {
    if !crate::terminal::show_progress() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:.bold} [{elapsed_precise}] {wide_bar} {pos}/{len} images",
        )
        .expect("valid template"),
    );
    bar.set_prefix(prefix.to_owned());
    bar
}

/// The text form of a fetch's summary: counts, then what stopped it short, then a few
/// failures (their text escaped: it comes from outside).
pub fn print_summary(summary: &Summary) {
    print!("{summary}");
    if !summary.complete() && summary.engine_failures.is_empty() {
        println!(
            "  the engines had no more results: {} of {} images",
            summary.images,
            summary.top.unwrap_or(0)
        );
    }
    for example in &summary.failure_examples {
        println!("  failed: {}", printable(example));
    }
}

/// One line saying what a build of `dataset` did.
pub fn describe(dataset: &str, outcome: &Outcome, size: u32) -> String {
    match outcome {
        Outcome::UpToDate { version } => format!("{dataset}: up to date ({version})"),
        Outcome::Built { version, counts, elapsed } => {
            let total = counts.train + counts.test;
            let rate = total as f64 / elapsed.as_secs_f64().max(1e-9);
            let dropped: Vec<String> =
                counts.dropped.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
            let dropped = if dropped.is_empty() { "none".to_owned() } else { dropped.join(", ") };
            format!(
                "{dataset}: built {version}: {} train, {} test, {} skipped, left out {dropped}, {size}x{size} px, {:.1} s ({rate:.0} images/s)",
                counts.train,
                counts.test,
                counts.skipped,
                elapsed.as_secs_f64()
            )
        }
    }
}

/// What `report` wrote, and what it could not show.
pub fn report_summary(s: &crate::report::Summary) {
    println!(
        "report: {} ({} datasets, {} runs; {} pages, {} changed; thumbnails {} made, {} cached)",
        s.out.join("index.html").display(),
        s.datasets,
        s.runs,
        s.pages,
        s.pages_written,
        s.thumbnails_made,
        s.thumbnails_cached
    );
    for problem in &s.problems {
        println!("  note: {problem}");
    }
}
