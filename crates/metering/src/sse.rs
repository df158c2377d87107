//! An incremental `text/event-stream` parser, per the HTML standard's "event stream
//! interpretation": fed arbitrary byte chunks, it yields each dispatched event.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` type; empty for the default type (`message`).
    pub event: String,
    /// The event's `data:` lines joined with `\n`.
    pub data: String,
}

/// Splits a byte stream into events. Lines end with `\r\n`, `\n` or `\r` (a `\r\n` split
/// across two chunks is one line end); a blank line dispatches the event; lines starting
/// with `:` are comments; `data:` lines are joined with `\n`; one space after the colon is
/// dropped; a leading byte-order mark is skipped; bytes that are not UTF-8 become U+FFFD.
/// An event with no `data:` line is not dispatched, and an event not yet ended by a blank
/// line when the stream stops is discarded (a client never sees it either).
///
/// Memory is bounded by the longest event; bound the stream itself before feeding it.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The last byte seen was a `\r` (a following `\n` belongs to the same line end).
    after_cr: bool,
    /// The first line was read (a byte-order mark is skipped only there).
    started: bool,
    /// The data buffer: each `data:` value followed by `\n`.
    data: String,
    /// The event type buffer.
    event: String,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds the next chunk of the stream; returns the events it completes, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..end]);
            self.end_line(&mut events);
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            self.after_cr = rest[end] == b'\r' && end + 1 == rest.len();
            rest = &rest[end + if crlf { 2 } else { 1 }..];
        }
        self.line.extend_from_slice(rest);
        events
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let bytes = std::mem::take(&mut self.line);
        let decoded = String::from_utf8_lossy(&bytes);
        let mut line: &str = &decoded;
        if !self.started {
            self.started = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(events);
        } else if !line.starts_with(':') {
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match field {
                "data" => {
                    self.data.push_str(value);
                    self.data.push('\n');
                }
                "event" => value.clone_into(&mut self.event),
                _ => {}
            }
        }
        drop(decoded);
        self.line = bytes;
        self.line.clear();
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        self.data.pop();
        events.push(SseEvent { event: std::mem::take(&mut self.event), data: std::mem::take(&mut self.data) });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn whole(stream: &[u8]) -> Vec<SseEvent> {
        SseParser::new().feed(stream)
    }

    fn byte_by_byte(stream: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        stream.iter().flat_map(|b| parser.feed(std::slice::from_ref(b))).collect()
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into() }
    }

    #[test]
    fn parses_events_as_the_standard_says() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("data: hello\n\n", &[("", "hello")]),
            ("data:hello\n\n", &[("", "hello")]),
            ("data:  two spaces\n\n", &[("", " two spaces")]),
            ("data: a\ndata: b\n\n", &[("", "a\nb")]),
            ("data: a\r\ndata: b\r\n\r\n", &[("", "a\nb")]),
            ("data: a\rdata: b\r\r", &[("", "a\nb")]),
            ("data: a\r\n\r\ndata: b\n\n", &[("", "a"), ("", "b")]),
            (": comment\ndata: x\n: another\n\n", &[("", "x")]),
            ("event: message\ndata: {}\n\n", &[("message", "{}")]),
            ("event: a\n\ndata: b\n\n", &[("", "b")]),
            ("data\n\n", &[("", "")]),
            ("data:\n\n", &[("", "")]),
            ("data\ndata\n\n", &[("", "\n")]),
            ("id: 7\nretry: 100\nfoo: bar\n\n", &[]),
            ("\n\n\n", &[]),
            ("data: no blank line at the end\n", &[]),
            ("data: cut", &[]),
            ("\u{feff}data: bom\n\n", &[("", "bom")]),
            ("data: \u{feff}kept\n\n", &[("", "\u{feff}kept")]),
            ("data: a: b\n\n", &[("", "a: b")]),
            ("data: é漢🙂\n\n", &[("", "é漢🙂")]),
            ("DATA: upper\n\n", &[]),
        ];
        for (stream, expected) in cases {
            let expected: Vec<SseEvent> = expected.iter().map(|(e, d)| ev(e, d)).collect();
            assert_eq!(whole(stream.as_bytes()), expected, "{stream:?}");
            assert_eq!(byte_by_byte(stream.as_bytes()), expected, "{stream:?} byte by byte");
        }
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: a\r").is_empty());
        assert!(parser.feed(b"").is_empty());
        assert!(parser.feed(b"\n").is_empty());
        assert_eq!(parser.feed(b"\r"), vec![ev("", "a")]);
        assert!(parser.feed(b"\ndata: b\r").is_empty());
        assert_eq!(parser.feed(b"\r\n"), vec![ev("", "b")]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(whole(b"data: \xff\xfe ok\n\n"), vec![ev("", "\u{fffd}\u{fffd} ok")]);
        // A multi-byte character split across chunks survives.
        let mut parser = SseParser::new();
        let bytes = "data: 漢\n\n".as_bytes();
        assert!(parser.feed(&bytes[..7]).is_empty());
        assert_eq!(parser.feed(&bytes[7..]), vec![ev("", "漢")]);
    }

    #[test]
    fn random_chunkings_give_the_same_events() {
        let stream = concat!(
            "\u{feff}: keep-alive\r\n\r\n",
            "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\r\ndata: \"result\":{}}\r\n\r\n",
            "data: plain\n\n",
            "data: one\rdata: two\r\r",
            "id: 3\ndata: 漢字 and 🙂\n\n",
            "data: {\"streaming\":true,\"delta\":null,\"input_tokens\":12,\"output_tokens\":40}\n\n",
            "data: trailing, never ended\n",
        )
        .as_bytes();
        let expected = whole(stream);
        assert_eq!(expected.len(), 5);
        assert_eq!(expected[0], ev("message", "{\"jsonrpc\":\"2.0\",\"id\":1,\n\"result\":{}}"));
        assert_eq!(expected[2], ev("", "one\ntwo"));
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..500 {
            let mut parser = SseParser::new();
            let mut got = Vec::new();
            let mut rest = stream;
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(24));
                got.extend(parser.feed(&rest[..n]));
                rest = &rest[n..];
            }
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn huge_and_garbage_streams_never_panic() {
        let mut parser = SseParser::new();
        let big = vec![b'x'; 8 << 20];
        assert!(parser.feed(b"data: ").is_empty());
        assert!(parser.feed(&big).is_empty());
        let events = parser.feed(b"\n\n");
        assert_eq!(events[0].data.len(), 8 << 20);
        let mut rng = Rng(42);
        let alphabet = b"data:event \r\n\xff\xc3{}";
        let garbage: Vec<u8> = (0..100_000).map(|_| alphabet[rng.below(alphabet.len())]).collect();
        let all = whole(&garbage);
        assert_eq!(byte_by_byte(&garbage), all);
    }
}
