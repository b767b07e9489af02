//! `pipeline`: image search -> validated, deduplicated store -> paired A/B shards -> pix2pix.
//!
//! Modules by concept: `engines` (result pages), `net` (HTTP and the address guard),
//! `validate` (is it an image), `store` (sled index + blobs), `fetch` (the stage graph),
//! `config` / `query` (files the user writes), `commands` (CLI glue).

pub mod cli;
pub mod commands;
pub mod config;
pub mod engines;
pub mod exit;
pub mod fetch;
pub mod net;
pub mod query;
pub mod store;
pub mod validate;
