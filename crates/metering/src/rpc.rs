//! What a request body asks for, read as JSON-RPC 2.0: a request, a notification, a
//! response posted by the client, or a batch of those — and for each call, its method,
//! the function it is billed as, and whether it is a utility method.

use serde_json::Value;

/// JSON-RPC "Parse error": the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC "Invalid Request": JSON, but not a JSON-RPC 2.0 message.
pub const INVALID_REQUEST: i64 = -32600;

/// Why a request body was refused before it reached the agent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    /// The body is not JSON ([`PARSE_ERROR`]).
    #[error("{0}")]
    Parse(String),
    /// JSON, but not a JSON-RPC 2.0 message ([`INVALID_REQUEST`]); `id` is the message's
    /// id when it could be read, so the error can answer it.
    #[error("{message}")]
    Invalid { message: String, id: Option<Value> },
}

impl RpcError {
    /// The JSON-RPC error code: [`PARSE_ERROR`] or [`INVALID_REQUEST`].
    pub fn code(&self) -> i64 {
        match self {
            RpcError::Parse(_) => PARSE_ERROR,
            RpcError::Invalid { .. } => INVALID_REQUEST,
        }
    }

    /// The id of the message the error answers, when one could be read.
    pub fn id(&self) -> Option<&Value> {
        match self {
            RpcError::Parse(_) => None,
            RpcError::Invalid { id, .. } => id.as_ref(),
        }
    }
}

fn invalid(message: &str, id: Option<Value>) -> RpcError {
    RpcError::Invalid { message: message.to_owned(), id }
}

/// One call: the protocol method, the function it is billed as, and whether it is a
/// utility method (billed the version's base fee, never a function's price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The JSON-RPC method (`tools/call`, `message/send`, …).
    pub method: String,
    /// The tool / prompt name, the resource URI, the A2A skill id, or else the method.
    /// Taken as the client sent it, unbounded: bound it before storing it.
    pub function: String,
    /// A utility method ([`is_utility`]).
    pub utility: bool,
}

impl Call {
    /// The call of `method` with `params`.
    pub fn new(method: &str, params: Option<&Value>) -> Call {
        Call { method: method.to_owned(), function: function_of(method, params), utility: is_utility(method) }
    }
}

/// A request body, read as JSON-RPC 2.0.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request (it has an `id`, which may be `null`): the agent answers it.
    Request { id: Value, call: Call },
    /// A notification (no `id`): nothing answers it.
    Notification(Call),
    /// A response the client posts (to a request the server sent it): `result` or `error`,
    /// no `method`.
    Response { id: Value },
    /// A batch: each member read on its own (a member may be invalid). Never empty, never
    /// nested.
    Batch(Vec<Result<Message, RpcError>>),
}

impl Message {
    /// The call a single request or notification makes; `None` for responses and batches.
    pub fn call(&self) -> Option<&Call> {
        match self {
            Message::Request { call, .. } | Message::Notification(call) => Some(call),
            Message::Response { .. } | Message::Batch(_) => None,
        }
    }

    /// The id of a single request or response; `None` for notifications and batches.
    pub fn id(&self) -> Option<&Value> {
        match self {
            Message::Request { id, .. } | Message::Response { id } => Some(id),
            Message::Notification(_) | Message::Batch(_) => None,
        }
    }
}

/// Reads a request body as JSON-RPC 2.0. Not JSON (or not UTF-8) is [`RpcError::Parse`];
/// JSON that is not a JSON-RPC message (no `"jsonrpc": "2.0"`, a method that is not a
/// non-empty string, params that are neither object nor array, an id that is neither
/// string, number nor null, an empty batch, …) is [`RpcError::Invalid`].
pub fn parse_request(body: &[u8]) -> Result<Message, RpcError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RpcError::Parse(format!("the request body is not valid JSON ({e})")))?;
    match value {
        Value::Array(items) if items.is_empty() => Err(invalid("an empty batch is not a JSON-RPC request", None)),
        Value::Array(items) => Ok(Message::Batch(items.into_iter().map(single).collect())),
        other => single(other),
    }
}

fn single(value: Value) -> Result<Message, RpcError> {
    let Value::Object(mut obj) = value else {
        return Err(invalid("a JSON-RPC message must be an object", None));
    };
    let id = obj.remove("id");
    let id_ok = matches!(id, None | Some(Value::String(_) | Value::Number(_) | Value::Null));
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("\"jsonrpc\" must be \"2.0\"", id.filter(|_| id_ok)));
    }
    if !id_ok {
        return Err(invalid("\"id\" must be a string, a number or null", None));
    }
    match obj.get("method") {
        Some(Value::String(method)) if !method.is_empty() => {
            let params = obj.get("params");
            if !matches!(params, None | Some(Value::Object(_) | Value::Array(_))) {
                return Err(invalid("\"params\" must be an object or an array", id));
            }
            let call = Call::new(method, params);
            Ok(match id {
                Some(id) => Message::Request { id, call },
                None => Message::Notification(call),
            })
        }
        Some(_) => Err(invalid("\"method\" must be a non-empty string", id)),
        None => match (obj.contains_key("result"), obj.contains_key("error"), id) {
            (true, true, id) => Err(invalid("a response has either \"result\" or \"error\", not both", id)),
            (false, false, id) => Err(invalid("a JSON-RPC request needs a \"method\"", id)),
            (_, _, None) => Err(invalid("a JSON-RPC response needs an \"id\"", None)),
            (_, _, Some(id)) => Ok(Message::Response { id }),
        },
    }
}

/// A2A methods that send a message (and so may name a skill).
const A2A_SEND: &[&str] =
    &["message/send", "message/stream", "tasks/send", "tasks/sendSubscribe", "SendMessage", "SendStreamingMessage"];

/// The function a call of `method` is billed as: `params.name` for `tools/call` and
/// `prompts/get`, `params.uri` for `resources/read`, the skill id
/// (`params.metadata.skillId`, else `params.message.metadata.skillId`) for an A2A send,
/// and otherwise — or when that field is missing, empty or not a string — the method.
pub fn function_of(method: &str, params: Option<&Value>) -> String {
    let text =
        |pointer: &str| params.and_then(|p| p.pointer(pointer)).and_then(Value::as_str).filter(|s| !s.is_empty());
    let named = match method {
        "tools/call" | "prompts/get" => text("/name"),
        "resources/read" => text("/uri"),
        m if A2A_SEND.contains(&m) => text("/metadata/skillId").or_else(|| text("/message/metadata/skillId")),
        _ => None,
    };
    named.unwrap_or(method).to_owned()
}

/// Utility methods: discovery, session and task housekeeping, agent-card reads.
const UTILITY: &[&str] = &[
    // MCP
    "initialize",
    "ping",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "logging/setLevel",
    "completion/complete",
    "server/discover",
    "tasks/list",
    // A2A v0.1–v0.3 (`tasks/get`, `tasks/cancel` are also MCP task methods)
    "tasks/get",
    "tasks/cancel",
    "tasks/resubscribe",
    "agent/getAuthenticatedExtendedCard",
    // A2A v1.0
    "GetTask",
    "ListTasks",
    "CancelTask",
    "SubscribeToTask",
    "GetExtendedAgentCard",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfig",
    "DeleteTaskPushNotificationConfig",
];

/// Whether `method` is a utility method, billed the version's base fee: discovery
/// (`initialize`, `*/list`, `ping`, `server/discover`), every `notifications/*`, task
/// housekeeping (`tasks/get`, `tasks/cancel`, `tasks/resubscribe`, `GetTask`, …, and the
/// push-notification configuration methods), and agent-card reads.
pub fn is_utility(method: &str) -> bool {
    method.starts_with("notifications/")
        || method.starts_with("tasks/pushNotificationConfig/")
        || UTILITY.contains(&method)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(body: &str) -> (Value, Call) {
        match parse_request(body.as_bytes()).unwrap() {
            Message::Request { id, call } => (id, call),
            other => panic!("{body}: not a request: {other:?}"),
        }
    }

    #[test]
    fn finds_the_function_of_each_kind_of_call() {
        let cases = [
            (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}"#, "search"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"greet"}}"#, "greet"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a.txt"}}"#, "file:///a.txt"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#, "tools/call"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}"#, "tools/call"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["search"]}"#, "tools/call"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#, "tools/call"),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"metadata":{"skillId":"translate"}}}"#,
                "translate",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"message/stream","params":{"message":{"metadata":{"skillId":"sum"}}}}"#,
                "sum",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"metadata":{"skillId":"a"},"message":{"metadata":{"skillId":"b"}}}}"#,
                "a",
            ),
            (r#"{"jsonrpc":"2.0","id":1,"method":"tasks/send","params":{"message":{"parts":[]}}}"#, "tasks/send"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage","params":{}}"#, "SendStreamingMessage"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"metadata":{"skillId":"x"}}}"#, "tasks/get"),
            (r#"{"jsonrpc":"2.0","id":"a","method":"custom/thing","params":{"name":"x"}}"#, "custom/thing"),
        ];
        for (body, function) in cases {
            assert_eq!(call(body).1.function, function, "{body}");
        }
    }

    #[test]
    fn flags_utility_methods() {
        let utility = [
            "initialize",
            "tools/list",
            "prompts/list",
            "resources/list",
            "resources/templates/list",
            "ping",
            "server/discover",
            "notifications/initialized",
            "notifications/cancelled",
            "tasks/get",
            "tasks/cancel",
            "tasks/resubscribe",
            "tasks/pushNotificationConfig/set",
            "GetTask",
            "ListTasks",
            "CancelTask",
            "SubscribeToTask",
            "GetExtendedAgentCard",
        ];
        for method in utility {
            assert!(is_utility(method), "{method}");
        }
        for method in
            ["tools/call", "prompts/get", "resources/read", "message/send", "SendMessage", "notifications", ""]
        {
            assert!(!is_utility(method), "{method}");
        }
        let (_, c) = call(r#"{"jsonrpc":"2.0","id":0,"method":"tools/list"}"#);
        assert_eq!(c, Call { method: "tools/list".into(), function: "tools/list".into(), utility: true });
    }

    #[test]
    fn tells_requests_notifications_responses_and_batches_apart() {
        assert_eq!(call(r#"{"jsonrpc":"2.0","id":"x-1","method":"ping"}"#).0, json!("x-1"));
        assert_eq!(call(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).0, Value::Null);
        let note = parse_request(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(&note, Message::Notification(c) if c.utility && c.method == "notifications/initialized"));
        assert_eq!(note.id(), None);
        for body in [r#"{"jsonrpc":"2.0","id":5,"result":{}}"#, r#"{"jsonrpc":"2.0","id":5,"error":{"code":1}}"#] {
            let response = parse_request(body.as_bytes()).unwrap();
            assert_eq!(response, Message::Response { id: json!(5) }, "{body}");
            assert_eq!(response.call(), None);
        }
        let batch = parse_request(
            br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/x"},7]"#,
        )
        .unwrap();
        let Message::Batch(items) = batch else { panic!("not a batch") };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().call().unwrap().function, "a");
        assert!(matches!(items[1], Ok(Message::Notification(_))));
        assert_eq!(items[2].as_ref().unwrap_err().code(), INVALID_REQUEST);
    }

    #[test]
    fn refuses_what_is_not_json_rpc() {
        let cases: &[(&[u8], i64, Option<Value>)] = &[
            (b"", PARSE_ERROR, None),
            (b"{", PARSE_ERROR, None),
            (b"{\"jsonrpc\":\"2.0\",}", PARSE_ERROR, None),
            (b"\xff\xfe", PARSE_ERROR, None),
            (b"[", PARSE_ERROR, None),
            (b"[]", INVALID_REQUEST, None),
            (b"42", INVALID_REQUEST, None),
            (b"\"tools/call\"", INVALID_REQUEST, None),
            (b"null", INVALID_REQUEST, None),
            (br#"{"id":1,"method":"ping"}"#, INVALID_REQUEST, Some(json!(1))),
            (br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, INVALID_REQUEST, Some(json!(1))),
            (br#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#, INVALID_REQUEST, Some(json!(1))),
            (br#"{"jsonrpc":"2.0","id":1,"method":7}"#, INVALID_REQUEST, Some(json!(1))),
            (br#"{"jsonrpc":"2.0","id":1,"method":""}"#, INVALID_REQUEST, Some(json!(1))),
            (br#"{"jsonrpc":"2.0","id":1,"method":null}"#, INVALID_REQUEST, Some(json!(1))),
            (br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#, INVALID_REQUEST, Some(json!(1))),
            (br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#, INVALID_REQUEST, None),
            (br#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, INVALID_REQUEST, None),
            (br#"{"jsonrpc":"2.0","id":1}"#, INVALID_REQUEST, Some(json!(1))),
            (br#"{"jsonrpc":"2.0","result":{}}"#, INVALID_REQUEST, None),
            (br#"{"jsonrpc":"2.0","id":"r","result":{},"error":{}}"#, INVALID_REQUEST, Some(json!("r"))),
        ];
        for (body, code, id) in cases {
            let err = parse_request(body).unwrap_err();
            let shown = String::from_utf8_lossy(body);
            assert_eq!(err.code(), *code, "{shown}: {err}");
            assert_eq!(err.id(), id.as_ref(), "{shown}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn huge_and_deep_inputs_never_panic() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse_request(deep.as_bytes()).unwrap_err().code(), PARSE_ERROR);
        let deep_params = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{}}}"#, "[".repeat(10_000));
        assert_eq!(parse_request(deep_params.as_bytes()).unwrap_err().code(), PARSE_ERROR);
        let name = "n".repeat(1 << 20);
        let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#);
        assert_eq!(call(&big).1.function.len(), 1 << 20);
        let mut rng = crate::testing::Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"{}[]\":,0 jsonrpcidmethod2.\\";
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            let _ = parse_request(&bytes);
        }
    }
}
