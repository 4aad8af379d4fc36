import dataclasses

import pytest

from goals.agents.prompt import build_prompt, parse_report, relevant_files, strip_report
from goals.lint import EvidenceCheck
from tests.factories import GREETING_CONTRACT, make_agent_context

FINDING = {"gate": "protected_path", "severity": "approval", "reason": "touched generated/schema.json", "path": "generated/schema.json", "lines": [3, 7]}


@pytest.mark.parametrize(
    "changes, expected",
    [
        pytest.param({}, "Goal: Friendlier greeting", id="the-goal-title"),
        pytest.param({}, "Objective: Change the greeting printed by app.py from hello to hi", id="the-objective"),
        pytest.param({}, "1. Keep app.py printing exactly one line", id="the-constraints"),
        pytest.param({}, "1. `python app.py` must exit 0", id="the-evidence-commands"),
        pytest.param({}, "Done when: `python app.py` prints hi", id="the-done-criteria"),
        pytest.param({}, "Protected paths, never edit: generated/**", id="the-protected-paths"),
        pytest.param({}, "Working area: app.py, tests/**", id="the-working-area"),
        pytest.param({"step_number": 4}, "This is step 4.", id="the-step-number"),
        pytest.param(
            {"remaining": {"tokens": 120000, "steps": 7, "minutes": 40}},
            "Budget left: 40 wall-clock minutes, 7 steps, 120,000 tokens",
            id="the-remaining-budget-in-a-fixed-order",
        ),
        pytest.param({"history": ("Step 1: renamed the helper",)}, "1. Step 1: renamed the helper", id="earlier-steps"),
        pytest.param(
            {"last_findings": (FINDING,)},
            "1. [approval] protected_path: touched generated/schema.json (generated/schema.json, lines 3–7)",
            id="the-previous-findings",
        ),
        pytest.param(
            {"human_comments": ("Keep the exclamation mark out",)},
            "The human's latest comments (follow them):\n1. Keep the exclamation mark out",
            id="the-human-comments",
        ),
        pytest.param({}, 'starting with "FOLLOW-UP:"', id="how-to-report-a-bug"),
        pytest.param({}, "a line that says only: DONE", id="how-to-say-done"),
        pytest.param({}, 'write a line "PLAN:"', id="how-to-state-a-plan"),
        pytest.param({}, "Do not commit", id="never-commit"),
    ],
)
def test_the_prompt_tells_the_agent(worktree, changes, expected):
    assert expected in build_prompt(make_agent_context(worktree, **changes))


@pytest.mark.parametrize(
    "changes, absent",
    [
        pytest.param({}, "Earlier steps", id="no-history-no-history-section"),
        pytest.param({}, "review of the previous step", id="no-findings-no-findings-section"),
        pytest.param({}, "comments", id="no-comments-no-comments-section"),
        pytest.param({}, "Budget left", id="no-budget-no-budget-line"),
        pytest.param({"env": {"OPENAI_API_KEY": "sk-live-123"}}, "sk-live-123", id="never-the-environment"),
    ],
)
def test_the_prompt_leaves_out(worktree, changes, absent):
    assert absent not in build_prompt(make_agent_context(worktree, **changes))


def test_the_prompt_is_deterministic(worktree):
    first = make_agent_context(worktree, remaining={"steps": 3, "tokens": 10}, history=("a", "b"))
    second = make_agent_context(worktree, remaining={"tokens": 10, "steps": 3}, history=("a", "b"))
    assert build_prompt(first) == build_prompt(second)


def test_the_prompt_stays_compact(worktree):
    contract = dataclasses.replace(
        GREETING_CONTRACT,
        objective="Change the greeting " * 2000,
        constraints=tuple(f"constraint {i} " * 100 for i in range(100)),
        evidence=tuple(EvidenceCheck(kind="command", command=f"pytest tests/test_{i}.py") for i in range(100)),
    )
    ctx = make_agent_context(
        worktree,
        contract=contract,
        history=tuple(f"step {i}" for i in range(500)),
        last_findings=(FINDING,) * 200,
        human_comments=("please " * 5000,) * 50,
    )
    prompt = build_prompt(ctx)
    assert len(prompt) < 60_000
    assert "500. step 499" in prompt and "step 489" not in prompt
    assert "490 older ones left out" in prompt


def test_the_prompts_own_rules_never_read_as_a_report(worktree):
    ctx = make_agent_context(worktree, history=("DONE",), human_comments=("FOLLOW-UP: not a bug of the agent",))
    assert parse_report(build_prompt(ctx)) == (False, (), "")


@pytest.mark.parametrize(
    "text, done, bugs, plan",
    [
        pytest.param("Changed it.\nDONE", True, (), "", id="a-done-line"),
        pytest.param("Changed it.\n**DONE**", True, (), "", id="a-bold-done-line"),
        pytest.param("STATUS: done", True, (), "", id="a-status-line"),
        pytest.param("Status: Done.", True, (), "", id="a-status-line-any-case"),
        pytest.param("STATUS: not done", False, (), "", id="not-done-is-not-done"),
        pytest.param("Done.", False, (), "", id="a-chatty-done-is-not-the-goal-done"),
        pytest.param("I am DONE with the refactor", False, (), "", id="done-inside-a-sentence"),
        pytest.param(
            "FOLLOW-UP: the logger drops unicode\n- FOLLOW-UP: tests are slow\nFollow-up: the logger drops unicode",
            False,
            ("the logger drops unicode", "tests are slow"),
            "",
            id="follow-up-lines-deduplicated",
        ),
        pytest.param("FOLLOW-UP: <one line>", False, (), "", id="the-placeholder-is-no-bug"),
        pytest.param(
            "PLAN:\n1. Read app.py\n2. Change the greeting\n\nStarting now.",
            False,
            (),
            "1. Read app.py\n2. Change the greeting",
            id="a-plan-block-ends-at-a-blank-line",
        ),
        pytest.param("PLAN: change one line\nDONE", True, (), "change one line", id="a-one-line-plan"),
        pytest.param("```diff\n DONE\n+FOLLOW-UP: x\n```\nChanged.", False, (), "", id="nothing-inside-a-code-fence"),
        pytest.param("", False, (), "", id="an-empty-message"),
    ],
)
def test_it_reads_the_report(text, done, bugs, plan):
    assert parse_report(text) == (done, bugs, plan)


def test_the_summary_leaves_out_the_report_lines():
    text = "PLAN:\n1. a\n2. b\n\nChanged the greeting.\nFOLLOW-UP: slow tests\nDONE"
    assert strip_report(text) == "Changed the greeting."


def test_the_relevant_files_exist_inside_the_worktree(worktree, tmp_path):
    (worktree / "tests").mkdir()
    (worktree / "tests" / "test_app.py").write_text("def test_app(): pass\n")
    (worktree / "link.py").symlink_to(tmp_path / "secret.py")
    contract = dataclasses.replace(
        GREETING_CONTRACT,
        objective="Change app.py and missing.py, not ../outside.py nor link.py",
        evidence=(EvidenceCheck(kind="command", command="pytest tests/test_app.py::test_app"),),
    )
    ctx = make_agent_context(worktree, contract=contract)
    assert relevant_files(ctx, ["app.py", "tests/test_app.py"]) == ["app.py", "tests/test_app.py"]


def test_a_nul_never_reaches_the_prompt(worktree):
    ctx = make_agent_context(worktree, human_comments=("use hi\0 instead",))
    assert "\0" not in build_prompt(ctx)
