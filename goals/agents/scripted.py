"""The scripted agent: replays a prepared script, one entry per run, for demos and for tests of the loop.

Settings: ``{"steps": [entry, …]}`` or ``{"folder": "/path"}``, where the folder's files, sorted by name,
are entries: ``*.patch``/``*.diff`` hold a patch, ``*.json`` an entry. An entry is a JSON object:

    summary: str, patch: unified diff | patch_file: path, write: {path: content}, delete: [path],
    tokens: int, done: bool, bugs: [str], plan: str, fail: message, sleep: seconds,
    on_reject: entry (played next, instead of moving on, when a person rejects this entry's step)

Past the end of its script the agent has nothing left to do: it changes nothing and says it is done, so the
goal asks for its done review instead of failing.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from goals.agents.base import (
    Agent,
    AgentContext,
    AgentError,
    AgentResult,
    apply_patch,
    check_confinement,
    confined_path,
    worktree_of,
)

PATCH_SUFFIXES = (".patch", ".diff")

_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "summary": (str,),
    "patch": (str,),
    "patch_file": (str,),
    "write": (dict,),
    "delete": (list,),
    "tokens": (int,),
    "done": (bool,),
    "bugs": (list,),
    "plan": (str,),
    "fail": (str,),
    "sleep": (int, float),
    "on_reject": (dict,),
}


def _check_entry(entry: object, where: str, folder: Path | None) -> dict:
    """The entry, checked; relative patch files resolve against the script's folder."""
    if not isinstance(entry, dict):
        raise AgentError(f"Script {where} must be a JSON object.", permanent=True)
    for key, value in entry.items():
        types = _ENTRY_TYPES.get(key)
        if types is None:
            raise AgentError(
                f"Script {where}: unknown key {key!r} (allowed: {', '.join(_ENTRY_TYPES)}).", permanent=True
            )
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise AgentError(f"Script {where}: {key} has the wrong type.", permanent=True)
    if "patch" in entry and "patch_file" in entry:
        raise AgentError(f"Script {where}: give either patch or patch_file, not both.", permanent=True)
    if any(not isinstance(k, str) or not isinstance(v, str) for k, v in entry.get("write", {}).items()):
        raise AgentError(f"Script {where}: write maps file paths to text.", permanent=True)
    for key in ("delete", "bugs"):
        if not all(isinstance(item, str) for item in entry.get(key, [])):
            raise AgentError(f"Script {where}: {key} is a list of strings.", permanent=True)
    if entry.get("tokens", 0) < 0 or entry.get("sleep", 0) < 0:
        raise AgentError(f"Script {where}: tokens and sleep cannot be negative.", permanent=True)
    if "on_reject" in entry:
        reply = _check_entry(entry["on_reject"], f"{where}, its reply to a rejection", folder)
        if "on_reject" in reply:
            raise AgentError(f"Script {where}: a reply to a rejection has no reply of its own.", permanent=True)
        entry = {**entry, "on_reject": reply}
    if "patch_file" in entry:
        path = Path(entry["patch_file"]).expanduser()
        if not path.is_absolute():
            if folder is None:
                raise AgentError(f"Script {where}: patch_file must be an absolute path.", permanent=True)
            path = folder / path
        entry = {**entry, "patch_file": str(path)}
    return entry


def _load_folder(folder: Path) -> list[dict]:
    if not folder.is_dir():
        raise AgentError(f"The script folder {folder} does not exist.", permanent=True)
    entries = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.is_file():
            continue
        if path.suffix in PATCH_SUFFIXES:
            entries.append({"patch_file": str(path), "summary": f"Applied {path.name}"})
        elif path.suffix == ".json":
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as error:
                raise AgentError(
                    f"Script file {path.name} is not valid JSON: {error}", permanent=True
                ) from error
            entries.append(_check_entry(entry, f"file {path.name}", folder))
    return entries


class ScriptedAgent(Agent):
    """Replays entry ``run_index`` of its script: apply the patch, write and delete files, report."""

    name = "scripted"
    allowed_settings = frozenset({"steps", "folder"})

    def __init__(self, settings: dict):
        super().__init__(settings)
        steps, folder = self.settings.get("steps"), self.settings.get("folder")
        if (steps is None) == (folder is None):
            raise AgentError('Scripted agent: give either "steps" or "folder".', permanent=True)
        if folder is not None:
            if not isinstance(folder, str) or not folder.strip():
                raise AgentError("Scripted agent: folder must be a path.", permanent=True)
            self.entries = _load_folder(Path(folder).expanduser())
        else:
            if not isinstance(steps, list):
                raise AgentError("Scripted agent: steps must be a list of entries.", permanent=True)
            self.entries = [_check_entry(entry, f"step {i + 1}", None) for i, entry in enumerate(steps)]

    def entry_for(self, ctx: AgentContext) -> dict | None:
        """The entry this run plays: one per run, except that a rejected entry's ``on_reject`` reply is played
        before moving on. None past the end of the script."""
        # Runs with no recorded outcome (an adapter driven alone) count as steps that were kept.
        outcomes = ctx.outcomes + ("passed",) * (ctx.run_index - len(ctx.outcomes))
        index, replying = 0, False
        for outcome in outcomes:
            rejected = outcome == "rejected" and index < len(self.entries)
            if rejected and not replying and "on_reject" in self.entries[index]:
                replying = True
            else:
                index, replying = index + 1, False
        if index >= len(self.entries):
            return None
        return self.entries[index]["on_reject"] if replying else self.entries[index]

    def run_step(self, ctx: AgentContext) -> AgentResult:
        """Replay this run's entry (see ``entry_for``); past the end of the script, ask for the done review."""
        entry = self.entry_for(ctx)
        if entry is None:
            return AgentResult(
                summary="The script has nothing left to do: the work is ready for its done review",
                done=True,
                log=f"run {ctx.run_index + 1}: past the end of the script ({len(self.entries)} entries)",
            )
        worktree = worktree_of(ctx)
        log: list[str] = []
        if entry.get("sleep"):
            # Waits for the scripted time, or until the step's timeout, whichever comes first.
            threading.Event().wait(min(entry["sleep"], ctx.timeout_s))
            if entry["sleep"] > ctx.timeout_s:
                raise AgentError(f"Scripted step timed out after {ctx.timeout_s:g} s.")
        if "fail" in entry:
            raise AgentError(entry["fail"] or "Scripted failure.")
        patch = entry.get("patch")
        if "patch_file" in entry:
            try:
                patch = Path(entry["patch_file"]).read_bytes()
            except OSError as error:
                message = f"Cannot read the patch file {entry['patch_file']}: {error.strerror}"
                raise AgentError(message, permanent=True) from error
        if patch is not None:
            touched = apply_patch(worktree, patch, ctx.git)
            log.append(f"applied a patch to {', '.join(touched)}")
        try:
            for relative, content in entry.get("write", {}).items():
                target = confined_path(worktree, relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
                log.append(f"wrote {relative}")
            for relative in entry.get("delete", []):
                target = confined_path(worktree, relative)
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()
                log.append(f"deleted {relative}")
        except OSError as error:
            raise AgentError(f"Scripted edit failed: {error.strerror or error} ({error.filename})") from error
        check_confinement(worktree, ctx.git)
        return AgentResult(
            summary=entry.get("summary") or f"Scripted step {ctx.run_index + 1}",
            tokens=entry.get("tokens", 0),
            done=entry.get("done", False),
            reported_bugs=tuple(entry.get("bugs", ())),
            plan=entry.get("plan", ""),
            log="\n".join(log),
        )
