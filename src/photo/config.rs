//! `[images]` and `[dedup]` of `pipeline.toml`: what makes an image acceptable (its size
//! limits, also the decode budget's unit) and how near two must be to be duplicates.
//! Imports nothing of the crate but `setting`.

use serde::Deserialize;

use crate::setting::Invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Images whose shorter side is below this are rejected as too small.
    pub min_side: u32,
    /// Images with more pixels than this are rejected before decoding (decompression bombs).
    pub max_pixels: u64,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig { min_side: 128, max_pixels: 50_000_000 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Two images whose 256-bit perceptual hashes differ in at most this many bits are
    /// near-duplicates. 0 disables near-duplicate detection (exact duplicates are always caught).
    pub phash_distance: u32,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig { phash_distance: 16 }
    }
}

impl ImagesConfig {
    pub fn check(&self) -> Result<(), Invalid> {
        if self.min_side == 0 {
            return Invalid::err("images.min_side", 0, "allowed: 1 or more pixels");
        }
        if self.max_pixels < u64::from(self.min_side).pow(2) {
            let allowed = "must be at least images.min_side squared";
            return Invalid::err("images.max_pixels", self.max_pixels, allowed);
        }
        Ok(())
    }
}

impl DedupConfig {
    pub fn check(&self) -> Result<(), Invalid> {
        if self.phash_distance > 64 {
            return Invalid::err(
                "dedup.phash_distance",
                self.phash_distance,
                "allowed: 0 to 64 bits",
            );
        }
        Ok(())
    }
}
