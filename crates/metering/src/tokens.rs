//! The platform's own token count, with OpenAI's `cl100k_base` encoding (the `cl100k`
//! module). Counting is CPU work, a few microseconds per kilobyte: run it off the async
//! workers.

use super::batch::{Answer, answers_in_text};
use super::cl100k::Cl100k;
use super::report::{Failure, ReportedUsage, answers_in, failure_in, json_of, usage_in};
use super::sse::SseParser;
use std::sync::OnceLock;

/// The encoding, loaded once from the vocabulary embedded in `tiktoken-rs` (no network).
/// `None` only if that vocabulary could not be read, and then counts are estimated.
static CL100K_BASE: OnceLock<Option<Cl100k>> = OnceLock::new();

fn encoding() -> Option<&'static Cl100k> {
    CL100K_BASE.get_or_init(Cl100k::load).as_ref()
}

/// Loads the encoding now (it takes a noticeable fraction of a second), so the first call
/// does not wait for it. Returns whether the real encoding is available; if not, counts
/// are estimated at four bytes a token.
pub fn warm_up() -> bool {
    encoding().is_some()
}

/// The number of `cl100k_base` tokens in `text`: exactly `tiktoken`'s
/// `encode_ordinary(text).len()`, so special tokens such as `<|endoftext|>` count as the
/// ordinary text they are. Never panics, and time stays near-linear in the length of
/// `text` whatever it holds: linear over its pre-tokenized pieces, `O(n log n)` for a
/// single piece of `n` bytes (the worst case, e.g. a megabyte of one repeated character).
pub fn count_tokens(text: &str) -> i64 {
    if text.is_empty() {
        return 0;
    }
    let Some(encoding) = encoding() else {
        return estimate(text.len());
    };
    i64::try_from(encoding.count(text)).unwrap_or(i64::MAX)
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
    /// A JSON-RPC response was delivered ([`answers_in`]): the request was answered.
    pub answered: bool,
}

/// Meters an SSE response as it is delivered: fed the bytes the client received, in any
/// chunking, it counts each completed event's data, and picks up reported usage and
/// failure from events that are JSON. [`OutputCounter::finish`] may be called at any
/// point — a cut stream counts only the events completed before the cut.
#[derive(Debug, Default)]
pub struct OutputCounter {
    parser: SseParser,
    output: Output,
    /// The JSON-RPC responses delivered, when collected (batches are billed by member).
    answers: Option<Vec<Answer>>,
}

impl OutputCounter {
    /// A counter at the start of a stream.
    pub fn new() -> OutputCounter {
        OutputCounter::default()
    }

    /// A counter that also collects each JSON-RPC response delivered
    /// ([`OutputCounter::finish_with_answers`]).
    pub fn with_answers() -> OutputCounter {
        OutputCounter { answers: Some(Vec::new()), ..OutputCounter::default() }
    }

    /// Feeds the next bytes delivered to the client.
    pub fn feed(&mut self, chunk: &[u8]) {
        for event in self.parser.feed(chunk) {
            if let Some(answers) = &mut self.answers {
                answers.extend(answers_in_text(&event.data));
            }
            let out = &mut self.output;
            out.tokens = out.tokens.saturating_add(count_tokens(&event.data));
            out.events += 1;
            if let Some(message) = json_of(event.data.as_bytes()) {
                if let Some(usage) = usage_in(&message) {
                    out.reported.get_or_insert_default().merge(usage);
                }
                out.failure = out.failure.or(failure_in(&message));
                out.answered |= answers_in(&message);
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

    /// Ends metering, with the responses collected (none unless made
    /// [`OutputCounter::with_answers`]).
    pub fn finish_with_answers(self) -> (Output, Vec<Answer>) {
        (self.output, self.answers.unwrap_or_default())
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
        answered: message.as_ref().is_some_and(answers_in),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

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

    /// `tiktoken`'s count, or `None` where its regex gives up (its backtracking limit).
    fn tiktoken_count(text: &str) -> Option<i64> {
        let bpe = tiktoken_rs::cl100k_base_singleton();
        bpe.encode(text, &HashSet::new()).ok().map(|(tokens, _)| tokens.len() as i64)
    }

    #[test]
    fn pathological_text_counts_exactly_in_linear_time() {
        warm_up();
        let mut rng = Rng(7);
        let random: String = (0..200_000).map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?')).collect();
        for text in [
            " ".repeat(1 << 20),
            format!("{}a", " ".repeat(1 << 20)),
            format!("{}a", "\u{3000}".repeat(1 << 18)),
            "a".repeat(1 << 20),
            "9".repeat(1 << 20),
            "\n\r".repeat(1 << 19),
            " \n".repeat(1 << 19),
            "🙂".repeat(1 << 18),
            "!".repeat(1 << 20),
            "<|endoftext|>".repeat(10_000),
            random,
        ] {
            let start = Instant::now();
            let n = count_tokens(&text);
            let elapsed = start.elapsed();
            let head: String = text.chars().take(4).collect();
            let expected = tiktoken_count(&text);
            println!("{} bytes starting {head:?}: {n} tokens in {elapsed:?} (tiktoken: {expected:?})", text.len());
            assert!(n > 0 && n <= text.len() as i64, "{n} tokens for {} bytes", text.len());
            if !cfg!(debug_assertions) {
                assert!(elapsed < Duration::from_secs(5), "{elapsed:?} for {} bytes", text.len());
            }
            if let Some(expected) = expected {
                assert_eq!(n, expected, "{} bytes starting {head:?}", text.len());
            }
        }
        // Too much for `tiktoken`'s regex whole; its pieces would be the spaces but one,
        // then the last space with the letter.
        for (space, n) in [(" ", 1 << 20), ("\t", 1 << 20)] {
            let text = format!("{}a", space.repeat(n));
            assert_eq!(tiktoken_count(&text), None);
            let expected =
                tiktoken_count(&space.repeat(n - 1)).unwrap() + tiktoken_count(&format!("{space}a")).unwrap();
            assert_eq!(count_tokens(&text), expected);
        }
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
            answered: true,
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

    /// Some 64 KiB of JSON, English, code, CJK, Cyrillic, numbers and emoji.
    fn mixed_text() -> String {
        let parts = [
            r#"{"jsonrpc":"2.0","id":17,"result":{"content":[{"type":"text","text":"Done."}],"_meta":{"usage":{"input_tokens":1234,"output_tokens":56}}}}"#,
            "\n\nThe committee's report, published on 12 March 2024, found that 73% of respondents hadn't read it.\n",
            "fn count(&self, text: &str) -> usize {\n    let mut n = 0;\n    for piece in self.split(text) {\n        n += 1;\n    }\n    n\n}\n",
            "東京は日本の首都です。人口は約1400万人です。",
            "Привет, мир! Как дела? ",
            "    if (x >= 0x7f && y != null) { return [1, 2, 3]; }\r\n",
            "🙂👍🏽 Great job!!! 🎉 ",
            "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id DESC LIMIT 100;\n",
        ];
        let mut rng = Rng(11);
        let mut text = String::new();
        while text.len() < 64 * 1024 {
            text.push_str(parts[rng.below(parts.len())]);
        }
        text
    }

    /// Microseconds per kilobyte for `count` on `text`, best of a few rounds.
    fn micros_per_kb(text: &str, count: impl Fn(&str) -> i64) -> f64 {
        let runs = (200_000 / text.len()).max(5);
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..runs {
                std::hint::black_box(count(std::hint::black_box(text)));
            }
            let per_kb = start.elapsed().as_secs_f64() * 1e6 / runs as f64 / (text.len() as f64 / 1024.0);
            best = best.min(per_kb);
        }
        best
    }

    #[test]
    fn counting_one_kilobyte_is_fast() {
        let start = Instant::now();
        assert!(crate::cl100k::Cl100k::load().is_some());
        println!("loading the tables takes {:?}", start.elapsed());
        warm_up();
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"summarize","arguments":{{"text":"{}"}}}}}}"#,
            "The quick brown fox jumps over the lazy dog. ".repeat(30)
        );
        let mixed = mixed_text();
        for (name, text) in [("1 KB JSON", &body[..1024]), ("64 KB mixed", &mixed[..])] {
            assert_eq!(Some(count_tokens(text)), tiktoken_count(text));
            let old = micros_per_kb(text, |t| tiktoken_count(t).unwrap_or(0));
            let new = micros_per_kb(text, count_tokens);
            println!(
                "{name} ({} tokens): tiktoken-rs {old:.2} µs/KB, count_tokens {new:.2} µs/KB ({:.1}x)",
                count_tokens(text),
                old / new
            );
        }
    }
}
