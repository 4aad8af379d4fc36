"""A local stand-in for an OpenAI-compatible chat-completions endpoint.

It answers POST /v1/chat/completions with the real response shape, one queued reply per request, and
records every request (path, headers, JSON body) so tests can check what the agent sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(content: str, *, model: str = "local-model", usage: dict | None = None, finish: str = "stop") -> dict:
    """A chat completion as OpenAI sends it."""
    return {
        "id": "chatcmpl-9fz3Qh2Xc1",
        "object": "chat.completion",
        "created": 1_735_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": usage if usage is not None else {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876},
        "system_fingerprint": "fp_fake",
    }


@dataclass
class Reply:
    """One queued answer: a status and a JSON body or raw bytes; ``hang`` holds the request until shutdown."""

    status: int = 200
    body: object = None
    raw: bytes | None = None
    hang: bool = False


@dataclass
class FakeChatServer:
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"null")}
                )
                reply = server.replies.pop(0) if server.replies else Reply(500, {"error": {"message": "no reply queued"}})
                if reply.hang:
                    server.released.wait(timeout=60)
                    return
                data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that timed out is expected
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, content: str, **kwargs: object) -> None:
        """Queue a successful chat completion whose message is ``content``."""
        self.replies.append(Reply(200, completion(content, **kwargs)))

    def start(self) -> FakeChatServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
