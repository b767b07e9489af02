//! Markdown and YAML for the cards (a dataset's, a model's): text from outside shown as it
//! is, links only to http(s) URLs, YAML strings quoted.
//!
//! Imports only `link`.

use crate::link::href;

/// `text` as Markdown that shows it as it is: punctuation that could start a link, HTML,
/// emphasis or a table cell is escaped, control characters become spaces.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_punctuation()
            && !matches!(
                c,
                '.' | ',' | ':' | ';' | '/' | '-' | '\'' | '"' | '?' | '=' | '%' | '+' | '@'
            )
        {
            out.push('\\');
            out.push(c);
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` (Markdown already) linking to `url` when it is an http(s) URL.
pub fn link(text: &str, url: &str) -> String {
    match href(url) {
        Some(target) => format!("[{text}](<{target}>)"),
        None => text.to_owned(),
    }
}

/// A YAML double-quoted scalar (JSON's string syntax is one).
pub fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_cannot_add_links_html_or_cells() {
        let hostile = "x](javascript:alert(1)) <img src=x onerror=alert(1)> | cell\n# head";
        let escaped = escape(hostile);
        let chars: Vec<char> = escaped.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if "[]()<>|#".contains(*c) {
                assert!(i > 0 && chars[i - 1] == '\\', "{c} unescaped at {i}: {escaped}");
            }
        }
        assert!(!escaped.contains('\n'), "{escaped}");
        assert_eq!(link("t", "javascript:alert(1)"), "t");
        assert_eq!(link("t", "https://e.org/a b>"), "[t](<https://e.org/a%20b%3E>)");
        assert_eq!(yaml_string("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
