//! The `[curate]` keys: in pipeline.toml for every dataset, and in a query file for its
//! dataset alone (key by key over pipeline.toml's), then `build --require` / `--on-leak`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a build does with a test image that nearly duplicates a training image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnLeak {
    /// Publish nothing and name both images.
    Refuse,
    /// Leave the test image out of the build (recorded as dropped, reason `leak`).
    Drop,
    /// Publish anyway; the leaks are listed in the manifest.
    Allow,
}

/// `[curate]` with every key resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CurateConfig {
    /// Images whose mean Lab chroma is below this are gray (0: no gray check).
    pub min_chroma: f32,
    /// Colored images whose colors differ less than this between pixels of the same
    /// lightness are tinted: sepia, cyanotype (0: no tint check).
    pub min_spread: f32,
    /// ImageNet class names or synonyms; when not empty an image is kept only if one of
    /// them is among its top_k classes with at least min_probability.
    pub require: Vec<String>,
    pub top_k: usize,
    pub min_probability: f32,
    /// A test image within this many bits (256-bit perceptual hash) of a training image of
    /// the build, or of another dataset's latest build, leaks.
    pub leak_distance: u32,
    pub on_leak: OnLeak,
    /// The classifier's weights and the class names, as scripts/weights writes them
    /// (relative paths are from the working folder). Not in manifests: where the files
    /// are does not change a build.
    #[serde(skip_serializing)]
    pub weights: PathBuf,
    #[serde(skip_serializing)]
    pub classes: PathBuf,
}

impl Default for CurateConfig {
    fn default() -> Self {
        CurateConfig {
            min_chroma: 1.5,
            min_spread: 1.0,
            require: Vec::new(),
            top_k: 5,
            min_probability: 0.05,
            leak_distance: 16,
            on_leak: OnLeak::Refuse,
            weights: PathBuf::from(".weights/efficientnet-lite0.safetensors"),
            classes: PathBuf::from(".weights/imagenet-classes.tsv"),
        }
    }
}

/// `[curate]` of a query file: the keys it sets replace pipeline.toml's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurateOverrides {
    pub min_chroma: Option<f32>,
    pub min_spread: Option<f32>,
    pub require: Option<Vec<String>>,
    pub top_k: Option<usize>,
    pub min_probability: Option<f32>,
    pub leak_distance: Option<u32>,
    pub on_leak: Option<OnLeak>,
}

impl CurateConfig {
    /// This config with the keys `overrides` sets replaced.
    pub fn with(&self, overrides: &CurateOverrides) -> CurateConfig {
        let o = overrides.clone();
        CurateConfig {
            min_chroma: o.min_chroma.unwrap_or(self.min_chroma),
            min_spread: o.min_spread.unwrap_or(self.min_spread),
            require: o.require.unwrap_or_else(|| self.require.clone()),
            top_k: o.top_k.unwrap_or(self.top_k),
            min_probability: o.min_probability.unwrap_or(self.min_probability),
            leak_distance: o.leak_distance.unwrap_or(self.leak_distance),
            on_leak: o.on_leak.unwrap_or(self.on_leak),
            ..self.clone()
        }
    }

    /// The key and allowed range of the first value out of range.
    pub fn check(&self) -> Result<(), (&'static str, String, &'static str)> {
        if !(0.0..=100.0).contains(&self.min_chroma) {
            return Err(("curate.min_chroma", self.min_chroma.to_string(), "allowed: 0 to 100"));
        }
        if !(0.0..=100.0).contains(&self.min_spread) {
            return Err(("curate.min_spread", self.min_spread.to_string(), "allowed: 0 to 100"));
        }
        if !(1..=5).contains(&self.top_k) {
            return Err(("curate.top_k", self.top_k.to_string(), "allowed: 1 to 5"));
        }
        if !(0.0..=1.0).contains(&self.min_probability) {
            let v = self.min_probability.to_string();
            return Err(("curate.min_probability", v, "allowed: 0 to 1"));
        }
        if self.leak_distance > 64 {
            let v = self.leak_distance.to_string();
            return Err(("curate.leak_distance", v, "allowed: 0 to 64 bits"));
        }
        if self.require.iter().any(|r| r.trim().is_empty()) {
            return Err(("curate.require", "\"\"".into(), "class names must not be empty"));
        }
        Ok(())
    }
}
