//! `pipeline`: image search -> validated, deduplicated store -> paired A/B shards -> a
//! trained colorizer, and a report of it all.
//!
//! The modules in layers, the lowest first: a module refers only to the layers above it in
//! this file (`tests/layers.rs` checks it, and that no two files refer to each other).

// Primitives: files, text, settings; HTTP; result pages; images.
pub mod credit;
pub mod durable;
pub mod interrupts;
pub mod link;
pub mod printable;
pub mod setting;
pub mod terminal;

pub mod markdown;

pub mod engines;
pub mod net;
pub mod photo;

// Formats: the store (index and blobs) and built datasets on disk.
pub mod dataset;
pub mod store;

// Stages, in the order of the graph.
pub mod train;

pub mod curate;
pub mod upkeep;

// Using a trained colorizer (and, to score it, curation's ImageNet classifier).
#[cfg(feature = "train")]
pub mod eval;

pub mod build;
#[cfg(feature = "train")]
pub mod model;
pub mod report;
#[cfg(feature = "train")]
pub mod serve;

// The user's side: the files they write, the graph they run, the commands they type.
pub mod config;

pub mod fetch;

pub mod bucket;

pub mod commands;
