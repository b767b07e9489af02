//! The rules: from an image's label to kept, or dropped with a reason.

use super::classes::{ClassError, ClassNames};
use super::color::Colorfulness;
use super::labels::Label;
use crate::dataset::curation::{CurateConfig, Reason};

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
