"""A stand-in for `POST /api/v1/goals/{goal}/changes` (the shared contract: judging what really changed), for the
client side's tests while the gateway's own endpoint is being built: a protected path under `secrets/` in the
diff is a deny that stops. ``ChangesFront`` forwards every other request to a live Goalpost, so the real Claude
Code can run against daphne for everything else. Once the gateway serves /changes, `changes_served()` is true
and tests go to daphne directly."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from goals.diffs import parse_diff

PROTECTED_PREFIX = "secrets/"


def changes_served() -> bool:
    """Whether Goalpost itself answers /changes (the gateway's endpoint has landed)."""
    from django.urls import Resolver404, resolve

    try:
        resolve("/api/v1/goals/1/changes")
    except Resolver404:
        return False
    return True


def contract_answer(body: dict) -> dict:
    files = sorted({file.path for file in parse_diff(body.get("diff", "")).files})
    protected = [path for path in files if path.startswith(PROTECTED_PREFIX)]
    request = {"id": 7, "status": "pending", "decision_url": "/api/v1/requests/7/decision"}
    return {
        "verdict": "deny" if protected else "allow",
        "stop": bool(protected),
        "reason": f"Protected path changed: {protected[0]}. The goal is paused." if protected else "No gate fired.",
        "findings": [],
        "files": files,
        "request": request if protected else None,
    }


class ChangesFront:
    """127.0.0.1:<free port>: answers /changes by the contract, forwards the rest to `upstream` (or 502)."""

    def __init__(self, upstream: str | None = None):
        self.upstream = upstream.rstrip("/") if upstream else None
        self.received: list[tuple[str, dict, dict]] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, body: bytes | None) -> None:
                if front.upstream is None:
                    self._send(502, b'{"error": "no upstream"}')
                    return
                headers = {key: value for key, value in self.headers.items() if key.lower() not in ("host",)}
                url = front.upstream + self.path  # http://127.0.0.1:… only: the test's own daphne
                request = urllib.request.Request(url, data=body, method=self.command, headers=headers)  # noqa: S310
                try:
                    with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
                        status, data, kind = response.status, response.read(), response.headers["Content-Type"]
                except urllib.error.HTTPError as error:
                    status, data, kind = error.code, error.read(), error.headers["Content-Type"]
                self._send(status, data, kind or "application/json")

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.split("?")[0].endswith("/changes"):
                    body = json.loads(data)
                    front.received.append((self.path, dict(self.headers), body))
                    self._send(200, json.dumps(contract_answer(body)).encode())
                    return
                self._forward(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ChangesFront:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
