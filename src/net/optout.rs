//! Opt-outs: a site's owner saying its images are not to train AI. Read from each image's
//! response headers (`X-Robots-Tag` directives for every user agent or for ours,
//! TDMRep's `tdm-reservation: 1`, the IETF AI Preferences' `Content-Usage`) and, once per
//! host, from its `robots.txt` (the `Content-Usage` and `Content-Signal` lines of the
//! groups for every agent or ours: image search found the URL already, so robots.txt is
//! not a crawl rule here, only these training signals) and its
//! `/.well-known/tdmrep.json` (reserved locations, first match wins). Which signals count
//! is `[opt_outs]`'s; all of them by default.

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::setting::Invalid;

/// The product token X-Robots-Tag scopes and robots.txt groups may name us by.
pub const AGENT: &str = "pipeline";

/// Every signal that can be honoured: X-Robots-Tag directives, TDMRep's reservation, and
/// the AI-training usage categories of `Content-Usage` (IETF AI Preferences: `train-ai`,
/// `train-genai`) and `Content-Signal` (`ai-train`) set to no.
pub const SIGNALS: [&str; 9] = [
    "noai",
    "noimageai",
    "noindex",
    "noimageindex",
    "none",
    "tdm-reservation",
    "train-ai",
    "train-genai",
    "ai-train",
];

/// `[opt_outs]` of pipeline.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptOutConfig {
    /// Honour the signals (false: every image is taken, and a build's manifest says so).
    pub honour: bool,
    /// The signals honoured, of [`SIGNALS`].
    pub signals: Vec<String>,
}

impl Default for OptOutConfig {
    fn default() -> Self {
        OptOutConfig { honour: true, signals: SIGNALS.iter().map(|s| (*s).to_owned()).collect() }
    }
}

impl OptOutConfig {
    pub fn check(&self) -> Result<(), Invalid> {
        for signal in &self.signals {
            if !SIGNALS.contains(&signal.as_str()) {
                let allowed = format!("one of {}", SIGNALS.join(", "));
                return Invalid::err("opt_outs.signals", format!("{signal:?}"), allowed);
            }
        }
        Ok(())
    }

    /// What two policies honour together: the weaker of the two runs' policies, so a
    /// dataset fetched under both is described truly.
    pub fn weakest(&self, other: &OptOutConfig) -> OptOutConfig {
        let signals = self.signals.iter().filter(|s| other.signals.contains(s)).cloned();
        OptOutConfig { honour: self.honour && other.honour, signals: signals.collect() }
    }

    fn honours(&self, signal: &str) -> bool {
        self.honour && self.signals.iter().any(|s| s.eq_ignore_ascii_case(signal))
    }

    /// The opt-out an image response's `headers` carry (`X-Robots-Tag: noai`), if one of
    /// those honoured.
    pub fn in_headers(&self, headers: &HeaderMap) -> Option<String> {
        for value in headers.get_all("x-robots-tag").iter().filter_map(|v| v.to_str().ok()) {
            if let Some(directive) = robots_tag(value).into_iter().find(|d| self.honours(d)) {
                return Some(format!("X-Robots-Tag: {directive}"));
            }
        }
        let reserved = headers.get("tdm-reservation").and_then(|v| v.to_str().ok());
        if reserved.is_some_and(|v| v.trim() == "1") && self.honours("tdm-reservation") {
            return Some("tdm-reservation: 1".into());
        }
        for value in headers.get_all("content-usage").iter().filter_map(|v| v.to_str().ok()) {
            if let Some(category) = refused(value).into_iter().find(|c| self.honours(c)) {
                return Some(format!("Content-Usage: {category}=n"));
            }
        }
        None
    }
}

/// X-Robots-Tag directives that take an argument after a colon (`max-snippet: 20`): any
/// other name before a colon is a user agent the directives after it are for.
const WITH_ARGUMENT: [&str; 4] =
    ["max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"];

/// The directives of one `X-Robots-Tag` value that apply to us: those with no agent scope
/// and those scoped to [`AGENT`] (`otherbot: noai, noindex` scopes both to otherbot).
fn robots_tag(value: &str) -> Vec<String> {
    let mut scope: Option<String> = None;
    let mut out = Vec::new();
    for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let directive = match token.split_once(':') {
            Some((name, rest))
                if !WITH_ARGUMENT.contains(&name.trim().to_ascii_lowercase().as_str()) =>
            {
                scope = Some(name.trim().to_ascii_lowercase());
                rest.trim()
            }
            _ => token,
        };
        if scope.as_deref().is_none_or(|s| s == AGENT) && !directive.is_empty() {
            out.push(directive.to_ascii_lowercase());
        }
    }
    out
}

/// The usage categories a `Content-Usage` or `Content-Signal` value refuses
/// (`train-ai=n`, `ai-train=no`).
fn refused(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(_, v)| matches!(v.trim().to_ascii_lowercase().as_str(), "n" | "no"))
        .map(|(k, _)| k.trim().to_ascii_lowercase())
        .collect()
}

/// A host's opt-out rules, from its robots.txt and tdmrep.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRules {
    /// tdmrep.json's rules in order: a location pattern and whether it is reserved.
    pub tdmrep: Vec<(String, bool)>,
    /// robots.txt's: a path pattern and the signal that refuses it.
    pub usage: Vec<(String, String)>,
}

impl HostRules {
    /// The honoured signal that reserves `path` (with its query), if any: the first
    /// tdmrep.json rule matching it, then any robots.txt rule.
    pub fn reserving(&self, path: &str, config: &OptOutConfig) -> Option<String> {
        let first = self.tdmrep.iter().find(|(pattern, _)| matches(pattern, path));
        if first.is_some_and(|(_, reserved)| *reserved) && config.honours("tdm-reservation") {
            return Some("tdmrep.json: tdm-reservation 1".into());
        }
        self.usage
            .iter()
            .find(|(pattern, signal)| config.honours(signal) && matches(pattern, path))
            .map(|(_, signal)| format!("robots.txt: {signal}=n"))
    }

    /// Adds the training signals of a robots.txt: `Content-Usage: [PATH] train-ai=n` and
    /// `Content-Signal: [PATH] ai-train=no` lines of the groups for [`AGENT`] if there is
    /// one (even one that says nothing of them), else of those for every agent (and lines
    /// before any group).
    pub fn read_robots(&mut self, text: &str) {
        let (mut ours, mut everyone) = (Vec::new(), Vec::new());
        let mut agents: Vec<String> = Vec::new();
        let (mut in_rules, mut named) = (false, false);
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let Some((key, value)) = line.split_once(':') else { continue };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            if key == "user-agent" {
                if in_rules {
                    agents.clear();
                    in_rules = false;
                }
                agents.push(value.to_ascii_lowercase());
                named |= value.eq_ignore_ascii_case(AGENT);
                continue;
            }
            in_rules = true;
            if key != "content-usage" && key != "content-signal" {
                continue;
            }
            let (pattern, prefs) = match value.split_once(char::is_whitespace) {
                Some((path, prefs)) if path.starts_with('/') => (path, prefs),
                _ => ("/", value),
            };
            for category in refused(prefs) {
                let rule = (pattern.to_owned(), category);
                if agents.iter().any(|a| a == AGENT) {
                    ours.push(rule);
                } else if agents.is_empty() || agents.iter().any(|a| a == "*") {
                    everyone.push(rule);
                }
            }
        }
        self.usage.extend(if named { ours } else { everyone });
    }

    /// Adds the rules of a tdmrep.json (an array of `{location, tdm-reservation}`); an
    /// answer that is not one adds nothing.
    pub fn read_tdmrep(&mut self, text: &str) {
        #[derive(Deserialize)]
        struct Rule {
            location: String,
            #[serde(rename = "tdm-reservation")]
            reservation: u8,
        }
        if let Ok(rules) = serde_json::from_str::<Vec<Rule>>(text) {
            self.tdmrep.extend(rules.into_iter().map(|r| (r.location, r.reservation == 1)));
        }
    }
}

/// Whether `path` matches a robots.txt-style `pattern`: a prefix, `*` any run of
/// characters, a final `$` the end.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = path.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if last && anchored {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    !anchored || rest.is_empty() || pattern.ends_with('*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn header_signals_for_everyone_or_for_us() {
        let config = OptOutConfig::default();
        let says = |pairs| config.in_headers(&headers(pairs));
        assert_eq!(says(&[("x-robots-tag", "noai")]).as_deref(), Some("X-Robots-Tag: noai"));
        let argument = says(&[("x-robots-tag", "max-snippet: 20, NoImageAI")]);
        assert_eq!(argument.as_deref(), Some("X-Robots-Tag: noimageai"), "not a scope");
        assert_eq!(
            says(&[("x-robots-tag", "nofollow, noimageai")]).as_deref(),
            Some("X-Robots-Tag: noimageai")
        );
        assert_eq!(says(&[("x-robots-tag", "otherbot: noai, noindex")]), None);
        assert_eq!(
            says(&[("x-robots-tag", "otherbot: noindex"), ("x-robots-tag", "pipeline: none")])
                .as_deref(),
            Some("X-Robots-Tag: none")
        );
        assert_eq!(says(&[("x-robots-tag", "unavailable_after: 2026-01-01")]), None);
        assert_eq!(says(&[("tdm-reservation", "1")]).as_deref(), Some("tdm-reservation: 1"));
        assert_eq!(says(&[("tdm-reservation", "0")]), None);
        let usage = says(&[("content-usage", "search=y, train-ai=n")]);
        assert_eq!(usage.as_deref(), Some("Content-Usage: train-ai=n"));
        let off = OptOutConfig { honour: false, ..OptOutConfig::default() };
        assert_eq!(off.in_headers(&headers(&[("x-robots-tag", "noai")])), None);
        let some = OptOutConfig { honour: true, signals: vec!["noai".into()] };
        assert_eq!(some.in_headers(&headers(&[("x-robots-tag", "noindex")])), None);
    }

    #[test]
    fn robots_txt_and_tdmrep_rules_by_path() {
        let config = OptOutConfig::default();
        let mut rules = HostRules::default();
        rules.read_robots(
            "User-agent: *\nDisallow: /private\nContent-Usage: /usage/ train-ai=n\n\
             Content-Signal: search=yes, ai-train=no\n\nUser-agent: otherbot\nContent-Usage: train-genai=n\n",
        );
        rules.read_tdmrep(r#"[{"location": "/open/*", "tdm-reservation": 0}, {"location": "/*.png$", "tdm-reservation": 1}]"#);
        assert_eq!(
            rules.reserving("/usage/a.jpg", &config).as_deref(),
            Some("robots.txt: train-ai=n")
        );
        assert_eq!(
            rules.reserving("/open/b.png", &config).as_deref(),
            Some("robots.txt: ai-train=n")
        );
        assert_eq!(
            rules.reserving("/x/b.png", &config).as_deref(),
            Some("tdmrep.json: tdm-reservation 1")
        );
        let mut ours = HostRules::default();
        ours.read_robots(
            "User-agent: *\nContent-Usage: train-ai=n\nUser-agent: pipeline\nAllow: /\n",
        );
        assert_eq!(ours.reserving("/a.jpg", &config), None, "our own group, which says nothing");
        ours.read_tdmrep("not json");
        assert!(ours.tdmrep.is_empty());
        assert!(matches("/a/*/c$", "/a/b/c") && !matches("/a/*/c$", "/a/b/cd"));
        assert!(matches("/", "/anything") && !matches("/x", "/y"));
    }
}
