//! `pipeline verify [--repair]` and `pipeline gc`: the store's upkeep.

use crate::commands::cli::{GcArgs, VerifyArgs};
use crate::commands::exit;
use crate::config::Config;
use crate::store::Store;
use crate::upkeep::{gc, verify};

pub fn verify(config: &Config, args: VerifyArgs) -> anyhow::Result<u8> {
    let store = Store::open(&config.store.path)?;
    let progress = super::print::progress_bar("verify");
    let report = verify::verify(&store, args.repair, &progress)?;
    progress.finish_and_clear();
    let code = if report.consistent() || report.repaired { exit::OK } else { exit::INCONSISTENT };
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("report serializes"));
        return Ok(code);
    }
    for problem in &report.problems {
        println!("{}{problem}", if report.repaired { "repaired: " } else { "problem: " });
    }
    println!(
        "verify: {} images ({:.1} MiB hashed), {} members, {} URLs, {} builds: {}",
        report.images,
        report.bytes as f64 / (1024.0 * 1024.0),
        report.members,
        report.urls,
        report.builds,
        match (report.problems.len(), report.repaired) {
            (0, _) => "consistent".to_owned(),
            (n, true) => format!("{n} problems repaired"),
            (n, false) => format!("{n} problems (`pipeline verify --repair` fixes them)"),
        }
    );
    if report.unreferenced_blobs > 0 || !report.leftovers.is_empty() {
        println!(
            "  harmless: {} unreferenced blobs, {} leftover partial folders{}",
            report.unreferenced_blobs,
            report.leftovers.len(),
            if report.repaired { "" } else { " (`pipeline gc` removes them)" }
        );
    }
    Ok(code)
}

pub fn gc(config: &Config, args: GcArgs) -> anyhow::Result<u8> {
    let store = Store::open(&config.store.path)?;
    let report = gc::gc(&store)?;
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("report serializes"));
    } else {
        println!(
            "gc: removed {} unused images, {} unreferenced blobs, {} old builds, {} leftover partial folders; {:.1} MiB freed",
            report.images,
            report.blobs,
            report.builds,
            report.leftovers,
            report.bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(exit::OK)
}
