//! Exit codes, the contract with scripts and cron (documented in the README and `--help`).

use std::process::ExitCode;

use crate::bucket::BucketProblem;
use crate::bucket::task::TaskError;
use crate::build::BuildError;
use crate::config::ConfigError;
use crate::curate::CurateError;
use crate::store::StoreError;
use crate::upkeep::UpkeepError;

pub const OK: u8 = 0;
/// A fatal error: the run stopped.
pub const ERROR: u8 = 1;
/// The command line is wrong (as for clap's own errors).
pub const USAGE: u8 = 2;
/// Some engines failed and the dataset did not reach `--top`.
pub const PARTIAL: u8 = 3;
/// `verify` found the store inconsistent and was not asked to repair it (EX_DATAERR).
pub const INCONSISTENT: u8 = 65;
/// Another process holds the store (EX_TEMPFAIL: try again later).
pub const STORE_BUSY: u8 = 75;
/// A config or query file is malformed or has invalid values, or a curation rule names
/// no ImageNet class (EX_CONFIG).
pub const BAD_CONFIG: u8 = 78;
/// A bucket store refused the credentials (EX_NOPERM).
pub const NO_PERMISSION: u8 = 77;
/// Stopped by Ctrl-C (or SIGINT).
pub const INTERRUPTED: u8 = 130;

/// A command line that cannot be carried out as written, found after clap parsed it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A usage error saying `message`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The exit code for a fatal error, by what caused it.
pub fn for_error(error: &anyhow::Error) -> ExitCode {
    for cause in error.chain() {
        if cause.is::<UsageError>() {
            return ExitCode::from(USAGE);
        }
        let store = match cause.downcast_ref::<UpkeepError>() {
            Some(UpkeepError::Store(e)) => Some(e),
            _ => cause.downcast_ref::<StoreError>(),
        };
        if matches!(store, Some(StoreError::Busy { .. })) {
            return ExitCode::from(STORE_BUSY);
        }
        match crate::bucket::problem(cause) {
            Some(BucketProblem::Denied) => return ExitCode::from(NO_PERMISSION),
            Some(BucketProblem::Config) => return ExitCode::from(BAD_CONFIG),
            Some(BucketProblem::Pending) => return ExitCode::from(PARTIAL),
            None => {}
        }
        let build = match cause.downcast_ref::<TaskError>() {
            Some(TaskError::Build(e)) => Some(e),
            _ => cause.downcast_ref::<BuildError>(),
        };
        let curate = match build {
            Some(BuildError::Curate(e)) => Some(e),
            _ => cause.downcast_ref::<CurateError>(),
        };
        if cause.downcast_ref::<ConfigError>().is_some()
            || curate.is_some_and(CurateError::is_bad_rule)
        {
            return ExitCode::from(BAD_CONFIG);
        }
    }
    ExitCode::from(ERROR)
}
