//! `pipeline report`: the store as a static website (see `crate::report`).

use std::path::{Path, PathBuf};

use super::progress_bar;
use crate::commands::cli::ReportArgs;
use crate::config::Config;
use crate::report::{self, Summary};
use crate::store::Store;

pub fn report(mut config: Config, args: ReportArgs) -> anyhow::Result<u8> {
    let store = Store::open(&config.store.path)?;
    if !args.cross_domain.is_empty() {
        config.report.cross_domain = args.cross_domain.clone();
    }
    let out = args.out.clone().unwrap_or_else(|| default_out(&config));
    let summary = write(&store, &config, &out, &args.run, &args.device)?;
    if args.json {
        println!("{}", serde_json::to_string(&summary).expect("summary serializes"));
    } else {
        print_summary(&summary);
    }
    Ok(crate::commands::exit::OK)
}

/// STORE/report.
pub fn default_out(config: &Config) -> PathBuf {
    config.store.path.join("report")
}

/// Writes the report of the open `store` into `out` (`refresh --report` too).
pub fn write(
    store: &Store,
    config: &Config,
    out: &Path,
    runs: &[String],
    device: &str,
) -> anyhow::Result<Summary> {
    #[cfg(feature = "train")]
    let device = crate::train::device::pick(device).map_err(anyhow::Error::msg)?;
    #[cfg(not(feature = "train"))]
    let _ = device;
    let request = report::Request {
        out,
        runs,
        config: &config.report,
        #[cfg(feature = "train")]
        device,
    };
    Ok(report::write(store, &request, &progress_bar)?)
}

pub fn print_summary(s: &Summary) {
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
