//! The platform's own token count, with OpenAI's `cl100k_base` encoding. Counting is CPU
//! work (some 40 µs per kilobyte): run it off the async workers.

use super::report::{Failure, ReportedUsage, failure_in, json_of, usage_in};
use super::sse::SseParser;
use std::collections::HashSet;
use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

/// The encoding, loaded once from the vocabulary embedded in `tiktoken-rs` (no network).
/// `None` only if that vocabulary could not be read, and then counts are estimated.
static CL100K_BASE: OnceLock<Option<CoreBPE>> = OnceLock::new();

fn encoding() -> Option<&'static CoreBPE> {
    CL100K_BASE.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
}

/// Loads the encoding now (it takes a noticeable fraction of a second), so the first call
/// does not wait for it. Returns whether the real encoding is available; if not, counts
/// are estimated at four bytes a token.
pub fn warm_up() -> bool {
    encoding().is_some()
}

/// The number of `cl100k_base` tokens in `text`. Special tokens such as `<|endoftext|>`
/// count as the ordinary text they are. Never panics: should the tokenizer give up (its
/// regex has a backtracking limit that, e.g., a megabyte of spaces before a letter
/// reaches), the text is counted in pieces of 8 KiB, and a piece it still gives
/// up on is estimated at four bytes a token.
pub fn count_tokens(text: &str) -> i64 {
    if text.is_empty() {
        return 0;
    }
    let Some(bpe) = encoding() else {
        return estimate(text.len());
    };
    match bpe.encode(text, &HashSet::new()) {
        Ok((tokens, _)) => i64::try_from(tokens.len()).unwrap_or(i64::MAX),
        Err(_) => count_in_pieces(bpe, text),
    }
}

/// The piece size for text the tokenizer cannot take whole.
const PIECE_BYTES: usize = 8 * 1024;

fn count_in_pieces(bpe: &CoreBPE, text: &str) -> i64 {
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        // A character is at most 4 bytes, so `end` stays above 0.
        let mut end = rest.len().min(PIECE_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        let count = match bpe.encode(piece, &HashSet::new()) {
            Ok((tokens, _)) => i64::try_from(tokens.len()).unwrap_or(i64::MAX),
            Err(_) => estimate(piece.len()),
        };
        total = total.saturating_add(count);
        rest = tail;
    }
    total
}

/// [`count_tokens`] of bytes read as UTF-8 (invalid sequences become U+FFFD).
pub fn count_bytes(bytes: &[u8]) -> i64 {
    count_tokens(&String::from_utf8_lossy(bytes))
}

/// Four bytes a token, rounded up: the fallback estimate.
pub fn estimate(bytes: usize) -> i64 {
    i64::try_from(bytes.div_ceil(4)).unwrap_or(i64::MAX)
}

/// What a response stream delivered, as far as metering goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Output {
    /// Platform-counted output tokens: the sum over delivered events of their data's count.
    pub tokens: i64,
    /// Events delivered.
    pub events: u64,
    /// Usage the agent reported in any event (later events' counts win).
    pub reported: Option<ReportedUsage>,
    /// The first event that said the call failed.
    pub failure: Option<Failure>,
}

/// Meters an SSE response as it is delivered: fed the bytes the client received, in any
/// chunking, it counts each completed event's data, and picks up reported usage and
/// failure from events that are JSON. [`OutputCounter::finish`] may be called at any
/// point — a cut stream counts only the events completed before the cut.
#[derive(Debug, Default)]
pub struct OutputCounter {
    parser: SseParser,
    output: Output,
}

impl OutputCounter {
    /// A counter at the start of a stream.
    pub fn new() -> OutputCounter {
        OutputCounter::default()
    }

    /// Feeds the next bytes delivered to the client.
    pub fn feed(&mut self, chunk: &[u8]) {
        for event in self.parser.feed(chunk) {
            let out = &mut self.output;
            out.tokens = out.tokens.saturating_add(count_tokens(&event.data));
            out.events += 1;
            if let Some(message) = json_of(event.data.as_bytes()) {
                if let Some(usage) = usage_in(&message) {
                    out.reported.get_or_insert_default().merge(usage);
                }
                out.failure = out.failure.or(failure_in(&message));
            }
        }
    }

    /// What was metered so far.
    pub fn output(&self) -> Output {
        self.output
    }

    /// Ends metering; an event not ended by a blank line is not counted.
    pub fn finish(self) -> Output {
        self.output
    }
}

/// Meters a whole (non-SSE) response body: its tokens, reported usage and failure.
pub fn meter_body(body: &[u8]) -> Output {
    let message = json_of(body);
    Output {
        tokens: count_bytes(body),
        events: 0,
        reported: message.as_ref().and_then(usage_in),
        failure: message.as_ref().and_then(failure_in),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use std::time::Instant;

    #[test]
    fn counts_cl100k_base_tokens() {
        // Reference counts from OpenAI's tiktoken with cl100k_base.
        let cases = [
            ("", 0),
            ("hello world", 2),
            ("Hello, world!", 4),
            ("tiktoken is great!", 6),
            ("<|endoftext|>", 7),
            (r#"{"jsonrpc":"2.0","id":1}"#, 12),
            ("   ", 1),
        ];
        for (text, tokens) in cases {
            assert_eq!(count_tokens(text), tokens, "{text:?}");
        }
        assert!(warm_up());
        assert_eq!(count_bytes(b"hello world"), 2);
        assert_eq!(count_bytes(b"\xff"), count_tokens("\u{fffd}"));
        assert_eq!(estimate(0), 0);
        assert_eq!(estimate(5), 2);
    }

    #[test]
    fn pathological_text_never_panics() {
        let mut rng = Rng(7);
        let random: String = (0..200_000).map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?')).collect();
        for text in [
            " ".repeat(1 << 20),
            format!("{}a", " ".repeat(1 << 20)),
            "a".repeat(1 << 20),
            "9".repeat(1 << 20),
            "\n\r".repeat(1 << 19),
            "🙂".repeat(1 << 18),
            "<|endoftext|>".repeat(10_000),
            random,
        ] {
            let n = count_tokens(&text);
            assert!(n > 0 && n <= text.len() as i64, "{n} tokens for {} bytes", text.len());
        }
        // The whole text is too much for the tokenizer's regex: it is counted in pieces,
        // far closer than the four-bytes-a-token estimate.
        let spaces_then_letter = format!("{}a", " ".repeat(1 << 20));
        assert!(encoding().unwrap().encode(&spaces_then_letter, &HashSet::new()).is_err());
        assert!(count_tokens(&spaces_then_letter) < estimate(spaces_then_letter.len()) / 4);
    }

    fn sse_stream() -> String {
        concat!(
            ": ping\n\n",
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n",
            "data: {\"streaming\":true,\"delta\":\"Hello there\"}\r\n\r\n",
            "data: {\"streaming\":true,\"delta\":\" general\"}\n\n",
            "data: {\"streaming\":true,\"delta\":null,\"input_tokens\":12,\"output_tokens\":40}\n\n",
        )
        .to_owned()
    }

    #[test]
    fn counts_each_delivered_event_in_any_chunking() {
        let stream = sse_stream();
        let datas = [
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
            r#"{"streaming":true,"delta":"Hello there"}"#,
            r#"{"streaming":true,"delta":" general"}"#,
            r#"{"streaming":true,"delta":null,"input_tokens":12,"output_tokens":40}"#,
        ];
        let expected = Output {
            tokens: datas.iter().map(|d| count_tokens(d)).sum(),
            events: 4,
            reported: Some(ReportedUsage { input: Some(12), output: Some(40), cache: None }),
            failure: None,
        };
        let mut whole = OutputCounter::new();
        whole.feed(stream.as_bytes());
        assert_eq!(whole.finish(), expected);
        let mut bytewise = OutputCounter::new();
        for b in stream.as_bytes() {
            bytewise.feed(std::slice::from_ref(b));
        }
        assert_eq!(bytewise.finish(), expected);
        let mut rng = Rng(99);
        for _ in 0..200 {
            let mut counter = OutputCounter::new();
            let mut rest = stream.as_bytes();
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(40));
                counter.feed(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(counter.finish(), expected);
        }
    }

    #[test]
    fn a_cut_stream_counts_only_completed_events() {
        let stream = sse_stream();
        let cut = stream.find(" general").unwrap();
        let mut counter = OutputCounter::new();
        counter.feed(&stream.as_bytes()[..cut]);
        let partial = counter.output();
        assert_eq!(partial.events, 2);
        assert_eq!(partial.reported, None);
        assert_eq!(
            counter.finish().tokens,
            count_tokens(r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#)
                + count_tokens(r#"{"streaming":true,"delta":"Hello there"}"#)
        );
        assert_eq!(OutputCounter::new().finish(), Output::default());
    }

    #[test]
    fn any_failing_event_fails_the_stream() {
        let stream = concat!(
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"kind\":\"status-update\",\"status\":{\"state\":\"working\"}}}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"kind\":\"status-update\",\"status\":{\"state\":\"failed\"}}}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"_meta\":{\"usage\":{\"input_tokens\":3}}}}\n\n",
            "data: not json at all\n\n",
        );
        let mut counter = OutputCounter::new();
        counter.feed(stream.as_bytes());
        let out = counter.finish();
        assert_eq!(out.failure, Some(Failure::TaskFailed));
        assert_eq!(out.reported, Some(ReportedUsage { input: Some(3), output: None, cache: None }));
        assert_eq!(out.events, 4);
    }

    #[test]
    fn meters_a_plain_body() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"isError":true,"_meta":{"usage":{"input_tokens":1,"output_tokens":2,"cache_tokens":0}}}}"#;
        let out = meter_body(body);
        assert_eq!(out.tokens, count_bytes(body));
        assert_eq!(out.failure, Some(Failure::ToolError));
        assert_eq!(out.reported, Some(ReportedUsage { input: Some(1), output: Some(2), cache: Some(0) }));
        assert_eq!(meter_body(b"<html>bad gateway</html>").failure, None);
        assert_eq!(meter_body(b"").tokens, 0);
    }

    #[test]
    fn counting_one_kilobyte_is_fast() {
        warm_up();
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"summarize","arguments":{{"text":"{}"}}}}}}"#,
            "The quick brown fox jumps over the lazy dog. ".repeat(30)
        );
        let body = &body[..1024];
        let runs = 200u32;
        let start = Instant::now();
        let mut total = 0;
        for _ in 0..runs {
            total += count_tokens(body);
        }
        let per_call = start.elapsed() / runs;
        println!("counting 1 KB ({} tokens) takes {per_call:?} per call", total / i64::from(runs));
    }
}
