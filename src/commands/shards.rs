//! The bucket-store commands: `shard-urls`, `import` of shards, `merge` (what `build` and
//! `status` do with a bucket is theirs).

use std::io::BufRead as _;
use std::path::Path;

use anyhow::{Context as _, bail};

use super::print::display;
use super::{bucket_url, runtime};
use crate::bucket::worker::{self, ShardReport, WorkerError};
use crate::bucket::{Bucket, merge as merging, plan, scratch};
use crate::commands::cli::{Command, ImportArgs, MergeArgs, ShardUrlsArgs};
use crate::commands::exit;
use crate::config::Config;
use crate::fetch::Session;

/// Refuses, before anything runs, a command that works on folder stores only.
pub fn check_bucket_command(command: &Command, bucket: &str, cache: &Path) -> anyhow::Result<()> {
    let name = match command {
        Command::Fetch(_) => "fetch",
        Command::Refresh(_) => "refresh",
        Command::Verify(_) => "verify",
        Command::Gc(_) => "gc",
        _ => return Ok(()),
    };
    bail!(
        "`{name}` works on a folder store, not on {bucket}: a bucket is filled by `shard-urls` and \
         `import --shard` workers; this machine's cache of it is the folder {} (--store it)",
        display(cache)
    )
}

pub fn shard_urls(config: &Config, args: ShardUrlsArgs) -> anyhow::Result<u8> {
    let url = bucket_url(config, "shard-urls")?;
    let source = display(&args.path);
    // Standard input (`-`) is read once, into a temporary file, and that is read after.
    let spooled = match args.path.as_os_str() == "-" {
        true => Some(spool_stdin()?),
        false => None,
    };
    let path = spooled.as_ref().map_or(args.path.as_path(), |file| file.path());
    let open = || std::fs::File::open(path).map(std::io::BufReader::new);
    let unreadable = || format!("cannot read {source}");
    let urls = plan::count_urls(open().with_context(unreadable)?).with_context(unreadable)?;
    let plan = runtime()?.block_on(async {
        let bucket = Bucket::open(&url).await?;
        plan::write(&bucket, &args.dataset, &source, open, urls, args.shards as usize).await
    })?;
    if args.json {
        let line = serde_json::json!({
            "dataset": plan.dataset, "store": url, "urls": plan.urls, "shards": plan.parts.len(),
            "parts": plan.parts,
        });
        println!("{line}");
    } else {
        println!(
            "{}: {} URLs in {} shards (0 to {}) in {url}",
            plan.dataset,
            plan.urls,
            plan.parts.len(),
            plan.parts.len() - 1
        );
    }
    Ok(exit::OK)
}

fn spool_stdin() -> anyhow::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::NamedTempFile::new().context("a temporary file for standard input")?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file).context("reading standard input")?;
    Ok(file)
}

/// `import` on a bucket store: one shard (`--shard`, or the job array's index), or the
/// shards named on standard input.
pub fn import(config: Config, args: ImportArgs) -> anyhow::Result<u8> {
    let url = bucket_url(&config, "import --shard")?;
    if let Some(path) = &args.path {
        bail!(
            "a bucket store imports shards: run `pipeline shard-urls {} --dataset {} --shards N --store {url}`, \
             then `pipeline import --dataset {} --store {url} --shard N` for each shard",
            display(path),
            args.dataset,
            args.dataset
        );
    }
    let shards: Box<dyn Iterator<Item = anyhow::Result<usize>>> = if args.shards_from_stdin {
        Box::new(std::io::stdin().lock().lines().filter_map(|line| {
            match line {
                Ok(line) if line.trim().is_empty() => None,
                Ok(line) => Some(
                    line.trim()
                        .parse()
                        .with_context(|| format!("stdin: {line:?} is not a shard number")),
                ),
                Err(e) => Some(Err(e.into())),
            }
        }))
    } else {
        let shard = plan::shard_from(args.shard, |var| std::env::var(var).ok())?;
        Box::new(std::iter::once(Ok(shard)))
    };
    let session = Session::open(&config.network)?;
    let show_progress = crate::terminal::show_progress() && !args.json && !args.shards_from_stdin;
    let rt = runtime()?;
    let bucket = rt.block_on(Bucket::open(&url))?;
    let removed = scratch::remove_dead(&std::env::temp_dir());
    if removed > 0 {
        eprintln!("removed {removed} scratch folder(s) of workers that died on this machine");
    }
    let mut code = exit::OK;
    for shard in shards {
        let shard = shard?;
        let task = worker::Task { dataset: &args.dataset, shard, redo: args.redo, show_progress };
        let result = rt.block_on(worker::run(&bucket, &config, &session, &task));
        if args.shards_from_stdin {
            // One line per shard, failed ones too: the engine's log says which to retry.
            println!("{}", shard_line(shard, &result));
            if result.is_err() {
                code = exit::ERROR;
            }
            if let Some(code) = session.signal() {
                return Ok(code);
            }
            continue;
        }
        if let Some(code) = session.signal() {
            if let Err(e) = result {
                eprintln!("{}: {e}", args.dataset);
            }
            return Ok(code);
        }
        let report = result?;
        if args.json {
            println!("{}", serde_json::to_string(&report).expect("a report serializes"));
        } else {
            print_report(&args.dataset, &report);
        }
    }
    Ok(code)
}

/// The `--shards-from-stdin` line for one shard.
fn shard_line(shard: usize, result: &Result<ShardReport, WorkerError>) -> String {
    let value = match result {
        Ok(report) => serde_json::to_value(report).expect("a report serializes"),
        Err(e) => serde_json::json!({"shard": shard, "status": "failed", "error": format!("{e}")}),
    };
    value.to_string()
}

fn print_report(dataset: &str, report: &ShardReport) {
    let s = &report.stats;
    let failures: Vec<String> = s.failures.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let failures = if failures.is_empty() { "none".to_owned() } else { failures.join(", ") };
    match report.status {
        "skipped" => println!(
            "{dataset} shard {}: already done on {} ({} images)",
            s.shard, s.host, s.images
        ),
        _ => println!(
            "{dataset} shard {}: {} images of {} URLs, {} duplicates, failures {failures}, {} new blobs, {:.1} s",
            s.shard, s.images, s.urls, s.duplicates, s.blobs_created, s.seconds
        ),
    }
}

pub fn merge(config: &Config, args: MergeArgs) -> anyhow::Result<u8> {
    let url = bucket_url(config, "merge")?;
    let distance = config.dedup.phash_distance;
    let merged = runtime()?.block_on(async {
        let bucket = Bucket::open(&url).await?;
        anyhow::Ok(merging::merge(&bucket, &args.dataset, distance).await?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&merged).expect("merge counts serialize"));
    } else {
        println!(
            "{}: {} members from {} shards ({} URLs), {} duplicates, {} failed, {:.1} s",
            merged.dataset,
            merged.members,
            merged.shards,
            merged.urls,
            merged.duplicates,
            merged.failed,
            merged.seconds
        );
    }
    Ok(exit::OK)
}
