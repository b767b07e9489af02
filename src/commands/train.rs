//! `pipeline train`, `colorize` and `eval`.

use crate::commands::cli::{ColorizeArgs, EvalArgs, TrainArgs};
use crate::config::Config;

#[cfg(not(feature = "train"))]
pub(super) fn without_train() -> anyhow::Result<u8> {
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

/// The runs named, each at the chosen checkpoint; notes (a `best` that fell back) go to
/// stderr.
#[cfg(feature = "train")]
fn open_runs(
    config: &Config,
    runs: &[String],
    choice: crate::train::choice::Choice,
    device: &str,
) -> anyhow::Result<Vec<crate::eval::colorizer::Colorizer>> {
    use crate::eval::colorizer::Colorizer;
    use crate::train::device;
    let device = device::pick(device).map_err(anyhow::Error::msg)?;
    runs.iter()
        .map(|run| {
            let colorizer = Colorizer::open(&config.store.path, run, choice, device)?;
            if let Some(note) = &colorizer.note {
                eprintln!("note: {note}");
            }
            Ok(colorizer)
        })
        .collect()
}

#[cfg(feature = "train")]
fn splits(arg: crate::commands::cli::SplitArg) -> Vec<crate::dataset::Split> {
    use crate::dataset::Split;
    match arg {
        crate::commands::cli::SplitArg::Train => vec![Split::Train],
        crate::commands::cli::SplitArg::Test => vec![Split::Test],
        crate::commands::cli::SplitArg::All => vec![Split::Train, Split::Test],
    }
}

#[cfg(feature = "train")]
pub fn colorize(config: Config, args: ColorizeArgs) -> anyhow::Result<u8> {
    use crate::eval::colorize;
    let mut colorizers = open_runs(&config, &args.run, args.checkpoint, &args.device)?;
    if let Some(t) = args.vividness {
        for colorizer in &mut colorizers {
            colorizer.set_vividness(t).map_err(|e| super::exit::usage(e.to_string()))?;
        }
    }
    let (inputs, side_by_side) = match &args.dataset {
        Some(dataset) => {
            super::pull_build(&config, dataset)?;
            let built = crate::dataset::Built::latest(&config.store.path, dataset)?;
            (colorize::dataset_inputs(&config.store.path, &built, &splits(args.split))?, true)
        }
        None => (colorize::file_inputs(&args.images)?, args.side_by_side),
    };
    let progress = super::print::progress_bar("colorize");
    let written = colorize::colorize(&colorizers, &inputs, &args.out, side_by_side, &progress)?;
    progress.finish_and_clear();
    if args.json {
        let line = serde_json::json!({ "out": args.out, "written": written });
        println!("{line}");
    } else {
        println!("colorized {} images into {}", written.len(), args.out.display());
    }
    Ok(crate::commands::exit::OK)
}

#[cfg(feature = "train")]
pub fn eval(config: Config, args: EvalArgs) -> anyhow::Result<u8> {
    use crate::eval;
    use crate::eval::colorizer::Colorizer;
    use crate::train::error::TrainError;
    let mut colorizers = open_runs(&config, &args.run, args.checkpoint, &args.device)?;
    if !args.vividness.is_empty() && colorizers.iter().all(|c| c.vividness().is_none()) {
        let why = "--vividness: none of the runs has a class head to decode (train with \
                   train.pretrained.head = \"classes\")";
        return Err(super::exit::usage(why));
    }
    super::pull_build(&config, &args.dataset)?;
    let built = crate::dataset::Built::latest(&config.store.path, &args.dataset)?;
    let splits = splits(args.split);
    let classifier = match (crate::curate::classifier(&config.curate))() {
        Ok(classifier) => Some(classifier),
        Err(e) => {
            eprintln!("note: no ImageNet classifier agreement: {e}");
            None
        }
    };
    let progress = super::print::progress_bar("eval");
    let counts = &built.manifest.counts;
    let per_run: usize = splits
        .iter()
        .map(|s| if *s == crate::dataset::Split::Train { counts.train } else { counts.test })
        .sum();
    // A run with a class head is scored at each temperature asked for; one without, once.
    let temperatures = |colorizer: &Colorizer| -> Vec<Option<f64>> {
        match colorizer.vividness().is_none() || args.vividness.is_empty() {
            true => vec![None],
            false => args.vividness.iter().copied().map(Some).collect(),
        }
    };
    let scorings: usize = colorizers.iter().map(|c| temperatures(c).len()).sum();
    progress.set_length((per_run * scorings) as u64);
    let mut evaluations = Vec::new();
    for colorizer in &mut colorizers {
        for t in temperatures(colorizer) {
            if let Some(t) = t {
                colorizer.set_vividness(t)?;
            }
            let mut each = |_: eval::Scored| -> Result<(), TrainError> {
                progress.inc(1);
                Ok(())
            };
            let judge = classifier.as_deref();
            evaluations.push(eval::evaluate(colorizer, &built, &splits, judge, &mut each)?);
        }
    }
    progress.finish_and_clear();
    if args.json {
        for e in &evaluations {
            let mut line = serde_json::json!({ "dataset": args.dataset, "splits": splits });
            if let (Some(line), serde_json::Value::Object(e)) =
                (line.as_object_mut(), serde_json::to_value(e).expect("evaluation serializes"))
            {
                line.extend(e);
            }
            println!("{line}");
        }
    } else {
        print!("{}", eval::table(&evaluations));
    }
    Ok(crate::commands::exit::OK)
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

/// The run a `train` command means, and whether it goes on.
#[cfg(feature = "train")]
fn resolve_run(args: &TrainArgs) -> anyhow::Result<(String, bool)> {
    // clap made sure: a DATASET unless --resume, and a run named with --dist.
    let (run, resume) = match (&args.resume, &args.run, &args.dataset) {
        (Some(run), _, _) => (run.clone(), true),
        (None, Some(run), _) => (run.clone(), false),
        (None, None, dataset) => {
            let dataset = dataset.as_deref().unwrap_or_default();
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            let digits: String = now.chars().filter(char::is_ascii_digit).collect();
            (format!("{dataset}-{}-{}", &digits[..8], &digits[8..14]), false)
        }
    };
    crate::dataset::check_name(&run)
        .map_err(|allowed| anyhow::anyhow!("run name {run:?}: {allowed}"))?;
    Ok((run, resume))
}

/// The settings a run trains with: pipeline.toml's for a new run, the run's own for a
/// resumed one; then the recipe (new runs only) and the length (`--epochs`, `--minutes`)
/// the command line gives. With a note when a resumed run's length changes.
#[cfg(feature = "train")]
fn train_config(
    config: &Config,
    args: &TrainArgs,
    run: &str,
    resume: bool,
) -> anyhow::Result<(crate::train::config::TrainConfig, Option<String>)> {
    use anyhow::bail;
    let mut train = match resume {
        true => crate::train::run_record::RunRecord::read(&config.store.path, run)?.config,
        false => config.train.clone(),
    };
    if let Some(recipe) = args.recipe {
        if resume && recipe != train.recipe {
            bail!("run {run} trains the {:?} recipe: a run's recipe is fixed", train.recipe);
        }
        train.recipe = recipe;
    }
    let was = (train.total_epochs(), train.max_minutes);
    if let Some(epochs) = args.epochs {
        train.set_total_epochs(epochs);
        // Epochs asked for on the command line are epochs, not proportions of the
        // config's budget; with --minutes too, they are.
        train.max_minutes = None;
    }
    if let Some(minutes) = args.minutes {
        train.max_minutes = Some(minutes);
    }
    let length = |(epochs, minutes): (usize, Option<f64>)| match minutes {
        Some(minutes) => format!("{minutes} minutes"),
        None => format!("{epochs} epochs"),
    };
    let now = (train.total_epochs(), train.max_minutes);
    let note = (resume && now != was)
        .then(|| format!("note: run {run} goes on to {} (was {})", length(now), length(was)));
    Ok((train, note))
}

#[cfg(feature = "train")]
pub fn train(config: Config, args: TrainArgs) -> anyhow::Result<u8> {
    use anyhow::Context as _;

    use crate::train::trainer;
    use crate::train::{device, dist};

    with_active_omp_workers()?;
    let (run, resume) = resolve_run(&args)?;
    if let Some(dataset) = &args.dataset {
        super::pull_build(&config, dataset)?;
    }
    let launch = args
        .dist
        .then(|| dist::Launch::from_env(|var| std::env::var(var).ok(), &run))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let leader = launch.as_ref().is_none_or(|l| l.rank == 0);
    let (train, note) = train_config(&config, &args, &run, resume)?;
    if let Some(note) = note.filter(|_| leader) {
        eprintln!("{note}");
    }
    let device = match (device::pick(&args.device).map_err(anyhow::Error::msg)?, &launch) {
        (tch::Device::Cuda(_), Some(launch)) => tch::Device::Cuda(launch.local_rank),
        (device, _) => device,
    };
    // Held for the whole run (by rank 0, the one that writes it): a second `train
    // --resume` of it, or gc tidying its checkpoints, waits for the next time.
    let _lock =
        leader.then(|| crate::train::run_record::lock(&config.store.path, &run)).transpose()?;
    let quiet = !crate::terminal::show_progress() || !leader;
    let rendezvous = match &launch {
        Some(launch) => Some(dist::Rendezvous::join(launch, DIST_TIMEOUT)?),
        None => None,
    };
    if !quiet {
        let ranks = launch.as_ref().map_or(String::new(), |l| format!(", rank 0 of {}", l.world));
        eprintln!("training {run} ({:?} recipe) on {device:?}{ranks}", train.recipe);
    }
    let bar = step_bar(quiet);
    let (mut last_epoch, mut best_epoch) = (None, None);
    let mut report = |r: &trainer::EpochReport| {
        last_epoch = Some(r.epoch);
        if r.best {
            best_epoch = Some(r.epoch);
        }
        if !quiet {
            bar.println(epoch_line(r));
        }
    };
    let on_step = step_progress(&bar, train.total_epochs(), train.max_minutes.is_some());
    // SIGINT or SIGTERM: a resumable checkpoint at the next step boundary, then exit
    // 130 or 143 (a second signal exits at once).
    let interrupts = crate::interrupts::Interrupts::listen(|| {}, None)
        .context("listening for SIGINT and SIGTERM")?;
    let trained = trainer::train(trainer::Request {
        store: &config.store.path,
        dataset: args.dataset.as_deref().unwrap_or_default(),
        run: &run,
        resume,
        config: train,
        device,
        dist: rendezvous,
        on_epoch: &mut report,
        on_step: &on_step,
        stop: &|| interrupts.code(),
    })
    .with_context(|| format!("run {run}"))?;
    bar.finish_and_clear();
    let epochs = (last_epoch, best_epoch);
    Ok(announce_end(&run, &args, trained, launch.as_ref(), leader, epochs))
}

/// Says how run `run` ended (one JSON line with `--json`), and the exit code: a stopped
/// run's signal code, else 0. `epochs`: the last and the best epoch trained.
#[cfg(feature = "train")]
fn announce_end(
    run: &str,
    args: &TrainArgs,
    trained: crate::train::trainer::Trained,
    launch: Option<&crate::train::dist::Launch>,
    leader: bool,
    (last_epoch, best_epoch): (Option<usize>, Option<usize>),
) -> u8 {
    use crate::train::trainer::Ended;

    if args.json && leader {
        let (status, epoch) = match trained.ended {
            Ended::Finished => ("finished", last_epoch),
            Ended::Complete { epochs } => ("complete", Some(epochs)),
            Ended::Stopped(s) => ("stopped", Some(s.epoch)),
        };
        let line = serde_json::json!({
            "run": run, "dir": trained.dir, "dataset": args.dataset, "status": status,
            "epoch": epoch, "best_epoch": best_epoch,
        });
        println!("{line}");
    }
    match (trained.ended, launch) {
        (Ended::Stopped(stopped), _) => {
            if leader {
                eprintln!(
                    "run {run}: stopped in epoch {} after {} batches, checkpointed: continue \
                     with `pipeline train --resume {run}`",
                    stopped.epoch, stopped.batches
                );
            }
            return stopped.status;
        }
        (Ended::Complete { epochs }, _) => eprintln!(
            "run {run} has trained its {epochs} epochs: nothing left to train (--epochs N \
             goes on to N)"
        ),
        (Ended::Finished, Some(l)) if l.rank > 0 => {
            println!("run {run}: rank {} of {} done", l.rank, l.world);
        }
        (Ended::Finished, _) if !args.json => println!("run {run}: {}", trained.dir.display()),
        (Ended::Finished, _) => {}
    }
    crate::commands::exit::OK
}

/// Moves `bar` with each step: over the whole run's steps when its length is epochs
/// (`total_epochs`), over an epoch's under a budget.
#[cfg(feature = "train")]
fn step_progress(
    bar: &indicatif::ProgressBar,
    total_epochs: usize,
    budgeted: bool,
) -> impl Fn(crate::train::trainer::StepReport) + '_ {
    move |s| {
        let (done, all) = match budgeted {
            false => ((s.epoch - 1) * s.batches + s.batch, total_epochs * s.batches),
            true => (s.batch, s.batches),
        };
        bar.set_length(all as u64);
        bar.set_position(done as u64);
        bar.set_message(format!("epoch {}", s.epoch));
    }
}

/// The training progress bar: steps, rate and time left, as tqdm's; hidden when quiet.
#[cfg(feature = "train")]
fn step_bar(quiet: bool) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if quiet {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    let style = "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} steps, {per_sec}, {eta} left";
    bar.set_style(ProgressStyle::with_template(style).expect("valid template"));
    bar
}

/// How long a rank waits for the others, at the rendezvous and in each collective (rank 0
/// validates and checkpoints while the others wait); a rank that dies is noticed at once.
#[cfg(feature = "train")]
const DIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// One line of progress per epoch: where the run is, its losses and validation scores.
#[cfg(feature = "train")]
fn epoch_line(r: &crate::train::trainer::EpochReport) -> String {
    let mut line = match (r.total_epochs, r.budget) {
        (Some(total), _) => format!("epoch {}/{total}", r.epoch),
        (None, Some(budget)) => format!(
            "epoch {} ({:.1}/{:.0} min)",
            r.epoch,
            r.elapsed.as_secs_f64() / 60.0,
            budget.as_secs_f64() / 60.0
        ),
        (None, None) => format!("epoch {}", r.epoch),
    };
    line += &format!(" [{}]:", crate::train::metrics_log::phase_name(r.phase));
    let l = &r.losses;
    let named = [
        ("G_GAN", l.g_gan),
        ("G_L1", Some(l.g_l1)),
        ("G_CE", l.g_ce),
        ("D_real", l.d_real),
        ("D_fake", l.d_fake),
    ];
    for (name, value) in named {
        if let Some(v) = value {
            line += &format!(" {name} {v:.3}");
        }
    }
    if let Some(v) = &r.val {
        line += &format!(
            "; val CIEDE2000 {:.2} PSNR {:.2} colour {:.2}{}",
            v.ciede2000,
            v.psnr,
            v.colorfulness_ratio,
            if r.best { " (best)" } else { "" }
        );
    }
    line + &format!(", {:.1} images/s", r.images_per_s)
}
