//! The one integration-test binary (ripgrep style): modules by feature, helpers in support/.

pub mod bucket;
mod bucket_trust;
mod build;
mod cli;
mod crash;
#[cfg(feature = "train")]
mod curate;
#[cfg(feature = "train")]
mod dist;
mod faults;
mod fetch;
mod images;
mod import;
mod layers;
#[cfg(feature = "train")]
mod model;
mod optouts;
mod parsers;
#[cfg(feature = "train")]
mod pretrained;
mod provenance;
mod refresh;
#[cfg(feature = "train")]
mod report;
#[cfg(feature = "train")]
mod serve;
mod setup;
mod slurm;
mod stores;
mod support;
#[cfg(feature = "train")]
mod train;
mod verify;
