"""A local forge that speaks the pull-request endpoints of GitHub, GitLab or Gitea's REST API.

Per kind it checks the real auth header (GitHub `Authorization: Bearer`, GitLab `PRIVATE-TOKEN`, Gitea
`Authorization: token`), serves the real paths (GitHub and Gitea `/repos/{owner}/{repo}/pulls`, GitLab
`/projects/{url-encoded path}/merge_requests`), reads and answers their JSON fields, refuses a second open pull
request for the same branches as each forge does (GitHub 422 "Validation Failed", GitLab and Gitea 409), and
answers 401 to a wrong token. It records every request (method, path, query, headers, JSON).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

API_ROOTS = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1"}


@dataclass
class FakeForge:
    kind: str
    token: str = "forge-secret-token-123"
    project: str = "shop/invoices"
    pulls: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    # The next N list calls find nothing, as a forge's list can lag behind its create (the 422/409 path).
    list_misses: int = 0

    def __post_init__(self) -> None:
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                forge._handle(self, "GET")

            def do_POST(self) -> None:
                forge._handle(self, "POST")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{API_ROOTS[self.kind]}"

    @property
    def web_root(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeForge:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- one request -----------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.lock:
            self.requests.append(
                {
                    "method": method,
                    "path": split.path,
                    "query": parse_qs(split.query),
                    "headers": dict(handler.headers),
                    "json": body,
                }  # fmt: skip
            )
            status, answer = self._answer(method, split.path, parse_qs(split.query), handler.headers, body)
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _authorised(self, headers) -> bool:
        if self.kind == "github":
            return headers.get("Authorization") == f"Bearer {self.token}"
        if self.kind == "gitlab":
            return headers.get("PRIVATE-TOKEN") == self.token
        return headers.get("Authorization") == f"token {self.token}"

    def _answer(self, method: str, path: str, query: dict, headers, body) -> tuple[int, object]:
        if not self._authorised(headers):
            message = "Bad credentials" if self.kind == "github" else "401 Unauthorized"
            return 401, {"message": message}
        root = API_ROOTS[self.kind]
        if self.kind == "gitlab":
            expected = f"{root}/projects/{quote(self.project, safe='')}/merge_requests"
        else:
            expected = f"{root}/repos/{self.project}/pulls"
        if path != expected:
            return 404, {"message": "Not Found"}
        if method == "GET":
            return 200, self._list(query)
        return self._create(body)

    def _open(self, head: str, base: str) -> list[dict]:
        return [pull for pull in self.pulls if pull["head"] == head and pull["base"] == base and pull["open"]]

    def _list(self, query: dict) -> list[dict]:
        one = {name: values[0] for name, values in query.items()}
        if self.list_misses:
            self.list_misses -= 1
            return []
        if self.kind == "github":
            owner, _, head = one.get("head", ":").partition(":")
            found = self._open(head, one.get("base", "")) if owner == self.project.split("/")[0] else []
        elif self.kind == "gitlab":
            found = self._open(one.get("source_branch", ""), one.get("target_branch", ""))
        else:
            found = [pull for pull in self.pulls if pull["open"]]
        return [self._shape(pull) for pull in found]

    def _create(self, body) -> tuple[int, object]:
        if not isinstance(body, dict):
            return 400, {"message": "Problems parsing JSON"}
        if self.kind == "gitlab":
            head, base, title, text = (
                body.get(key) for key in ("source_branch", "target_branch", "title", "description")
            )
        else:
            head, base, title, text = (body.get(key) for key in ("head", "base", "title", "body"))
        if not (head and base and title):
            return 422, {"message": "Validation Failed", "errors": [{"code": "missing_field"}]}
        existing = self._open(head, base)
        if existing:
            number = existing[0]["number"]
            if self.kind == "github":
                return 422, {
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "code": "custom",
                                "message": f"A pull request already exists for {self.project.split('/')[0]}:{head}."}],
                    "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                }  # fmt: skip
            if self.kind == "gitlab":
                return 409, {
                    "message": [f"Another open merge request already exists for this source branch: !{number}"]
                }
            return 409, {"message": f"pull request already exists for these targets [id: {number}, head_branch: {head}, "
                                    f"base_branch: {base}]"}  # fmt: skip
        pull = {
            "number": len(self.pulls) + 1,
            "head": head,
            "base": base,
            "title": title,
            "body": text or "",
            "open": True,
        }
        self.pulls.append(pull)
        return 201, self._shape(pull)

    def _shape(self, pull: dict) -> dict:
        if self.kind == "gitlab":
            return {
                "id": 1000 + pull["number"],
                "iid": pull["number"],
                "title": pull["title"],
                "description": pull["body"],
                "state": "opened",
                "source_branch": pull["head"],
                "target_branch": pull["base"],
                "web_url": f"{self.web_root}/{self.project}/-/merge_requests/{pull['number']}",
            }
        return {
            "id": 1000 + pull["number"],
            "number": pull["number"],
            "title": pull["title"],
            "body": pull["body"],
            "state": "open",
            "head": {"ref": pull["head"], "label": f"{self.project.split('/')[0]}:{pull['head']}"},
            "base": {"ref": pull["base"]},
            "html_url": f"{self.web_root}/{self.project}/pull{'s' if self.kind == 'gitea' else ''}/{pull['number']}",
        }
