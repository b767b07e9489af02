//! `pipeline export-model` and `pipeline serve`: a trained run handed on, as files or over
//! HTTP.

use crate::commands::cli::{ExportModelArgs, ServeArgs};
use crate::config::Config;

#[cfg(not(feature = "train"))]
pub fn export_model(_config: Config, _args: ExportModelArgs) -> anyhow::Result<u8> {
    super::train::without_train()
}

#[cfg(not(feature = "train"))]
pub fn serve(_config: Config, _args: ServeArgs) -> anyhow::Result<u8> {
    super::train::without_train()
}

#[cfg(feature = "train")]
pub fn export_model(config: Config, args: ExportModelArgs) -> anyhow::Result<u8> {
    use anyhow::Context as _;
    let device = crate::train::device::pick(&args.device).map_err(anyhow::Error::msg)?;
    let cross_domain = match args.cross_domain.is_empty() {
        true => config.report.cross_domain.clone(),
        false => args.cross_domain.clone(),
    };
    let exported = crate::model::export(&crate::model::Request {
        store: &config.store.path,
        run: &args.run,
        choice: args.checkpoint,
        cross_domain: &cross_domain,
        out: &args.out,
        device,
    })
    .with_context(|| format!("run {}", args.run))?;
    if let Some(note) = &exported.note {
        eprintln!("note: {note}");
    }
    for s in &exported.scores {
        let e = &s.evaluation;
        println!(
            "{} {}: CIEDE2000 {:.2} (gray {:.2}), {} images",
            s.dataset, s.splits, e.model.ciede2000, e.baseline.ciede2000, e.images
        );
    }
    println!(
        "exported run {} (epoch {}) into {}: {}",
        args.run,
        exported.epoch,
        args.out.display(),
        exported
            .files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(crate::commands::exit::OK)
}

/// A worker for each run `serve` is asked for, or for every run of the store that has a
/// checkpoint, each with room for `queue` waiting images.
#[cfg(feature = "train")]
fn workers(config: &Config, args: &ServeArgs) -> anyhow::Result<Vec<crate::serve::worker::Worker>> {
    use crate::eval::colorizer::Colorizer;
    use crate::serve::worker::Worker;
    let device = crate::train::device::pick(&args.device).map_err(anyhow::Error::msg)?;
    let store = config.store.path.clone();
    let choice = args.checkpoint;
    let start = |run: &str| {
        let (store, run) = (store.clone(), run.to_owned());
        Worker::start(move || Colorizer::open(&store, &run, choice, device), args.queue)
    };
    let mut workers = Vec::new();
    if args.run.is_empty() {
        for (run, _) in crate::durable::subfolders(&crate::train::run_record::runs_dir(&store))? {
            match start(&run) {
                Ok(worker) => workers.push(worker),
                Err(e) => eprintln!("note: not serving run {run}: {e}"),
            }
        }
        anyhow::ensure!(
            !workers.is_empty(),
            "no trained run in {} to serve: train one first",
            store.display()
        );
    } else {
        for run in &args.run {
            workers.push(start(run).map_err(|e| anyhow::anyhow!("run {run}: {e}"))?);
        }
    }
    for note in workers.iter().filter_map(|w| w.note.as_ref()) {
        eprintln!("note: {note}");
    }
    Ok(workers)
}

#[cfg(feature = "train")]
pub fn serve(config: Config, args: ServeArgs) -> anyhow::Result<u8> {
    use anyhow::Context as _;
    anyhow::ensure!(args.queue > 0, "--queue must be at least 1");
    anyhow::ensure!(args.timeout > 0.0 && args.timeout.is_finite(), "--timeout must be above 0");
    let workers = workers(&config, &args)?;
    let names: Vec<String> = workers.iter().map(|w| w.info.name.clone()).collect();
    let limits = crate::serve::Limits {
        queue: args.queue,
        timeout: std::time::Duration::from_secs_f64(args.timeout),
        max_body: config.network.max_bytes,
        images: config.images.clone(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    let _interrupts = crate::interrupts::Interrupts::listen(move || token.cancel(), None)
        .context("listening for SIGINT and SIGTERM")?;
    super::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        let addr = listener.local_addr()?;
        println!("serving {} on http://{addr}/ (Ctrl-C stops)", names.join(", "));
        crate::serve::serve(listener, workers, limits, stop.cancelled()).await?;
        eprintln!("stopped: every request in flight was answered");
        anyhow::Ok(())
    })?;
    Ok(crate::commands::exit::OK)
}
