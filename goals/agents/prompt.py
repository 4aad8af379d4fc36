"""The prompt every agent gets for a step, and the report lines read back from its final message.

Pure: the same context always gives the same prompt. The prompt carries the contract, the step's situation
and the reporting rules, and nothing else (no settings, no environment, so no secrets).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

from goals.agents.base import AgentContext, one_line
from goals.lint import BUDGET_LABELS, BUDGET_NAMES

# Bounds that keep the prompt compact (a command line holds at most 128 KiB in one argument).
TEXT_LIMIT = 4_000
ITEM_LIMIT = 500
MAX_ITEMS = 20
MAX_HISTORY = 10
MAX_COMMENTS = 5
MAX_BUGS = 10

SUMMARY_LIMIT = 2_000

REPORTING_RULES = """\
How to work and report:
- Edit files in your current directory only, and make the smallest change that moves the objective \
forward. Do not commit: Goalpost commits after the step and then runs the evidence.
- Never edit the protected paths; stay inside the working area.
- When the objective is met and the evidence passes, end your final message with a line that says \
only: DONE
- If you notice a second, unrelated bug, do not fix it: report it on its own line starting with \
"FOLLOW-UP:" and one line describing it.
- When you are asked for a plan, write a line "PLAN:" followed by the numbered steps, before any edit.
- Finish with a short summary of what you changed."""


def _clip(text: object, limit: int = ITEM_LIMIT) -> str:
    text = str(text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _numbered(items: list[str], limit: int = MAX_ITEMS, start: int = 1) -> list[str]:
    # Numbers, not dashes: an item echoed back ("1. DONE") must never read as the agent's own report line.
    lines = [f"{number}. {item}" for number, item in enumerate(items[:limit], start=start)]
    if len(items) > limit:
        lines.append(f"(and {len(items) - limit} more)")
    return lines


def _amount(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _remaining(remaining: dict) -> str:
    names = [name for name in BUDGET_NAMES if name in remaining]
    names += sorted((str(name) for name in remaining if name not in BUDGET_NAMES), key=str)
    parts = [
        f"{_amount(remaining[name])} {BUDGET_LABELS.get(name, name.replace('_', ' '))}" for name in names
    ]
    return ", ".join(parts)


def _lines_phrase(lines: object) -> str:
    if isinstance(lines, list | tuple) and len(lines) == 2 and all(isinstance(n, int) for n in lines):
        return f"lines {lines[0]}–{lines[1]}"
    if isinstance(lines, list | tuple):
        return "lines " + ", ".join(map(str, lines[:10]))
    return f"lines {lines}" if lines not in (None, "") else ""


def _finding(finding: dict) -> str:
    head = f"[{finding.get('severity') or 'info'}] {finding.get('gate') or 'gate'}: "
    where = [str(finding["path"])] if finding.get("path") else []
    lines = _lines_phrase(finding.get("lines"))
    if lines:
        where.append(lines)
    tail = f" ({', '.join(where)})" if where else ""
    return one_line(head + str(finding.get("reason") or ""), ITEM_LIMIT) + tail


def _evidence(check) -> str:
    if check.runnable:
        return f"`{one_line(check.command, ITEM_LIMIT)}` must exit {check.expect_exit}"
    return f"checked by a person: {one_line(check.description or check.command, ITEM_LIMIT)}"


def build_prompt(ctx: AgentContext) -> str:
    """The step's prompt: the goal's contract, where the goal stands, and the reporting rules."""
    contract = ctx.contract
    out = [
        f"You are working on one step of a goal in a git repository (your current directory). "
        f"This is step {ctx.step_number}.",
        "",
        f"Goal: {one_line(ctx.goal_title, ITEM_LIMIT)}",
        f"Objective: {one_line(contract.objective, TEXT_LIMIT)}",
    ]
    constraints = [one_line(c, ITEM_LIMIT) for c in contract.constraints if str(c).strip()]
    if constraints:
        out += ["", "Constraints (never break these):", *_numbered(constraints)]
    evidence = [_evidence(check) for check in contract.evidence]
    if evidence:
        out += ["", "Evidence that proves the objective (run the commands if you can):", *_numbered(evidence)]
    if contract.done_criteria.strip():
        out += ["", f"Done when: {one_line(contract.done_criteria, TEXT_LIMIT)}"]
    if contract.protected_paths:
        protected = ", ".join(one_line(glob, ITEM_LIMIT) for glob in contract.protected_paths[:MAX_ITEMS])
        out += ["", f"Protected paths, never edit: {protected}"]
    area = ", ".join(one_line(glob, ITEM_LIMIT) for glob in contract.scope_paths[:MAX_ITEMS])
    area = area or "the whole repository"
    out += ["", f"Working area: {area}"]
    if ctx.remaining:
        out += [f"Budget left: {_remaining(ctx.remaining)}"]
    if ctx.history:
        earlier = [one_line(line, ITEM_LIMIT) for line in ctx.history[-MAX_HISTORY:]]
        skipped = len(ctx.history) - len(earlier)
        heading = "Earlier steps, oldest first" + (f" ({skipped} older ones left out)" if skipped else "")
        out += ["", heading + ":", *_numbered(earlier, start=skipped + 1)]
    if ctx.last_findings:
        findings = [_finding(f) for f in ctx.last_findings if isinstance(f, dict)]
        out += ["", "The review of the previous step found:", *_numbered(findings)]
    comments = [one_line(c, TEXT_LIMIT // 4) for c in ctx.human_comments if str(c).strip()][-MAX_COMMENTS:]
    if comments:
        out += ["", "The human's latest comments (follow them):", *_numbered(comments)]
    out += ["", REPORTING_RULES]
    return "\n".join(out).replace("\0", "") + "\n"  # a NUL cannot travel in a command-line argument


# --- reading the report back -----------------------------------------------------------------------------

_DECORATION = "*_`#>-•  \t"
_DONE = re.compile(r"^(?:DONE|status\s*:\s*done)[.!]?$", re.IGNORECASE)
_FOLLOW_UP = re.compile(r"^follow[- ]?up\s*:\s*(.*)$", re.IGNORECASE)
_PLAN = re.compile(r"^plan\s*:\s*(.*)$", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"^<[^>]*>$")


def _bare(line: str) -> str:
    """A line without its list marker and markdown emphasis: "- **FOLLOW-UP:** x" -> "FOLLOW-UP: x"."""
    bare = line.strip().lstrip(_DECORATION).replace("**", "").replace("__", "")
    return bare.strip().rstrip("*_` ")


def _prose_lines(text: str) -> list[str]:
    """The lines of a message outside ``` fences (a diff's context line may well read "DONE")."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _is_done(bare: str) -> bool:
    # "Done." alone is how models say "I edited it"; only the uppercase word or a status line count.
    return bool(_DONE.match(bare)) and (bare.lower().startswith("status") or bare.startswith("DONE"))


def parse_report(text: str) -> tuple[bool, tuple[str, ...], str]:
    """Read an agent's final message: (done, reported bugs, plan). DONE is a line saying only "DONE" or
    "STATUS: done"; each "FOLLOW-UP: …" line is a bug; a "PLAN:" line starts a plan that runs to the next
    blank line (or report line)."""
    done = False
    bugs: list[str] = []
    plans: list[list[str]] = []
    plan: list[str] | None = None
    for line in _prose_lines(text or ""):
        bare = _bare(line)
        follow_up = _FOLLOW_UP.match(bare)
        plan_start = _PLAN.match(bare)
        if _is_done(bare) or follow_up or plan_start:
            plan = None
        if _is_done(bare):
            done = True
        elif follow_up:
            bug = one_line(follow_up.group(1).strip(), 300)
            if bug and not _PLACEHOLDER.match(bug) and bug not in bugs and len(bugs) < MAX_BUGS:
                bugs.append(bug)
        elif plan_start:
            plan = [plan_start.group(1).strip()] if plan_start.group(1).strip() else []
            plans.append(plan)
        elif plan is not None:
            if line.strip():
                plan.append(line.rstrip())
            elif plan:
                plan = None
    last_plan = "\n".join(plans[-1]).strip() if plans else ""
    return done, tuple(bugs), _clip(last_plan, TEXT_LIMIT) if last_plan else ""


def strip_report(text: str) -> str:
    """The message without its report lines (DONE, FOLLOW-UP, the PLAN block), cut to a summary's size."""
    kept: list[str] = []
    in_plan = False
    for line in (text or "").splitlines():
        bare = _bare(line)
        if _PLAN.match(bare):
            in_plan = True
            continue
        if in_plan:
            if line.strip():
                continue
            in_plan = False
        if _is_done(bare) or _FOLLOW_UP.match(bare):
            continue
        kept.append(line.rstrip())
    text = re.sub(r"\n\s*\n(?:\s*\n)+", "\n\n", "\n".join(kept))
    return _clip(text.strip(), SUMMARY_LIMIT)


def last_paragraph(text: str) -> str:
    """The last non-empty paragraph of a text (blank lines separate paragraphs)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    return paragraphs[-1] if paragraphs else ""


# --- the files a step is likely about --------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"[\w.@+-]*(?:/[\w.@+-]+)+/?|[\w@+-][\w.@+-]*\.[A-Za-z0-9]{1,8}")


def _named_paths(text: str) -> list[str]:
    names = []
    for match in _PATH_TOKEN.finditer(text or ""):
        name = match.group(0).removeprefix("./")
        names.append(name.rstrip(".,;:)/"))
    return names


def relevant_files(ctx: AgentContext, tracked: list[str], limit: int = 12) -> list[str]:
    """Files the step is likely about: those named in the objective, done criteria and evidence, then the
    tracked files inside the working area; only existing regular files inside the worktree."""
    worktree = Path(ctx.worktree).resolve()
    contract = ctx.contract
    texts = [contract.objective, contract.done_criteria]
    texts += [f"{check.command} {check.description}" for check in contract.evidence]
    named = [name for text in texts for name in _named_paths(text)]
    in_area = [
        name
        for name in tracked
        if contract.scope_paths and any(fnmatchcase(name, glob) for glob in contract.scope_paths)
    ]
    chosen: list[str] = []
    for name in [*named, *sorted(in_area)]:
        if len(chosen) >= limit or name in chosen or not name or name.startswith(("/", "-")):
            continue
        path = worktree / name
        parts = Path(name).parts
        if ".." in parts or ".git" in parts or path.is_symlink() or not path.is_file():
            continue
        if not path.resolve().is_relative_to(worktree):
            continue
        chosen.append(name)
    return chosen
