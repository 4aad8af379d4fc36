"""Diffs for the gate tests: staged on a real git repository, or written from each file's text before and after."""

import difflib
import os
import shutil
import subprocess
from pathlib import Path

from goals.diffs import ParsedDiff, parse_diff
from goals.gates import APPROVAL, Step, run_gates
from goals.lint import Contract

# A git that ignores the machine's own configuration (diff.noprefix, autocrlf, ...).
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Goalpost Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Goalpost Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str, env: dict | None = None, input: str | None = None) -> bytes:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        env=env or GIT_ENV,
        input=input.encode() if input is not None else None,
        check=True,
        capture_output=True,
    ).stdout


def write_files(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def staged_diff(repo: Path, edits: dict[str, str | None], scratch: Path) -> ParsedDiff:
    """Stage ``edits`` (None deletes a file; deleting one file and adding its text under another name is a
    rename) on top of the repository's last commit and parse `git diff --cached -M`.

    The edits go into a scratch copy of the index, so one committed repository serves every case.
    """
    index = scratch / "index"
    shutil.copyfile(repo / ".git" / "index", index)
    env = {**GIT_ENV, "GIT_INDEX_FILE": str(index)}
    written = {path: text for path, text in edits.items() if text is not None}
    write_files(scratch / "blobs", written)
    blob_paths = "\n".join(str(scratch / "blobs" / path) for path in written)
    blobs = git(repo, "hash-object", "-w", "--stdin-paths", env=env, input=blob_paths).decode().split()
    entries = [f"100644 {blob}\t{path}" for path, blob in zip(written, blobs, strict=True)]
    entries += [f"0 {'0' * 40}\t{path}" for path, text in edits.items() if text is None]
    if entries:
        git(repo, "update-index", "--index-info", env=env, input="\n".join(entries) + "\n")
    return parse_diff(git(repo, "diff", "--cached", "-M", env=env))


def diff_of(files: dict[str, tuple[str, str]]) -> str:
    """A git-style diff of each file from its text before to its text after (empty before: a new file)."""
    parts = []
    for path, (before, after) in files.items():
        parts.append(f"diff --git a/{path} b/{path}\n")
        if not before:
            parts.append("new file mode 100644\n")
        parts.append(f"--- {'a/' + path if before else '/dev/null'}\n+++ b/{path}\n")
        lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=3)
        parts.extend(line for line in list(lines)[2:])
    return "".join(parts)


def gates(files: dict[str, tuple[str, str]]) -> set[str]:
    findings = run_gates(Contract(objective="x"), Step(diff=parse_diff(diff_of(files))))
    return {finding.gate for finding in findings if finding.severity == APPROVAL}
