"""A local stand-in for the Anthropic Messages API, for driving the real Claude Code (`claude -p`) in tests.

It speaks the wire format of Anthropic's API docs ("Streaming messages", "Errors"): `POST /v1/messages` with
`"stream": true` answers server-sent events (message_start, content_block_start / content_block_delta /
content_block_stop for text and tool_use blocks, the tool's input as input_json_delta fragments, message_delta
with the stop_reason and usage, message_stop); an error is an HTTP status with
`{"type": "error", "error": {"type": …, "message": …}}`, or an `error` event inside a stream.

Tests script it turn by turn: each request to /v1/messages takes the next queued ``Turn`` (a list of blocks, or
an error). Requests that are not a turn of the agent (Claude Code's token count, or a quick title/topic request
with no tools) are answered without using a turn. Every request is recorded: method, path, headers (x-api-key,
Authorization…) and JSON body, so a test can read the tools Claude Code declared and check what reached the API.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "claude-sonnet-4-5-20250929"


@dataclass
class Usage:
    """What one turn reports: the four token counts of the Messages API's usage object."""

    input_tokens: int = 100
    output_tokens: int = 20
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_dict(self, output_tokens: int | None = None) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
        }


@dataclass
class Turn:
    """One answer of the model: text and tool_use blocks, or an error (an HTTP status, or an error event
    after the stream has started when ``in_stream``)."""

    blocks: list[dict] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    status: int = 200
    error_type: str = ""
    error_message: str = ""
    in_stream: bool = False

    @property
    def stop_reason(self) -> str:
        return "tool_use" if any(b["type"] == "tool_use" for b in self.blocks) else "end_turn"


def text(content: str) -> dict:
    return {"type": "text", "text": content}


def tool_use(name: str, tool_input: dict) -> dict:
    return {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": name, "input": tool_input}


def error(status: int, error_type: str, message: str, *, in_stream: bool = False) -> Turn:
    """An error answer as the API gives it, e.g. 401 authentication_error, 529 overloaded_error."""
    return Turn(status=status, error_type=error_type, error_message=message, in_stream=in_stream)


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(value: str, size: int = 16) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def stream_events(turn: Turn, model: str) -> list[bytes]:
    """The server-sent events of one successful turn, in the order the docs give."""
    message = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": turn.usage.as_dict(output_tokens=1),
    }
    events = [_sse("message_start", {"type": "message_start", "message": message}), _sse("ping", {"type": "ping"})]
    for index, block in enumerate(turn.blocks):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _chunks(block["text"])]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": piece} for piece in _chunks(json.dumps(block["input"]))
            ]
        events.append(
            _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        )
        events += [
            _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ]
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": turn.stop_reason, "stop_sequence": None},
                "usage": turn.usage.as_dict(),
            },
        )
    )
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


def error_body(error_type: str, message: str) -> dict:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"}


@dataclass
class FakeAnthropicAPI:
    """The fake API on 127.0.0.1:<free port>; use as a context manager, queue turns with ``script``."""

    turns: list[Turn] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                entry = {"method": self.command, "path": self.path, "headers": dict(self.headers), "json": body}
                with server.lock:
                    server.requests.append(entry)
                return entry

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", "req_fake")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._record()
                self._json(404, error_body("not_found_error", f"Not found: {self.path}"))

            def do_HEAD(self) -> None:
                self._record()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                entry = self._record()
                path = self.path.split("?", 1)[0]
                body = entry["json"] if isinstance(entry["json"], dict) else {}
                if path == "/v1/messages/count_tokens":
                    self._json(200, {"input_tokens": 1000})
                    return
                if path != "/v1/messages":
                    self._json(404, error_body("not_found_error", f"Not found: {self.path}"))
                    return
                turn = server.next_turn(body)
                if turn.status != 200 and not turn.in_stream:
                    self._json(turn.status, error_body(turn.error_type, turn.error_message))
                    return
                model = str(body.get("model") or MODEL)
                if not body.get("stream"):
                    self._json(200, server.message(turn, model))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.send_header("request-id", "req_fake")
                self.end_headers()
                if turn.in_stream:
                    events = stream_events(Turn(), model)[:1]
                    events.append(_sse("error", error_body(turn.error_type, turn.error_message)))
                else:
                    events = stream_events(turn, model)
                for event in events:
                    self.wfile.write(event)
                    self.wfile.flush()
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that went away is expected
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    # --- scripting ---------------------------------------------------------------------------------------

    def script(self, *turns: Turn | list[dict]) -> None:
        """Queue the model's answers to the agent's turns, in order (a list of blocks is a successful turn)."""
        with self.lock:
            self.turns += [t if isinstance(t, Turn) else Turn(blocks=t) for t in turns]

    def next_turn(self, body: dict) -> Turn:
        # A request without tools is Claude Code's side question (a title, a topic), not a turn of the agent.
        if not body.get("tools"):
            return Turn(blocks=[text("Goalpost step")], usage=Usage(10, 2))
        with self.lock:
            if self.turns:
                # An error stays queued: an API that refuses keeps refusing, whatever the client retries.
                return self.turns[0] if self.turns[0].status != 200 else self.turns.pop(0)
        return Turn(blocks=[text("Nothing more scripted: done.")])

    @staticmethod
    def message(turn: Turn, model: str) -> dict:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": turn.blocks,
            "stop_reason": turn.stop_reason,
            "stop_sequence": None,
            "usage": turn.usage.as_dict(),
        }

    # --- reading what came in ----------------------------------------------------------------------------

    def agent_requests(self) -> list[dict]:
        """The agent's turns: the /v1/messages requests that declared tools."""
        return [
            r
            for r in self.requests
            if r["path"].split("?")[0] == "/v1/messages" and isinstance(r["json"], dict) and r["json"].get("tools")
        ]

    def declared_tool(self, name: str) -> dict:
        """The tool ``name`` as Claude Code declared it in its last turn (name, description, input_schema)."""
        for request in reversed(self.agent_requests()):
            for tool in request["json"]["tools"]:
                if tool.get("name") == name:
                    return tool
        raise KeyError(name)

    # --- life --------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """ANTHROPIC_BASE_URL for this server (Claude Code appends /v1/messages)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeAnthropicAPI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeAnthropicAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
