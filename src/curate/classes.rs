//! ImageNet's 1,000 class names with their WordNet synonyms, as `scripts/weights` writes
//! them from the timm wheel (`.weights/imagenet-classes.tsv`: one line per class in index
//! order, `synset<TAB>name, synonym, ...`), and the matching of the names users require.

use std::path::{Path, PathBuf};

/// The classes, in the classifier's index order.
#[derive(Debug, Clone)]
pub struct ClassNames {
    /// Per class: its names, the first being the one shown.
    names: Vec<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClassError {
    #[error("{path}: {reason}; fetch the ImageNet class names with `scripts/weights`")]
    File { path: PathBuf, reason: String },
    #[error("{name:?} is not an ImageNet class name or synonym{}", near_text(.near))]
    Unknown { name: String, near: Vec<String> },
}

fn near_text(near: &[String]) -> String {
    if near.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = near.iter().map(|n| format!("{n:?}")).collect();
        format!("; near matches: {}", quoted.join(", "))
    }
}

/// Lower case, `_` and `-` as spaces, single spaces: "Brown_Bear" -> "brown bear".
fn normalise(name: &str) -> String {
    let spaced = name.to_lowercase().replace(['_', '-'], " ");
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl ClassNames {
    /// Reads the class list; it must hold exactly the classifier's classes.
    pub fn load(path: &Path, expected: usize) -> Result<ClassNames, ClassError> {
        let fail = |reason: String| ClassError::File { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let mut names = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let Some((_, synonyms)) = line.split_once('\t') else {
                return Err(fail(format!("line {}: expected `synset<TAB>names`", number + 1)));
            };
            names.push(synonyms.split(", ").map(str::to_owned).collect());
        }
        if names.len() != expected {
            return Err(fail(format!("{} classes, expected {expected}", names.len())));
        }
        Ok(ClassNames { names })
    }

    /// The name shown for class `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index][0]
    }

    /// The classes that have `wanted` as a name or synonym (several for "crane": the bird
    /// and the machine), ignoring case, `_` and `-`. An unknown name gives up to five near
    /// matches.
    pub fn resolve(&self, wanted: &str) -> Result<Vec<usize>, ClassError> {
        let key = normalise(wanted);
        let found: Vec<usize> = (0..self.names.len())
            .filter(|&i| self.names[i].iter().any(|n| normalise(n) == key))
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        let mut scored: Vec<(f64, &str)> = self
            .names
            .iter()
            .flatten()
            .map(|n| {
                let candidate = normalise(n);
                let contains = !key.is_empty() && candidate.contains(&key);
                let score = strsim::jaro_winkler(&key, &candidate);
                (if contains { score.max(0.9) } else { score }, n.as_str())
            })
            .filter(|(score, _)| *score >= 0.85)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        let mut near: Vec<String> = Vec::new();
        for (_, name) in scored {
            if near.len() == 5 {
                break;
            }
            if !near.iter().any(|n| n == name) {
                near.push(name.to_owned());
            }
        }
        Err(ClassError::Unknown { name: wanted.to_owned(), near })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> ClassNames {
        let names = [
            "brown bear, bruin, Ursus arctos",
            "American black bear, black bear, Ursus americanus",
            "crane",
            "ice bear, polar bear, Ursus Maritimus",
            "crane",
        ];
        ClassNames {
            names: names.iter().map(|l| l.split(", ").map(String::from).collect()).collect(),
        }
    }

    #[test]
    fn names_and_synonyms_match_whatever_the_case_and_separators() {
        let c = classes();
        assert_eq!(c.resolve("brown bear").unwrap(), [0]);
        assert_eq!(c.resolve("Brown_Bear").unwrap(), [0]);
        assert_eq!(c.resolve("bruin").unwrap(), [0]);
        assert_eq!(c.resolve("polar bear").unwrap(), [3]);
        assert_eq!(c.resolve("crane").unwrap(), [2, 4], "a shared name means every class");
        assert_eq!(c.name(3), "ice bear");
    }

    #[test]
    fn an_unknown_name_lists_near_matches() {
        let err = classes().resolve("brown bears").unwrap_err().to_string();
        assert!(err.contains("\"brown bears\" is not an ImageNet class"), "{err}");
        assert!(err.contains("near matches: \"brown bear\""), "{err}");
        let err = classes().resolve("zebra").unwrap_err().to_string();
        assert!(!err.contains("near matches"), "{err}");
    }
}
