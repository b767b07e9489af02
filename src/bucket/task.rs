//! One task of a job array over a merged dataset (`label --shard N`, `build --shard N`):
//! which part of the work it takes, and what can stop it.
//!
//! The part is `--shard N`, else the job array's index (`SLURM_ARRAY_TASK_ID`, then
//! `JOB_COMPLETION_INDEX`), as for `import`; the number of parts is `--shards K`, else
//! Slurm's `SLURM_ARRAY_TASK_COUNT` (a Kubernetes Indexed Job passes `--shards`).

use super::BucketError;
use super::mirror::MirrorError;
use super::plan::{self, PlanError};
use crate::build::BuildError;
use crate::store::StoreError;

/// Which part of a dataset's work one task does.
#[derive(Debug, Clone)]
pub struct Task<'a> {
    pub dataset: &'a str,
    /// This task's part, from 0.
    pub part: usize,
    /// How many parts the work is cut into.
    pub parts: usize,
    /// Where the task shows how far it is (hidden under cron).
    pub progress: indicatif::ProgressBar,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "how many tasks share the work: pass --shards K (a Slurm job array sets \
         SLURM_ARRAY_TASK_COUNT)"
    )]
    NoCount,
    #[error("{var}={value:?} is not a number of tasks")]
    BadCount { var: &'static str, value: String },
    #[error("task {part} does not exist: {parts} tasks are numbered 0 to {}", .parts - 1)]
    OutOfRange { part: usize, parts: usize },
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error("task {part}: scratch store: {source}")]
    Scratch { part: usize, source: StoreError },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(
        "{url}: {missing} of {members} members of {dataset} have no label yet{parts}: label them \
         first, with `pipeline label --shard N` as a job array over the same merge"
    )]
    Unlabelled { url: String, dataset: String, missing: usize, members: usize, parts: String },
}

/// This task's part and the number of parts, from the command line or the environment.
pub fn resolve(
    shard: Option<usize>,
    shards: Option<usize>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(usize, usize), TaskError> {
    let part = plan::shard_from(shard, &env)?;
    let parts = match shards {
        Some(parts) => parts,
        None => {
            let var = "SLURM_ARRAY_TASK_COUNT";
            let value = env(var).ok_or(TaskError::NoCount)?;
            value.trim().parse().map_err(|_| TaskError::BadCount { var, value })?
        }
    };
    if part >= parts {
        return Err(TaskError::OutOfRange { part, parts });
    }
    Ok((part, parts))
}

/// Whether a job array's index is in the environment: then `label` and `build` on a
/// bucket store do one task's part.
pub fn in_job_array(env: impl Fn(&str) -> Option<String>) -> bool {
    ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"].iter().any(|var| env(var).is_some())
}

/// `count` things cut into `parts` consecutive runs of nearly equal length: run `part`.
pub fn range(count: usize, part: usize, parts: usize) -> std::ops::Range<usize> {
    (part * count / parts)..((part + 1) * count / parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_part_and_count_come_from_the_flags_then_slurm() {
        let slurm = env(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
        assert_eq!(resolve(None, None, &slurm).unwrap(), (2, 4));
        assert_eq!(resolve(Some(1), Some(3), &slurm).unwrap(), (1, 3));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "5")]);
        assert!(matches!(resolve(None, None, &k8s), Err(TaskError::NoCount)));
        assert_eq!(resolve(None, Some(6), &k8s).unwrap(), (5, 6));
        let err = resolve(None, Some(5), &k8s).unwrap_err();
        assert_eq!(err.to_string(), "task 5 does not exist: 5 tasks are numbered 0 to 4");
        assert!(in_job_array(&k8s) && !in_job_array(env(&[])));
    }

    #[test]
    fn ranges_cover_everything_once_in_order() {
        for (count, parts) in [(10, 3), (2, 5), (0, 2), (7, 7)] {
            let all: Vec<usize> = (0..parts).flat_map(|p| range(count, p, parts)).collect();
            assert_eq!(all, (0..count).collect::<Vec<_>>(), "{count} in {parts}");
        }
    }
}
