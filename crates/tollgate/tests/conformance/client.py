"""A scripted MCP session with the official Python SDK client, for Tollgate's conformance tests.

Usage: python client.py URL KEY ERA      ERA: legacy (2025-xx) | modern (2026-07-28)

Connects to URL (the gateway's /{agent}/{version}/mcp, or an SDK server directly) with
`Authorization: Bearer KEY`, runs the era's script and prints one JSON object on stdout:

- what the SDK saw: the negotiated protocol version, the session id, each call's result,
  the progress notifications of the streaming call (with arrival times), notifications
  that arrived outside any request;
- `exchanges`: every HTTP exchange the SDK made, recorded under the SDK by the HTTP
  transport (method, JSON-RPC method and tool name, routing headers sent, status, the
  JSON-RPC outcome read from the response body, SSE events). A test prices a session from
  this record alone.

Scripts:
- legacy: initialize (+ notifications/initialized, and the SDK's standalone GET stream),
  ping, tools/list, echo, usage, countdown (streamed progress), fail (isError), an unknown
  tool (isError), an unknown prompt (a JSON-RPC error), announce (its notification
  arrives on the GET stream), then DELETE.
- modern: server/discover (the SDK's `auto` mode probes it and adopts 2026-07-28),
  tools/list (2026-07-28 has no ping), echo, usage, countdown, fail, the unknown tool and
  prompt; every request a self-contained POST carrying Mcp-Method / Mcp-Name, no session.

Exits 0 when the script ran, whatever the results (the test judges them); 2 on a usage
error; 1 with a message on stderr when the SDK itself failed.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from typing import Any

import anyio
import httpx2
from mcp import Client, MCPDeprecationWarning, MCPError
from mcp.client.streamable_http import streamable_http_client

# The SDK's own HTTP client timeouts (seconds): 30 in general, 300 to read a stream.
TIMEOUT = httpx2.Timeout(30.0, read=300.0)
COUNTDOWN_STEPS = 5
COUNTDOWN_DELAY_MS = 150
# Request headers worth recording (routing and session headers the gateway must pass on).
SENT_HEADERS = ("mcp-method", "mcp-name", "mcp-protocol-version", "mcp-session-id", "last-event-id")
RECEIVED_HEADERS = ("mcp-session-id", "x-request-id", "content-type", "x-ratelimit-remaining-requests-minute")

START = time.monotonic()
# ping (2025 era) is deprecated in the SDK; the legacy script calls it on purpose.
warnings.simplefilter("ignore", MCPDeprecationWarning)


def now_ms() -> float:
    return round((time.monotonic() - START) * 1000, 1)


def rpc_outcome(message: dict[str, Any]) -> str:
    """`result`, `is_error` (a tool result with isError: true) or `error` (JSON-RPC error)."""
    if "error" in message:
        return "error"
    result = message.get("result")
    if isinstance(result, dict) and result.get("isError") is True:
        return "is_error"
    return "result"


class Exchange:
    """One HTTP exchange as the SDK made it, filled in as the response streams in."""

    def __init__(self, request: httpx2.Request, body: bytes) -> None:
        self.record: dict[str, Any] = {"http": request.method, "sent_ms": now_ms()}
        self.record["headers_sent"] = {h: request.headers[h] for h in SENT_HEADERS if h in request.headers}
        self.record["authorization_sent"] = request.headers.get("authorization", "").startswith("Bearer ")
        self.id: Any = None
        if body:
            message = json.loads(body)
            self.record["rpc"] = message.get("method")
            if "method" in message and "id" in message:
                self.record["kind"] = "request"
                self.id = message["id"]
                self.record["id"] = self.id
            elif "method" in message:
                self.record["kind"] = "notification"
            else:
                self.record["kind"] = "response"
            params = message.get("params") or {}
            if isinstance(params, dict) and "name" in params:
                self.record["name"] = params["name"]
        self.body = bytearray()
        self.sse_data: list[dict[str, Any]] = []
        self._line = bytearray()
        self._event_data: list[bytes] = []

    def responded(self, response: httpx2.Response) -> None:
        self.record["status"] = response.status_code
        self.record["headers_received"] = {h: response.headers[h] for h in RECEIVED_HEADERS if h in response.headers}
        self.sse = response.headers.get("content-type", "").startswith("text/event-stream")

    def chunk(self, data: bytes) -> None:
        self.body.extend(data)
        if not self.sse:
            return
        for byte in data:
            if byte != 0x0A:
                self._line.append(byte)
                continue
            line = bytes(self._line).rstrip(b"\r")
            self._line.clear()
            if line == b"":
                if self._event_data:
                    self._event(b"\n".join(self._event_data))
                self._event_data = []
            elif line.startswith(b"data:"):
                self._event_data.append(line[5:].lstrip(b" ") if line[5:6] == b" " else line[5:])

    def _event(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = {"unparsed": data.decode(errors="replace")}
        self.sse_data.append({"at_ms": now_ms(), "message": message})

    def finish(self) -> dict[str, Any]:
        """The record, with the JSON-RPC outcome of a request read from what arrived."""
        record = self.record
        record["sse_events"] = len(self.sse_data)
        record["sse_methods"] = [e["message"].get("method") for e in self.sse_data if "method" in e["message"]]
        messages = [e["message"] for e in self.sse_data]
        if not self.sse and self.body:
            try:
                parsed = json.loads(self.body)
                messages = parsed if isinstance(parsed, list) else [parsed]
            except ValueError:
                record["body_unparsed"] = self.body[:200].decode(errors="replace")
        if self.id is not None:
            answers = [m for m in messages if isinstance(m, dict) and m.get("id") == self.id and "method" not in m]
            record["outcome"] = rpc_outcome(answers[0]) if answers else "none"
        return record


class TeeStream(httpx2.AsyncByteStream):
    """The response body, passed to the SDK unchanged while the exchange records it."""

    def __init__(self, inner: httpx2.AsyncByteStream, exchange: Exchange) -> None:
        self.inner = inner
        self.exchange = exchange

    async def __aiter__(self):
        async for part in self.inner:
            self.exchange.chunk(part)
            yield part

    async def aclose(self) -> None:
        await self.inner.aclose()


class RecordingTransport(httpx2.AsyncBaseTransport):
    """The SDK's HTTP transport, recording every exchange it makes."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        exchange = Exchange(request, body)
        self.exchanges.append(exchange)
        response = await self.inner.handle_async_request(request)
        exchange.responded(response)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=TeeStream(response.stream, exchange),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def tool_summary(result: Any) -> dict[str, Any]:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return {"text": "".join(texts), "is_error": bool(result.is_error), "meta": result.meta}


async def call(client: Client, name: str, arguments: dict[str, Any], **kw: Any) -> dict[str, Any]:
    try:
        return tool_summary(await client.call_tool(name, arguments, **kw))
    except MCPError as e:
        return {"error": {"code": e.code, "message": str(e)}}


async def wait_for(condition, seconds: float) -> bool:
    with anyio.move_on_after(seconds):
        while not condition():
            await anyio.sleep(0.01)
        return True
    return False


async def run(url: str, key: str, era: str, recorder: RecordingTransport) -> dict[str, Any]:
    # The client the SDK would make itself (its timeouts), with the key and the recorder.
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"},
        timeout=TIMEOUT,
        transport=recorder,
    )
    outside: list[str] = []

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        if isinstance(method, str) and method != "notifications/progress":
            outside.append(method)

    progress: list[dict[str, Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message, "at_ms": now_ms()})

    summary: dict[str, Any] = {"era": era, "results": {}}
    results = summary["results"]
    async with http:
        transport = streamable_http_client(url, http_client=http)
        mode = "legacy" if era == "legacy" else "auto"
        async with Client(transport, mode=mode, message_handler=on_message, cache=None) as client:
            summary["protocol_version"] = client.protocol_version
            summary["server_name"] = client.server_info.name if client.server_info else None
            if era == "legacy":
                # The SDK opens its standalone GET stream after notifications/initialized;
                # wait until the server has answered it so the script is deterministic.
                summary["get_stream_open"] = await wait_for(
                    lambda: any(e.record["http"] == "GET" and "status" in e.record for e in recorder.exchanges), 5
                )
                # ping is a 2025-era method: 2026-07-28 removed it.
                await client.send_ping()
                results["ping"] = "ok"
            tools = await client.list_tools()
            summary["tools"] = sorted(t.name for t in tools.tools)
            results["echo"] = await call(client, "echo", {"text": "hello through the gateway"})
            results["usage"] = await call(client, "usage", {"text": "metered"})
            results["countdown"] = await call(
                client,
                "countdown",
                {"n": COUNTDOWN_STEPS, "delay_ms": COUNTDOWN_DELAY_MS},
                progress_callback=on_progress,
            )
            summary["countdown_result_ms"] = now_ms()
            results["fail"] = await call(client, "fail", {})
            results["nope"] = await call(client, "nope", {})
            try:
                await client.get_prompt("no-such-prompt")
                results["prompt"] = {"unexpected": "a result"}
            except MCPError as e:
                results["prompt"] = {"error": {"code": e.code, "message": str(e)}}
            if era == "legacy":
                results["announce"] = await call(client, "announce", {})
                summary["list_changed_arrived"] = await wait_for(
                    lambda: "notifications/tools/list_changed" in outside, 5
                )
        summary["session_id"] = transport_session_id(recorder)
    summary["progress"] = progress
    summary["notifications_outside_requests"] = outside
    summary["countdown"] = {"steps": COUNTDOWN_STEPS, "delay_ms": COUNTDOWN_DELAY_MS}
    summary["exchanges"] = [e.finish() for e in recorder.exchanges]
    return summary


def transport_session_id(recorder: RecordingTransport) -> str | None:
    for e in recorder.exchanges:
        sid = e.record.get("headers_received", {}).get("mcp-session-id")
        if sid:
            return sid
    return None


def leaves(e: BaseException) -> list[str]:
    """The exceptions inside (nested) exception groups, as text."""
    if isinstance(e, BaseExceptionGroup):
        return [text for inner in e.exceptions for text in leaves(inner)]
    return [repr(e)]


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[3] not in ("legacy", "modern"):
        print(__doc__, file=sys.stderr)
        return 2
    url, key, era = sys.argv[1:]
    recorder = RecordingTransport()
    try:
        summary = anyio.run(run, url, key, era, recorder)
    except BaseException as e:  # the SDK's failure, reported to the test that ran this
        print(f"client.py: the {era} session failed: {'; '.join(leaves(e))}", file=sys.stderr)
        print("the HTTP exchanges so far:", file=sys.stderr)
        for exchange in recorder.exchanges:
            print(f"  {json.dumps(exchange.finish(), default=str)}", file=sys.stderr)
        return 1
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
