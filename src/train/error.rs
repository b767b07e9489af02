//! What can go wrong in training and inference, each naming the file or value at fault.

use std::path::{Path, PathBuf};

use super::nets::efficientnet::WeightsError;
use crate::dataset::DatasetError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: not a usable checkpoint: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("distributed training")]
    Dist(#[from] super::dist::DistError),
}

/// Maps an I/O error to [`TrainError::Io`] for `path`.
impl From<crate::durable::PathError> for TrainError {
    fn from(e: crate::durable::PathError) -> TrainError {
        TrainError::Io { path: e.path, source: e.source }
    }
}

impl From<super::run_record::RunRecordError> for TrainError {
    fn from(e: super::run_record::RunRecordError) -> TrainError {
        match e {
            super::run_record::RunRecordError::Io { path, source } => {
                TrainError::Io { path, source }
            }
            other => TrainError::Invalid(other.to_string()),
        }
    }
}

pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.to_owned(), source }
}
