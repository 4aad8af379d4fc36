"""protected_path on copies of other projects that no folder name marks: a folder with a CI set-up of its own (a Go
`internal/<pkg>` copy of another module) and files whose first lines say where they were copied from."""

from __future__ import annotations

from pathlib import Path

import pytest

from goals.diffs import looks_copied, nested_project_roots, project_root_probes
from goals.gates import STOP, Step, run_gates
from goals.lint import Contract
from goals.repopaths import PathSetting, RepoPaths
from tests.support.diffs import git, staged_diff, write_files

PRETTY_GO = 'package pretty\n\nfunc Show(v any) string {\n\treturn ""\n}\n'
TRAVIS = "language: go\ngo:\n  - 1.10.x\n"
COPIED_HEAD = "// Copied from https://example.org/upstream/pretty at v1.2.0.\n\npackage pretty\n"
APACHE_HEAD = (
    '// Licensed under the Apache License, Version 2.0 (the "License");\n'
    "// you may not obtain a copy of the License at\n"
    "//     http://www.apache.org/licenses/LICENSE-2.0\n\npackage shop\n"
)
BASE = {
    "go.mod": "module example.com/shop\n",
    ".travis.yml": TRAVIS,
    "shop/cart.go": "package shop\n\nfunc Total() int { return 1 }\n",
    "internal/pretty/.travis.yml": TRAVIS,
    "internal/pretty/pretty/show.go": PRETTY_GO,
    "internal/plain/plain.go": 'package plain\n\nconst Name = "plain"\n',
    "testdata/sample/.travis.yml": TRAVIS,
    "testdata/sample/main.go": "package main\n",
    "modules/own/.travis.yml": TRAVIS,
    "modules/own/own.go": "package own\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("copies")
    git(root, "init", "-q", "-b", "main")
    write_files(root, BASE)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def vendored(findings) -> list[str]:
    return [
        finding.path
        for finding in findings
        if finding.gate == "protected_path" and finding.severity == STOP and finding.data.get("why") == "vendored"
    ]


def judge(repo: Path, scratch: Path, edits: dict, *, read_worktree: bool = False, paths: RepoPaths | None = None):
    diff = staged_diff(repo, edits, scratch)

    def file_head(path: str) -> str:
        target = repo / path
        return target.read_text()[:500] if target.is_file() else ""

    return run_gates(Contract(), Step(diff=diff), file_head=file_head if read_worktree else None, paths=paths)


def test_a_step_that_strips_a_nested_projects_ci_set_up_changes_a_vendored_copy(repo, tmp_path):
    findings = judge(
        repo,
        tmp_path,
        {"internal/pretty/.travis.yml": None, "internal/pretty/pretty/show.go": PRETTY_GO + "// tweak\n"},
    )

    assert sorted(vendored(findings)) == ["internal/pretty/.travis.yml", "internal/pretty/pretty/show.go"]
    assert all("update the vendored copy from upstream" in f.reason for f in findings if f.path.startswith("internal"))


@pytest.mark.parametrize(
    ("read_worktree", "expected"),
    [
        pytest.param(False, [], id="the diff alone does not show the CI file beside it"),
        pytest.param(True, ["internal/pretty/pretty/show.go"], id="the repository holds internal/pretty/.travis.yml"),
    ],
)
def test_an_edit_deep_inside_a_nested_project_is_found_by_probing_its_folders(repo, tmp_path, read_worktree, expected):
    edits = {"internal/pretty/pretty/show.go": PRETTY_GO + "// tweak\n"}
    findings = judge(repo, tmp_path, edits, read_worktree=read_worktree)

    assert vendored(findings) == expected


@pytest.mark.parametrize(
    "edits",
    [
        pytest.param({"shop/cart.go": "package shop\n\nfunc Total() int { return 2 }\n"}, id="own code"),
        pytest.param({".travis.yml": TRAVIS + "  - tip\n"}, id="the repository's own CI file at the top"),
        pytest.param({"internal/plain/plain.go": 'package plain\n\nconst Name = "flat"\n'}, id="internal, no CI"),
        pytest.param(
            {"testdata/sample/.travis.yml": None, "testdata/sample/main.go": "package main\n\n"}, id="testdata"
        ),
        pytest.param({"shop/licensed.go": APACHE_HEAD}, id="a licence header asking to obtain a copy"),
    ],
)
def test_own_code_and_sample_projects_are_not_vendored(repo, tmp_path, edits):
    assert vendored(judge(repo, tmp_path, edits, read_worktree=True)) == []


def test_a_folder_the_repository_declares_as_its_own_workspace_is_not_vendored(repo, tmp_path):
    edits = {"modules/own/.travis.yml": None, "modules/own/own.go": "package own\n\n"}
    own = RepoPaths(workspaces=PathSetting(("/modules/*",), ("package.json",)))

    assert vendored(judge(repo, tmp_path, edits, read_worktree=True)) == [
        "modules/own/.travis.yml",
        "modules/own/own.go",
    ]
    assert vendored(judge(repo, tmp_path, edits, read_worktree=True, paths=own)) == []


def test_a_file_that_says_where_it_was_copied_from_is_vendored(repo, tmp_path):
    findings = judge(repo, tmp_path, {"shop/pretty.go": COPIED_HEAD})

    assert vendored(findings) == ["shop/pretty.go"]


def test_the_copied_marker_is_read_from_the_worktree_when_the_diff_does_not_show_the_top(repo, tmp_path):
    lines = COPIED_HEAD + "".join(f"// line {n}\n" for n in range(30))
    for scratch in ("one", "two", "three"):
        (tmp_path / scratch).mkdir()
    edited = lines + "func More() {}\n"
    diff_only = judge(repo, tmp_path / "one", {"shop/pretty.go": lines})
    assert vendored(diff_only) == ["shop/pretty.go"]

    committed = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(repo), str(committed))
    write_files(committed, {"shop/pretty.go": lines})
    git(committed, "add", "-A")
    git(committed, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "copy")
    write_files(committed, {"shop/pretty.go": edited})
    assert vendored(judge(committed, tmp_path / "two", {"shop/pretty.go": edited})) == []
    assert vendored(judge(committed, tmp_path / "three", {"shop/pretty.go": edited}, read_worktree=True)) == [
        "shop/pretty.go"
    ]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("// Copied from https://github.com/someone/lib/blob/main/x.go\n", True),
        ("# Forked from github.com/someone/lib (MIT)\n", True),
        ("/* vendored from https://example.org/lib.tar.gz */\n", True),
        ("# copied from the old helper above\n", False),
        ("// You may obtain a copy of the License at http://www.apache.org/licenses/\n", False),
        ("\n" * 12 + "// Copied from https://github.com/someone/lib\n", False),
    ],
)
def test_looks_copied(head, expected):
    assert looks_copied(head) is expected


@pytest.mark.parametrize(
    ("paths", "roots"),
    [
        (["internal/spewish/.travis.yml", "internal/spewish/a.go"], {"internal/spewish"}),
        (["lib/x/.github/workflows/ci.yml"], {"lib/x"}),
        (["third/.circleci/config.yml"], {"third"}),
        ([".travis.yml", ".github/workflows/ci.yml", "appveyor.yml"], set()),
        (["tests/fixtures/proj/.travis.yml", "examples/demo/.gitlab-ci.yml", "src/Templates/x/.travis.yml"], set()),
        (["src/app.go", "src/README.md"], set()),
    ],
)
def test_nested_project_roots(paths, roots):
    assert nested_project_roots(paths) == roots


def test_project_root_probes_are_bounded_and_skip_the_top():
    probes = project_root_probes([f"d{n}/e/f.go" for n in range(100)], folders=10)

    assert len({probe.rsplit("/", 1)[0] for probe in probes}) == 10
    assert not any("/" not in probe for probe in probes)
    assert project_root_probes(["top.go"]) == []
