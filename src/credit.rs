//! What an image may be used for, and whom to credit: a licence id (SPDX-like, with its
//! version: `CC-BY-SA-4.0`, `CC0-1.0`, `PDM`), the licence's URL, the creator and the
//! attribution line, as the source gave them (Openverse's and Wikimedia's APIs, an import's
//! sidecar file). Unknown stays unknown: nothing is guessed. Imports nothing of the crate.

use serde::{Deserialize, Serialize};

/// A member's licence and credit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// `None`: the source named no licence that could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
}

/// What counts of members by licence call the members without one.
pub const UNKNOWN: &str = "unknown";

/// The licence id of a Creative Commons code and version as Openverse and Wikimedia
/// write them (`by-sa` + `4.0`, `cc-by-sa-4.0`, `cc0`, `pdm`), if it is one.
pub fn license_id(code: &str, version: Option<&str>) -> Option<String> {
    let code = code.trim().to_ascii_lowercase();
    let code = code.strip_prefix("cc-").unwrap_or(&code);
    match code {
        "cc0" | "cc0-1.0" => return Some("CC0-1.0".into()),
        "pdm" | "pd" | "public domain" | "public-domain" => return Some("PDM".into()),
        _ => {}
    }
    // `by-sa-4.0` carries its version; `by-sa` takes `version`.
    let (terms, version) = match code.rsplit_once('-') {
        Some((terms, v)) if v.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
            (terms, Some(v))
        }
        _ => (code, version.map(str::trim)),
    };
    let known = ["by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd"];
    if !known.contains(&terms) {
        return None;
    }
    let version =
        version.filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))?;
    Some(format!("CC-{}-{version}", terms.to_ascii_uppercase()))
}

/// What a licence id asks beyond free use: attribution, share-alike, non-commercial, no
/// derivatives (`None`: not a licence this knows).
fn terms(id: &str) -> Option<[bool; 4]> {
    if id == "CC0-1.0" || id == "PDM" {
        return Some([false; 4]);
    }
    let (code, _version) = id.strip_prefix("CC-")?.rsplit_once('-')?;
    let parts: Vec<&str> = code.split('-').collect();
    (parts.first() == Some(&"BY"))
        .then(|| [true, parts.contains(&"SA"), parts.contains(&"NC"), parts.contains(&"ND")])
}

/// The one licence of `licenses` (distinct ids) whose terms include every other's
/// (`CC-BY-NC-SA-2.0` over `CC-BY-2.0` and `CC0-1.0`): the terms of the set as a whole.
/// `None` when no single one does: two versions or two licences with the same terms,
/// share-alike beside no-derivatives, an unknown licence.
pub fn covering<'a>(licenses: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let all: Vec<(&str, [bool; 4])> =
        licenses.into_iter().map(|l| Some((l, terms(l)?))).collect::<Option<_>>()?;
    let covers = |a: &[bool; 4], b: &[bool; 4]| a.iter().zip(b).all(|(x, y)| *x || !*y);
    let mut found = all.iter().filter(|(_, t)| all.iter().all(|(_, o)| covers(t, o)));
    match (found.next(), found.next()) {
        (Some((id, _)), None) => Some(id),
        _ => None,
    }
}

/// The Hugging Face Hub's id of a licence id, for a dataset card's `license:` (the Hub
/// knows no Public Domain Mark: `other`, with the card's text naming it).
pub fn hub_license(license: &str) -> String {
    match license {
        UNKNOWN => UNKNOWN.into(),
        "PDM" => "other".into(),
        id => id.to_ascii_lowercase(),
    }
}

/// How many of the credits have each licence ([`UNKNOWN`]: none known).
pub fn count_by_license<'a>(
    credits: impl Iterator<Item = Option<&'a Credit>>,
) -> std::collections::BTreeMap<String, usize> {
    let mut by = std::collections::BTreeMap::new();
    for credit in credits {
        let license = credit.and_then(|c| c.license.clone());
        *by.entry(license.unwrap_or_else(|| UNKNOWN.to_owned())).or_default() += 1;
    }
    by
}

/// Text of an HTML fragment (Wikimedia's `Artist`, `Credit`): tags dropped, entities
/// decoded, whitespace folded.
pub fn text_of_html(html: &str) -> String {
    let fragment = scraper::Html::parse_fragment(html);
    let text: String = fragment.root_element().text().collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creative_commons_codes_become_ids_and_the_rest_stays_unknown() {
        assert_eq!(license_id("by-sa", Some("4.0")).as_deref(), Some("CC-BY-SA-4.0"));
        assert_eq!(license_id("by-nc-sa", Some("2.0")).as_deref(), Some("CC-BY-NC-SA-2.0"));
        assert_eq!(license_id("cc-by-sa-3.0", None).as_deref(), Some("CC-BY-SA-3.0"));
        assert_eq!(license_id("cc0", Some("1.0")).as_deref(), Some("CC0-1.0"));
        assert_eq!(license_id("pdm", None).as_deref(), Some("PDM"));
        assert_eq!(license_id("by", None), None, "a CC licence without its version");
        assert_eq!(license_id("sampling+", Some("1.0")), None);
        assert_eq!(license_id("GFDL", None), None);
        assert_eq!(hub_license("CC-BY-NC-SA-2.0"), "cc-by-nc-sa-2.0");
        let cover = |ids: &[&'static str]| covering(ids.iter().copied());
        assert_eq!(cover(&["CC0-1.0", "CC-BY-2.0", "CC-BY-NC-SA-2.0"]), Some("CC-BY-NC-SA-2.0"));
        assert_eq!(cover(&["CC-BY-SA-4.0"]), Some("CC-BY-SA-4.0"));
        assert_eq!(cover(&["CC-BY-SA-4.0", "CC-BY-SA-2.0"]), None, "two versions");
        assert_eq!(cover(&["CC-BY-SA-4.0", "CC-BY-ND-4.0"]), None);
        assert_eq!(cover(&["CC0-1.0", "PDM"]), None, "the same terms: neither is the set's");
        assert_eq!(cover(&["CC0-1.0", UNKNOWN]), None);
        assert_eq!(
            (hub_license("PDM").as_str(), hub_license(UNKNOWN).as_str()),
            ("other", "unknown")
        );
        assert_eq!(text_of_html("<bdi><a href=\"x\">Kanō&nbsp;Eitoku</a>\n</bdi>"), "Kanō Eitoku");
    }
}
