//! `pipeline train`, `colorize` and `eval`.

use crate::cli::{ColorizeArgs, EvalArgs, TrainArgs};
use crate::config::Config;

#[cfg(not(feature = "train"))]
fn without_train() -> anyhow::Result<u8> {
    anyhow::bail!(
        "this pipeline was built without the `train` feature: build it with \
         `eval \"$(scripts/libtorch)\" && cargo build --release --features train` (scripts/run does)"
    )
}

#[cfg(not(feature = "train"))]
pub fn train(_config: Config, _args: TrainArgs) -> anyhow::Result<u8> {
    without_train()
}

#[cfg(not(feature = "train"))]
pub fn colorize(_config: Config, _args: ColorizeArgs) -> anyhow::Result<u8> {
    without_train()
}

#[cfg(not(feature = "train"))]
pub fn eval(_config: Config, _args: EvalArgs) -> anyhow::Result<u8> {
    without_train()
}

#[cfg(feature = "train")]
pub fn colorize(config: Config, args: ColorizeArgs) -> anyhow::Result<u8> {
    use crate::train::{device, infer};
    let device = device::pick(&args.device).map_err(anyhow::Error::msg)?;
    let colorizer = infer::Colorizer::open(&config.store.path, &args.run, device)?;
    let written = match &args.dataset {
        Some(dataset) => {
            let built = crate::dataset::Built::latest(&config.store.path, dataset)?;
            infer::colorize_dataset(&colorizer, &built, &args.out)?
        }
        None => infer::colorize_files(&colorizer, &args.images, &args.out, args.side_by_side)?,
    };
    println!("colorized {} images into {}", written.len(), args.out.display());
    Ok(crate::exit::OK)
}

#[cfg(feature = "train")]
pub fn eval(config: Config, args: EvalArgs) -> anyhow::Result<u8> {
    use crate::dataset::Split;
    use crate::train::{device, infer};
    let device = device::pick(&args.device).map_err(anyhow::Error::msg)?;
    let colorizer = infer::Colorizer::open(&config.store.path, &args.run, device)?;
    let built = crate::dataset::Built::latest(&config.store.path, &args.dataset)?;
    let splits = match args.split {
        crate::cli::SplitArg::Train => vec![Split::Train],
        crate::cli::SplitArg::Test => vec![Split::Test],
        crate::cli::SplitArg::All => vec![Split::Train, Split::Test],
    };
    let evaluation = infer::evaluate(&colorizer, &built, &splits)?;
    if args.json {
        let json = serde_json::json!({
            "run": args.run, "dataset": args.dataset, "splits": splits, "images": evaluation.images,
            "model": evaluation.model, "baseline": evaluation.baseline,
        });
        println!("{json}");
    } else {
        print!("{}", infer::table(&evaluation));
    }
    Ok(crate::exit::OK)
}

/// Re-executes this process with `OMP_WAIT_POLICY=ACTIVE` unless the variable is set.
///
/// Why: libgomp reads it once, when it is loaded, before `main`. With its default (spin a
/// while, then sleep) a training step measured about 30% slower inside `pipeline train`
/// (0.096 s vs 0.074 s per step at 64 px, batch 8, 2 cores): the many small parallel ops of
/// a step keep waking sleeping workers. Active waiting matches PyTorch's step rate here.
#[cfg(feature = "train")]
fn with_active_omp_workers() -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OMP_WAIT_POLICY", "ACTIVE")
        .exec();
    Err(anyhow::Error::from(error).context("re-executing with OMP_WAIT_POLICY=ACTIVE"))
}

#[cfg(feature = "train")]
pub fn train(config: Config, args: TrainArgs) -> anyhow::Result<u8> {
    use anyhow::{Context as _, bail};

    use crate::train::{device, trainer};

    with_active_omp_workers()?;

    let mut train = config.train.clone();
    if let Some(epochs) = args.epochs {
        if epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        train.epochs = epochs - epochs / 2;
        train.epochs_decay = epochs / 2;
    }
    let device = device::pick(&args.device).map_err(anyhow::Error::msg)?;
    let (run, resume) = match (&args.resume, &args.run) {
        (Some(run), _) => (run.clone(), true),
        (None, Some(run)) => (run.clone(), false),
        (None, None) => {
            let Some(dataset) = &args.dataset else { bail!("name the DATASET to train on") };
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            let digits: String = now.chars().filter(char::is_ascii_digit).collect();
            (format!("{dataset}-{}-{}", &digits[..8], &digits[8..14]), false)
        }
    };
    if !resume && args.dataset.is_none() {
        bail!("name the DATASET to train on");
    }
    crate::query::check_dataset_name(&run)
        .map_err(|allowed| anyhow::anyhow!("run name {run:?}: {allowed}"))?;
    // Held for the whole run: a second `train --resume` of it, or gc tidying its
    // checkpoints, waits for the next time.
    let _lock = crate::store::lock_run(&config.store.path, &run)?;
    let quiet = !crate::fetch::show_progress();
    if !quiet {
        eprintln!("training on {device:?}");
    }
    let mut report = |epoch: usize, total: usize, l: trainer::Losses, rate: f64| {
        if !quiet {
            eprintln!(
                "epoch {epoch}/{total}: G_GAN {:.3} G_L1 {:.3} D_real {:.3} D_fake {:.3}, {rate:.1} images/s",
                l.g_gan, l.g_l1, l.d_real, l.d_fake
            );
        }
    };
    let dir = trainer::train(trainer::Request {
        store: &config.store.path,
        dataset: args.dataset.as_deref().unwrap_or_default(),
        run: &run,
        resume,
        config: train,
        device,
        on_epoch: &mut report,
    })
    .with_context(|| format!("run {run}"))?;
    println!("run {run}: {}", dir.display());
    Ok(crate::exit::OK)
}
