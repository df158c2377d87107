//! Text helpers shared by the example tools. Counts are deliberately simple and
//! deterministic: a word is a run of non-whitespace characters.

use rmcp::schemars;
use serde::Deserialize;

/// Arguments of every tool that takes a single text.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct TextArgs {
    /// The text to work on.
    pub text: String,
}

/// Number of whitespace-separated words in `text`.
pub(crate) fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Number of characters (Unicode scalar values) in `text`.
pub(crate) fn char_count(text: &str) -> usize {
    text.chars().count()
}

/// The first `max_words` words of `text`, single-spaced, with `…` appended when words
/// were dropped.
pub(crate) fn first_words(text: &str, max_words: usize) -> String {
    let mut summary = text.split_whitespace().take(max_words).collect::<Vec<_>>().join(" ");
    if word_count(text) > max_words {
        summary.push('…');
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_and_characters() {
        assert_eq!(word_count("  hello   wide\tworld\n"), 3);
        assert_eq!(word_count(""), 0);
        assert_eq!(char_count("héllo"), 5);
    }

    #[test]
    fn first_words_marks_truncation() {
        assert_eq!(first_words("a  b c", 3), "a b c");
        assert_eq!(first_words("a b c d", 2), "a b…");
        assert_eq!(word_count(&first_words("a b c d", 2)), 2);
        assert_eq!(first_words("", 2), "");
    }
}
