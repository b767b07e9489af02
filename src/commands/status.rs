//! `pipeline status`: one row per dataset, or JSON for machines.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::store::Store;

/// One dataset in `pipeline status --json` (the format is documented in the README).
#[derive(Debug, Serialize)]
pub struct DatasetStatus {
    pub name: String,
    pub query: Option<String>,
    pub images: usize,
    pub duplicates: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    /// RFC 3339, UTC.
    pub last_fetch: Option<String>,
}

pub fn status(config: &Config, args: crate::cli::StatusArgs) -> anyhow::Result<u8> {
    let store = Store::open(&config.store.path)?;
    let mut rows = Vec::new();
    for (name, record) in store.index.datasets()? {
        rows.push(DatasetStatus {
            images: store.index.member_count(&name)?,
            query: record.query,
            duplicates: record.duplicates,
            failed: record.failures.values().sum(),
            failures: record.failures,
            last_fetch: record.last_fetch.map(|t| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
                )
                .to_string()
            }),
            name,
        });
    }
    if args.json {
        println!("{}", serde_json::json!({ "datasets": rows }));
        return Ok(crate::exit::OK);
    }
    if rows.is_empty() {
        println!(
            "no datasets yet in {}: try `pipeline fetch \"brown bear\" --top 250`",
            store.root().display()
        );
        return Ok(crate::exit::OK);
    }
    println!(
        "{:<24} {:>7} {:>10} {:>7}  {:<20}  failures",
        "dataset", "images", "duplicates", "failed", "last fetch"
    );
    for row in rows {
        let failures: Vec<String> = row.failures.iter().map(|(r, n)| format!("{r} {n}")).collect();
        println!(
            "{:<24} {:>7} {:>10} {:>7}  {:<20}  {}",
            row.name,
            row.images,
            row.duplicates,
            row.failed,
            row.last_fetch.as_deref().unwrap_or("never"),
            failures.join(", ")
        );
    }
    Ok(crate::exit::OK)
}
