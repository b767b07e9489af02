//! `pipeline export-model`: a trained run handed on as files.

use crate::commands::cli::ExportModelArgs;
use crate::config::Config;

#[cfg(not(feature = "train"))]
pub fn export_model(_config: Config, _args: ExportModelArgs) -> anyhow::Result<u8> {
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
