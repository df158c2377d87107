//! 2025-03-26 JSON-RPC batches, member by member: each request of a batch is its own call,
//! priced by its own function and billed for its own text and its own answer, so a member
//! that fails does not make the others free.

use super::report::{Failure, ReportedUsage, answers_in, failure_in, usage_in};
use super::tokens::count_tokens;
use serde_json::Value;
use serde_json::value::RawValue;

/// One JSON-RPC response found in a response body or stream event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response's id as JSON text (`1`, `"a"`), to match it with its request.
    pub id: String,
    /// `cl100k_base` tokens of the response's own text.
    pub tokens: i64,
    /// The usage it reports.
    pub reported: Option<ReportedUsage>,
    /// Whether it says its call failed.
    pub failure: Option<Failure>,
}

/// The JSON texts of `text`'s members when it is a JSON array, else `text` itself as one.
fn members(text: &str) -> Vec<&str> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<&RawValue>>(trimmed)
            .map(|items| items.iter().map(|r| r.get()).collect())
            .unwrap_or_default()
    } else if trimmed.starts_with('{') {
        vec![trimmed.trim_end()]
    } else {
        Vec::new()
    }
}

/// The JSON-RPC responses in one JSON text (a response body or an event's data): the text
/// itself, or each member of a batch of responses. Anything else is skipped.
pub fn answers_in_text(text: &str) -> Vec<Answer> {
    let mut out = Vec::new();
    for raw in members(text) {
        let Ok(message) = serde_json::from_str::<Value>(raw) else { continue };
        let Some(id) = message.get("id").filter(|_| message.get("method").is_none()) else { continue };
        if !answers_in(&message) {
            continue;
        }
        out.push(Answer {
            id: id.to_string(),
            tokens: count_tokens(raw),
            reported: usage_in(&message),
            failure: failure_in(&message),
        });
    }
    out
}

/// The requests of a batch body, in order: each one's id (as JSON text) and its own text.
/// Notifications and responses in the batch, and anything unreadable, are left out.
pub fn batch_requests(body: &[u8]) -> Vec<(String, &str)> {
    let Ok(text) = std::str::from_utf8(body) else { return Vec::new() };
    let mut out = Vec::new();
    for raw in members(text) {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(raw) else { continue };
        if let (Some(id), Some(_)) = (message.get("id"), message.get("method")) {
            out.push((id.to_string(), raw));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_batches_into_their_requests_and_answers() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}, {"jsonrpc":"2.0","method":"notifications/x"},
            {"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"work"}}]"#;
        let requests = batch_requests(body);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0], ("1".to_string(), r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#));
        assert_eq!(requests[1].0, "\"b\"");
        assert!(batch_requests(b"\xff[").is_empty());

        let answers = answers_in_text(
            r#"[{"jsonrpc":"2.0","id":1,"result":{"tools":[]}},
                {"jsonrpc":"2.0","id":"b","error":{"code":-1,"message":"no"}},
                {"jsonrpc":"2.0","method":"notifications/progress"}]"#,
        );
        assert_eq!(answers.len(), 2);
        assert_eq!((answers[0].id.as_str(), answers[0].failure), ("1", None));
        assert_eq!(answers[0].tokens, count_tokens(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#));
        assert_eq!((answers[1].id.as_str(), answers[1].failure), ("\"b\"", Some(Failure::RpcError)));
        let single = answers_in_text(
            r#"{"jsonrpc":"2.0","id":7,"result":{"_meta":{"usage":{"input_tokens":3,"output_tokens":4}}}}"#,
        );
        assert_eq!(single[0].reported, Some(ReportedUsage { input: Some(3), output: Some(4), cache: None }));
        assert!(answers_in_text("not json").is_empty());
        assert!(answers_in_text("[1, 2").is_empty());
    }
}
