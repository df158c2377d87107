//! Copy-paste code that calls an agent through this instance's gateway: curl, Python
//! (standard library only) and Node (built-in `fetch`). MCP snippets use the stateless
//! 2026-07-28 protocol (no session to set up): a `tools/list` that shows the functions
//! and their arguments, then a `tools/call`. A2A snippets send one `message/send`.

use serde_json::{Value, json};

/// What the key is written as; the person pastes theirs over it.
pub const KEY_PLACEHOLDER: &str = "<your key>";
/// The MCP protocol version the snippets speak.
const MCP_VERSION: &str = "2026-07-28";

/// The three snippets for one version.
#[derive(Debug, Clone)]
pub struct Snippets {
    pub curl: String,
    pub python: String,
    pub node: String,
}

/// What a snippet calls.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The gateway URL, `{public_url}/{slug}/{version}/mcp` (or `/a2a`).
    pub endpoint: &'a str,
    /// `mcp` or `a2a`.
    pub protocol: &'a str,
    /// The function the example calls (MCP).
    pub function: Option<&'a str>,
    /// Wake the agent with its health check first.
    pub cold_start: bool,
    /// The key to write in, or [`KEY_PLACEHOLDER`].
    pub key: &'a str,
}

/// `text` inside single quotes for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A JSON string literal, which is also a valid Python and JavaScript string literal.
fn literal(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// The health URL next to an agent's endpoint (`…/{version}/health`).
fn health_url(endpoint: &str) -> String {
    match endpoint.rsplit_once('/') {
        Some((base, _)) => format!("{base}/health"),
        None => format!("{endpoint}/health"),
    }
}

/// A curl command: `-X POST` with `headers` and a JSON `body`.
fn curl_post(endpoint: &str, headers: &[(&str, String)], body: &Value) -> String {
    let mut out = format!("curl -sS -X POST {}", shell_quote(endpoint));
    for (name, value) in headers {
        out.push_str(&format!(" \\\n  -H {}", shell_quote(&format!("{name}: {value}"))));
    }
    out.push_str(&format!(" \\\n  -d {}", shell_quote(&body.to_string())));
    out
}

fn mcp_headers(key: &str, method: &str, name: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("Authorization", format!("Bearer {key}")),
        ("Content-Type", "application/json".to_string()),
        ("Accept", "application/json, text/event-stream".to_string()),
        ("MCP-Protocol-Version", MCP_VERSION.to_string()),
        ("Mcp-Method", method.to_string()),
    ];
    if let Some(n) = name {
        h.push(("Mcp-Name", n.to_string()));
    }
    h
}

/// The snippets for `t`.
pub fn snippets(t: &Target<'_>) -> Snippets {
    if t.protocol == "a2a" { a2a(t) } else { mcp(t) }
}

fn mcp(t: &Target<'_>) -> Snippets {
    let function = t.function.unwrap_or("tools/list");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta()}});
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": function, "arguments": {}, "_meta": meta()}});
    let warm = |comment: &str| {
        if t.cold_start {
            format!(
                "{comment} This agent may take a few seconds to wake up: its health check wakes it.\n\
                 curl -sS {} -H {}\n\n",
                shell_quote(&health_url(t.endpoint)),
                shell_quote(&format!("Authorization: Bearer {}", t.key))
            )
        } else {
            String::new()
        }
    };
    let curl = format!(
        "{}# The functions and the arguments they take (billed at the base fee):\n{}\n\n\
         # Call {function} (fill in its arguments from the list above):\n{}\n",
        warm("#"),
        curl_post(t.endpoint, &mcp_headers(t.key, "tools/list", None), &list),
        curl_post(t.endpoint, &mcp_headers(t.key, "tools/call", Some(function)), &call),
    );
    let python = format!(
        r#"import json
import urllib.error
import urllib.request

ENDPOINT = {endpoint}
KEY = {key}  # a key from the agent's Usage page, Settings tab


def call(method, params, name=None):
    headers = {{
        "Authorization": "Bearer " + KEY,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "{MCP_VERSION}",
        "Mcp-Method": method,
    }}
    if name:
        headers["Mcp-Name"] = name
    params["_meta"] = {{
        "io.modelcontextprotocol/protocolVersion": "{MCP_VERSION}",
        "io.modelcontextprotocol/clientCapabilities": {{}},
    }}
    body = json.dumps({{"jsonrpc": "2.0", "id": 1, "method": method, "params": params}}).encode()
    request = urllib.request.Request(ENDPOINT, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        return f"{{error.code}} {{error.read().decode()}}"


# The functions and the arguments they take (billed at the base fee):
print(call("tools/list", {{}}))
# Call {function_comment} (fill in its arguments from the list above):
print(call("tools/call", {{"name": {function}, "arguments": {{}}}}, name={function}))
"#,
        endpoint = literal(t.endpoint),
        key = literal(t.key),
        function = literal(function),
        function_comment = function.replace('\n', " "),
    );
    let node = format!(
        r#"const ENDPOINT = {endpoint};
const KEY = {key}; // a key from the agent's Usage page, Settings tab

async function call(method, params, name) {{
  const headers = {{
    Authorization: `Bearer ${{KEY}}`,
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    "MCP-Protocol-Version": "{MCP_VERSION}",
    "Mcp-Method": method,
  }};
  if (name) headers["Mcp-Name"] = name;
  params._meta = {{
    "io.modelcontextprotocol/protocolVersion": "{MCP_VERSION}",
    "io.modelcontextprotocol/clientCapabilities": {{}},
  }};
  const response = await fetch(ENDPOINT, {{
    method: "POST",
    headers,
    body: JSON.stringify({{ jsonrpc: "2.0", id: 1, method, params }}),
  }});
  return `${{response.status}} ${{await response.text()}}`;
}}

async function main() {{
  // The functions and the arguments they take (billed at the base fee):
  console.log(await call("tools/list", {{}}));
  // Call {function_comment} (fill in its arguments from the list above):
  console.log(await call("tools/call", {{ name: {function}, arguments: {{}} }}, {function}));
}}

main().catch((error) => console.error(error));
"#,
        endpoint = literal(t.endpoint),
        key = literal(t.key),
        function = literal(function),
        function_comment = function.replace('\n', " "),
    );
    Snippets { curl, python, node }
}

fn a2a(t: &Target<'_>) -> Snippets {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
        "role": "user", "messageId": "msg-1", "parts": [{"kind": "text", "text": "Hello!"}]}}});
    let headers = vec![
        ("Authorization", format!("Bearer {}", t.key)),
        ("Content-Type", "application/json".to_string()),
        ("Accept", "application/json, text/event-stream".to_string()),
    ];
    let curl = format!("# Send the agent a task:\n{}\n", curl_post(t.endpoint, &headers, &body));
    let pretty = serde_json::to_string_pretty(&body).unwrap_or_default();
    let python = format!(
        r#"import json
import urllib.error
import urllib.request

ENDPOINT = {endpoint}
KEY = {key}  # a key from the agent's Usage page, Settings tab

task = {pretty}
request = urllib.request.Request(
    ENDPOINT,
    data=json.dumps(task).encode(),
    headers={{
        "Authorization": "Bearer " + KEY,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }},
    method="POST",
)
try:
    with urllib.request.urlopen(request) as response:
        print(response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"#,
        endpoint = literal(t.endpoint),
        key = literal(t.key),
    );
    let node = format!(
        r#"const ENDPOINT = {endpoint};
const KEY = {key}; // a key from the agent's Usage page, Settings tab

const task = {pretty};

fetch(ENDPOINT, {{
  method: "POST",
  headers: {{
    Authorization: `Bearer ${{KEY}}`,
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
  }},
  body: JSON.stringify(task),
}})
  .then(async (response) => console.log(response.status, await response.text()))
  .catch((error) => console.error(error));
"#,
        endpoint = literal(t.endpoint),
        key = literal(t.key),
    );
    Snippets { curl, python, node }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn target<'a>(function: Option<&'a str>, cold_start: bool) -> Target<'a> {
        Target {
            endpoint: "http://127.0.0.1:8080/echo/1.0.0/mcp",
            protocol: "mcp",
            function,
            cold_start,
            key: KEY_PLACEHOLDER,
        }
    }

    /// The body each `-d '…'` of a curl snippet sends, decoded.
    fn curl_bodies(curl: &str) -> Vec<Value> {
        curl.split(" -d '")
            .skip(1)
            .map(|rest| serde_json::from_str(&rest[..rest.find("'\n").unwrap()]).unwrap())
            .collect()
    }

    #[test]
    fn mcp_snippets_list_then_call_on_this_instance() {
        let s = snippets(&target(Some("echo"), false));
        assert!(s.curl.contains("curl -sS -X POST 'http://127.0.0.1:8080/echo/1.0.0/mcp'"));
        assert!(s.curl.contains("-H 'Authorization: Bearer <your key>'"));
        assert!(s.curl.contains("-H 'Mcp-Method: tools/call'") && s.curl.contains("-H 'Mcp-Name: echo'"));
        assert!(!s.curl.contains("/health"));
        let bodies = curl_bodies(&s.curl);
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0]["method"], "tools/list");
        assert_eq!(bodies[1]["params"]["name"], "echo");
        assert_eq!(bodies[1]["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], MCP_VERSION);
        for code in [&s.python, &s.node] {
            assert!(code.contains("\"http://127.0.0.1:8080/echo/1.0.0/mcp\""));
            assert!(code.contains("\"<your key>\""));
            assert!(code.contains("\"tools/call\"") && code.contains("\"echo\""));
        }
    }

    #[test]
    fn names_are_quoted_for_each_language() {
        let s = snippets(&target(Some("it's \"x\""), true));
        assert!(s.curl.contains("'Mcp-Name: it'\\''s \"x\"'"), "{}", s.curl);
        assert_eq!(curl_bodies(&s.curl.replace("'\\''", "'"))[1]["params"]["name"], "it's \"x\"");
        assert!(s.python.contains(r#"{"name": "it's \"x\"", "arguments": {}}"#));
        assert!(s.node.contains(r#"{ name: "it's \"x\"", arguments: {} }"#));
        assert!(s.curl.contains("'http://127.0.0.1:8080/echo/1.0.0/health'"), "cold starts are woken first");
    }

    #[test]
    fn a2a_snippets_send_a_message() {
        let t = Target {
            endpoint: "http://h/planner/2.0.0/a2a",
            protocol: "a2a",
            function: None,
            cold_start: false,
            key: "tgk_x",
        };
        let s = snippets(&t);
        assert_eq!(curl_bodies(&s.curl)[0]["method"], "message/send");
        assert!(s.curl.contains("'Authorization: Bearer tgk_x'"));
        assert!(s.python.contains("\"message/send\"") && s.node.contains("\"message/send\""));
    }
}
