//! Command-line arguments (clap derive): what the user typed, before the config is applied.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::dataset::curation::CurateConfig;
use crate::engines::EngineName;
use crate::train::choice::Choice;

/// `--version`: the crate's version, the commit it was built from and its features.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PIPELINE_COMMIT"),
    ", features: ",
    env!("PIPELINE_FEATURES"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    version = VERSION,
    about = "Image search -> deduplicated dataset -> paired A/B shards -> pix2pix colorization"
)]
#[command(
    after_help = "Exit codes: 0 ok; 1 error; 2 usage; 3 partial (some engines failed and --top was not reached; for refresh, also a failed query or build; for merge, shards not done); \
65 store inconsistent (verify); 75 store busy (another pipeline process holds the store); 77 a bucket store refused the keys; 78 bad config or query file, or a bucket store's bucket, plan or shard missing; 130 interrupted."
)]
pub struct Cli {
    /// Config file; built-in defaults apply when the default file is absent.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store: a folder (overrides store.path), or a bucket, s3://BUCKET/PREFIX (endpoint,
    /// region and keys from the AWS_* environment variables).
    #[arg(long, global = true, value_name = "DIR|s3://…", value_parser = store)]
    pub store: Option<String>,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars and no notes on stderr; results and errors still print.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Search the engines for QUERY and store the top N accepted, unique images.
    Fetch(FetchArgs),
    /// Add images from a folder (recursively) or a text file of http(s) URLs, one a line;
    /// with a bucket store, one shard of a plan (--shard, or the job array's index).
    Import(ImportArgs),
    /// Cut a URL list into shards in a bucket store, for `import --shard` workers run by
    /// Slurm job arrays, Kubernetes Indexed Jobs or Spark.
    ShardUrls(ShardUrlsArgs),
    /// Decide a sharded dataset's members over every finished shard (near duplicates across
    /// shards, best rank first), as one import of the whole list would.
    Merge(MergeArgs),
    /// Run every query file in queries/, then rebuild the datasets that changed (for cron).
    Refresh(RefreshArgs),
    /// Show each dataset: images, duplicates skipped, failures by reason, last fetch; for a
    /// bucket store, each planned dataset's shards, merge and latest build.
    Status(StatusArgs),
    /// Check that the index, the blobs and the built datasets agree; --repair fixes them.
    Verify(VerifyArgs),
    /// Delete what nothing uses: unreferenced blobs, old builds, partial leftovers.
    Gc(GcArgs),
    /// Turn datasets into paired A/B tensor shards (every changed dataset by default),
    /// curated: gray, tinted and off-topic images left out, leaking test splits refused.
    Build(BuildArgs),
    /// Label images for curation: color statistics and the top-5 ImageNet classes, stored
    /// once per image (needs the `train` feature).
    Label(LabelArgs),
    /// What a build of DATASET would leave out and why, without building.
    Curate(CurateArgs),
    /// Write a built dataset in another layout: pix2pix, webdataset or folders.
    Export(ExportArgs),
    /// Train the pix2pix colorizer on a built dataset (needs the `train` feature).
    Train(TrainArgs),
    /// Colorize images (or a whole built dataset) with a trained run.
    Colorize(ColorizeArgs),
    /// Score a run on a dataset split: PSNR, SSIM, colorfulness, CIEDE2000, beside the
    /// do-nothing baseline.
    Eval(EvalArgs),
    /// Write the store as a static website: datasets as galleries, runs with their curves,
    /// samples and scores, runs side by side (opens from disk, no server).
    Report(ReportArgs),
    /// Hand a trained run on: TorchScript (colorizer.pt), safetensors with config.json, and
    /// a model card with its scores (needs the `train` feature).
    ExportModel(ExportModelArgs),
    /// Serve trained runs over HTTP: a page to colorize a photo, and POST /v1/colorize
    /// (needs the `train` feature).
    Serve(ServeArgs),
    /// Print a shell completion script: `pipeline completions bash > /etc/bash_completion.d/pipeline`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `pipeline man > pipeline.1; man ./pipeline.1`.
    Man,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A trained run to serve (repeatable) [default: every run of the store].
    #[arg(long, value_parser = name)]
    pub run: Vec<String>,
    /// Which checkpoint of each: best, last or epoch-N.
    #[arg(long, default_value = "best", value_parser = Choice::parse)]
    pub checkpoint: Choice,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    #[arg(long, default_value = "auto", value_parser = device)]
    pub device: String,
    /// Requests handled at once (reading, decoding, queued, colorizing); past it, 503.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Seconds a request may take, its upload included; past it, 408.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
}

#[derive(Debug, clap::Args)]
pub struct ExportModelArgs {
    /// The trained run (store/runs/RUN).
    #[arg(long, value_parser = name)]
    pub run: String,
    /// Which checkpoint: best, last or epoch-N.
    #[arg(long, default_value = "best", value_parser = Choice::parse)]
    pub checkpoint: Choice,
    /// The folder to write (absent, empty, or an earlier export, which is replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Also score the model on this dataset, whole, for its card (repeatable) [default:
    /// report.cross_domain].
    #[arg(long, value_parser = name)]
    pub cross_domain: Vec<String>,
    /// Where the module is traced and the scores made: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu", value_parser = device)]
    pub device: String,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Output folder [default: STORE/report].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only this run (repeat for several; their side-by-side pages compare just them)
    /// [default: every run].
    #[arg(long, value_parser = name)]
    pub run: Vec<String>,
    /// Also colorize and score every run on this dataset, whole, as the paper's polar
    /// bears (repeatable) [default: report.cross_domain].
    #[arg(long, value_parser = name)]
    pub cross_domain: Vec<String>,
    /// Where runs colorize what they are scored on: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto", value_parser = device)]
    pub device: String,
    /// Print the summary as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ColorizeArgs {
    /// The trained run (store/runs/RUN); repeat to compare runs side by side.
    #[arg(long, value_parser = name, required = true)]
    pub run: Vec<String>,
    /// Which checkpoint: best (lowest validation CIEDE2000 among those colourful enough),
    /// last, or epoch-N.
    #[arg(long, default_value = "best", value_parser = Choice::parse)]
    pub checkpoint: Choice,
    /// Image files, color or gray (color ones are grayscaled first).
    #[arg(required_unless_present = "dataset")]
    pub images: Vec<PathBuf>,
    /// Colorize the stored originals of this dataset's latest build instead (side by side).
    #[arg(long, value_parser = name, conflicts_with = "images")]
    pub dataset: Option<String>,
    /// With --dataset: which of its splits.
    #[arg(long, value_enum, default_value = "all", requires = "dataset")]
    pub split: SplitArg,
    #[arg(long)]
    pub out: PathBuf,
    /// Write gray | colorized | original, like the paper's figures (always with several
    /// runs: gray | each run | original).
    #[arg(long)]
    pub side_by_side: bool,
    /// For runs with a class head: the annealed mean's temperature, above 0 and at most 1
    /// (lower nears the most likely colour; by default the one validation chose with the
    /// checkpoint).
    #[arg(long, value_parser = vividness)]
    pub vividness: Option<f64>,
    #[arg(long, default_value = "auto", value_parser = device)]
    pub device: String,
    /// Print the result as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The trained run; repeat to score runs side by side.
    #[arg(long, value_parser = name, required = true)]
    pub run: Vec<String>,
    /// Which checkpoint: best, last or epoch-N.
    #[arg(long, default_value = "best", value_parser = Choice::parse)]
    pub checkpoint: Choice,
    #[arg(long, value_parser = name)]
    pub dataset: String,
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// For runs with a class head: score at each of these temperatures (comma-separated,
    /// each above 0 and at most 1), to see the trade-off between error and colour.
    #[arg(long, value_parser = vividness, value_delimiter = ',')]
    pub vividness: Vec<f64>,
    /// One JSON line per run (and temperature).
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = "auto", value_parser = device)]
    pub device: String,
}

/// A folder, or an `s3://` bucket; another URL is refused rather than made a folder.
fn store(s: &str) -> Result<String, String> {
    match s.split_once("://") {
        None => Ok(s.to_owned()),
        Some(("s3", _)) => crate::store::config::BucketUrl::parse(s)
            .map(|_| s.to_owned())
            .map_err(|why| format!("not a bucket URL ({why}); expected s3://BUCKET[/PREFIX]")),
        Some(_) => {
            Err("only s3://BUCKET[/PREFIX] buckets are supported; give a folder otherwise".into())
        }
    }
}

/// An annealed-mean temperature: above 0, at most 1.
fn vividness(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 1.0 => Ok(t),
        _ => Err("a temperature above 0 and at most 1".into()),
    }
}

/// A dataset or run name, refused here when it would not make a safe folder name.
fn name(s: &str) -> Result<String, String> {
    crate::dataset::check_name(s).map(|()| s.to_owned()).map_err(str::to_owned)
}

/// Text with something in it besides spaces.
fn not_blank(s: &str) -> Result<String, String> {
    match s.trim().is_empty() {
        true => Err("it is empty".into()),
        false => Ok(s.to_owned()),
    }
}

/// A number of minutes above 0.
fn minutes(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if m > 0.0 && m.is_finite() => Ok(m),
        _ => Err("expected a number of minutes above 0".into()),
    }
}

/// Where torch runs: auto, cpu, cuda or cuda:N (whether it is there is found later).
fn device(s: &str) -> Result<String, String> {
    let index = s.strip_prefix("cuda:").map(|n| n.parse::<usize>().is_ok());
    match matches!(s, "auto" | "cpu" | "cuda") || index == Some(true) {
        true => Ok(s.to_owned()),
        false => Err("expected auto, cpu, cuda or cuda:N".into()),
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SplitArg {
    Train,
    Test,
    /// Both splits.
    All,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("named").args(["run", "resume"])))]
pub struct TrainArgs {
    /// The dataset to train on (its latest build).
    #[arg(value_parser = name, required_unless_present = "resume")]
    pub dataset: Option<String>,
    /// pix2pix (the paper's, from scratch) or pretrained (an ImageNet encoder, L1 then GAN)
    /// [default: train.recipe].
    #[arg(long, value_enum)]
    pub recipe: Option<crate::train::config::Recipe>,
    /// Total epochs, in two halves: pix2pix at the full then a decaying learning rate,
    /// pretrained L1 alone then GAN [default: the config's]. Lifts train.max_minutes;
    /// with --minutes too, the epochs are proportions of the budget.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub epochs: Option<usize>,
    /// A budget: end at the first epoch boundary past this many minutes, the schedule
    /// spread over them [default: train.max_minutes].
    #[arg(long, value_parser = minutes)]
    pub minutes: Option<f64>,
    /// Name of the run folder under store/runs (default: DATASET-UTCTIME, e.g. bears-20261204-061500).
    #[arg(long, value_parser = name, conflicts_with = "resume")]
    pub run: Option<String>,
    /// Continue the named run from its last checkpoint.
    #[arg(long, value_parser = name, value_name = "RUN")]
    pub resume: Option<String>,
    /// auto (CUDA when libtorch's CUDA library loads and a GPU is there), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto", value_parser = device)]
    pub device: String,
    /// Data-parallel: one of several ranks (torch's c10d, Gloo), as the launcher says:
    /// torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, or srun's
    /// SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID. train.batch_size is per rank; a CUDA
    /// rank takes GPU LOCAL_RANK. Every rank needs the same run: --run or --resume.
    #[arg(long, requires = "named")]
    pub dist: bool,
    /// Print the run's folder, how it ended and its best epoch as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Datasets to build [default: every dataset whose members or settings changed].
    #[arg(value_parser = name)]
    pub datasets: Vec<String>,
    /// Stored side in pixels (overrides build.size).
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=4096))]
    pub size: Option<u32>,
    /// Rebuild even when up to date (the result is byte-identical).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Bucket stores: do this part of the work, as task N of a job array [default:
    /// $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX].
    #[arg(long)]
    pub shard: Option<usize>,
    /// Bucket stores: how many tasks share the work [default: $SLURM_ARRAY_TASK_COUNT].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub shards: Option<usize>,
    /// Print one JSON line per dataset (its version, counts, whether it was built).
    #[arg(long)]
    pub json: bool,
}

/// Curation rules on the command line, over the dataset's query file and pipeline.toml.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleArgs {
    /// Keep only images with this ImageNet class (name or synonym) in their top k; repeat
    /// for any of several [default: curate.require of the query file or pipeline.toml].
    #[arg(long, value_name = "CLASS")]
    pub require: Vec<String>,
    /// What to do with test images that nearly duplicate training images [default:
    /// curate.on_leak, refuse].
    #[arg(long, value_enum)]
    pub on_leak: Option<crate::dataset::curation::OnLeak>,
    /// Keep only images under this licence (`CC0-1.0`, `CC-BY-4.0`, `PDM`, ...); repeat
    /// for any of several [default: curate.licenses, none: every image].
    #[arg(long = "license", visible_alias = "licence", value_name = "ID")]
    pub licenses: Vec<String>,
    /// Folder of query files whose `[curate]` tables apply to their datasets.
    #[arg(long, value_name = "DIR", default_value = "queries")]
    pub queries: PathBuf,
}

impl RuleArgs {
    /// How `dataset` is curated: pipeline.toml's and its query file's rules, then these.
    pub fn rules(&self, config: &crate::config::Config, dataset: &str) -> CurateConfig {
        let mut rules = config.curation_for(&self.queries, dataset);
        if !self.require.is_empty() {
            rules.require = self.require.clone();
        }
        if let Some(on_leak) = self.on_leak {
            rules.on_leak = on_leak;
        }
        if !self.licenses.is_empty() {
            rules.licenses = self.licenses.clone();
        }
        rules
    }
}

#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    /// Datasets whose members to label [default: all].
    #[arg(value_parser = name)]
    pub datasets: Vec<String>,
    /// Print one JSON line per dataset.
    #[arg(long)]
    pub json: bool,
    /// Bucket stores: do this part of the work, as task N of a job array [default:
    /// $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX].
    #[arg(long)]
    pub shard: Option<usize>,
    /// Bucket stores: how many tasks share the work [default: $SLURM_ARRAY_TASK_COUNT].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub shards: Option<usize>,
    /// Folder of query files whose `[curate]` tables apply to their datasets.
    #[arg(long, value_name = "DIR", default_value = "queries")]
    pub queries: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct CurateArgs {
    #[arg(value_parser = name)]
    pub dataset: String,
    /// List every image left out, with why, and every leak.
    #[arg(long)]
    pub show: bool,
    /// Print the whole decision as one JSON line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The dataset; its latest build is exported.
    #[arg(value_parser = name)]
    pub dataset: String,
    #[arg(long, value_enum)]
    pub format: crate::dataset::export::ExportFormat,
    /// Output folder (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the result as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// What to search for, e.g. "brown bear".
    #[arg(required_unless_present = "query_file", conflicts_with = "query_file", value_parser = not_blank)]
    pub query: Option<String>,
    /// Accepted, unique images wanted in the dataset [default: 100, or the query file's top].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub top: Option<u64>,
    /// Dataset to fill [default: the query's slug, "brown bear" -> brown-bear].
    #[arg(long, value_parser = name)]
    pub dataset: Option<String>,
    /// Engine to query, in order; repeat for several [default: fetch.engines].
    #[arg(long = "engine", value_enum)]
    pub engines: Vec<EngineName>,
    /// Run the query described by a query file (queries/NAME.toml).
    #[arg(long, value_name = "FILE")]
    pub query_file: Option<PathBuf>,
    /// Print the summary as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A folder of images, or a text file of image URLs (not with a bucket store, whose
    /// workers import shards of the plan `shard-urls` wrote).
    pub path: Option<PathBuf>,
    /// Dataset to add them to.
    #[arg(long, value_parser = name)]
    pub dataset: String,
    /// Bucket stores: import this shard of the plan [default: $SLURM_ARRAY_TASK_ID, else
    /// $JOB_COMPLETION_INDEX]. A finished shard is skipped.
    #[arg(long, conflicts_with_all = ["path", "shards_from_stdin"])]
    pub shard: Option<usize>,
    /// Bucket stores: read shard numbers from standard input, one a line, and print one
    /// JSON line per shard (for Spark's RDD.pipe).
    #[arg(long, conflicts_with = "path")]
    pub shards_from_stdin: bool,
    /// Bucket stores: do the shard again even if it is done, to retry its transient
    /// failures (its marker is removed first; `merge` again after).
    #[arg(long, conflicts_with = "path")]
    pub redo: bool,
    /// Print the summary as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShardUrlsArgs {
    /// A text file of image URLs, one a line, of any size; `-` reads standard input.
    pub path: PathBuf,
    /// The dataset the shards' images go to.
    #[arg(long, value_parser = name)]
    pub dataset: String,
    /// How many shards (a job array's size); never more than there are URLs.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub shards: u64,
    /// Print the result as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    #[arg(long, value_parser = name)]
    pub dataset: String,
    /// Print the counts as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RefreshArgs {
    /// Folder of query files, one TOML file per query.
    #[arg(long, value_name = "DIR", default_value = "queries")]
    pub queries: PathBuf,
    /// Print the whole report as one JSON line (nothing else on stdout).
    #[arg(long)]
    pub json: bool,
    /// Then write the report (`pipeline report`, into STORE/report).
    #[arg(long)]
    pub report: bool,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Fix what is found: forget images whose bytes are lost or damaged (damaged files go
    /// to store/quarantine/), delete bad records and broken builds.
    #[arg(long)]
    pub repair: bool,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Print what was removed as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}
