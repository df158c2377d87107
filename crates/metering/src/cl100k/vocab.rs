//! The vocabulary — each token's bytes to its rank — in open-addressed tables, and the
//! byte-pair merge that splits a piece missing from it into tokens, exactly as `tiktoken`
//! does (the same two algorithms, switched at the same piece length).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A token's rank: its id, and its merge priority (lower merges first).
pub(super) type Rank = u32;

/// Bits of a heap entry in [`Vocab::merge_large`] that hold the merge's start; the rest
/// hold its rank, so ranks must stay below `2^(64 - START_BITS)`.
const START_BITS: u32 = 40;
const START_MASK: u64 = (1 << START_BITS) - 1;
/// The largest rank a vocabulary may hold.
const MAX_RANK: Rank = (1 << (64 - START_BITS)) - 1;

/// Pieces this long or longer are merged with a heap (`tiktoken`'s threshold).
const LARGE_PIECE: usize = 100;

/// A table slot for a token of at most 8 bytes, packed little-endian into `key`.
#[derive(Clone, Copy)]
struct ShortSlot {
    key: u64,
    len: u32,
    /// `Rank::MAX` for an empty slot.
    rank: Rank,
}

/// A table slot for a longer token, whose bytes are `bytes[start..start + len]`.
#[derive(Clone, Copy)]
struct LongSlot {
    hash: u64,
    start: u32,
    len: u32,
    /// `Rank::MAX` for an empty slot.
    rank: Rank,
}

const EMPTY_SHORT: ShortSlot = ShortSlot { key: 0, len: 0, rank: Rank::MAX };
const EMPTY_LONG: LongSlot = LongSlot { hash: 0, start: 0, len: 0, rank: Rank::MAX };

/// Byte strings to ranks. Tables are at most three quarters full and probed linearly.
pub(super) struct Vocab {
    short: Vec<ShortSlot>,
    short_shift: u32,
    long: Vec<LongSlot>,
    long_shift: u32,
    /// The bytes of the long tokens, one after another.
    bytes: Vec<u8>,
    /// The longest token's length: longer byte strings are not looked up.
    max_len: usize,
    /// The rank of every two-byte token, indexed by its bytes (big-endian); `Rank::MAX`
    /// where there is none.
    pairs: Vec<Rank>,
}

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The first (up to) 8 bytes of `bytes`, little-endian, zero-padded.
#[inline]
fn pack(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    // Two overlapping reads cover lengths 2 to 8 without a variable-length copy.
    let read = |at: usize, width: usize| -> u64 {
        let mut buf = [0u8; 8];
        if let Some(src) = bytes.get(at..at + width) {
            buf[..width].copy_from_slice(src);
        }
        u64::from_le_bytes(buf)
    };
    match n {
        0 => 0,
        1 => u64::from(bytes[0]),
        2..=3 => read(0, 2) | (read(n - 2, 2) << (8 * (n - 2))),
        4..=7 => read(0, 4) | (read(n - 4, 4) << (8 * (n - 4))),
        _ => read(0, 8),
    }
}

/// The hash of a short token's packed bytes; its top bits pick the slot.
#[inline]
fn short_hash(key: u64, len: usize) -> u64 {
    let key = key ^ ((len as u64) << 59) ^ (key >> 32);
    key.wrapping_mul(MUL)
}

/// The hash of a long token's bytes; its top bits pick the slot.
#[inline]
fn long_hash(bytes: &[u8]) -> u64 {
    let mut hash = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        hash = (hash.rotate_left(5) ^ pack(chunk)).wrapping_mul(MUL);
    }
    (hash.rotate_left(5) ^ pack(chunks.remainder())).wrapping_mul(MUL)
}

/// A power-of-two capacity that keeps `n` entries at most three quarters full, and the
/// shift that maps a hash to a slot.
fn capacity(n: usize) -> (usize, u32) {
    let capacity = (n + n / 3 + 1).next_power_of_two().max(2);
    (capacity, 64 - capacity.trailing_zeros())
}

impl Vocab {
    /// Builds the tables. `None` if a rank or a token is out of range, a token repeats, or
    /// a single byte is missing (then some text would have no tokens).
    pub(super) fn new(tokens: &[(Vec<u8>, Rank)]) -> Option<Vocab> {
        let shorts = tokens.iter().filter(|(bytes, _)| bytes.len() <= 8).count();
        let (short_capacity, short_shift) = capacity(shorts);
        let (long_capacity, long_shift) = capacity(tokens.len() - shorts);
        let mut vocab = Vocab {
            short: vec![EMPTY_SHORT; short_capacity],
            short_shift,
            long: vec![EMPTY_LONG; long_capacity],
            long_shift,
            bytes: Vec::new(),
            max_len: tokens.iter().map(|(bytes, _)| bytes.len()).max().unwrap_or(0),
            pairs: vec![Rank::MAX; 1 << 16],
        };
        for (bytes, rank) in tokens {
            if bytes.is_empty() || *rank > MAX_RANK || vocab.rank(bytes).is_some() {
                return None;
            }
            if bytes.len() <= 8 {
                let key = pack(bytes);
                let mask = vocab.short.len() - 1;
                let mut slot = (short_hash(key, bytes.len()) >> vocab.short_shift) as usize;
                while vocab.short[slot].rank != Rank::MAX {
                    slot = (slot + 1) & mask;
                }
                vocab.short[slot] = ShortSlot { key, len: bytes.len() as u32, rank: *rank };
                if let [a, b] = bytes[..] {
                    vocab.pairs[usize::from(a) << 8 | usize::from(b)] = *rank;
                }
            } else {
                let hash = long_hash(bytes);
                let mask = vocab.long.len() - 1;
                let mut slot = (hash >> vocab.long_shift) as usize;
                while vocab.long[slot].rank != Rank::MAX {
                    slot = (slot + 1) & mask;
                }
                let start = u32::try_from(vocab.bytes.len()).ok()?;
                let len = u32::try_from(bytes.len()).ok()?;
                vocab.bytes.extend_from_slice(bytes);
                vocab.long[slot] = LongSlot { hash, start, len, rank: *rank };
            }
        }
        (0..=u8::MAX).all(|byte| vocab.rank(&[byte]).is_some()).then_some(vocab)
    }

    /// The rank of the token that is exactly `bytes`, if there is one.
    #[inline]
    pub(super) fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        if bytes.len() <= 8 { self.short_rank(bytes) } else { self.long_rank(bytes) }
    }

    #[inline]
    fn short_rank(&self, bytes: &[u8]) -> Option<Rank> {
        let key = pack(bytes);
        let mask = self.short.len() - 1;
        let mut slot = (short_hash(key, bytes.len()) >> self.short_shift) as usize;
        loop {
            let entry = self.short.get(slot)?;
            if entry.rank == Rank::MAX {
                return None;
            }
            if entry.key == key && entry.len as usize == bytes.len() {
                return Some(entry.rank);
            }
            slot = (slot + 1) & mask;
        }
    }

    #[inline(never)]
    fn long_rank(&self, bytes: &[u8]) -> Option<Rank> {
        if bytes.len() > self.max_len {
            return None;
        }
        let hash = long_hash(bytes);
        let mask = self.long.len() - 1;
        let mut slot = (hash >> self.long_shift) as usize;
        loop {
            let entry = self.long.get(slot)?;
            if entry.rank == Rank::MAX {
                return None;
            }
            if entry.hash == hash && entry.len as usize == bytes.len() {
                let start = entry.start as usize;
                if self.bytes.get(start..start + bytes.len()) == Some(bytes) {
                    return Some(entry.rank);
                }
            }
            slot = (slot + 1) & mask;
        }
    }

    #[inline]
    fn rank_or_max(&self, bytes: &[u8]) -> Rank {
        self.rank(bytes).unwrap_or(Rank::MAX)
    }

    /// The rank of the two-byte token `piece[i..i + 2]`, or `Rank::MAX`.
    #[inline]
    fn pair_rank(&self, piece: &[u8], i: usize) -> Rank {
        match piece.get(i..i + 2) {
            Some(&[a, b]) => self.pairs.get(usize::from(a) << 8 | usize::from(b)).copied().unwrap_or(Rank::MAX),
            _ => Rank::MAX,
        }
    }

    /// The number of tokens in `piece` (one pre-tokenized piece). `scratch` is working
    /// memory kept between calls.
    #[inline]
    pub(super) fn count(&self, piece: &[u8], scratch: &mut Vec<(usize, Rank)>) -> usize {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return usize::from(!piece.is_empty());
        }
        if piece.len() < LARGE_PIECE {
            self.merge_small(piece, scratch);
            scratch.len() - 1
        } else {
            let mut count = 0;
            self.merge_large(piece, |_| count += 1);
            count
        }
    }

    /// The tokens' byte lengths `piece` splits into, in order.
    #[cfg(test)]
    pub(super) fn split(&self, piece: &[u8]) -> Vec<usize> {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return vec![piece.len()];
        }
        if piece.len() < LARGE_PIECE {
            let mut parts = Vec::new();
            self.merge_small(piece, &mut parts);
            parts.windows(2).map(|w| w[1].0 - w[0].0).collect()
        } else {
            let mut lengths = Vec::new();
            self.merge_large(piece, |len| lengths.push(len));
            lengths
        }
    }

    /// `tiktoken`'s merge for short pieces (at least 2 bytes): `parts` ends as the start of
    /// each token, then `piece.len()`; each paired with the rank of merging it with the next.
    fn merge_small(&self, piece: &[u8], parts: &mut Vec<(usize, Rank)>) {
        parts.clear();
        let mut min = (Rank::MAX, usize::MAX);
        for i in 0..piece.len() - 1 {
            let rank = self.pair_rank(piece, i);
            if rank < min.0 {
                min = (rank, i);
            }
            parts.push((i, rank));
        }
        parts.push((piece.len() - 1, Rank::MAX));
        parts.push((piece.len(), Rank::MAX));
        // The rank of merging part `i` with part `i + 1`, before part `i + 1` is removed.
        let rank_at = |parts: &[(usize, Rank)], i: usize| match (parts.get(i), parts.get(i + 3)) {
            (Some(&(start, _)), Some(&(end, _))) => self.rank_or_max(&piece[start..end]),
            _ => Rank::MAX,
        };
        while min.0 != Rank::MAX {
            let i = min.1;
            if i > 0 {
                parts[i - 1].1 = rank_at(parts, i - 1);
            }
            parts[i].1 = rank_at(parts, i);
            parts.remove(i + 1);
            min = (Rank::MAX, usize::MAX);
            for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
                if rank < min.0 {
                    min = (rank, i);
                }
            }
        }
    }

    /// `tiktoken`'s merge for long pieces: a heap of candidate merges over a linked list of
    /// tokens, smallest rank first and leftmost first among equals. Gives each token's byte
    /// length to `token`, in order.
    fn merge_large(&self, piece: &[u8], mut token: impl FnMut(usize)) {
        /// The token that starts here (the list is indexed by start).
        struct State {
            prev: usize,
            end: usize,
            /// The end of the next token.
            next_end: usize,
            /// The rank of merging with the next token, `Rank::MAX` if it cannot be.
            next_rank: Rank,
        }
        // A heap entry: a merge's rank then its start, packed so that the smallest merge
        // is the smallest number.
        let merge = |rank: Rank, start: usize| Reverse(u64::from(rank) << START_BITS | start as u64);

        let len = piece.len();
        if len as u64 >= 1 << START_BITS {
            // Beyond the heap entries' reach (and beyond any memory that could hold the
            // merge's state): one token a byte.
            (0..len).for_each(|_| token(1));
            return;
        }
        let mut state: Vec<State> = (0..len)
            .map(|i| State { prev: i.wrapping_sub(1), end: i + 1, next_end: i + 2, next_rank: Rank::MAX })
            .collect();
        let mut initial = Vec::with_capacity(len);
        for (i, token) in state.iter_mut().enumerate().take(len - 1) {
            let rank = self.pair_rank(piece, i);
            if rank != Rank::MAX {
                initial.push(merge(rank, i));
                token.next_rank = rank;
            }
        }
        let mut heap = BinaryHeap::from(initial);
        let potential_merge =
            |state: &mut [State], heap: &mut BinaryHeap<Reverse<u64>>, start: usize, next_end: usize| {
                state[start].next_end = next_end;
                state[start].next_rank = Rank::MAX;
                if next_end <= len {
                    let rank = self.rank_or_max(&piece[start..next_end]);
                    if rank != Rank::MAX {
                        heap.push(merge(rank, start));
                        state[start].next_rank = rank;
                    }
                }
            };
        while let Some(Reverse(key)) = heap.pop() {
            let (rank, left_start) = ((key >> START_BITS) as Rank, (key & START_MASK) as usize);
            if rank != state[left_start].next_rank {
                continue;
            }
            let right_start = state[left_start].end;
            let right_end = state[left_start].next_end;
            let right_next_end = state[right_start].next_end;
            state[left_start].end = right_end;
            potential_merge(&mut state, &mut heap, left_start, right_next_end);
            if right_end < len {
                state[right_end].prev = left_start;
            }
            if left_start > 0 {
                let prev_start = state[left_start].prev;
                potential_merge(&mut state, &mut heap, prev_start, right_end);
            }
            state[right_start].next_rank = Rank::MAX;
        }
        let mut i = 0;
        while i < len {
            token(state[i].end - i);
            i = state[i].end;
        }
    }
}
