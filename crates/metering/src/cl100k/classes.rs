//! The character classes the `cl100k_base` split pattern tells apart, looked up in a table
//! built from the same Unicode data the `regex` crate (and so `tiktoken-rs`'s `fancy-regex`)
//! matches `\p{L}`, `\p{N}` and `\s` with.

use regex_syntax::hir::{Class, HirKind};
use std::collections::HashMap;

/// `\p{L}`: a letter (general category Lu, Ll, Lt, Lm or Lo).
pub(super) const LETTER: u8 = 0;
/// `\p{N}`: a number (Nd, Nl or No).
pub(super) const NUMBER: u8 = 1;
/// `\s` other than `\r` and `\n` (Unicode White_Space).
pub(super) const SPACE: u8 = 2;
/// `\r` or `\n`.
pub(super) const NEWLINE: u8 = 3;
/// Anything else: punctuation, symbols, marks, controls, unassigned code points.
pub(super) const OTHER: u8 = 4;

/// Code points per table block.
const BLOCK: usize = 128;
/// One past the largest code point.
const CODE_POINTS: usize = 0x11_0000;

/// The class of every code point, as a two-level table: `index[cp / 128]` names a block of
/// 128 classes, shared by every range of code points that classifies the same way.
pub(super) struct Classes {
    ascii: [u8; BLOCK],
    index: Vec<u16>,
    blocks: Vec<u8>,
}

impl Classes {
    /// Builds the table; `None` only if `regex-syntax` no longer parses the classes.
    pub(super) fn load() -> Option<Classes> {
        let mut all = vec![OTHER; CODE_POINTS];
        for (pattern, class) in [(r"\p{L}", LETTER), (r"\p{N}", NUMBER), (r"\s", SPACE)] {
            for (start, end) in ranges(pattern)? {
                all.get_mut(start..=end)?.fill(class);
            }
        }
        for newline in [b'\r', b'\n'] {
            *all.get_mut(usize::from(newline))? = NEWLINE;
        }
        let mut index = Vec::with_capacity(CODE_POINTS / BLOCK);
        let mut blocks = Vec::new();
        let mut seen: HashMap<&[u8], u16> = HashMap::new();
        for block in all.chunks(BLOCK) {
            let id = match seen.get(block) {
                Some(&id) => id,
                None => {
                    let id = u16::try_from(seen.len()).ok()?;
                    seen.insert(block, id);
                    blocks.extend_from_slice(block);
                    id
                }
            };
            index.push(id);
        }
        let ascii = all.get(..BLOCK)?.try_into().ok()?;
        Some(Classes { ascii, index, blocks })
    }

    /// The class of an ASCII byte (`byte < 128`; anything else is [`OTHER`]).
    #[inline]
    pub(super) fn of_ascii(&self, byte: u8) -> u8 {
        self.ascii.get(usize::from(byte)).copied().unwrap_or(OTHER)
    }

    /// The class of a code point.
    #[inline]
    pub(super) fn of(&self, code_point: u32) -> u8 {
        let cp = code_point as usize;
        let Some(&block) = self.index.get(cp / BLOCK) else {
            return OTHER;
        };
        self.blocks.get(usize::from(block) * BLOCK + cp % BLOCK).copied().unwrap_or(OTHER)
    }
}

/// The code point ranges of a Unicode class pattern.
fn ranges(pattern: &str) -> Option<Vec<(usize, usize)>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let HirKind::Class(Class::Unicode(class)) = hir.kind() else {
        return None;
    };
    Some(class.ranges().iter().map(|r| (r.start() as usize, r.end() as usize)).collect())
}
