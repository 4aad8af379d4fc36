"""A stand-in for `POST /api/v1/goals/{goal}/changes` that answers by the shared contract (judging what really
changed): a path under `secrets/` in the diff is a deny that stops. The client side's unit tests post to it and
read what was posted; the real endpoint (gateway/changes.py) has tests of its own, and the real Claude Code runs
against it in tests/agents/test_claude_hooks.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from goals.diffs import parse_diff

PROTECTED_PREFIX = "secrets/"


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


class ChangesContract:
    """127.0.0.1:<free port>: answers /changes by the contract and keeps what it received; anything else 404."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict, dict]] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.split("?")[0].endswith("/changes"):
                    self._send(404, b'{"error": "Not found."}')
                    return
                body = json.loads(data)
                front.received.append((self.path, dict(self.headers), body))
                self._send(200, json.dumps(contract_answer(body)).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ChangesContract:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
