//! What a build's curation is and did: the `[curate]` rules (in pipeline.toml for every
//! dataset, in a query file for its dataset alone, then `build --require` / `--on-leak`),
//! the reasons a member is left out, and the leaks found. They live with the build's
//! manifest because a version hashes them; `curate` applies them. Imports only `setting`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::setting::Invalid;

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
    /// Licence ids a member must have one of to be kept (`CC0-1.0`, `CC-BY-4.0`, `PDM`,
    /// ...); empty: no licence rule. A member whose licence is unknown is left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty", alias = "licences")]
    pub licenses: Vec<String>,
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
            licenses: Vec::new(),
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
    #[serde(alias = "licences")]
    pub licenses: Option<Vec<String>>,
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
            licenses: o.licenses.unwrap_or_else(|| self.licenses.clone()),
            ..self.clone()
        }
    }

    /// The first value out of range, if any.
    pub fn check(&self) -> Result<(), Invalid> {
        if !(0.0..=100.0).contains(&self.min_chroma) {
            return Invalid::err("curate.min_chroma", self.min_chroma, "allowed: 0 to 100");
        }
        if !(0.0..=100.0).contains(&self.min_spread) {
            return Invalid::err("curate.min_spread", self.min_spread, "allowed: 0 to 100");
        }
        if !(1..=5).contains(&self.top_k) {
            return Invalid::err("curate.top_k", self.top_k, "allowed: 1 to 5");
        }
        if !(0.0..=1.0).contains(&self.min_probability) {
            return Invalid::err("curate.min_probability", self.min_probability, "allowed: 0 to 1");
        }
        if self.leak_distance > 64 {
            return Invalid::err(
                "curate.leak_distance",
                self.leak_distance,
                "allowed: 0 to 64 bits",
            );
        }
        if self.require.iter().any(|r| r.trim().is_empty()) {
            return Invalid::err("curate.require", "\"\"", "class names must not be empty");
        }
        if self.licenses.iter().any(|l| l.trim().is_empty()) {
            return Invalid::err("curate.licenses", "\"\"", "licence ids must not be empty");
        }
        Ok(())
    }
}

/// Why a member is not in a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Mean chroma below `min_chroma`.
    Gray,
    /// Colored, but one tint at every lightness (sepia, cyanotype).
    Tinted,
    /// None of the required classes in its top k.
    OffTopic,
    /// A test image nearly duplicating a training image (with `on_leak = "drop"`).
    Leak,
    /// Its licence is not among `licenses` (or unknown).
    License,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Gray => "gray",
            Reason::Tinted => "tinted",
            Reason::OffTopic => "off-topic",
            Reason::Leak => "leak",
            Reason::License => "license",
        }
    }
}

/// A member left out of a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    pub id: String,
    pub reason: Reason,
    /// The measurement behind it, e.g. "chroma 0.3 < 2".
    pub detail: String,
}

/// How many of `dropped` were left out for each reason.
pub fn count_by_reason(dropped: &[Dropped]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for d in dropped {
        *by.entry(d.reason.as_str().to_owned()).or_default() += 1;
    }
    by
}

/// A test image and the training image it nearly duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    pub test: String,
    pub train: String,
    /// The dataset whose training split holds `train`.
    pub dataset: String,
    /// Bits apart (0: the same picture).
    pub distance: u32,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "test {} ~ train {} of {} ({} bits apart)",
            self.test, self.train, self.dataset, self.distance
        )
    }
}
