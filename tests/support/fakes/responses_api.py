"""A local fake of the OpenAI Responses API (``POST …/responses`` with ``stream: true``), as Codex CLI calls it.

The far edge of a managed Codex step: the real ``codex`` runs, and only its model is this server on 127.0.0.1.
The wire format follows openai/codex's own test fixtures and SSE parser (codex-rs/core/tests/common/responses.rs:
``event: <type>`` then ``data: <json>`` per event; output items arrive as ``response.output_item.done``; a turn
ends with ``response.completed`` carrying ``usage`` with ``input_tokens_details.cached_tokens`` and
``output_tokens_details.reasoning_tokens``), and was checked by running codex 0.169.0 against it.

Each test scripts the turns: every request to ``/responses`` gets the next one. A turn is a list of SSE events
(a tool call, an assistant message, then ``response.completed``), an HTTP error (500, 429) or a stream that is cut
before ``response.completed`` (both make Codex retry). Every request is recorded (path, headers, JSON body), so a
test can check the key Codex sent and what it sent back after a tool ran.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- what a request looked like ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request Codex made: its path, headers (names lower-cased) and JSON body."""

    path: str
    headers: dict[str, str]
    body: dict

    @property
    def tool_names(self) -> list[str]:
        """The tools Codex offered the model in this request (function and custom tools alike)."""
        return [tool.get("name", "") for tool in self.body.get("tools") or [] if isinstance(tool, dict)]

    def outputs(self) -> list[dict]:
        """The tool results Codex sent back (``function_call_output`` and ``custom_tool_call_output`` items)."""
        kinds = ("function_call_output", "custom_tool_call_output")
        return [item for item in self.body.get("input") or [] if item.get("type") in kinds]

    def output_text(self, call_id: str) -> str:
        """What Codex answered to the tool call ``call_id`` (as text), or ""."""
        for item in self.outputs():
            if item.get("call_id") == call_id:
                output = item.get("output")
                return output if isinstance(output, str) else json.dumps(output)
        return ""


# --- the turns a test scripts -----------------------------------------------------------------------------------

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


@dataclass
class Turn:
    """The answer to one request: SSE ``events`` (``cut`` ends the stream before ``response.completed``), or an
    HTTP ``status`` other than 200 with a JSON error body. ``build`` makes the events from the request, for turns
    that depend on the tools Codex offered."""

    events: list[dict] = field(default_factory=list)
    status: int = 200
    error: dict | None = None
    cut: bool = False
    build: Callable[[Request], list[dict]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def usage(input_tokens: int = 0, output_tokens: int = 0, cached: int = 0, reasoning: int = 0) -> dict:
    """A Responses API ``usage`` object: cached input and reasoning output are parts of input and output."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def created(response_id: str) -> dict:
    return {"type": "response.created", "response": {"id": response_id}}


def completed(response_id: str, used: dict | None = None) -> dict:
    return {"type": "response.completed", "response": {"id": response_id, "usage": used or usage()}}


def _wrapped(items: list[dict], used: dict | None, *, cut: bool = False) -> list[dict]:
    response_id = _next_id("resp")
    events = [created(response_id)]
    events += [{"type": "response.output_item.done", "item": item} for item in items]
    return events if cut else [*events, completed(response_id, used)]


def message_item(text: str) -> dict:
    return {
        "type": "message",
        "role": "assistant",
        "id": _next_id("msg"),
        "content": [{"type": "output_text", "text": text}],
    }


def message(text: str, used: dict | None = None) -> Turn:
    """A final assistant message: Codex ends its turn with it."""
    return Turn(_wrapped([message_item(text)], used))


def function_call(name: str, arguments: dict, call_id: str = "", used: dict | None = None) -> Turn:
    """A function tool call (``arguments`` is sent JSON-encoded, as the API does)."""
    item = {"type": "function_call", "name": name, "arguments": json.dumps(arguments), "call_id": call_id}
    return Turn(_wrapped([{**item, "call_id": call_id or _next_id("call")}], used))


def custom_tool_call(name: str, text: str, call_id: str = "", used: dict | None = None) -> Turn:
    """A freeform (custom) tool call, whose input is raw text: how the API calls Codex's ``apply_patch``."""
    item = {"type": "custom_tool_call", "name": name, "input": text, "call_id": call_id or _next_id("call")}
    return Turn(_wrapped([item], used))


SHELL_TOOLS = ("shell_command", "exec_command", "shell")


def shell(command: str, call_id: str = "", used: dict | None = None) -> Turn:
    """Run ``command`` through whichever shell tool Codex offered in the request (its name and arguments differ
    between model families: ``shell_command`` takes a string, ``exec_command`` ``cmd``, ``shell`` an argv)."""
    call_id = call_id or _next_id("call")

    def build(request: Request) -> list[dict]:
        offered = request.tool_names
        name = next((tool for tool in SHELL_TOOLS if tool in offered), "shell")
        arguments = {
            "shell_command": {"command": command, "timeout_ms": 10_000},
            "exec_command": {"cmd": command, "yield_time_ms": 10_000},
            "shell": {"command": ["bash", "-lc", command], "timeout_ms": 10_000},
        }[name]
        item = {"type": "function_call", "name": name, "arguments": json.dumps(arguments), "call_id": call_id}
        return _wrapped([item], used)

    return Turn(build=build)


def apply_patch(patch: str, call_id: str = "", used: dict | None = None) -> Turn:
    """Codex's ``apply_patch`` tool with a ``*** Begin Patch`` body: a custom (freeform) tool call when Codex
    offered it as one, else a function call with the patch under ``input``."""
    call_id = call_id or _next_id("call")

    def build(request: Request) -> list[dict]:
        tools = [tool for tool in request.body.get("tools") or [] if tool.get("name") == "apply_patch"]
        if tools and tools[0].get("type") == "custom":
            item = {"type": "custom_tool_call", "name": "apply_patch", "input": patch, "call_id": call_id}
        else:
            arguments = json.dumps({"input": patch})
            item = {"type": "function_call", "name": "apply_patch", "arguments": arguments, "call_id": call_id}
        return _wrapped([item], used)

    return Turn(build=build)


def http_error(status: int = 500, message: str = "the fake model server failed", **headers: str) -> Turn:
    """An HTTP error before any event: Codex retries 5xx and 429 (``request_max_retries``)."""
    return Turn(status=status, error={"error": {"message": message, "type": "server_error"}}, headers=headers)


def stream_cut(text: str = "I was about to") -> Turn:
    """A stream that ends before ``response.completed``: Codex reconnects (``stream_max_retries``)."""
    return Turn(_wrapped([message_item(text)], None, cut=True), cut=True)


def model_catalog(model: str) -> dict:
    """A Codex model catalog (config ``model_catalog_json``) for a model Codex does not know: without one it
    falls back to metadata that offers no ``apply_patch`` tool. Codex 0.169.0 accepted exactly these fields."""
    return {
        "models": [
            {
                "slug": model,
                "display_name": model,
                "description": "The local fake model server.",
                "default_reasoning_level": "low",
                "supported_reasoning_levels": [{"effort": "low", "description": "Low"}],
                "shell_type": "shell_command",
                "visibility": "list",
                "supported_in_api": True,
                "priority": 1,
                "base_instructions": "You are a coding agent under test.",
                "supports_reasoning_summaries": False,
                "default_reasoning_summary": "none",
                "support_verbosity": False,
                "default_verbosity": None,
                "apply_patch_tool_type": "freeform",
                "truncation_policy": {"mode": "tokens", "limit": 10000},
                "supports_parallel_tool_calls": False,
                "context_window": 100_000,
                "effective_context_window_percent": 95,
                "experimental_supported_tools": [],
                "input_modalities": ["text"],
                "supports_search_tool": False,
            }
        ]
    }


# --- the server --------------------------------------------------------------------------------------------------


class ResponsesAPI:
    """The fake model server: ``with ResponsesAPI(turn, turn, …) as api:`` then point Codex at ``api.base_url``.

    A request beyond the script gets a 500 with a message saying so (Codex then fails the turn), so a test that
    scripted too few turns fails loudly rather than hanging."""

    def __init__(self, *turns: Turn):
        self.turns = list(turns)
        self.models: list[dict] | None = None
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-responses-api", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        """What a provider's ``base_url`` names: Codex appends ``/responses``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *turns: Turn) -> None:
        with self.lock:
            self.turns.extend(turns)

    def next_turn(self) -> Turn | None:
        with self.lock:
            return self.turns.pop(0) if self.turns else None

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)

    def __enter__(self) -> ResponsesAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def sse(events: list[dict]) -> bytes:
    """Events as the API streams them: an ``event:`` line naming the type, a ``data:`` line, a blank line."""
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events).encode()


def _handler(api: ResponsesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the tests read api.requests
            pass

        def _json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            api.record(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, {}))
            if self.path.split("?")[0].rstrip("/").endswith("/models") and api.models is not None:
                self._json(200, {"models": api.models})
                return
            self._json(404, {"error": {"message": f"no {self.path} here"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"unreadable": raw[:200].decode(errors="replace")}
            request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            api.record(request)
            if not self.path.rstrip("/").endswith("/responses"):
                self._json(404, {"error": {"message": f"no {self.path} here"}})
                return
            turn = api.next_turn()
            if turn is None:
                self._json(500, {"error": {"message": "the fake model server has no more scripted turns"}})
                return
            if turn.status != 200:
                self._json(turn.status, turn.error or {}, turn.headers)
                return
            events = turn.build(request) if turn.build else turn.events
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(sse(events))
            self.wfile.flush()
            self.close_connection = True

    return Handler
