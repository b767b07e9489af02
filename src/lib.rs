//! `pipeline`: image search -> validated, deduplicated store -> paired A/B shards -> pix2pix.
//!
//! Modules by concept: `engines` (result pages), `net` (HTTP and the address guard),
//! `photo` (is it an image, JPEG, colour), `store` (sled index + blobs; `verify`, `gc` and
//! the `upkeep` they share), `fetch` (the stage graph), `curate` (labels per image; what a
//! build leaves out: gray, tinted, off-topic, leaking), `build` (A/B shards), `dataset`
//! (built versions on disk, `export`), `config` / `query` (files the user writes), `train`
//! (colorizers; `metrics`, image quality), `report` (the store as a static website),
//! `bucket` (a store in S3, filled by shard workers, merged, mirrored into a local cache),
//! `commands` (CLI glue), `durable` (whole-or-absent writes), `printable` (untrusted text
//! made safe for a terminal).

pub mod bucket;
pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod curate;
pub mod dataset;
pub mod durable;
pub mod engines;
pub mod exit;

pub mod fetch;

pub mod net;
pub mod photo;
pub mod printable;
pub mod query;
pub mod report;
pub mod store;
pub mod train;
