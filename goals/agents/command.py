"""The command agent: runs a command-line coding agent (Codex CLI, Claude Code, Aider, or any command) with
the step's prompt in the worktree, and reads what it reports.

Settings: ``{"preset": "codex"|"claude"|"aider"|"custom", "executable": path, "args": [extra args],
"command": [argv with "{prompt}"] (custom only), "timeout_s": seconds, "provider": {"base_url": url, "api_key":
key} (codex and claude only: the profile's model API)}``. The command runs in its own
process group (stopped as a whole on timeout), in ``ctx.env``, through ``ctx.wrap`` when a sandbox is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import tomli_w

from goals.agents.base import (
    Agent,
    AgentContext,
    AgentError,
    AgentResult,
    ProcessOutput,
    cap_tail,
    check_confinement,
    effective_timeout,
    first_error,
    one_line,
    run_process,
    timeout_setting,
    tracked_files,
    worktree_of,
)
from goals.agents.prompt import build_prompt, last_paragraph, parse_report, relevant_files, strip_report

PROMPT_PLACEHOLDER = "{prompt}"
REDACTED = "[model API key]"
TRANSCRIPT_OUTPUT_LIMIT = 2_000  # characters of one command's output kept in the codex transcript


def _count(value: object) -> int:
    """A token count from a tool's JSON: a non-negative number, else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return 0
    return int(value)


def _has_any(args: list[str], flags: tuple[str, ...]) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in args for flag in flags)


def _failure(name: str, output: ProcessOutput) -> AgentError:
    """The error for a command that exited non-zero: its first error line, else its last output line."""
    lines = [line for line in output.stdout.splitlines() if line.strip()]
    reason = first_error(output.stderr, default=lines[-1] if lines else "no output")
    return AgentError(f"{name} exited with status {output.returncode}: {reason}")


def _log(*parts: str, dropped: int = 0) -> str:
    text = "\n".join(part.rstrip() for part in parts if part and part.strip())
    if dropped:
        text = f"[… {dropped:,} bytes of output dropped …]\n" + text
    return cap_tail(text)


# --- codex: `codex exec --json` prints one JSON event a line ---------------------------------------------


def _codex_item_line(item: dict) -> str:
    kind = item.get("type")
    if kind == "agent_message":
        return str(item.get("text") or "")
    if kind == "reasoning":
        return "thinking: " + one_line(item.get("text") or "", 300)
    if kind == "command_execution":
        output = cap_tail(str(item.get("aggregated_output") or "").rstrip(), TRANSCRIPT_OUTPUT_LIMIT)
        head = f"$ {item.get('command', '')} (exit {item.get('exit_code')}, {item.get('status', '')})"
        return head + ("\n" + output if output else "")
    if kind == "file_change":
        changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
        verb = "failed to edit: " if item.get("status") == "failed" else "edited: "
        return verb + ", ".join(f"{c.get('path')} ({c.get('kind')})" for c in changes)
    if kind == "mcp_tool_call":
        return f"tool: {item.get('server')}.{item.get('tool')} ({item.get('status')})"
    if kind == "web_search":
        return f"searched the web: {one_line(item.get('query') or '', 200)}"
    if kind == "todo_list":
        todos = [t for t in item.get("items") or [] if isinstance(t, dict)]
        return "todo: " + "; ".join(f"[{'x' if t.get('completed') else ' '}] {t.get('text')}" for t in todos)
    if kind == "error":
        return "warning: " + one_line(item.get("message") or "", 300)
    return f"({kind})"


def _outside(paths: list[str], worktree: Path | None) -> list[str]:
    if worktree is None:
        return []
    return [p for p in paths if not Path(os.path.realpath(worktree / p)).is_relative_to(worktree)]


RECONNECTING = re.compile(r"^\s*Reconnecting\b", re.IGNORECASE)


def _codex_usage_tokens(usage: dict) -> int:
    """A turn's tokens, each counted once: Codex reports the Responses API's counts summed over the turn's
    requests, where cached input is part of ``input_tokens`` and reasoning part of ``output_tokens``
    (``cached_input_tokens``, ``cache_write_input_tokens`` and ``reasoning_output_tokens`` only break them down)."""
    return _count(usage.get("input_tokens")) + _count(usage.get("output_tokens"))


def parse_codex(output: ProcessOutput, worktree: Path | None = None) -> AgentResult:
    """Read `codex exec --json` output: the last agent message is the summary, input + output tokens of
    every completed turn count (cached and reasoning tokens within them), turn.failed fails the step, and so
    do an error event the run never got past, a file change Codex reports as failed, and a file change
    outside ``worktree``.

    Codex emits an ``error`` event each time it reconnects to its provider ("Reconnecting... 1/5 (…)"):
    that is a retry, not a failure, and so is any error event a completed turn follows."""
    transcript: list[str] = []
    changed: list[str] = []
    failed_changes: list[str] = []
    messages: list[str] = []
    skipped: list[str] = []
    tokens = turns = events = 0
    failure = pending_error = ""
    for raw in output.stdout.splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            skipped.append(line)
            transcript.append("warning: skipped a line that is not a JSON event: " + one_line(line, 200))
            continue
        events += 1
        kind = event["type"]
        if kind == "thread.started":
            transcript.append(f"thread {event.get('thread_id', '')}")
        elif kind == "turn.completed":
            turns += 1
            pending_error = ""
            usage = event.get("usage") if isinstance(event.get("usage"), dict) else {}
            tokens += _codex_usage_tokens(usage)
        elif kind == "turn.failed":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            failure = str(error.get("message") or "the turn failed")
        elif kind == "error":
            message = str(event.get("message") or "an error stopped the run")
            transcript.append(("retry: " if RECONNECTING.match(message) else "error: ") + one_line(message, 300))
            if not RECONNECTING.match(message):
                pending_error = message
        elif kind == "item.completed" and isinstance(event.get("item"), dict):
            item = event["item"]
            if item.get("type") == "agent_message" and isinstance(item.get("text"), str):
                messages.append(item["text"])
            if item.get("type") == "file_change" and isinstance(item.get("changes"), list):
                paths = [str(c["path"]) for c in item["changes"] if isinstance(c, dict) and c.get("path")]
                changed += paths
                if item.get("status") == "failed":
                    kinds = [f"{c.get('kind')} {c.get('path')}" for c in item["changes"] if isinstance(c, dict)]
                    failed_changes.append(", ".join(kinds) or "no files named")
            transcript.append(_codex_item_line(item))
    log = _log("\n".join(transcript), output.stderr, dropped=output.dropped)
    failure = failure or pending_error
    if failure:
        raise AgentError(f"codex failed: {one_line(failure, 240)}")
    if output.returncode != 0:
        raise _failure("codex", output)
    if not events:
        first = one_line(skipped[0], 120) if skipped else "no output"
        raise AgentError(f"codex printed no JSON events (is it `codex exec --json`?): {first}")
    if not turns:
        raise AgentError("codex stopped before its turn completed.")
    outside = _outside(changed, worktree)
    if outside:
        raise AgentError(f"Refused: codex changed files outside the worktree: {', '.join(outside[:5])}")
    if failed_changes:
        raise AgentError(f"codex reported a failed file change: {one_line('; '.join(failed_changes), 240)}")
    done, bugs, plan = parse_report("\n\n".join(messages))
    summary = strip_report(messages[-1]) if messages else ""
    return AgentResult(
        summary=summary or "codex finished without a message.",
        tokens=tokens,
        done=done,
        reported_bugs=bugs,
        plan=plan,
        log=log,
    )


# --- claude: `claude -p … --output-format json` prints one result object ---------------------------------


def _claude_result(stdout: str) -> dict | None:
    text = stdout.strip()
    candidates = [text, *reversed(text.splitlines())]  # noise before the JSON: try its last line too
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, list):  # --verbose prints every message; the result comes last
            data = next(
                (d for d in reversed(data) if isinstance(d, dict) and d.get("type") == "result"), None
            )
        if isinstance(data, dict) and data.get("type") == "result":
            return data
    return None


# What to do about a failure Claude Code reports, by what its message or HTTP status says.
_CLAUDE_AUTH = re.compile(r"not logged in|/login|invalid api key|authentication|x-api-key|api key", re.IGNORECASE)
_CLAUDE_API_ERROR = re.compile(r"^\s*(API Error|Not logged in|Invalid API key)", re.IGNORECASE)
# The last is the sandbox's egress proxy answering 502 for a host that does not answer.
_CLAUDE_UNREACHABLE = re.compile(
    r"unable to connect|connection ?refused|ECONNREFUSED|fetch failed|timed? ?out|could not connect", re.IGNORECASE
)


def _claude_advice(reason: str, status: object) -> str:
    if status in (401, 403) or _CLAUDE_AUTH.search(reason):
        return ("set the profile's API key (or its API key variable, set in the worker's environment) for the "
                "model API at its base URL")
    if _CLAUDE_UNREACHABLE.search(reason):
        return "check the profile's base URL: the model API did not answer (is it running, and is its host allowed?)"
    if status == 429 or "rate" in reason.lower():
        return "the model API is limiting requests: wait, or raise the key's limits"
    if isinstance(status, int) and status >= 500 or "overloaded" in reason.lower():
        return "the model API failed on its side; the step is tried again, and if it persists check the server"
    return ""


def parse_claude(output: ProcessOutput) -> AgentResult:
    """Read Claude Code's JSON result: the result text is the summary; input, output, cache-creation and
    cache-read tokens count once each (the result's usage; modelUsage and iterations repeat them).

    A failure fails the step with the client's own message and what to do about it: is_error (which Claude Code
    sets beside "subtype": "success" for "Not logged in" and API errors), an error subtype, a non-zero exit,
    or a result whose text is the client's error ("Not logged in · Please run /login", "API Error: …")."""
    data = _claude_result(output.stdout)
    if data is None:
        if output.returncode != 0:
            raise _failure("claude", output)
        start = one_line(output.stdout, 120) or "no output"
        raise AgentError(f"claude printed no JSON result (is it `--output-format json`?): {start}")
    subtype = str(data.get("subtype") or "")
    text = data.get("result") if isinstance(data.get("result"), str) else ""
    failed = data.get("is_error") or subtype not in ("", "success") or output.returncode != 0
    if failed or _CLAUDE_API_ERROR.match(text):
        errors = data.get("errors") if isinstance(data.get("errors"), list) else []
        reason = text or "; ".join(map(str, errors)) or f"exit status {output.returncode}"
        status = data.get("api_error_status")
        advice = _claude_advice(reason, status)
        # "success" beside is_error is Claude Code's way of saying the run ended normally; it is no success here.
        where = [subtype] if subtype not in ("", "success") else []
        where += [f"API status {status}"] if isinstance(status, int) and not isinstance(status, bool) else []
        label = f"claude failed ({', '.join(where)})" if where else "claude failed"
        message = f"{label}: {one_line(reason, 240)}"
        raise AgentError(f"{message} — what to do: {advice}." if advice else message)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = sum(
        _count(usage.get(key))
        for key in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    cost = data.get("total_cost_usd", data.get("cost_usd"))
    cost = float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None
    turns = f"{data.get('num_turns')} turns, session {data.get('session_id')}"
    done, bugs, plan = parse_report(text)
    return AgentResult(
        summary=strip_report(text) or "claude finished without a message.",
        tokens=tokens,
        done=done,
        reported_bugs=bugs,
        plan=plan,
        cost_usd=cost,
        log=_log(text, turns, output.stderr, dropped=output.dropped),
    )


# --- aider: plain text, with a "Tokens: … Cost: …" line after each model reply ---------------------------

_AIDER_TOKENS = re.compile(r"^Tokens:\s*(?P<counts>[^.]*(?:\.\d[^.]*)*)\.(?:\s*Cost:\s*(?P<cost>.*))?$")
_AIDER_COUNT = re.compile(r"(?P<number>\d[\d,]*(?:\.\d+)?)\s*(?P<suffix>[kKmM]?)\s+(?P<label>[a-z ]+)")
_AIDER_MESSAGE_COST = re.compile(r"\$\s*(\d+(?:\.\d+)?)\s+message")
_EDIT_BLOCK = re.compile(r"^<{5,9} SEARCH.*?^>{5,9} REPLACE[^\n]*$", re.MULTILINE | re.DOTALL)
_FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}


def _aider_tokens(counts: str) -> int:
    total = 0
    for match in _AIDER_COUNT.finditer(counts):
        label = match.group("label").strip()
        if label in ("sent", "received", "cache write"):
            number = float(match.group("number").replace(",", ""))
            total += round(number * _SCALE[match.group("suffix").lower()])
    return total


def parse_aider(output: ProcessOutput) -> AgentResult:
    """Read aider's plain output: tokens and cost from its "Tokens: … Cost: …" lines, the summary from the
    last paragraph of prose before the last of them."""
    if output.returncode != 0:
        raise _failure("aider", output)
    lines = output.stdout.splitlines()
    tokens, cost, last = 0, None, None
    for index, line in enumerate(lines):
        match = _AIDER_TOKENS.match(line.strip())
        if not match:
            continue
        last = index
        tokens += _aider_tokens(match.group("counts"))
        message_cost = _AIDER_MESSAGE_COST.search(match.group("cost") or "")
        if message_cost:
            cost = (cost or 0.0) + float(message_cost.group(1))
    log = _log(output.stdout, output.stderr, dropped=output.dropped)
    if last is None:
        tail = [line for line in lines if line.strip()]
        reason = one_line(tail[-1], 200) if tail else first_error(output.stderr, "no output")
        raise AgentError(f"aider never got a reply from the model: {reason}")
    reply = "\n".join(lines[:last])
    prose = _FENCE.sub("", _EDIT_BLOCK.sub("", reply))
    done, bugs, plan = parse_report(reply)
    return AgentResult(
        summary=strip_report(last_paragraph(strip_report(prose))) or "aider finished without a message.",
        tokens=tokens,
        done=done,
        reported_bugs=bugs,
        plan=plan,
        cost_usd=round(cost, 6) if cost is not None else None,
        log=log,
    )


# --- custom: any command; its last paragraph is the summary ----------------------------------------------


def parse_custom(output: ProcessOutput) -> AgentResult:
    """Read any command's output: the report lines anywhere, the last paragraph as the summary; no tokens."""
    if output.returncode != 0:
        raise _failure("the command", output)
    done, bugs, plan = parse_report(output.stdout)
    return AgentResult(
        summary=last_paragraph(strip_report(output.stdout)) or "the command printed nothing.",
        done=done,
        reported_bugs=bugs,
        plan=plan,
        log=_log(output.stdout, output.stderr, dropped=output.dropped),
    )


# --- the presets -----------------------------------------------------------------------------------------

# Flags that already choose what the agent may do: then the preset adds none of its own.
_CODEX_SANDBOX_FLAGS = ("--sandbox", "-s", "--full-auto", "--dangerously-bypass-approvals-and-sandbox")
_CLAUDE_PERMISSION_FLAGS = (
    "--permission-mode",
    "--dangerously-skip-permissions",
    "--allowedTools",
    "--allowed-tools",
)
# The tools Claude Code may use without asking (`claude -p` has nobody to ask): reading, editing and running
# commands in the worktree. Goalpost's sandbox is the boundary; web tools, agents and MCP stay refused.
CLAUDE_ALLOWED_TOOLS = "Bash,Edit,MultiEdit,Write,NotebookEdit,Read,Glob,Grep,LS,TodoWrite"
# The environment every managed Claude Code gets (docs/agents.md, "Managed Claude Code"): no traffic but the model
# API's (no telemetry, update checks, error reports or the start-up reachability probe), and two retries of a
# failing API call instead of ten over three minutes: the loop retries a failed step itself. Not
# CLAUDE_CODE_SUBPROCESS_ENV_SCRUB: it turns on Claude Code's own command sandbox, which inside ours leaves empty
# placeholder files (.env, package.json, yarn.lock…) in the worktree; our sandbox is the one boundary.
CLAUDE_ENV = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "CLAUDE_CODE_MAX_RETRIES": "2",
}


def _codex_argv(executable: str, args: list[str], prompt: str, files: list[str], boxed: bool = False) -> list[str]:
    # Inside Goalpost's box, Codex's own sandbox (bubblewrap, landlock, seccomp) cannot start, and the box is
    # the boundary anyway; run unsandboxed by staff, Codex keeps its own (docs/agents.md, "Managed Codex").
    if _has_any(args, _CODEX_SANDBOX_FLAGS):
        sandbox = []
    elif boxed:
        sandbox = ["--dangerously-bypass-approvals-and-sandbox"]
    else:
        sandbox = ["--sandbox", "workspace-write"]
    # --ephemeral: no session files piling up in the goal's CODEX_HOME; each step is one fresh `codex exec`.
    return [executable, "exec", "--json", "--skip-git-repo-check", "--ephemeral", *sandbox, *args, prompt]


def _claude_argv(executable: str, args: list[str], prompt: str, files: list[str], boxed: bool = False) -> list[str]:
    permission = [] if _has_any(args, _CLAUDE_PERMISSION_FLAGS) else ["--allowedTools", CLAUDE_ALLOWED_TOOLS]
    return [executable, "-p", prompt, "--output-format", "json", *permission, *args]


def _claude_env(provider: Provider | None, env: dict[str, str], config_dir: str) -> dict[str, str]:
    """Claude Code's variables: the profile's model API (ANTHROPIC_BASE_URL; the key as ANTHROPIC_API_KEY,
    which `claude -p` uses without any login, where a missing one is "Not logged in"), its config dir (never
    the worktree), and CLAUDE_ENV."""
    extra = {**CLAUDE_ENV, "CLAUDE_CONFIG_DIR": config_dir}
    if provider is not None and provider.base_url:
        extra["ANTHROPIC_BASE_URL"] = provider.base_url
    if provider is not None and provider.api_key:
        extra["ANTHROPIC_API_KEY"] = provider.api_key
    return extra


def _aider_argv(executable: str, args: list[str], prompt: str, files: list[str], boxed: bool = False) -> list[str]:
    # Aider must not commit (the loop commits), must not leave its history files in the worktree (the loop
    # would commit them) and must not update itself (--yes-always would say yes).
    quiet = [
        "--no-pretty",
        "--no-check-update",
        "--no-analytics",
        "--chat-history-file",
        "/dev/null",
        "--input-history-file",
        "/dev/null",
    ]
    return [
        executable,
        "--yes-always",
        "--no-auto-commits",
        "--no-git",
        *quiet,
        *args,
        "--message",
        prompt,
        *files,
    ]


@dataclass(frozen=True)
class Preset:
    """How to call one command-line agent and how to read what it prints."""

    executable: str
    argv: Callable[[str, list[str], str, list[str], bool], list[str]] | None
    parse: Callable[[ProcessOutput, Path], AgentResult]
    wants_files: bool = False  # aider edits only the files it is given
    env: Callable[[Provider | None, dict[str, str], str], dict[str, str]] | None = None  # the client's variables


PRESETS = {
    "codex": Preset("codex", _codex_argv, parse_codex),
    "claude": Preset("claude", _claude_argv, lambda output, worktree: parse_claude(output), env=_claude_env),
    "aider": Preset("aider", _aider_argv, lambda output, worktree: parse_aider(output), wants_files=True),
    "custom": Preset("", None, lambda output, worktree: parse_custom(output)),
}


def _string_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AgentError(f"Command agent: {what} must be a list of strings.", permanent=True)
    return list(value)


@dataclass(frozen=True)
class Provider:
    """The profile's model API for a client that takes one: its base URL ("" for the vendor's own) and key."""

    base_url: str = ""
    api_key: str = ""

    def __repr__(self) -> str:  # never the key, in a log or a traceback
        return f"Provider(base_url={self.base_url!r}, api_key={'set' if self.api_key else 'unset'})"


PROVIDER_PRESETS = frozenset({"codex", "claude"})

# --- managed Codex: the provider as Codex's config, in a CODEX_HOME of the goal's own ----------------------

CODEX_PROVIDER_ID = "goalpost"
CODEX_KEY_VARIABLE = "GOALPOST_MODEL_API_KEY"  # named by env_key in config.toml; the key itself is never written
CODEX_DEFAULT_BASE_URL = "https://api.openai.com/v1"  # the profile gave a key and no base URL


def codex_config(provider: Provider) -> dict:
    """What Goalpost writes as config.toml in Codex's home: the profile's model API as the model provider
    Codex uses (Responses API, the key read from CODEX_KEY_VARIABLE), and nothing that reaches out elsewhere."""
    settings: dict = {
        "name": "Goalpost profile",
        "base_url": provider.base_url or CODEX_DEFAULT_BASE_URL,
        "wire_api": "responses",
    }
    if provider.api_key:
        settings["env_key"] = CODEX_KEY_VARIABLE
    return {
        "model_provider": CODEX_PROVIDER_ID,
        "check_for_update_on_startup": False,
        "analytics": {"enabled": False},
        # Plugins sync from github.com and chatgpt.com at start: nothing a managed agent in a box may reach.
        "features": {"plugins": False, "remote_plugin": False},
        "model_providers": {CODEX_PROVIDER_ID: settings},
    }


def write_codex_home(home: Path, provider: Provider) -> None:
    """Write config.toml into ``home`` as its owner's file, mode 0600.

    The agent may have written anything in its home during an earlier step (a link to /etc/shadow where
    config.toml was, a folder): whatever is there is removed without being followed, and the file is created
    anew, never opened through a link."""
    folder = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        info = os.fstat(folder)
        name = "config.toml"
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                shutil.rmtree(name, dir_fd=folder)
            else:
                os.unlink(name, dir_fd=folder)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        descriptor = os.open(name, flags, 0o600, dir_fd=folder)
        with os.fdopen(descriptor, "wb") as handle:
            if os.geteuid() == 0:
                os.fchown(handle.fileno(), info.st_uid, info.st_gid)
            handle.write(tomli_w.dumps(codex_config(provider)).encode())
    finally:
        os.close(folder)


def _provider(value: object, preset: str) -> Provider | None:
    if value is None:
        return None
    if preset not in PROVIDER_PRESETS:
        raise AgentError(f"Command agent: a model provider is for the {' and '.join(sorted(PROVIDER_PRESETS))} "
                         "presets only.", permanent=True)
    if not isinstance(value, dict) or set(value) - {"base_url", "api_key"}:
        raise AgentError('Command agent: provider is {"base_url": url, "api_key": key}.', permanent=True)
    base_url, api_key = value.get("base_url") or "", value.get("api_key") or ""
    if not isinstance(base_url, str) or not isinstance(api_key, str):
        raise AgentError("Command agent: the provider's base_url and api_key are strings.", permanent=True)
    if base_url and not re.match(r"^https?://[^/\s]+", base_url):
        raise AgentError(f"Command agent: the provider's base_url is not an http(s) URL: {base_url!r}.",
                         permanent=True)
    return Provider(base_url=base_url.rstrip("/"), api_key=api_key)


class CommandAgent(Agent):
    """Runs a command-line agent with the step's prompt in the worktree and reads its report."""

    name = "command"
    allowed_settings = frozenset({"preset", "executable", "args", "command", "timeout_s", "provider"})

    def __init__(self, settings: dict):
        super().__init__(settings)
        preset_name = self.settings.get("preset", "custom" if "command" in self.settings else None)
        if preset_name not in PRESETS:
            raise AgentError(
                f"Command agent: choose a preset ({', '.join(PRESETS)}), not {preset_name!r}.", permanent=True
            )
        self.preset_name = preset_name
        self.preset = PRESETS[preset_name]
        self.args = _string_list(self.settings.get("args", []), "args")
        executable = self.settings.get("executable")
        if executable is not None and (not isinstance(executable, str) or not executable.strip()):
            raise AgentError("Command agent: executable must be a path.", permanent=True)
        self.executable = executable or self.preset.executable
        self.command: list[str] = []
        if preset_name == "custom":
            self.command = _string_list(self.settings.get("command"), "command (the custom argv)")
            if not self.command or not self.command[0]:
                raise AgentError("Command agent: the custom command is empty.", permanent=True)
            if not any(PROMPT_PLACEHOLDER in part for part in self.command):
                raise AgentError('Command agent: put "{prompt}" where the prompt goes.', permanent=True)
        elif "command" in self.settings:
            raise AgentError('Command agent: "command" is for the custom preset only.', permanent=True)
        self.timeout_s = timeout_setting(self.settings, "command")
        self.provider = _provider(self.settings.get("provider"), preset_name)

    def argv(self, prompt: str, files: list[str], *, boxed: bool = False) -> list[str]:
        """The command line for this step, before any sandbox wraps it (``boxed``: one will)."""
        if self.preset.argv is None:
            argv = [part.replace(PROMPT_PLACEHOLDER, prompt) for part in self.command]
            if self.executable:
                argv[0] = self.executable
            return [*argv, *self.args]
        return self.preset.argv(self.executable, self.args, prompt, files, boxed)

    def run_step(self, ctx: AgentContext) -> AgentResult:
        """Run the agent in the worktree, stop it at the timeout, and read what it reported."""
        worktree = worktree_of(ctx)
        files = relevant_files(ctx, tracked_files(worktree, ctx.git)) if self.preset.wants_files else []
        with self._environment(ctx) as env:
            output = run_process(
                self.argv(build_prompt(ctx), files, boxed=ctx.wrap is not None),
                cwd=worktree,
                env=env,
                timeout_s=effective_timeout(self.timeout_s, ctx),
                wrap=ctx.wrap,
                label=self.preset_name if self.preset_name != "custom" else "the command",
            )
        key = self.provider.api_key if self.provider is not None else ""
        if key:  # the agent can print its environment: its output goes to the step's log, never the key
            output = dataclasses.replace(
                output, stdout=output.stdout.replace(key, REDACTED), stderr=output.stderr.replace(key, REDACTED)
            )
        try:
            result = self.preset.parse(output, worktree)
        except AgentError as error:
            raise AgentError(self._redacted(error.message), permanent=error.permanent) from None
        finally:
            # Even a failed run must not leave a way out of the worktree for the next step.
            check_confinement(worktree, ctx.git)
        return replace(result, summary=self._redacted(result.summary), log=self._redacted(result.log))

    @contextlib.contextmanager
    def _environment(self, ctx: AgentContext) -> Iterator[dict | None]:
        """The step's environment: ctx.env, plus for Claude Code its variables (the preset's env), for Codex with a
        provider its CODEX_HOME (the goal's agent home, or a folder of this run's own) holding the provider's
        config, and the key in its variable."""
        if self.preset.env is not None:
            base = dict(ctx.env if ctx.env is not None else os.environ)
            yield {**base, **self.preset.env(self.provider, base, self.config_dir(ctx, base))}
            return
        if self.preset_name != "codex" or self.provider is None:
            yield ctx.env
            return
        with contextlib.ExitStack() as stack:
            home = ctx.home
            if home is None:
                home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="goalpost-codex-home-")))
            write_codex_home(home, self.provider)
            env = dict(ctx.env if ctx.env is not None else os.environ)
            env["CODEX_HOME"] = str(home)
            env.pop(CODEX_KEY_VARIABLE, None)
            if self.provider.api_key:
                env[CODEX_KEY_VARIABLE] = self.provider.api_key
            yield env

    @staticmethod
    def config_dir(ctx: AgentContext, env: dict[str, str]) -> str:
        """Where the client keeps its config and sessions, outside the worktree: in the sandbox, its private
        HOME (a fresh tmpfs each step); unsandboxed, a folder of the goal's own beside its worktree."""
        if ctx.wrap is not None:
            return f"{(env.get('HOME') or '/tmp').rstrip('/')}/.claude"  # noqa: S108
        worktree = worktree_of(ctx)
        folder = worktree.parent / f".{worktree.name}.claude"
        folder.mkdir(mode=0o700, exist_ok=True)
        return str(folder)

    def _redacted(self, text: str) -> str:
        """``text`` without the profile's key: what the client printed is stored and shown on the goal page."""
        key = self.provider.api_key if self.provider is not None else ""
        return text.replace(key, "[the profile's API key]") if key and text else text
