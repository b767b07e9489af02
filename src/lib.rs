//! `pipeline`: image search -> validated, deduplicated store -> paired A/B shards -> pix2pix.
pub mod engines;
