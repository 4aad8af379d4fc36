"""Properties the review depends on, checked on generated input (hypothesis), beyond "never crashes".

tests/goals/ already covers: any text or bytes parses or raises DiffError, diffs stay consistent, difflib counts;
the gates never raise, come out sorted and repeatable; the linter never raises, sorts blocking first and never
lowers the risk below the work type's. Here: the parser gives back exactly the files it was given, and the
rules only ever get stricter when the contract does.
"""

import difflib
import json
from dataclasses import replace

from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goals.diffs import DiffError, parse_diff
from goals.gates import SEVERITIES, Step, highest_severity, run_gates
from goals.lint import BLOCKING, RISK_ORDER, Contract, EvidenceCheck, is_ready, lint
from tests.support.strategies import contracts, evidence_results, git_like_diffs, histories, usages

PROPERTIES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

LINES = st.lists(st.sampled_from(["a", "b", "c", "", "  d", "-e", "+f", "é", "\t", "x = 1"]), max_size=12)
NAMES = st.sampled_from(["app.py", "docs/guide.md", "tests/test_app.py", "a b/c.py", "src/ü.ts", "x"])


@PROPERTIES
@given(st.lists(st.tuples(NAMES, LINES, LINES), min_size=1, max_size=3, unique_by=lambda file: file[0]))
def test_a_diff_gives_back_both_sides_of_every_file(files):
    """Parsing a unified diff and reading its hunks back yields the old and the new text, file by file."""
    text = "".join(
        "".join(
            difflib.unified_diff(
                [line + "\n" for line in old], [line + "\n" for line in new], f"a/{name}", f"b/{name}", n=10**6
            )
        )
        for name, old, new in files
    )
    changed = [(name, old, new) for name, old, new in files if old != new]

    parsed = parse_diff(text)

    assert [file.path for file in parsed.files] == [name for name, _, _ in changed]
    for file, (_, old, new) in zip(parsed.files, changed, strict=True):
        lines = [line for hunk in file.hunks for line in hunk.lines]
        # A whole side that is empty leaves difflib no context: a hunk shows only the other side.
        assert [line.text for line in lines if line.kind != "+"] == old
        assert [line.text for line in lines if line.kind != "-"] == new
        assert [line.new_lineno for line in lines if line.kind != "-"] == list(range(1, len(new) + 1))
        assert (file.added, file.removed) == (sum(line.kind == "+" for line in lines), sum(line.kind == "-" for line in lines))
    assert json.loads(json.dumps(parsed.compact())) == parsed.compact()


def severity_rank(severity: str) -> int:
    """Higher is more serious: info 0, approval 1, stop 2."""
    return len(SEVERITIES) - 1 - SEVERITIES.index(severity)


def parsed_or_none(text: str):
    try:
        return parse_diff(text)
    except DiffError:
        return None


@PROPERTIES
@given(git_like_diffs(), contracts, st.lists(evidence_results, max_size=2), histories, usages, st.data())
def test_protecting_another_path_never_lets_a_step_through_more_easily(text, contract, evidence, history, usage, data):
    diff = parsed_or_none(text)
    if diff is None or not diff.files:
        return
    step = Step(diff=diff, evidence=tuple(evidence))
    before = highest_severity(run_gates(contract, step, history, usage))
    touched = data.draw(st.sampled_from([file.path for file in diff.files]), label="protected")
    stricter = replace(contract, protected_paths=(*contract.protected_paths, touched))

    after = highest_severity(run_gates(stricter, step, history, usage))

    assert severity_rank(after) >= severity_rank(before)
    assert after != "info", "a step that edits a protected path must never pass on its own"


@PROPERTIES
@given(git_like_diffs(), contracts, st.lists(evidence_results, max_size=2), histories, usages)
def test_a_riskier_goal_never_gets_a_milder_gate(text, contract, evidence, history, usage):
    diff = parsed_or_none(text)
    if diff is None:
        return
    step = Step(diff=diff, evidence=tuple(evidence))
    ranks = [
        severity_rank(highest_severity(run_gates(replace(contract, risk=risk), step, history, usage)))
        for risk in RISK_ORDER
    ]
    assert ranks == sorted(ranks)


WORDS = st.sampled_from(
    ["Reduce", "p95", "below", "200 ms", "make", "tests", "pass", "`pytest tests/test_x.py`", "improve", "the", "API"]
)
lint_contracts = st.builds(
    Contract,
    objective=st.lists(WORDS, max_size=12).map(" ".join),
    constraints=st.lists(st.sampled_from(["Do not change the API", "", "keep it"]), max_size=2).map(tuple),
    evidence=st.lists(
        st.sampled_from(["pytest tests/test_x.py", "manual: the page looks right", "", "make"]).map(
            EvidenceCheck.from_text
        ),
        max_size=2,
    ).map(tuple),
    done_criteria=st.sampled_from(["", "p95 under 200 ms three runs in a row"]),
    work_type=st.sampled_from(["docs", "test_repair", "ui_refactor", "auth_billing", "migration", "other"]),
    rollback_note=st.sampled_from(["", "git revert the branch"]),
)


@settings(PROPERTIES, max_examples=80)
@given(lint_contracts)
def test_raising_the_risk_never_softens_a_finding(contract):
    """Every finding at a lower risk is still there at a higher one, at least as severe; ready only gets harder."""
    by_risk = [lint(replace(contract, risk=risk)) for risk in RISK_ORDER]
    for lower, higher in zip(by_risk, by_risk[1:], strict=False):
        blocking_above = {finding.rule for finding in higher if finding.severity == BLOCKING}
        rules_above = {finding.rule for finding in higher}
        for finding in lower:
            assert finding.rule in rules_above, finding
            if finding.severity == BLOCKING:
                assert finding.rule in blocking_above, finding
        assert is_ready(lower) or not is_ready(higher)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
LINT_KEYS = st.sampled_from(
    ["objective", "constraints", "evidence", "done_criteria", "work_type", "risk", "rollback_note", "budgets"]
)


# The lint API only reads: one `world` serves every example.
@settings(PROPERTIES, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(JSON_VALUES, st.dictionaries(LINT_KEYS, JSON_VALUES, max_size=8)))
def test_the_lint_api_answers_any_json_without_a_server_error(world, body):
    """/api/v1/goals/lint takes a signed-in session, which the OpenAPI fuzz (test_api_fuzz) does not have: here."""
    from tests.factories import client_for

    response = client_for(world, "owner").post(reverse("api_lint_goal"), json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 400), response.content[:300]
    answer = response.json()
    assert set(answer) == ({"ready", "findings"} if response.status_code == 200 else {"error"})
