//! OpenAI's `cl100k_base` encoding, for counting: a hand-written pre-tokenizer equivalent
//! to the encoding's split pattern, then a byte-pair merge over its vocabulary for each
//! piece the vocabulary does not hold whole. Counts equal `tiktoken`'s
//! `encode_ordinary(text).len()`. Time is linear in the text but for the merge of a
//! piece missing from the vocabulary, `O(n log n)` in the piece's length.
//!
//! The split pattern, as `tiktoken-rs` compiles it with `fancy-regex`, is
//!
//! ```text
//! '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s
//! ```
//!
//! tried leftmost-first at each position. [`Cl100k::piece_end`] follows it alternative by
//! alternative.

mod classes;
mod vocab;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use classes::{Classes, LETTER, NEWLINE, NUMBER, OTHER, SPACE};
use tiktoken_rs::CoreBPE;
use vocab::{Rank, Vocab};

/// Ranks are tried up to this many past the last one that decoded, when reading the
/// vocabulary out of `tiktoken-rs` (`cl100k_base`'s have gaps of at most a few dozen).
const RANK_GAP: Rank = 4096;

/// The encoding's tables.
pub(crate) struct Cl100k {
    classes: Classes,
    vocab: Vocab,
}

impl Cl100k {
    /// Loads the vocabulary embedded in `tiktoken-rs` (no network; a fraction of a second).
    /// `None` if it cannot be read.
    pub(crate) fn load() -> Option<Cl100k> {
        let bpe = tiktoken_rs::cl100k_base().ok()?;
        let classes = Classes::load()?;
        let vocab = Vocab::new(&ordinary_tokens(&bpe))?;
        Some(Cl100k { classes, vocab })
    }

    /// The number of tokens in `text`, special tokens counted as ordinary text.
    pub(crate) fn count(&self, text: &str) -> usize {
        let bytes = text.as_bytes();
        let mut scratch = Vec::new();
        let mut count = 0usize;
        let mut start = 0;
        while start < bytes.len() {
            let end = self.piece_end(bytes, start).clamp(start + 1, bytes.len());
            count += self.vocab.count(&bytes[start..end], &mut scratch);
            start = end;
        }
        count
    }

    /// The class and byte length of the character at `i`; `None` at the end of the text.
    #[inline]
    fn char_at(&self, bytes: &[u8], i: usize) -> Option<(u8, usize)> {
        let first = *bytes.get(i)?;
        if first < 0x80 {
            return Some((self.classes.of_ascii(first), 1));
        }
        let (code_point, len) = decode(bytes, i, first);
        Some((self.classes.of(code_point), len))
    }

    /// The end of the run of `class` characters starting at `i`.
    #[inline]
    fn skip(&self, bytes: &[u8], mut i: usize, class: u8) -> usize {
        while let Some((c, len)) = self.char_at(bytes, i)
            && c == class
        {
            i += len;
        }
        i
    }

    /// The end of the piece that starts at `start` (`start < bytes.len()`; the result is
    /// past it and on a character boundary).
    fn piece_end(&self, bytes: &[u8], start: usize) -> usize {
        let Some((first, len)) = self.char_at(bytes, start) else {
            return bytes.len();
        };
        let next = start + len;
        match first {
            // `[^\r\n\p{L}\p{N}]?+\p{L}++` without its optional first character.
            LETTER => self.skip(bytes, next, LETTER),
            // `\p{N}{1,3}+`
            NUMBER => {
                let mut end = next;
                for _ in 0..2 {
                    match self.char_at(bytes, end) {
                        Some((NUMBER, len)) => end += len,
                        _ => break,
                    }
                }
                end
            }
            NEWLINE => self.whitespace_end(bytes, start),
            _ => {
                // `'(?i:[sdmt]|ll|ve|re)`
                if bytes.get(start) == Some(&b'\'')
                    && let Some(end) = contraction_end(bytes, next)
                {
                    return end;
                }
                match self.char_at(bytes, next) {
                    // `[^\r\n\p{L}\p{N}]?+\p{L}++` with its optional first character.
                    Some((LETTER, len)) => self.skip(bytes, next + len, LETTER),
                    // ` ?[^\s\p{L}\p{N}]++[\r\n]*+` without the space…
                    _ if first == OTHER => self.skip(bytes, self.skip(bytes, next, OTHER), NEWLINE),
                    // …and with it.
                    Some((OTHER, len)) if bytes.get(start) == Some(&b' ') => {
                        self.skip(bytes, self.skip(bytes, next + len, OTHER), NEWLINE)
                    }
                    _ => self.whitespace_end(bytes, start),
                }
            }
        }
    }

    /// The end of the piece the whitespace alternatives give for the whitespace at `start`:
    /// with `run` the whitespace from `start` on, `\s++$` takes it all if it ends the text;
    /// `\s*[\r\n]` takes it through its last `\r`/`\n`; `\s+(?!\S)` takes all but its last
    /// character (which is followed by non-whitespace); `\s` takes one character.
    fn whitespace_end(&self, bytes: &[u8], start: usize) -> usize {
        let mut end = start;
        let mut last_char = start;
        let mut after_newline = None;
        while let Some((class, len)) = self.char_at(bytes, end) {
            match class {
                SPACE => {}
                NEWLINE => after_newline = Some(end + len),
                _ => break,
            }
            last_char = end;
            end += len;
        }
        if end == bytes.len() {
            end
        } else if let Some(after_newline) = after_newline {
            after_newline
        } else if last_char > start {
            last_char
        } else {
            end
        }
    }
}

/// The end of a contraction whose letters start at `i` (just past an apostrophe):
/// `s`, `d`, `m`, `t`, `ll`, `ve` or `re` in any case, where `s` also matches `ſ` (U+017F,
/// which case-folds to `s`).
#[inline]
fn contraction_end(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i..)? {
        [b's' | b'S' | b'd' | b'D' | b'm' | b'M' | b't' | b'T', ..] => Some(i + 1),
        [0xC5, 0xBF, ..] => Some(i + 2),
        [b'l' | b'L', b'l' | b'L', ..] | [b'v' | b'V', b'e' | b'E', ..] | [b'r' | b'R', b'e' | b'E', ..] => Some(i + 2),
        _ => None,
    }
}

/// Decodes the multi-byte UTF-8 character at `i`, whose first byte is `first` (`bytes`
/// comes from a `str`, so the sequence is complete and valid).
#[inline]
fn decode(bytes: &[u8], i: usize, first: u8) -> (u32, usize) {
    let cont = |k: usize| u32::from(bytes.get(i + k).copied().unwrap_or(0x80) & 0x3F);
    match first {
        0xC0..=0xDF => ((u32::from(first & 0x1F) << 6) | cont(1), 2),
        0xE0..=0xEF => ((u32::from(first & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3),
        _ => ((u32::from(first & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3), 4),
    }
}

/// Every ordinary token of the encoding, with its rank (special tokens left out).
fn ordinary_tokens(bpe: &CoreBPE) -> Vec<(Vec<u8>, Rank)> {
    let specials = bpe.special_tokens();
    let special: Vec<Rank> =
        specials.iter().filter_map(|s| bpe.encode(s, &specials).ok()).flat_map(|(ranks, _)| ranks).collect();
    let mut tokens = Vec::new();
    let mut rank: Rank = 0;
    let mut last_found: Rank = 0;
    while rank.saturating_sub(last_found) < RANK_GAP && rank < Rank::MAX {
        if let Ok(bytes) = bpe.decode_bytes(&[rank]) {
            last_found = rank;
            if !special.contains(&rank) {
                tokens.push((bytes, rank));
            }
        }
        rank += 1;
    }
    tokens
}
