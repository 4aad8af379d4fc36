"""The tests' own layout: no test module imports another test module or a conftest.py.

What tests share lives in tests/factories.py (builders of people, goals, requests and inputs) and tests/support/
(processes, fakes of the far edge, tables); fixtures live in conftest.py files, and pytest hands them over. So a
test module can be moved, renamed or run alone without breaking another.
"""

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SHARED = ("tests.factories", "tests.support")
ADVICE = (
    "Test modules never import each other or a conftest.py: move what they share to tests/factories.py (builders of "
    "rows and inputs) or tests/support/ (processes, fakes, tables), and fixtures to a conftest.py, which pytest "
    "hands to every test below it."
)


def module_name(path: Path) -> str:
    """The dotted name a file under the checkout is imported as (a package's __init__.py as the package)."""
    parts = path.resolve().relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every module `source` imports, at any depth (lazy imports too), relative imports
    resolved against `module`. From a package it gives what was taken from it (`from tests import factories`:
    tests.factories); from a module, the module (`from tests.factories import make_goal`: tests.factories)."""
    package = module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            if is_package(base):
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def is_package(name: str) -> bool:
    """A package of the tests (a folder with __init__.py), whose names may be modules."""
    parts = name.split(".")
    return parts[0] == "tests" and (ROOT.joinpath(*parts) / "__init__.py").exists()


def is_test_or_conftest(name: str) -> bool:
    """A test module or a conftest of the tests (tests.goals.test_loop, tests.conftest), or one imported bare."""
    parts = name.split(".")
    if parts[0] != "tests" and len(parts) > 1:
        return False
    return parts[-1] == "conftest" or parts[-1].startswith("test_")


def refusals(source: str, module: str) -> list[str]:
    """Why the imports of `module` break the layout: each names the line and what it imports."""
    problems = []
    is_test_module = module.rpartition(".")[2].startswith("test_")
    for line, name in imports_of(source, module):
        if is_test_or_conftest(name):
            problems.append(f"line {line} imports {name}, a test module or a conftest")
        elif is_test_module and name.split(".")[0] == "tests" and not name.startswith(SHARED):
            problems.append(f"line {line} imports {name}: a test module imports from tests/ only {' and '.join(SHARED)}")
    return problems


@pytest.mark.parametrize(
    ("source", "module", "refused"),
    [
        pytest.param("from tests.factories import make_goal", "tests.goals.test_x", [], id="factories are shared"),
        pytest.param("from tests.support.processes import wait_until", "tests.test_x", [], id="support is shared"),
        pytest.param("from tests import factories", "tests.goals.test_x", [], id="the factories module"),
        pytest.param("import goals.gates\nfrom goals.gates import test_paths", "tests.test_x", [], id="other packages"),
        pytest.param(
            "from tests.goals.test_loop import make_goal",
            "tests.faults.test_x",
            ["line 1 imports tests.goals.test_loop, a test module or a conftest"],
            id="a name from another test module",
        ),
        pytest.param(
            "def test_it():\n    from tests.goals import test_loop",
            "tests.goals.test_x",
            ["line 2 imports tests.goals.test_loop, a test module or a conftest"],
            id="a lazy import of a test module",
        ),
        pytest.param(
            "from .conftest import make_context",
            "tests.goals.agents.test_x",
            ["line 1 imports tests.goals.agents.conftest, a test module or a conftest"],
            id="a relative import of a conftest",
        ),
        pytest.param(
            "from ..faults.conftest import stack",
            "tests.deploy.conftest",
            ["line 1 imports tests.faults.conftest, a test module or a conftest"],
            id="a conftest importing another",
        ),
        pytest.param(
            "from tests.gateway.gateway_asgi import application",
            "tests.gateway.test_x",
            ["line 1 imports tests.gateway.gateway_asgi: a test module imports from tests/ only tests.factories "
             "and tests.support"],
            id="a helper module outside support",
        ),
    ],
)
def test_the_layout_rules(source, module, refused):
    assert refusals(source, module) == refused


def test_no_test_module_imports_another_or_a_conftest():
    problems = []
    for path in sorted(TESTS.rglob("*.py")):
        problems += [
            f"{path.relative_to(ROOT)}: {problem}" for problem in refusals(path.read_text(), module_name(path))
        ]
    assert not problems, "\n".join([*problems, ADVICE])
