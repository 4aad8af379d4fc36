"""The OpenAI-compatible agent: asks a chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp server)
for one unified diff against the worktree and applies it.

Settings: ``{"base_url": "http://127.0.0.1:11434/v1", "model": str, "api_key": str, "temperature": 0,
"max_tokens": int, "timeout_s": seconds}``. ``api_key`` is the key itself, resolved by the server from a
staff-written agent profile (goals.models.AgentProfile); the adapter reads no environment variable, so nobody
can make it send a server secret. Local servers need none.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import requests

from goals.agents.base import (
    Agent,
    AgentContext,
    AgentError,
    AgentResult,
    apply_patch,
    cap_tail,
    check_confinement,
    effective_timeout,
    one_line,
    timeout_setting,
    tracked_files,
    worktree_of,
)
from goals.agents.prompt import build_prompt, parse_report, relevant_files, strip_report
from goals.egress import EgressRefused

FILE_LIMIT = 16_000  # characters of one file shown to the model
FILES_LIMIT = 48_000  # characters of all files shown
LISTING_LIMIT = 200  # file names listed
CONNECT_TIMEOUT_S = 10

SYSTEM_PROMPT = """\
You are a careful software engineer doing one step of a goal in a git repository. You cannot run \
commands or open files beyond those shown to you: you answer with exactly one unified diff against the \
repository, in a ```diff fence, with paths relative to the repository root and a/ and b/ prefixes \
(--- /dev/null for a new file), and enough unchanged context lines for it to apply. Change only what the \
step needs. After the diff, follow the reporting rules of the user's message (DONE, FOLLOW-UP:, PLAN:) and \
end with a short summary of the change."""

# The closing fence sits at the opening fence's indent: a diff's context line " ```" never closes it.
_FENCED = re.compile(r"^([ \t]*)```[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
_DIFF_START = re.compile(r"^(?:diff --git |--- \S.*\n\+\+\+ \S)", re.MULTILINE)
_DIFF_LINE = re.compile(
    r"^(?:[ +\-\\]|@@|diff |index |new file|deleted file|old mode|new mode|similarity|dissimilarity|rename |"
    r"copy |GIT binary patch|literal |delta |Binary files|$)"
)
DIFF_LANGUAGES = ("diff", "patch", "udiff")


def _dedent(body: str, indent: str) -> str:
    lines = [line.removeprefix(indent) for line in body.splitlines()]
    return "\n".join(lines) + "\n" if lines else ""


def extract_diff(reply: str) -> tuple[str, str]:
    """The unified diff in a model's reply (its ```diff fences, else a bare diff) and the reply's prose."""
    bodies = [(match, _dedent(match.group(3), match.group(1))) for match in _FENCED.finditer(reply)]
    blocks = [
        (match, body)
        for match, body in bodies
        if match.group(2).lower() in DIFF_LANGUAGES or _DIFF_START.search(body)
    ]
    if blocks:
        diff = "".join(body for _, body in blocks)
        prose, position = [], 0
        for match, _ in blocks:
            prose.append(reply[position : match.start()])
            position = match.end()
        prose.append(reply[position:])
        return diff, "".join(prose)
    start = _DIFF_START.search(reply)
    if start is None:
        return "", reply
    lines = reply[start.start() :].split("\n")
    end = 0
    while end < len(lines) and _DIFF_LINE.match(lines[end]):
        end += 1
    diff_lines = lines[:end]
    while diff_lines and not diff_lines[-1].strip():
        diff_lines.pop()
    return "\n".join(diff_lines) + "\n", reply[: start.start()] + "\n".join(lines[end:])


def _file_section(worktree: Path, names: list[str]) -> str:
    shown, used = [], 0
    for name in names:
        try:
            data = (worktree / name).read_bytes()[: FILE_LIMIT * 4]
        except OSError:
            continue
        if b"\0" in data[:8000]:
            continue
        text = data.decode("utf-8", "replace")
        if len(text) > FILE_LIMIT:
            text = text[:FILE_LIMIT] + "\n[… cut here: the file goes on …]"
        if used + len(text) > FILES_LIMIT:
            break
        used += len(text)
        shown.append(f"===== {name} =====\n{text.rstrip()}\n===== end of {name} =====")
    return "\n\n".join(shown)


def user_message(ctx: AgentContext, worktree: Path) -> str:
    """The step's prompt, the repository's file list and the current content of the relevant files."""
    tracked = tracked_files(worktree, ctx.git)
    parts = [build_prompt(ctx)]
    if tracked:
        listing = "\n".join(tracked[:LISTING_LIMIT])
        more = f" (the first {LISTING_LIMIT} of {len(tracked)})" if len(tracked) > LISTING_LIMIT else ""
        parts.append(f"Files in the repository{more}:\n{listing}")
    files = _file_section(worktree, relevant_files(ctx, tracked))
    if files:
        parts.append("Current content of the relevant files:\n\n" + files)
    return "\n\n".join(parts) + "\n"


def _error_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return one_line(response.text, 200) or response.reason or ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return one_line(error.get("message") or error.get("code") or "", 200)
    if isinstance(error, str):
        return one_line(error, 200)
    return one_line(body, 200)


def _content(message: object) -> str:
    """A chat message's text; some servers send a list of typed parts instead of a string."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        content = "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return content if isinstance(content, str) else ""


def _tokens(usage: object) -> int:
    if not isinstance(usage, dict):
        return 0
    numbers = {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}
    if "total_tokens" in numbers:
        return numbers["total_tokens"]
    return numbers.get("prompt_tokens", 0) + numbers.get("completion_tokens", 0)


class OpenAIAgent(Agent):
    """Asks an OpenAI-compatible chat-completions endpoint for a diff and applies it to the worktree."""

    name = "openai"
    allowed_settings = frozenset(
        {"base_url", "model", "api_key", "temperature", "max_tokens", "timeout_s"}
    )

    def __init__(self, settings: dict):
        super().__init__(settings)
        base_url = self.settings.get("base_url")
        try:
            split = urlsplit(base_url) if isinstance(base_url, str) else None
        except ValueError:  # "http://[::1" and the like
            split = None
        if split is None or split.scheme not in ("http", "https") or not split.netloc:
            raise AgentError(
                "OpenAI agent: base_url must be an http(s) URL, like http://127.0.0.1:11434/v1.",
                permanent=True,
            )
        self.base_url = base_url.rstrip("/")
        self.model = self.settings.get("model")
        if not isinstance(self.model, str) or not self.model.strip():
            raise AgentError("OpenAI agent: name the model.", permanent=True)
        self._api_key = self.settings.pop("api_key", "") or ""  # kept out of self.settings, which may be shown
        if not isinstance(self._api_key, str):
            raise AgentError("OpenAI agent: api_key must be a string.", permanent=True)
        self.temperature = self.settings.get("temperature", 0)
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float):
            raise AgentError("OpenAI agent: temperature must be a number.", permanent=True)
        self.max_tokens = self.settings.get("max_tokens")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise AgentError("OpenAI agent: max_tokens must be a positive whole number.", permanent=True)
        self.timeout_s = timeout_setting(self.settings, "OpenAI")

    def __repr__(self) -> str:
        return f"OpenAIAgent({self.base_url!r}, {self.model!r})"  # never the key

    def complete(self, ctx: AgentContext, worktree: Path) -> dict:
        """POST the step to the endpoint and return the decoded chat completion."""
        payload: dict = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user_message(ctx, worktree)},
            ],
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        headers = {"Content-Type": "application/json"}
        key = self._api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = f"{self.base_url}/chat/completions"
        timeout = effective_timeout(self.timeout_s, ctx)
        client = ctx.http() if ctx.http is not None else requests
        try:
            response = client.post(
                url, json=payload, headers=headers, timeout=(min(CONNECT_TIMEOUT_S, timeout), timeout)
            )
        except EgressRefused as error:
            raise AgentError(f"The goal's egress rules refuse {self.base_url}: {error}", permanent=True) from error
        except requests.Timeout as error:
            raise AgentError(f"{self.base_url} did not answer within {timeout:g} s.") from error
        except requests.ConnectionError as error:
            raise AgentError(
                f"Cannot reach {self.base_url}: the connection was refused or dropped."
            ) from error
        except requests.RequestException as error:
            raise AgentError(f"The request to {self.base_url} failed: {one_line(error, 200)}") from error
        status = response.status_code
        if status >= 400:
            detail = _error_detail(response)
            if status in (401, 403, 404):
                hint = "check the profile's API key" if status != 404 else "check base_url and model"
                raise AgentError(f"{url} answered {status} ({hint}): {detail}", permanent=True)
            kind = "is rate limiting" if status == 429 else "failed"
            raise AgentError(f"{self.base_url} {kind} ({status}): {detail}")
        try:
            body = response.json()
        except ValueError as error:
            start = one_line(response.text, 80) or "an empty body"
            raise AgentError(f"{self.base_url} answered with malformed JSON: {start}") from error
        if not isinstance(body, dict):
            raise AgentError(f"{self.base_url} answered with JSON that is not a chat completion.")
        return body

    def run_step(self, ctx: AgentContext) -> AgentResult:
        """Ask for a diff, apply it, and read the report lines from the rest of the reply."""
        worktree = worktree_of(ctx)
        body = self.complete(ctx, worktree)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise AgentError("The model's answer has no choices.")
        reply = _content(choices[0].get("message"))
        if not reply.strip():
            raise AgentError("The model's answer has no text.")
        tokens = _tokens(body.get("usage"))
        diff, prose = extract_diff(reply)
        done, bugs, plan = parse_report(prose)
        log = cap_tail(f"{reply.rstrip()}\n\n[{self.model}: {tokens:,} tokens]")
        if not diff.strip():
            if not done:
                raise AgentError(f"The model's answer holds no diff: {one_line(reply, 120)}")
            touched: list[str] = []
        else:
            try:
                touched = apply_patch(worktree, diff, ctx.git)
            except AgentError as error:
                if choices[0].get("finish_reason") == "length":
                    raise AgentError(f"{error.message} (the answer was cut at max_tokens)") from error
                raise
            check_confinement(worktree, ctx.git)
        summary = strip_report(prose) or (f"Edited {', '.join(touched)}." if touched else "No change.")
        return AgentResult(summary=summary, tokens=tokens, done=done, reported_bugs=bugs, plan=plan, log=log)
