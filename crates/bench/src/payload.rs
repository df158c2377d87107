//! The bytes every measurement exchanges: the 1 KB `tools/call` request the load
//! generator sends, and the pieces of the upstream's answers (a ~1 KB JSON result, and a
//! 50-event SSE stream).
//!
//! The text is English words, so the gateway's independent `cl100k_base` count lands close
//! to the usage the upstream reports and the calls are not flagged for divergence.

use bytes::Bytes;
use std::io::Write;

/// Size of every request body the load generator sends.
pub const REQUEST_BYTES: usize = 1024;

/// Events in one streamed answer: 49 `notifications/progress` messages, then the result.
pub const EVENTS_PER_STREAM: u64 = 50;

/// The tool answered with a JSON body.
pub const JSON_TOOL: &str = "echo";

/// The tool answered with a `text/event-stream` of [`EVENTS_PER_STREAM`] events.
pub const STREAM_TOOL: &str = "stream";

const WORDS: &str = "the quick brown fox jumps over the lazy dog ";

/// Usage the upstream reports for one call (`_meta.usage`): the `cl100k_base` counts of the
/// bench's own request body and of the answer's text, rounded.
const INPUT_TOKENS: u32 = 220;
const JSON_OUTPUT_TOKENS: u32 = 227;
const STREAM_OUTPUT_TOKENS: u32 = 2330;

/// `len` bytes of English words.
fn filler(len: usize) -> String {
    let mut text: String = WORDS.chars().cycle().take(len).collect();
    if text.ends_with(' ') {
        text.pop();
        text.push('s');
    }
    text
}

/// A JSON-RPC `tools/call` of `tool`, padded with an argument to exactly [`REQUEST_BYTES`].
pub fn request_body(tool: &str) -> Bytes {
    let head =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":""#);
    let tail = r#""}}}"#;
    let pad = REQUEST_BYTES.saturating_sub(head.len() + tail.len());
    Bytes::from(format!("{head}{}{tail}", filler(pad)))
}

/// The upstream's answers, built once; only the request id is spliced in per call.
pub(crate) struct Answers {
    /// `,"result":{…}}` after the id of a JSON answer.
    json_tail: Vec<u8>,
    /// `,"total":50,"message":"…"}}\n\n` after the progress number of a progress event.
    progress_tail: Vec<u8>,
    /// `,"result":{…}}\n\n` after the id of the stream's final event.
    final_tail: Vec<u8>,
}

const JSON_HEAD: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
const PROGRESS_HEAD: &[u8] = br#"event: message
data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"#;
const FINAL_HEAD: &[u8] = br#"event: message
data: {"jsonrpc":"2.0","id":"#;

fn result(text: &str, output_tokens: u32) -> String {
    format!(
        r#","result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false,"_meta":{{"usage":{{"input_tokens":{INPUT_TOKENS},"output_tokens":{output_tokens},"cache_tokens":0}}}}}}}}"#
    )
}

impl Answers {
    pub(crate) fn new() -> Self {
        // Sized so that the JSON answer to id `1` is 1,024 bytes.
        let frame = result("", JSON_OUTPUT_TOKENS).len() + JSON_HEAD.len() + 1;
        let json_tail = result(&filler(REQUEST_BYTES - frame), JSON_OUTPUT_TOKENS).into_bytes();
        let progress_tail = format!(r#","total":{EVENTS_PER_STREAM},"message":"{}"}}}}"#, filler(64));
        let final_tail = result(&filler(120), STREAM_OUTPUT_TOKENS);
        Answers {
            json_tail,
            progress_tail: format!("{progress_tail}\n\n").into_bytes(),
            final_tail: format!("{final_tail}\n\n").into_bytes(),
        }
    }

    /// The JSON-RPC result of a `tools/call` with request id `id` (raw JSON).
    pub(crate) fn json(&self, id: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(JSON_HEAD.len() + id.len() + self.json_tail.len());
        out.extend_from_slice(JSON_HEAD);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.json_tail);
        Bytes::from(out)
    }

    /// Event `n` (0-based) of the stream answering request id `id`: a progress
    /// notification, or the final result for the last one.
    pub(crate) fn event(&self, id: &[u8], n: u64) -> Bytes {
        let mut out = Vec::with_capacity(PROGRESS_HEAD.len() + id.len() + self.final_tail.len() + 24);
        if n + 1 < EVENTS_PER_STREAM {
            out.extend_from_slice(PROGRESS_HEAD);
            out.extend_from_slice(id);
            // Writing to a Vec cannot fail.
            let _ = write!(out, r#","progress":{}"#, n + 1);
            out.extend_from_slice(&self.progress_tail);
        } else {
            out.extend_from_slice(FINAL_HEAD);
            out.extend_from_slice(id);
            out.extend_from_slice(&self.final_tail);
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_exactly_one_kilobyte_of_json() {
        for tool in [JSON_TOOL, STREAM_TOOL] {
            let body = request_body(tool);
            assert_eq!(body.len(), REQUEST_BYTES);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["params"]["name"], tool);
        }
    }

    #[test]
    fn answers_are_valid_json_rpc() {
        let a = Answers::new();
        let json = a.json(b"1");
        assert_eq!(json.len(), REQUEST_BYTES);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["result"]["_meta"]["usage"]["input_tokens"], INPUT_TOKENS);
        for n in 0..EVENTS_PER_STREAM {
            let event = a.event(b"\"x\"", n);
            let text = std::str::from_utf8(&event).unwrap();
            let data = text.strip_prefix("event: message\ndata: ").unwrap().strip_suffix("\n\n").unwrap();
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            if n + 1 < EVENTS_PER_STREAM {
                assert_eq!(v["params"]["progress"], n + 1);
            } else {
                assert_eq!(v["id"], "x");
                assert_eq!(v["result"]["_meta"]["usage"]["output_tokens"], STREAM_OUTPUT_TOKENS);
            }
        }
    }
}
