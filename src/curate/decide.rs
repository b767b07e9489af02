//! The rules: from an image's label to kept, or dropped with a reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::classes::{ClassError, ClassNames};
use super::color::Colorfulness;
use super::config::CurateConfig;
use super::labels::Label;

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
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Gray => "gray",
            Reason::Tinted => "tinted",
            Reason::OffTopic => "off-topic",
            Reason::Leak => "leak",
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

/// The rules of one build, class names resolved.
#[derive(Debug, Clone)]
pub struct Rules {
    min_chroma: f32,
    min_spread: f32,
    /// Class indices any of which must be in the top k; empty: no class check.
    required: Vec<usize>,
    top_k: usize,
    min_probability: f32,
}

impl Rules {
    /// Resolves `config.require` against `names` (needed only when it is not empty).
    pub fn new(config: &CurateConfig, names: Option<&ClassNames>) -> Result<Rules, ClassError> {
        let mut required = Vec::new();
        if let Some(names) = names {
            for wanted in &config.require {
                required.extend(names.resolve(wanted)?);
            }
        }
        required.sort_unstable();
        required.dedup();
        Ok(Rules {
            min_chroma: config.min_chroma,
            min_spread: config.min_spread,
            required,
            top_k: config.top_k,
            min_probability: config.min_probability,
        })
    }

    /// Whether the class check is on (it needs the classifier).
    pub fn needs_classes(&self) -> bool {
        !self.required.is_empty()
    }

    /// `None` to keep the image, else why not.
    pub fn judge(&self, label: &Label) -> Option<(Reason, String)> {
        let color = label.color;
        match color.verdict(self.min_chroma, self.min_spread) {
            Colorfulness::Gray => {
                return Some((
                    Reason::Gray,
                    format!("chroma {:.2} < {}", color.chroma, self.min_chroma),
                ));
            }
            Colorfulness::Tinted => {
                let detail = format!("color spread {:.2} < {}", color.spread, self.min_spread);
                return Some((Reason::Tinted, detail));
            }
            Colorfulness::Color => {}
        }
        if self.required.is_empty() {
            return None;
        }
        let classes = label.classes.as_deref().unwrap_or_default();
        let hit = classes
            .iter()
            .take(self.top_k)
            .any(|c| c.p >= self.min_probability && self.required.contains(&usize::from(c.index)));
        if hit {
            return None;
        }
        let detail = match classes.first() {
            Some(top) => format!("top class {} ({:.2})", top.name, top.p),
            None => "no classes".to_owned(),
        };
        Some((Reason::OffTopic, detail))
    }
}
