"""An upstream MCP agent built on the official Python SDK, for Tollgate's conformance tests.

Usage: python server.py PORT [UPSTREAM_TOKEN]   (PORT 0 picks a free port)

Serves MCP Streamable HTTP at http://127.0.0.1:PORT/mcp with the SDK's own session manager,
which answers both protocol eras on the one endpoint: 2025-xx sessions (initialize,
Mcp-Session-Id, a standalone GET stream, DELETE) and 2026-07-28 single-exchange requests.
Prints `listening on http://127.0.0.1:PORT/mcp` once it accepts connections.

With UPSTREAM_TOKEN, every HTTP request must carry `Authorization: Bearer UPSTREAM_TOKEN`
(401 otherwise) and an `X-Tollgate-Install` header (400 otherwise): behind Tollgate this is
the version's upstream credential, never the consumer's key.

Tools:
- echo(text): the text back.
- usage(text): the text back, with agent-reported usage in the result's `_meta.usage`.
- countdown(n, delay_ms): n progress notifications, `delay_ms` apart, then "liftoff".
- fail(): always fails (a result with isError: true).
- announce(): sends notifications/tools/list_changed on the session (2025-xx: it travels
  on the client's standalone GET stream), then answers "announced".
"""

from __future__ import annotations

import json
import socket
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult

# The usage the `usage` tool reports; conformance.rs expects the same numbers.
REPORTED_USAGE = {"input_tokens": 12, "output_tokens": 34, "cache_tokens": 5}

mcp = MCPServer("tollgate-conformance", version="1.0.0", log_level="WARNING")


@mcp.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@mcp.tool()
def usage(text: str) -> CallToolResult:
    """Say the text back and report the tokens it cost in `_meta.usage`."""
    return CallToolResult.model_validate(
        {"content": [{"type": "text", "text": text}], "_meta": {"usage": REPORTED_USAGE}}
    )


@mcp.tool()
async def countdown(n: int, ctx: Context, delay_ms: int = 100) -> str:
    """Stream n progress notifications, delay_ms apart, before the result."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i} of {n}")
        await anyio.sleep(delay_ms / 1000)
    return "liftoff"


@mcp.tool()
def fail() -> str:
    """Always fail: the SDK turns the exception into a result with isError: true."""
    raise ValueError("this tool always fails")


@mcp.tool()
async def announce(ctx: Context) -> str:
    """Tell the client the tool list changed (a message not tied to this request)."""
    await ctx.request_context.session.send_tool_list_changed()
    return "announced"


def guarded(app, token: str):
    """`app` behind a check of the credential and headers a gateway must send upstream."""
    expected = f"Bearer {token}".encode()

    async def refuse(send, status: int, message: str) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def check(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != expected:
                return await refuse(send, 401, "the upstream credential is missing or wrong")
            if not headers.get(b"x-tollgate-install"):
                return await refuse(send, 400, "X-Tollgate-Install is missing")
        return await app(scope, receive, send)

    return check


async def main(port: int, token: str | None) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    app = mcp.streamable_http_app(host="127.0.0.1")
    if token:
        app = guarded(app, token)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:
            await anyio.sleep(0.01)
        print(f"listening on http://127.0.0.1:{port}/mcp", flush=True)


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 0, sys.argv[2] if len(sys.argv) > 2 else None)
