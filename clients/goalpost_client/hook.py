"""`goalpost-hook`: Claude Code's command hook for Goalpost. Standard library only, no Django (goalpost-client,
`pip install ./clients`; also `python -m goalpost_client.hook`).

Reads the hook input (JSON) on stdin, posts it to Goalpost (`$GOALPOST_URL/api/v1/hooks/claude`, with
`Authorization: Bearer $GOALPOST_TOKEN`) and prints Goalpost's answer on stdout, exit code 0.

It fails closed. Claude Code treats exit code 2 from a PreToolUse hook as a block and shows the hook's stderr,
so when Goalpost cannot be reached, answers an error or something unreadable, a PreToolUse call is blocked with
exit code 2 and a message that says why (a token Goalpost refuses comes back as a deny, passed on as it is). For
the other events (Notification, Stop…), a failure is exit code 1: a non-blocking error that Claude Code shows,
since blocking a Stop would keep the agent running.

On PostToolUse (and PostToolUseFailure: a command that failed may have written too) it checks what really
changed, after the fact: the working tree's diff against the baseline (worktree.py: read without running anything
the repository configures), posted to `$GOALPOST_URL/api/v1/goals/$GOALPOST_GOAL/changes`. When Goalpost denies
it (a protected path changed by a command that was allowed), Claude Code is stopped (`continue: false`) and the
model told why (`decision: "block"`). It fails closed there too: a change it cannot read or report stops Claude
Code, since the tool already ran. The baseline is the commit checked out when the hook first ran for the goal in
that repository (kept in GOALPOST_STATE_DIR, by default ~/.local/state/goalpost, outside the repository), or
GOALPOST_BASE: a commit the agent makes later still shows in the diff.

Environment: GOALPOST_URL (e.g. http://127.0.0.1:8000), GOALPOST_TOKEN (the goal's agent token), GOALPOST_GOAL
(the goal's id, for PostToolUse), optionally GOALPOST_WAIT (seconds the server waits for the phone, default
the server's 55), GOALPOST_HOOK_TIMEOUT (seconds this script waits for the server, default the wait plus 20),
GOALPOST_BASE and GOALPOST_STATE_DIR. Set the hook's own `timeout` in settings.json above both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from goalpost_client import worktree

BLOCK = 2  # Claude Code: a blocking error; stderr goes to Claude
NON_BLOCKING = 1
DEFAULT_WAIT_S = 55.0
MARGIN_S = 20.0
MAX_INPUT_BYTES = 4 * 1024 * 1024
MAX_BODY_BYTES = 1024 * 1024  # the API's limit
CHANGES_TIMEOUT_S = 30.0
SOURCE = "claude-code"
# A tool call that failed (a command exiting non-zero) may have written files too: Claude Code then sends
# PostToolUseFailure instead of PostToolUse.
AFTER_THE_CALL = ("PostToolUse", "PostToolUseFailure")


class HookFailure(Exception):
    """Why the hook cannot get an answer from Goalpost."""


def api_base(base: str) -> str:
    base = base.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise HookFailure(f"GOALPOST_URL must start with http:// or https:// (it is {base!r}).")
    return f"{base}/api/v1"


def hook_url(base: str, wait: str | None) -> str:
    url = f"{api_base(base)}/hooks/claude"
    if wait:
        url += "?" + urllib.parse.urlencode({"wait": wait})
    return url


def ask_goalpost(url: str, token: str, body: bytes, timeout: float) -> dict:
    """POST the hook input; the server's JSON answer, or HookFailure saying what went wrong."""
    request = urllib.request.Request(  # noqa: S310 (hook_url allows http and https only)
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "goalpost-hook/1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            payload = response.read()
    except urllib.error.HTTPError as error:
        raise HookFailure(f"Goalpost answered HTTP {error.code}: {_reason(error.read())}") from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise HookFailure(f"Goalpost cannot be reached at {url.split('?')[0]}: {reason}") from error
    try:
        answer = json.loads(payload or b"{}")
    except ValueError as error:
        raise HookFailure("Goalpost's answer is not JSON.") from error
    if not isinstance(answer, dict):
        raise HookFailure("Goalpost's answer is not a JSON object.")
    return answer


def _reason(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("error") or "no reason given")
    except (ValueError, AttributeError):
        return payload[:200].decode("utf-8", errors="replace") or "no reason given"


# --- after the fact: what really changed ----------------------------------------------------------------------


def state_dir(env: dict[str, str]) -> Path:
    if env.get("GOALPOST_STATE_DIR"):
        return Path(env["GOALPOST_STATE_DIR"])
    state_home = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(state_home) / "goalpost"


def baseline(repo: Path, goal: str, env: dict[str, str], *, record: bool) -> str | None:
    """The commit the change is measured from: GOALPOST_BASE, else the one recorded when the hook first ran
    for this goal in this repository (recorded now, when `record`). "" when there is none yet."""
    if env.get("GOALPOST_BASE", "").strip():
        return worktree.resolve(repo, env["GOALPOST_BASE"].strip())
    key = hashlib.sha256(f"{goal}\0{repo}".encode()).hexdigest()[:24]
    path = state_dir(env) / f"baseline-{key}"
    try:
        recorded = path.read_text().strip()
        return None if recorded == "none" else recorded
    except FileNotFoundError:
        pass
    commit = worktree.head(repo)
    if record:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(f"{commit or 'none'}\n")
    return commit


def remember_baseline(hook_input: dict, env: dict[str, str]) -> None:
    """Before the first tool call, note the commit checked out (best effort: a cwd outside git is the server's
    to refuse)."""
    goal, cwd = env.get("GOALPOST_GOAL", "").strip(), hook_input.get("cwd")
    if not goal or not isinstance(cwd, str) or env.get("GOALPOST_BASE", "").strip():
        return
    with contextlib.suppress(worktree.ChangeError, OSError):
        baseline(worktree.toplevel(cwd), goal, env, record=True)


def post_json(url: str, token: str, payload: dict, timeout: float) -> dict:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return ask_goalpost(url, token, body, timeout)


def report_change(hook_input: dict, env: dict[str, str]) -> dict:
    """PostToolUse: post the working tree's real change; Claude Code's answer (stopped when Goalpost denies)."""
    goal = env.get("GOALPOST_GOAL", "").strip()
    if not goal.isdigit():
        raise HookFailure("set GOALPOST_GOAL to the goal's id to check what a tool call changed")
    cwd = hook_input.get("cwd")
    if not isinstance(cwd, str) or not cwd:
        raise HookFailure("the hook input has no cwd")
    try:
        repo = worktree.toplevel(cwd)
        base = baseline(repo, goal, env, record=True)
        change = worktree.change_since(repo, base)
        payload = {
            "diff": change.diff,
            "source": SOURCE,
            "cwd": str(repo),
            **{
                name: hook_input[field]
                for name, field in (("session_id", "session_id"), ("tool_use_id", "tool_use_id"), ("tool", "tool_name"))
                if isinstance(hook_input.get(field), str)
            },
        }
        if len(json.dumps(payload, ensure_ascii=False).encode()) > MAX_BODY_BYTES - 4096:
            payload["diff"] = worktree.change_since(repo, base, max_chars=0).diff  # the paths, without lines
    except (worktree.ChangeError, OSError) as error:
        raise HookFailure(f"cannot read what changed in {cwd}: {error}") from error
    if not change.paths:
        return {}
    answer = post_json(f"{api_base(env['GOALPOST_URL'])}/goals/{goal}/changes", env["GOALPOST_TOKEN"], payload,
                       float(env.get("GOALPOST_HOOK_TIMEOUT", "") or CHANGES_TIMEOUT_S))
    if answer.get("verdict") == "deny" or answer.get("stop") is True:
        reason = str(answer.get("reason") or "Goalpost refused what this tool call changed.")
        return stopped(reason)
    return {}


def stopped(reason: str) -> dict:
    """Claude Code's PostToolUse output that stops the agent and tells the model why."""
    return {"continue": False, "stopReason": f"Goalpost: {reason}", "decision": "block", "reason": reason}


def run(stdin: bytes, env: dict[str, str]) -> tuple[int, str, str]:
    """The hook's (exit code, stdout, stderr) for one input; pure enough to test without a process."""
    try:
        hook_input = json.loads(stdin or b"{}")
    except ValueError:
        hook_input = None
    event = hook_input.get("hook_event_name") if isinstance(hook_input, dict) else None
    failure_code = BLOCK if event in (None, "PreToolUse", "PermissionRequest") else NON_BLOCKING
    if not isinstance(hook_input, dict):
        return BLOCK, "", "goalpost-hook: the hook input on stdin is not a JSON object; blocked to be safe.\n"
    base, token = env.get("GOALPOST_URL", ""), env.get("GOALPOST_TOKEN", "")
    if not base or not token:
        missing = " and ".join(name for name, value in (("GOALPOST_URL", base), ("GOALPOST_TOKEN", token)) if not value)
        return failure_code, "", f"goalpost-hook: set {missing}; blocked to be safe.\n"
    if event in AFTER_THE_CALL:
        try:
            answer = report_change(hook_input, env)
        except (HookFailure, ValueError) as failure:
            reason = f"goalpost-hook could not check what this tool call changed: {failure}. Stopped to be safe."
            return 0, json.dumps(stopped(reason)) + "\n", f"goalpost-hook: {failure}\n"
        return 0, json.dumps(answer) + "\n", ""
    if event in ("PreToolUse", "SessionStart"):
        remember_baseline(hook_input, env)
    wait = env.get("GOALPOST_WAIT", "").strip() or None
    try:
        timeout = float(env.get("GOALPOST_HOOK_TIMEOUT", "") or (float(wait or DEFAULT_WAIT_S) + MARGIN_S))
        answer = ask_goalpost(hook_url(base, wait), token, stdin, timeout)
    except ValueError:
        return failure_code, "", "goalpost-hook: GOALPOST_WAIT and GOALPOST_HOOK_TIMEOUT must be numbers.\n"
    except HookFailure as failure:
        what = "blocked: no step runs without Goalpost's answer" if failure_code == BLOCK else "not recorded"
        return failure_code, "", f"goalpost-hook: {failure} ({what}).\n"
    return 0, json.dumps(answer) + "\n", ""


def main() -> int:
    code, out, err = run(sys.stdin.buffer.read(MAX_INPUT_BYTES), dict(os.environ))
    if out:
        sys.stdout.write(out)
    if err:
        sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
