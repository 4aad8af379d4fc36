"""`goalpost-hook`: Claude Code's command hook for Goalpost. Standard library only, no Django (goalpost-client,
`pip install ./clients`; also `python -m goalpost_client.hook`).

Reads the hook input (JSON) on stdin, posts it to Goalpost (`$GOALPOST_URL/api/v1/hooks/claude`, with
`Authorization: Bearer $GOALPOST_TOKEN`) and prints Goalpost's answer on stdout, exit code 0.

It fails closed. Claude Code treats exit code 2 from a PreToolUse hook as a block and shows the hook's stderr,
so when Goalpost cannot be reached, answers an error or something unreadable, a PreToolUse call is blocked with
exit code 2 and a message that says why (a token Goalpost refuses comes back as a deny, passed on as it is). For
the other events (Notification, Stop…), a failure is exit code 1: a non-blocking error that Claude Code shows,
since blocking a Stop would keep the agent running.

Environment: GOALPOST_URL (e.g. http://127.0.0.1:8000), GOALPOST_TOKEN (the goal's agent token), optionally
GOALPOST_WAIT (seconds the server waits for the phone, default the server's 55) and GOALPOST_HOOK_TIMEOUT
(seconds this script waits for the server, default the wait plus 20). Set the hook's own `timeout` in
settings.json above both.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

BLOCK = 2  # Claude Code: a blocking error; stderr goes to Claude
NON_BLOCKING = 1
DEFAULT_WAIT_S = 55.0
MARGIN_S = 20.0
MAX_INPUT_BYTES = 4 * 1024 * 1024


class HookFailure(Exception):
    """Why the hook cannot get an answer from Goalpost."""


def hook_url(base: str, wait: str | None) -> str:
    base = base.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise HookFailure(f"GOALPOST_URL must start with http:// or https:// (it is {base!r}).")
    url = f"{base}/api/v1/hooks/claude"
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
