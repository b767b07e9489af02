//! Text for a terminal. Search results, URL lists and bucket keys may hold control
//! characters: an ESC sequence in a failure's detail would otherwise retitle the window,
//! clear the screen or rewrite what was printed above. Every such character is shown as
//! a `\u{..}` escape; the rest of the text is left as it is.
//!
//! Imports nothing of the crate.

use std::borrow::Cow;

/// `text` with its control characters (C0 but newline and tab, DEL, C1) escaped.
pub fn printable(text: &str) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if escaped(c) { c.escape_unicode().to_string() } else { c.to_string() })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(printable("bears\n\tok"), "bears\n\tok");
        assert_eq!(printable("a\x1b]0;owned\x07b"), "a\\u{1b}]0;owned\\u{7}b");
        assert_eq!(printable("\u{9b}2J\x7f"), "\\u{9b}2J\\u{7f}");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
    }
}
