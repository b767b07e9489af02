//! `pipeline refresh`: the cron job. Runs every query file in `queries/` into one store,
//! one after another, then rebuilds each dataset they fill whose members changed.
//!
//! A failing engine, a bad query file or a failed build is reported for its dataset and
//! the others go on; only a store failure stops the run. The exit code says the worst
//! that happened (see the README): bad query file 78 > partial 3 > ok 0.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use super::print::{describe, print_summary, progress_bar, report_summary};
use super::runtime;
use crate::build::{self, Outcome};
use crate::commands::cli::RefreshArgs;
use crate::commands::exit;
use crate::config::Config;
use crate::config::query::QueryFile;
use crate::fetch::{self, Choices, Job, RunError, Session, Summary};
use crate::report::{self, Request};
use crate::store::{Store, StoreError};

/// What refresh did with one query file.
#[derive(Debug, Serialize)]
struct QueryReport {
    file: PathBuf,
    /// The fetch's summary (absent when the file could not be used).
    #[serde(flatten)]
    fetch: Option<Summary>,
    /// Why the file or its fetch failed.
    error: Option<String>,
    /// True when the error is in the file itself (exit code 78).
    bad_file: bool,
}

/// What refresh did with one dataset's build.
#[derive(Debug, Serialize)]
#[serde(tag = "build", rename_all = "kebab-case")]
enum BuildReport {
    Rebuilt {
        dataset: String,
        version: String,
        train: usize,
        test: usize,
        /// Members curation left out, by reason.
        dropped: BTreeMap<String, usize>,
    },
    UpToDate {
        dataset: String,
        version: String,
    },
    Failed {
        dataset: String,
        error: String,
    },
}

/// What `--report` did.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ReportOutcome {
    Written(crate::report::Summary),
    Failed { error: String },
}

/// The whole run: the `--json` line.
#[derive(Debug, Serialize)]
struct Report {
    queries: Vec<QueryReport>,
    builds: Vec<BuildReport>,
    /// With `--report`: the report written after the builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<ReportOutcome>,
    interrupted: bool,
    exit_code: u8,
    seconds: f64,
}

pub fn refresh(config: Config, args: RefreshArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let files = query_files(&args.queries)?;
    // Like `fetch`, `refresh` creates a store: a folder that is none becomes one.
    let store = Arc::new(Store::create(&config.store.path)?);
    let session = Session::open(&config.network)?;
    let runtime = runtime()?;

    let mut queries = Vec::new();
    for file in files {
        if session.stop.is_cancelled() {
            break;
        }
        let report = run_query(&runtime, &config, &store, &session, file)?;
        if !args.json {
            print_query(&report);
        }
        queries.push(report);
    }
    let signal = session.signal();
    let interrupted = signal.is_some();
    let builds = if interrupted { Vec::new() } else { build_all(&config, &args, &store, &queries) };
    let site = (args.report && !interrupted).then(|| write_report(&config, &store, args.json));
    let mut exit_code = exit_code(&queries, &builds, signal);
    if matches!(site, Some(ReportOutcome::Failed { .. })) {
        exit_code = exit_code.max(exit::PARTIAL);
    }
    let report = Report {
        queries,
        builds,
        report: site,
        interrupted,
        exit_code,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("report serializes"));
    } else {
        print_totals(&report);
    }
    Ok(exit_code)
}

/// Fetches what one query file asks for. Only a store failure is an error: anything else
/// goes into the report.
fn run_query(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    store: &Arc<Store>,
    session: &Session,
    file: PathBuf,
) -> Result<QueryReport, StoreError> {
    let query = match QueryFile::load(&file) {
        Ok(query) => query,
        Err(e) => {
            return Ok(QueryReport {
                file,
                fetch: None,
                error: Some(e.to_string()),
                bad_file: true,
            });
        }
    };
    // Reaching one query's top stops that query only (the context's stop is a child).
    let ctx = session.context(config.clone(), store.clone());
    let job = Job::search(config, query.query.clone(), Some(&query), Choices::default());
    let (fetch, error) =
        match runtime.block_on(fetch::run(ctx, job, crate::terminal::show_progress())) {
            Ok(summary) => (Some(summary), None),
            Err(RunError::Store(e)) => return Err(e),
            Err(e) => (None, Some(e.to_string())),
        };
    Ok(QueryReport { file, fetch, error, bad_file: false })
}

/// Builds every dataset a query added images to, each curated by its query file.
fn build_all(
    config: &Config,
    args: &RefreshArgs,
    store: &Store,
    queries: &[QueryReport],
) -> Vec<BuildReport> {
    let datasets: BTreeSet<&str> = queries
        .iter()
        .filter_map(|q| q.fetch.as_ref())
        .filter(|s| s.images > 0)
        .map(|s| s.dataset.as_str())
        .collect();
    let mut builds = Vec::new();
    for dataset in datasets {
        let curation = config.curation_for(&args.queries, dataset);
        let progress = progress_bar(dataset);
        let outcome = build::build(store, dataset, &config.build, &curation, false, &progress);
        progress.finish_and_clear();
        if !args.json {
            match &outcome {
                Ok(outcome) => println!("{}", describe(dataset, outcome, config.build.size)),
                Err(e) => println!("{dataset}: build failed: {e}"),
            }
        }
        builds.push(build_report(dataset, outcome));
    }
    builds
}

/// `--report`: the store's site, where `report` writes it; a failure is reported, not fatal.
fn write_report(config: &Config, store: &Store, json: bool) -> ReportOutcome {
    let out = config.store.report_dir();
    let written = Request::new(&config.report, &out, &[], "auto")
        .and_then(|request| report::write(store, &request, &progress_bar));
    match written {
        Ok(summary) => {
            if !json {
                report_summary(&summary);
            }
            ReportOutcome::Written(summary)
        }
        Err(e) => {
            if !json {
                println!("report failed: {e}");
            }
            ReportOutcome::Failed { error: e.to_string() }
        }
    }
}

/// The `*.toml` files of `dir`, sorted by name.
fn query_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the query folder {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!(
            "no query files in {}: add one TOML file per query (see queries/brown-bear.toml)",
            dir.display()
        );
    }
    Ok(files)
}

fn build_report(dataset: &str, outcome: Result<Outcome, build::BuildError>) -> BuildReport {
    let dataset = dataset.to_owned();
    match outcome {
        Ok(Outcome::Built { version, counts, .. }) => BuildReport::Rebuilt {
            dataset,
            version,
            train: counts.train,
            test: counts.test,
            dropped: counts.dropped,
        },
        Ok(Outcome::UpToDate { version }) => BuildReport::UpToDate { dataset, version },
        Err(e) => BuildReport::Failed { dataset, error: e.to_string() },
    }
}

/// The worst that happened: a signal (its status), then a bad query file, then anything
/// partial.
fn exit_code(queries: &[QueryReport], builds: &[BuildReport], signal: Option<u8>) -> u8 {
    let partial =
        queries.iter().any(|q| q.error.is_some() || q.fetch.as_ref().is_some_and(Summary::partial))
            || builds.iter().any(|b| matches!(b, BuildReport::Failed { .. }));
    if let Some(status) = signal {
        status
    } else if queries.iter().any(|q| q.bad_file) {
        exit::BAD_CONFIG
    } else if partial {
        exit::PARTIAL
    } else {
        exit::OK
    }
}

fn print_query(report: &QueryReport) {
    match (&report.fetch, &report.error) {
        (Some(summary), _) => print_summary(summary),
        // A file's own error already starts with its path.
        (None, Some(error)) if report.bad_file => println!("skipped: {error}"),
        (None, Some(error)) => println!("{}: failed: {error}", report.file.display()),
        (None, None) => {}
    }
}

fn print_totals(report: &Report) {
    let fetched = || report.queries.iter().filter_map(|q| q.fetch.as_ref());
    let added: usize = fetched().map(|s| s.added).sum();
    let partial = fetched().filter(|s| s.partial()).count();
    let failed = report.queries.iter().filter(|q| q.error.is_some()).count();
    let rebuilt = report.builds.iter().filter(|b| matches!(b, BuildReport::Rebuilt { .. })).count();
    println!(
        "refresh: {} query files ({partial} partial, {failed} failed), {added} images added, {rebuilt} datasets rebuilt, {:.1} s (exit {})",
        report.queries.len(),
        report.seconds,
        report.exit_code
    );
}
