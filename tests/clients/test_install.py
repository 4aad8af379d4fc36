"""goalpost-client on its own: its wheel, installed into a fresh virtualenv that holds nothing else, runs
goalpost-hook against a live Goalpost; and its modules import nothing outside the standard library."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import pre_tool_use
from tests.support.processes import ROOT

CLIENTS = ROOT / "clients"
MODULES = sorted((CLIENTS / "goalpost_client").glob("*.py"))


def imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_it_imports_only_the_standard_library(path):
    outside = imported_top_level_names(path) - set(sys.stdlib_module_names) - {"goalpost_client"}
    assert not outside, f"{path.name} imports {sorted(outside)}: goalpost-client has no dependencies"


def run(*argv, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, argv))}\n{result.stdout}\n{result.stderr}"
    return result


def fresh_venv_with_the_client(where: Path) -> Path:
    """A virtualenv without pip or anything else, holding goalpost-client as `pip install ./clients` builds it."""
    # Build from a copy: setuptools builds in the source tree, and a stale build/ there would end up in the wheel.
    source = shutil.copytree(
        CLIENTS, where / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    pip = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]
    run(*pip, "wheel", "--no-deps", "--wheel-dir", where / "dist", source)
    venv = where / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(
        *pip, "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index", *(where / "dist").glob("*.whl")
    )
    return venv / "bin"


@pytest.mark.django_db(transaction=True)
def test_the_client_installs_alone_and_its_hook_asks_goalpost(live_url, running, agent_token, git_repo, tmp_path):
    bin_dir = fresh_venv_with_the_client(tmp_path)
    # Away from the server's tree and its virtualenv: only what the wheel installed can be imported.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith(("GOALPOST_", "VIRTUAL_ENV"))}
    where = run(
        bin_dir / "python",
        "-c",
        "import importlib.util, goalpost_client; print(goalpost_client.__file__, importlib.util.find_spec('django'))",
        cwd=tmp_path,
        env=env,
    ).stdout.split()
    assert where[0].startswith(str(tmp_path / "venv")) and where[1] == "None"

    secret = agent_token[1]
    hook_env = {**env, "GOALPOST_URL": live_url, "GOALPOST_TOKEN": secret}
    for hook in ([bin_dir / "goalpost-hook"], [bin_dir / "python", "-m", "goalpost_client.hook"]):
        answer = run(
            *hook, input=json.dumps(pre_tool_use(git_repo, "Bash", {"command": "ls"})), cwd=tmp_path, env=hook_env
        )
        assert json.loads(answer.stdout)["hookSpecificOutput"]["permissionDecision"] == "allow"
    for bridge in ([bin_dir / "goalpost-codex-bridge"], [bin_dir / "python", "-m", "goalpost_client.codex_bridge"]):
        usage = run(*bridge, "--help", cwd=tmp_path, env=env).stdout
        assert usage.startswith("usage: goalpost-codex-bridge") and "--goal" in usage
