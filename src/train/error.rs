//! What can go wrong in training and inference, each naming the file or value at fault.

use std::path::PathBuf;

use super::nets::efficientnet::WeightsError;
use crate::dataset::DatasetError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: not a usable checkpoint: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("distributed training")]
    Dist(#[from] super::dist::DistError),
}

impl From<super::run_record::RunRecordError> for TrainError {
    fn from(e: super::run_record::RunRecordError) -> TrainError {
        match e {
            super::run_record::RunRecordError::Io(e) => TrainError::Io(e),
            other => TrainError::Invalid(other.to_string()),
        }
    }
}
