//! What a response says about its call: the usage the agent reports, and whether the call
//! failed. Both read one JSON value — a whole JSON-RPC response body, or one SSE event's
//! data.

use serde_json::Value;
use tollgate_domain::pricing::Tokens;

/// Token counts an agent reported. A count the agent left out (or sent as garbage:
/// negative, fractional, not a number, too large) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportedUsage {
    /// `input_tokens`.
    pub input: Option<i64>,
    /// `output_tokens`.
    pub output: Option<i64>,
    /// `cache_tokens`.
    pub cache: Option<i64>,
}

impl ReportedUsage {
    /// Reads `input_tokens`, `output_tokens` and `cache_tokens` from `object`; `None` when
    /// it is not an object or has none of them as a non-negative integer.
    pub fn from_fields(object: &Value) -> Option<ReportedUsage> {
        let count = |key: &str| object.get(key).and_then(Value::as_i64).filter(|n| *n >= 0);
        let usage = ReportedUsage {
            input: count("input_tokens"),
            output: count("output_tokens"),
            cache: count("cache_tokens"),
        };
        (usage != ReportedUsage::default()).then_some(usage)
    }

    /// Takes the counts of a later report over this one's, keeping what it leaves out (a
    /// stream's final event usually carries the totals).
    pub fn merge(&mut self, later: ReportedUsage) {
        self.input = later.input.or(self.input);
        self.output = later.output.or(self.output);
        self.cache = later.cache.or(self.cache);
    }

    /// The reported tokens for billing: a count the agent left out falls back to the
    /// platform's `counted` one (cache tokens, which only the agent can count, to zero).
    pub fn resolve(self, counted: Tokens) -> Tokens {
        Tokens {
            input: self.input.unwrap_or(counted.input),
            output: self.output.unwrap_or(counted.output),
            cache: self.cache.unwrap_or(0),
        }
    }
}

/// The usage reported in one message: a JSON-RPC result's `result._meta.usage`, or
/// top-level `input_tokens` / `output_tokens` / `cache_tokens` fields (a stream's final
/// event, e.g. `{"streaming":true,"delta":null,"input_tokens":12,"output_tokens":40}`).
/// In a batch (a JSON array), later members' reports win.
pub fn usage_in(message: &Value) -> Option<ReportedUsage> {
    match message {
        Value::Array(items) => items.iter().filter_map(usage_in).reduce(|mut acc, later| {
            acc.merge(later);
            acc
        }),
        Value::Object(_) => message
            .pointer("/result/_meta/usage")
            .and_then(ReportedUsage::from_fields)
            .or_else(|| ReportedUsage::from_fields(message)),
        _ => None,
    }
}

/// Why a call counts as failed (and so is not charged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The agent answered with an HTTP status of 400 or more.
    HttpStatus,
    /// A JSON-RPC error response.
    RpcError,
    /// An MCP tool result with `isError: true`.
    ToolError,
    /// An A2A task that ended `failed` or `rejected`.
    TaskFailed,
}

impl Failure {
    /// The short code stored on the usage record.
    pub fn code(self) -> &'static str {
        match self {
            Failure::HttpStatus => "agent_http_error",
            Failure::RpcError => "agent_rpc_error",
            Failure::ToolError => "agent_tool_error",
            Failure::TaskFailed => "agent_task_failed",
        }
    }
}

/// A2A task states that end a call as failed (v0.x names and v1.0 enum names).
const FAILED_STATES: &[&str] = &["failed", "rejected", "TASK_STATE_FAILED", "TASK_STATE_REJECTED"];

/// Where an A2A task state sits in a result: a v0.x task or status-update event
/// (`status.state`), a v1.0 response's task (`task.status.state`), a v1.0 streamed status
/// update (`statusUpdate.status.state`).
const STATE_POINTERS: &[&str] = &["/status/state", "/task/status/state", "/statusUpdate/status/state"];

/// Whether one message says its call failed: a JSON-RPC error (an `error` member that is
/// not null, on a message with no `method`), an MCP tool result with `isError: true`, or an
/// A2A task in state `failed` / `rejected`. In a batch, the first failing member decides.
pub fn failure_in(message: &Value) -> Option<Failure> {
    match message {
        Value::Array(items) => items.iter().find_map(failure_in),
        Value::Object(obj) => {
            if obj.contains_key("method") {
                return None;
            }
            if obj.get("error").is_some_and(|e| !e.is_null()) {
                return Some(Failure::RpcError);
            }
            let result = obj.get("result")?;
            if result.get("isError").and_then(Value::as_bool) == Some(true) {
                return Some(Failure::ToolError);
            }
            let failed = STATE_POINTERS.iter().any(|pointer| {
                result.pointer(pointer).and_then(Value::as_str).is_some_and(|state| FAILED_STATES.contains(&state))
            });
            failed.then_some(Failure::TaskFailed)
        }
        _ => None,
    }
}

/// Whether a message answers a request: a JSON-RPC response (an `id` and a `result` or an
/// `error`, no `method`), a stream's final event (`{"streaming": true, "delta": null, …}`),
/// or a batch holding one.
pub fn answers_in(message: &Value) -> bool {
    match message {
        Value::Array(items) => items.iter().any(answers_in),
        Value::Object(obj) => {
            let response = !obj.contains_key("method")
                && obj.contains_key("id")
                && (obj.contains_key("result") || obj.contains_key("error"));
            let final_event =
                obj.get("streaming") == Some(&Value::Bool(true)) && obj.get("delta") == Some(&Value::Null);
            response || final_event
        }
        _ => false,
    }
}

/// The failure of a call from its HTTP status (400 or more fails it) and what its body
/// said ([`failure_in`], over every event of a stream).
pub fn call_failure(http_status: u16, body: Option<Failure>) -> Option<Failure> {
    if http_status >= 400 { Some(Failure::HttpStatus) } else { body }
}

/// Parses `text` as JSON when it could be an object or array; `None` otherwise (cheaply,
/// without building anything for plain text).
pub(crate) fn json_of(text: &[u8]) -> Option<Value> {
    let first = text.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    serde_json::from_slice(text).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(i: Option<i64>, o: Option<i64>, c: Option<i64>) -> Option<ReportedUsage> {
        Some(ReportedUsage { input: i, output: o, cache: c })
    }

    #[test]
    fn tells_answers_from_other_messages() {
        for answer in [
            json!({"jsonrpc": "2.0", "id": 1, "result": {}}),
            json!({"jsonrpc": "2.0", "id": "a", "error": {"code": -1, "message": "x"}}),
            json!({"streaming": true, "delta": null, "input_tokens": 3}),
            json!([{"jsonrpc": "2.0", "method": "notifications/progress"}, {"jsonrpc": "2.0", "id": 2, "result": 1}]),
        ] {
            assert!(answers_in(&answer), "{answer}");
        }
        for other in [
            json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage"}),
            json!({"jsonrpc": "2.0", "result": {}}),
            json!({"streaming": true, "delta": "partial"}),
            json!("result"),
            json!([]),
        ] {
            assert!(!answers_in(&other), "{other}");
        }
    }

    #[test]
    fn reads_reported_usage() {
        let cases = [
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"content":[],"_meta":{"usage":{"input_tokens":10,"output_tokens":20,"cache_tokens":3}}}}),
                usage(Some(10), Some(20), Some(3)),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"_meta":{"usage":{"output_tokens":5}}}}),
                usage(None, Some(5), None),
            ),
            (
                json!({"streaming":true,"delta":null,"input_tokens":12,"output_tokens":40}),
                usage(Some(12), Some(40), None),
            ),
            (json!({"cache_tokens":0}), usage(None, None, Some(0))),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"_meta":{"usage":{"input_tokens":-1,"output_tokens":1.5,"cache_tokens":"3"}}}}),
                None,
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"_meta":{"usage":{"input_tokens":u64::MAX,"output_tokens":7}}}}),
                usage(None, Some(7), None),
            ),
            (json!({"jsonrpc":"2.0","id":1,"result":{"_meta":{"usage":"lots"}}}), None),
            (json!({"jsonrpc":"2.0","id":1,"result":{"_meta":{}}}), None),
            (json!({"jsonrpc":"2.0","id":1,"result":{"usage":{"input_tokens":1}}}), None),
            (json!({"jsonrpc":"2.0","id":1,"result":[1,2]}), None),
            (json!("input_tokens"), None),
            (json!(null), None),
            (
                json!([{"input_tokens":1,"output_tokens":2},{"jsonrpc":"2.0","id":2,"result":{"_meta":{"usage":{"output_tokens":9}}}}]),
                usage(Some(1), Some(9), None),
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(usage_in(&message), expected, "{message}");
        }
    }

    #[test]
    fn merges_and_resolves_reports() {
        let mut first = ReportedUsage { input: Some(10), output: Some(1), cache: None };
        first.merge(ReportedUsage { input: None, output: Some(40), cache: Some(2) });
        assert_eq!(first, ReportedUsage { input: Some(10), output: Some(40), cache: Some(2) });
        let counted = Tokens { input: 100, output: 200, cache: 0 };
        assert_eq!(
            ReportedUsage { input: None, output: Some(7), cache: None }.resolve(counted),
            Tokens { input: 100, output: 7, cache: 0 }
        );
        assert_eq!(first.resolve(counted), Tokens { input: 10, output: 40, cache: 2 });
    }

    #[test]
    fn tells_failed_calls() {
        let cases = [
            (json!({"jsonrpc":"2.0","id":1,"result":{"content":[]}}), None),
            (json!({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}), Some(Failure::RpcError)),
            (json!({"jsonrpc":"2.0","id":1,"result":{},"error":null}), None),
            (json!({"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}), Some(Failure::ToolError)),
            (json!({"jsonrpc":"2.0","id":1,"result":{"isError":false}}), None),
            (json!({"jsonrpc":"2.0","id":1,"result":{"isError":"true"}}), None),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"kind":"task","status":{"state":"failed"}}}),
                Some(Failure::TaskFailed),
            ),
            (json!({"jsonrpc":"2.0","id":1,"result":{"status":{"state":"rejected"}}}), Some(Failure::TaskFailed)),
            (json!({"jsonrpc":"2.0","id":1,"result":{"status":{"state":"completed"}}}), None),
            (json!({"jsonrpc":"2.0","id":1,"result":{"status":{"state":"canceled"}}}), None),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"kind":"status-update","status":{"state":"failed"},"final":true}}),
                Some(Failure::TaskFailed),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"task":{"status":{"state":"TASK_STATE_FAILED"}}}}),
                Some(Failure::TaskFailed),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"task":{"status":{"state":"TASK_STATE_REJECTED"}}}}),
                Some(Failure::TaskFailed),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"statusUpdate":{"status":{"state":"TASK_STATE_FAILED"}}}}),
                Some(Failure::TaskFailed),
            ),
            (json!({"jsonrpc":"2.0","id":1,"result":{"task":{"status":{"state":"TASK_STATE_COMPLETED"}}}}), None),
            (json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"error":"x"}}), None),
            (json!({"jsonrpc":"2.0","id":9,"method":"sampling/createMessage","error":{}}), None),
            (
                json!([{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"error":{}}]),
                Some(Failure::RpcError),
            ),
            (json!({"streaming":true,"delta":"hi"}), None),
            (json!("error"), None),
        ];
        for (message, expected) in cases {
            assert_eq!(failure_in(&message), expected, "{message}");
        }
    }

    #[test]
    fn http_status_decides_first() {
        assert_eq!(call_failure(200, None), None);
        assert_eq!(call_failure(202, Some(Failure::ToolError)), Some(Failure::ToolError));
        assert_eq!(call_failure(399, None), None);
        assert_eq!(call_failure(400, None), Some(Failure::HttpStatus));
        assert_eq!(call_failure(503, Some(Failure::RpcError)), Some(Failure::HttpStatus));
        for failure in [Failure::HttpStatus, Failure::RpcError, Failure::ToolError, Failure::TaskFailed] {
            assert!(failure.code().starts_with("agent_"));
        }
    }

    #[test]
    fn json_of_parses_only_objects_and_arrays() {
        assert_eq!(json_of(b"  {\"a\":1}"), Some(json!({"a":1})));
        assert_eq!(json_of(b"\n[1]"), Some(json!([1])));
        assert_eq!(json_of(b"hello"), None);
        assert_eq!(json_of(b"42"), None);
        assert_eq!(json_of(b"{broken"), None);
        assert_eq!(json_of(b""), None);
    }
}
