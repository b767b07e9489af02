//! `pipeline report`: the store as a static website (see `crate::report`).

use super::print::{progress_bar, report_summary};
use crate::commands::cli::ReportArgs;
use crate::config::Config;
use crate::report::{self, Request};
use crate::store::Store;

pub fn report(mut config: Config, args: ReportArgs) -> anyhow::Result<u8> {
    let store = Store::open(&config.store.path)?;
    if !args.cross_domain.is_empty() {
        config.report.cross_domain = args.cross_domain.clone();
    }
    let out = args.out.clone().unwrap_or_else(|| config.store.report_dir());
    let request = Request::new(&config.report, &out, &args.run, &args.device)?;
    let summary = report::write(&store, &request, &progress_bar)?;
    if args.json {
        println!("{}", serde_json::to_string(&summary).expect("summary serializes"));
    } else {
        report_summary(&summary);
    }
    Ok(crate::commands::exit::OK)
}
