import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goals.lint import (
    ADVICE,
    BLOCKING,
    BUDGET_NAMES,
    DEFAULT_BUDGETS,
    RISK_ORDER,
    WORK_TYPE_RISK,
    Contract,
    EvidenceCheck,
    Finding,
    finish_lines,
    has_measurable_target,
    is_ready,
    lint,
    minimum_risk,
    reads_as_prose,
)

KNOWN_RULES = {
    "objective_missing",
    "objective_no_target",
    "objective_too_wide",
    "vague_verb",
    "multiple_objectives",
    "constraints_missing",
    "evidence_missing",
    "evidence_not_a_command",
    "evidence_generic",
    "budget_unbounded",
    "rollback_missing",
    "done_criteria_missing",
}
OBJECTIVE_RULES = {
    "objective_missing",
    "objective_no_target",
    "objective_too_wide",
    "vague_verb",
    "multiple_objectives",
}

SEED_OBJECTIVE = (
    "Reduce the dashboard initial load time below 1.5s on the existing seeded dataset, "
    "without changing the visible table behavior or removing any current filters"
)
SEED_CONSTRAINTS = ("Do not change the visible table behavior", "Do not remove any current filters")
SEED_EVIDENCE = (
    EvidenceCheck("command", "pytest tests/test_dashboard.py"),
    EvidenceCheck("command", "python scripts/measure_dashboard.py --max-seconds 1.5"),
)


def seed_contract(**overrides) -> Contract:
    """The seed's good example, with some fields replaced."""
    fields = {
        "objective": SEED_OBJECTIVE,
        "constraints": SEED_CONSTRAINTS,
        "evidence": SEED_EVIDENCE,
        "work_type": "ui_refactor",
        "done_criteria": "The measuring script reports below 1.5s and the dashboard tests pass.",
    }
    fields.update(overrides)
    return Contract(**fields)


def rule_severities(findings: list[Finding], only: set[str] | None = None) -> set[tuple[str, str]]:
    return {(finding.rule, finding.severity) for finding in findings if only is None or finding.rule in only}


def objective_findings(objective: str) -> set[tuple[str, str]]:
    return rule_severities(lint(seed_contract(objective=objective)), only=OBJECTIVE_RULES)


NO_TARGET = ("objective_no_target", BLOCKING)
VAGUE_BLOCKING = ("vague_verb", BLOCKING)
VAGUE_ADVICE = ("vague_verb", ADVICE)
TOO_WIDE = ("objective_too_wide", BLOCKING)
MULTIPLE = ("multiple_objectives", ADVICE)


def test_seed_good_example_has_no_finding_at_all():
    findings = lint(seed_contract())

    assert findings == []
    assert is_ready(findings)


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        pytest.param(SEED_OBJECTIVE, set(), id="seed good objective passes"),
        pytest.param("", {("objective_missing", BLOCKING)}, id="empty objective is missing"),
        pytest.param("  \n\t ", {("objective_missing", BLOCKING)}, id="whitespace objective is missing"),
        pytest.param("Improve the dashboard.", {NO_TARGET, VAGUE_BLOCKING}, id="seed improve the dashboard"),
        pytest.param("Make onboarding better", {NO_TARGET, VAGUE_BLOCKING}, id="seed make onboarding better"),
        pytest.param("make tests pass", {TOO_WIDE}, id="seed make tests pass is too wide"),
        pytest.param(
            "Make the dashboard load faster, under 2 s on the seeded dataset",
            {VAGUE_ADVICE},
            id="vague verb with a target is only advice",
        ),
        pytest.param(
            "Optimise the invoice list to at most 3 queries",
            {VAGUE_ADVICE},
            id="optimise with a count target",
        ),
        pytest.param(
            "Clean up billing/export.py", {NO_TARGET, VAGUE_BLOCKING}, id="a file path is scope, not a finish line"
        ),
        pytest.param("Fix the bug", {NO_TARGET}, id="fix the bug has no target"),
        pytest.param("Refactor utils", {NO_TARGET}, id="refactor utils has no target"),
        pytest.param("Clean up the codebase", {NO_TARGET, VAGUE_BLOCKING}, id="clean up the codebase"),
        pytest.param("Make it faster", {NO_TARGET, VAGUE_BLOCKING}, id="make it faster"),
        pytest.param("Work on the login page", {NO_TARGET}, id="work on the login page"),
        pytest.param("Polish the settings page", {NO_TARGET, VAGUE_BLOCKING}, id="polish has no target"),
        pytest.param("Make the API more robust", {NO_TARGET, VAGUE_BLOCKING}, id="more robust has no target"),
        pytest.param("Make Node.js faster", {NO_TARGET, VAGUE_BLOCKING}, id="framework name is not a file"),
        pytest.param("Don't remove anything yet", {NO_TARGET}, id="negated remove is not an end state"),
        pytest.param("Add drag and drop to the board", {NO_TARGET}, id="drag and drop is not a removal"),
        pytest.param("Add find and replace to the editor", {NO_TARGET}, id="find and replace is one feature"),
        pytest.param("Make the tests green", {TOO_WIDE}, id="make the tests green is too wide"),
        pytest.param("Fix all the tests", {TOO_WIDE}, id="fix all the tests is too wide"),
        pytest.param("Fix the failing tests", {TOO_WIDE}, id="fix the failing tests is too wide"),
        pytest.param("Get CI green", {TOO_WIDE}, id="get ci green is too wide"),
        pytest.param("Fix the build", {TOO_WIDE}, id="fix the build is too wide"),
        pytest.param("All tests pass", {TOO_WIDE}, id="all tests pass is too wide"),
        pytest.param("Fix the checkout button colour", {NO_TARGET}, id="checkout is not checks"),
        pytest.param("Fix the failing test test_invoice_totals", set(), id="too wide phrase with a named test passes"),
        pytest.param("Get the tests green in billing/tests.py", set(), id="too wide phrase with a named file passes"),
    ],
)
def test_objective_rules(objective, expected):
    assert objective_findings(objective) == expected


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Move the invoice export from views.py to billing/export.py", id="move from a to b"),
        pytest.param("Restore test_invoice_totals without changing the CSV columns", id="restore a named test"),
        pytest.param("Replace requests with httpx in the billing client", id="replace x with y"),
        pytest.param("Remove the deprecated /api/v0 endpoints", id="remove x"),
        pytest.param("Get tests/test_api.py::test_login passing", id="pytest node id"),
        pytest.param("Upgrade Django to 5.2", id="upgrade x to a version"),
        pytest.param("Rename UserProfile to AccountProfile", id="rename x to y"),
        pytest.param("Migrate the sessions table from MySQL to Postgres", id="migrate x from a to b"),
        pytest.param("Bump lodash to 4.17.21", id="bump x to y"),
        pytest.param("Convert the settings module to pydantic", id="convert x to y"),
        pytest.param("Extract the pricing rules into their own module", id="extract x into y"),
        pytest.param("Split the Invoice model into two models", id="split x into y"),
        pytest.param("Port the CLI to Go", id="port x to y"),
        pytest.param("Delete the legacy importer", id="delete x"),
        pytest.param("Drop Python 3.8 support", id="drop x"),
        pytest.param("Cut the search p99 ≤ 25 ms", id="percentile with a comparison"),
        pytest.param("Bring the import script to 0 errors", id="to zero errors"),
        pytest.param("Reach 90% coverage on billing", id="percent coverage"),
        pytest.param("Keep the invoice list at most 3 queries", id="at most n queries"),
        pytest.param("Shrink the JS bundle to 300 KB", id="kilobytes"),
        pytest.param("Bring dashboard render under 200 ms", id="under n milliseconds"),
        pytest.param("Make `npm run e2e:checkout` exit 0", id="command in backticks"),
        pytest.param("Fix TestParseHeader in the header parser", id="go test name"),
        pytest.param("Fix InvoiceServiceTest on Java 21", id="java test class"),
    ],
)
def test_objectives_with_a_measurable_target(objective):
    assert has_measurable_target(objective)
    assert objective_findings(objective) == set()


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Fix the bug", id="fix the bug"),
        pytest.param("Refactor utils", id="refactor utils"),
        pytest.param("Clean up the codebase", id="clean up the codebase"),
        pytest.param("Make it faster", id="make it faster"),
        pytest.param("Work on the login page", id="work on the login page"),
        pytest.param("Improve the dashboard.", id="improve the dashboard"),
        pytest.param("Add support for Python 3.12", id="a version alone is not a target"),
        pytest.param("Clean up utils without moving files to shared/", id="a move after without is a constraint"),
        pytest.param("Move fast. Try to keep things tidy", id="a move does not reach across sentences"),
        pytest.param('Fix the "Export CSV" button', id="a quoted word is not a target"),
        pytest.param("Fix the crash in views.py", id="a file name is scope, not a target"),
        pytest.param("Fix issue 1234", id="a bare number is not a target"),
    ],
)
def test_objectives_without_a_measurable_target(objective):
    assert not has_measurable_target(objective)


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Replace requests with httpx and remove the retry wrapper", id="and joins two verbs"),
        pytest.param("Reduce load time below 1.5s; add a loading spinner", id="semicolon joins two verbs"),
        pytest.param("Move the export to billing/export.py, then delete views.py", id="then joins two verbs"),
        pytest.param("Rename Foo to Bar.\nDelete Baz.", id="two lines with verbs"),
        pytest.param("Remove the v0 endpoints. Upgrade Django to 5.2.", id="two sentences with verbs"),
        pytest.param("- the v0 endpoints are gone\n- Django is on 5.2", id="two bullets"),
    ],
)
def test_multiple_objectives_is_advice(objective):
    assert MULTIPLE in objective_findings(objective)


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param(SEED_OBJECTIVE, id="gerunds after without are constraints"),
        pytest.param(
            "Replace requests with httpx, and make sure retries still work",
            id="make sure is not an objective",
        ),
        pytest.param("Split the Invoice model into Invoice and InvoiceLine", id="and joining nouns"),
        pytest.param("Remove the v0 endpoints.\nKeep the v1 ones.", id="second line without a verb"),
    ],
)
def test_single_objective_is_quiet(objective):
    assert MULTIPLE not in objective_findings(objective)


@pytest.mark.parametrize(
    ("objective", "quoted"),
    [
        pytest.param("Improve the dashboard.", "“improve”", id="improve is quoted"),
        pytest.param("Make onboarding better", "“make … better”", id="make better is quoted"),
        pytest.param("Polish the settings page", "“polish”", id="polish is quoted"),
        pytest.param("Modernize the frontend", "“modernize”", id="modernize is quoted"),
        pytest.param("Make the API more robust", "“more robust”", id="more robust is quoted"),
        pytest.param("Make it faster, under 2 s", "“faster”", id="faster is quoted in the advice"),
    ],
)
def test_vague_verb_message_quotes_the_word(objective, quoted):
    [finding] = [finding for finding in lint(seed_contract(objective=objective)) if finding.rule == "vague_verb"]

    assert quoted in finding.message


def findings_for(rule: str, contract: Contract) -> list[Finding]:
    return [finding for finding in lint(contract) if finding.rule == rule]


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Improve the dashboard.", id="improve"),
        pytest.param("Make onboarding better", id="better"),
    ],
)
def test_no_target_message_calls_it_a_meeting(objective):
    [finding] = findings_for("objective_no_target", seed_contract(objective=objective))

    assert "that is a meeting, not a goal" in finding.message.lower()
    assert "number" in finding.message and "end state" in finding.message


def test_too_wide_message_warns_about_deleting_assertions():
    [finding] = findings_for("objective_too_wide", seed_contract(objective="make tests pass"))

    assert "wide and weak" in finding.message
    assert "deleting assertions" in finding.message
    assert "failing test" in finding.message


@pytest.mark.parametrize(
    ("objective", "kind"),
    [
        pytest.param("Reduce dashboard load time below 1.5 s", "number", id="seconds below a bound"),
        pytest.param("Keep the order page under 200 ms", "number", id="milliseconds"),
        pytest.param("Bring checkout p95 < 300ms", "number", id="percentile with a comparison sign"),
        pytest.param("Reach 90 % coverage in billing/", "number", id="percent with a space"),
        pytest.param("Raise requires-python to 3.9", "number", id="a changed amount to a number"),
        pytest.param("A failed upload must be retried exactly once", "number", id="exactly once"),
        pytest.param("Move the PDF renderer from views.py to render/pdf.py", "end state", id="move x to y"),
        pytest.param("Rename OrderLine to InvoiceLine", "end state", id="rename a to b"),
        pytest.param("Remove the deprecated flag --legacy-auth", "end state", id="remove a named flag"),
        pytest.param("Restore the failing refund rounding test", "end state", id="restore a described test"),
        pytest.param("Stop the poller from logging the API key", "end state", id="stop x from doing y"),
        pytest.param("GET /health raises KeyError; expected a 404", "expected versus actual", id="raises, expected"),
        pytest.param("sum_lines returns 3 instead of 4", "expected versus actual", id="returns instead of"),
        pytest.param("The status badge should be green but is grey", "expected versus actual", id="should be but is"),
        pytest.param(
            "Saving a draft crashes the app; it should keep the draft", "expected versus actual", id="it should"
        ),
        pytest.param(
            "Saving twice creates two invoices; only one should be created",
            "expected versus actual",
            id="should after a description of today",
        ),
        pytest.param("Return 410 Gone from /api/v1/export", "number", id="an http status"),
        pytest.param("Store passwords with argon2 instead of sha1", "end state", id="a instead of b"),
        pytest.param("Add docs/export.md describing the CSV columns", "end state", id="add a named file"),
        pytest.param("Fix test_parse_date on leap days", "named check", id="a pytest function"),
        pytest.param("Make tox -e py313 pass", "named check", id="a command without backticks"),
        pytest.param("Get tests/test_api.py passing on Python 3.13", "named check", id="a test file"),
        pytest.param("Make `cargo test -p parser` exit cleanly", "named check", id="a command in backticks"),
        pytest.param("Make the build-linux job pass", "named check", id="a ci job name"),
        pytest.param('Get the "docs preview" workflow green', "named check", id="a quoted workflow name"),
        pytest.param("Fix TestRetryBackoff in the client", "named check", id="a go test"),
    ],
)
def test_each_kind_of_finish_line_makes_a_goal_ready(objective, kind):
    assert kind in finish_lines(objective)
    assert is_ready(lint(seed_contract(objective=objective)))


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param('Fix the "Export CSV" button', id="a quoted word"),
        pytest.param("Fix issue 1234", id="a bare number"),
        pytest.param("Add support for Python 3.12", id="a version"),
        pytest.param("Fix bug 12 by 5", id="by a number without an amount verb"),
        pytest.param("Add a cron job that purges old sessions", id="a job that is not a ci job"),
        pytest.param("Refactor `parse_config`", id="a function in backticks is not a check"),
        pytest.param("Add type hints to views.py", id="a file to work in is not a file to add"),
        pytest.param("The export fails; it should work", id="a wish is not an expected result"),
    ],
)
def test_no_finish_line(objective):
    assert finish_lines(objective) == ()
    assert NO_TARGET in objective_findings(objective)


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Delete failing tests so CI is green.", id="delete failing tests"),
        pytest.param('Remove the "flaky" tests until the build shows 0 failures', id="quoted word and a number"),
        pytest.param("Skip the tests that fail so the pipeline passes", id="skip tests"),
        pytest.param("Mark the failing e2e tests as xfail", id="mark as xfail"),
        pytest.param("Loosen the assertions so the build passes", id="loosen assertions"),
        pytest.param("Relax the tolerance in the numeric tests", id="relax a tolerance"),
        pytest.param("Comment out the assertions that fail", id="comment out"),
        pytest.param("Get CI green by any means necessary", id="by any means"),
        pytest.param("Restore test_totals, whatever it takes", id="whatever it takes beats a named test"),
    ],
)
def test_goals_reached_by_removing_checks_block(objective):
    [finding] = findings_for("objective_too_wide", seed_contract(objective=objective))

    assert finding.severity == BLOCKING
    assert "removing checks" in finding.message
    assert "“Restore test_x without changing Y”" in finding.message


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Remove the deprecated flag --x without deleting any tests", id="negated in a constraint"),
        pytest.param("Restore the skipped test test_refund", id="skipped as an adjective"),
        pytest.param("Delete the legacy importer", id="deleting code is not deleting checks"),
        pytest.param("Fix the date parser instead of skipping its tests", id="instead of is a constraint"),
    ],
)
def test_removing_checks_is_only_about_checks(objective):
    assert TOO_WIDE not in objective_findings(objective)


@pytest.mark.parametrize(
    ("objective", "word"),
    [
        pytest.param("Rename variables everywhere", "everywhere", id="everywhere"),
        pytest.param("Add type hints to all functions", "all", id="all"),
        pytest.param("Fix any bugs you find", "any", id="any"),
        pytest.param("Update every file to the new licence header", "every", id="every file"),
        pytest.param("Improve code quality across the project", "across the project", id="across the project"),
    ],
)
def test_wide_words_without_a_path_block(objective, word):
    [finding] = findings_for("objective_too_wide", seed_contract(objective=objective))

    assert finding.severity == BLOCKING
    assert f"“{word}” has no path" in finding.message
    assert "“all handlers under api/”" in finding.message


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Rename all handlers under api/ to the *_view convention", id="a directory"),
        pytest.param("Replace every print call in scripts/report.py with logging", id="a file"),
        pytest.param("Raise coverage of every module in the billing package to 90%", id="a named package"),
        pytest.param(SEED_OBJECTIVE, id="any inside a without clause"),
        pytest.param("The importer drops the last row of every file; it should keep it", id="a bug condition"),
        pytest.param("Keep all 3 exports under 2 s", id="all with a count"),
    ],
)
def test_wide_words_with_a_path_or_scope_are_fine(objective):
    assert TOO_WIDE not in objective_findings(objective)


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Improve the dashboard.", id="improve"),
        pytest.param("make tests pass", id="make tests pass"),
        pytest.param("Make onboarding better", id="make better"),
    ],
)
def test_seed_weak_examples_are_blocked(objective):
    assert not is_ready(lint(seed_contract(objective=objective)))


@pytest.mark.parametrize(
    ("objective", "constraints"),
    [
        pytest.param("Reduce dashboard load time below 1.5 s", SEED_CONSTRAINTS, id="load time"),
        pytest.param(
            "Move the invoice CSV export from views.py into its own exports module",
            ("Do not change the invoice CSV columns", "Keep the export URL"),
            id="invoice export move",
        ),
        pytest.param(
            "Restore the failing checkout tax calculation test without changing tax rounding behavior",
            ("Do not change tax rounding",),
            id="tax test restore",
        ),
    ],
)
def test_seed_good_examples_are_ready(objective, constraints):
    findings = lint(seed_contract(objective=objective, constraints=constraints))

    assert is_ready(findings), findings


@pytest.mark.parametrize(
    "objective",
    [
        "Improve the dashboard.",
        "Make the app faster",
        "Tidy up dependencies",
        "make tests pass",
        "Delete failing tests so CI is green.",
        "Add type hints to all functions",
        "Think about how we handle retries",
        "Remove the slow and flaky browser integration tests",
        "Skip the " + "very " * 60 + "flaky tests",
    ],
)
def test_every_blocking_objective_finding_says_how_to_fix_it_with_an_example(objective):
    blocking = [f for f in lint(seed_contract(objective=objective)) if f.severity == BLOCKING]

    assert blocking
    for finding in blocking:
        assert "“" in finding.message and "”" in finding.message
        assert len(finding.message) <= 140


@pytest.mark.parametrize(
    ("constraints", "expected"),
    [
        pytest.param((), [("constraints_missing", BLOCKING)], id="no constraint blocks"),
        pytest.param(("", "   ", "\n"), [("constraints_missing", BLOCKING)], id="blank constraints are ignored"),
        pytest.param(("Do not touch migrations",), [], id="one constraint is enough"),
    ],
)
def test_constraints(constraints, expected):
    findings = findings_for("constraints_missing", seed_contract(constraints=constraints))

    assert [(finding.rule, finding.severity) for finding in findings] == expected


MANUAL_CHECK = EvidenceCheck("manual", description="Open the dashboard and check the filters")
SPECIFIC_CHECK = EvidenceCheck("command", "pytest tests/test_dashboard.py")


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        pytest.param(SEED_EVIDENCE, set(), id="named commands are quiet"),
        pytest.param((), {("evidence_missing", BLOCKING)}, id="no evidence blocks"),
        pytest.param((MANUAL_CHECK,), {("evidence_missing", BLOCKING)}, id="only manual checks block"),
        pytest.param(
            (EvidenceCheck("command", "   "),),
            {("evidence_missing", BLOCKING)},
            id="blank command is not runnable",
        ),
        pytest.param((EvidenceCheck("command", "pytest"),), {("evidence_generic", ADVICE)}, id="bare pytest"),
        pytest.param(
            (EvidenceCheck("command", "python -m pytest -q"),),
            {("evidence_generic", ADVICE)},
            id="pytest flags",
        ),
        pytest.param((EvidenceCheck("command", "npm test"),), {("evidence_generic", ADVICE)}, id="npm test"),
        pytest.param((EvidenceCheck("command", "make test"),), {("evidence_generic", ADVICE)}, id="make test"),
        pytest.param(
            (EvidenceCheck("command", "go test ./..."),),
            {("evidence_generic", ADVICE)},
            id="go test everything",
        ),
        pytest.param((EvidenceCheck("command", "cargo test"),), {("evidence_generic", ADVICE)}, id="cargo test"),
        pytest.param((EvidenceCheck("command", "pytest"), SPECIFIC_CHECK), set(), id="one specific command is enough"),
        pytest.param((EvidenceCheck("command", "pytest -k invoice_totals"),), set(), id="pytest with a selection"),
        pytest.param(
            (EvidenceCheck.from_text("Run the tests"), SPECIFIC_CHECK),
            {("evidence_generic", ADVICE)},
            id="prose run the tests is advice",
        ),
        pytest.param(
            (EvidenceCheck.from_text("tests pass"),),
            {("evidence_missing", BLOCKING), ("evidence_generic", ADVICE)},
            id="only tests pass blocks and advises",
        ),
    ],
)
def test_evidence(evidence, expected):
    findings = lint(seed_contract(evidence=evidence))

    assert rule_severities(findings, only={"evidence_missing", "evidence_generic"}) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("run the tests and check it works", id="run the tests"),
        pytest.param("make sure the page loads", id="make sure"),
        pytest.param("Check that the export opens in Excel", id="check that"),
        pytest.param("curl the homepage", id="a tool followed by prose"),
        pytest.param("all tests pass", id="tests pass"),
    ],
)
def test_prose_typed_as_a_command_blocks_with_a_clear_message(text):
    contract = seed_contract(evidence=(EvidenceCheck("command", text), SPECIFIC_CHECK))

    [finding] = findings_for("evidence_not_a_command", contract)

    assert finding.severity == BLOCKING
    assert "prose, not a command" in finding.message
    assert "write the command" in finding.message and "manual check" in finding.message
    assert len(finding.message) <= 140


def test_only_prose_commands_also_leave_the_goal_without_evidence():
    contract = seed_contract(evidence=(EvidenceCheck("command", "make sure the page loads"),))

    assert {"evidence_not_a_command", "evidence_missing"} <= {finding.rule for finding in lint(contract)}


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(EvidenceCheck("manual", description="Open the dashboard and check it works"), id="manual"),
        pytest.param(EvidenceCheck("command", "make check"), id="make check"),
        pytest.param(EvidenceCheck("command", "npm test -- cart.spec.ts"), id="npm test"),
        pytest.param(EvidenceCheck("command", "tox"), id="one word"),
        pytest.param(EvidenceCheck("command", "mytool verify --all"), id="unknown tool with a flag"),
        pytest.param(EvidenceCheck("command", "pytest -k 'not slow and the'"), id="prose words in quotes"),
    ],
)
def test_commands_and_manual_checks_are_not_prose(check):
    assert findings_for("evidence_not_a_command", seed_contract(evidence=(check, SPECIFIC_CHECK))) == []


@pytest.mark.parametrize(
    ("text", "prose"),
    [
        ("run the tests and check it works", True),
        ("Make sure the page loads.", True),
        ("verify the export", True),
        ("go test ./...", False),
        ("git status", False),
        ("docker compose up", False),
        ("python manage.py test billing", False),
        ("./scripts/check.sh", False),
        ("", False),
    ],
)
def test_reads_as_prose(text, prose):
    assert reads_as_prose(text) is prose


def test_evidence_missing_message_mentions_manual_checks_when_there_are_some():
    [with_nothing] = findings_for("evidence_missing", seed_contract(evidence=()))
    [with_manual] = findings_for("evidence_missing", seed_contract(evidence=(MANUAL_CHECK,)))

    assert "manual" not in with_nothing.message
    assert "manual" in with_manual.message
    assert "command" in with_manual.message


def test_evidence_generic_message_asks_for_a_named_test():
    [finding] = findings_for("evidence_generic", seed_contract(evidence=(EvidenceCheck("command", "pytest"),)))

    assert "name the test or command" in finding.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("pytest tests/test_x.py", EvidenceCheck("command", "pytest tests/test_x.py"), id="pytest"),
        pytest.param("`pytest -q`", EvidenceCheck("command", "pytest -q"), id="backticks unwrap"),
        pytest.param("```make check```", EvidenceCheck("command", "make check"), id="triple backticks unwrap"),
        pytest.param("`whatever --flag`", EvidenceCheck("command", "whatever --flag"), id="unknown tool in backticks"),
        pytest.param("run npm test", EvidenceCheck("command", "npm test"), id="run prefix is dropped"),
        pytest.param("Run: go test ./...", EvidenceCheck("command", "go test ./..."), id="run colon prefix"),
        pytest.param("Run `cargo test`", EvidenceCheck("command", "cargo test"), id="run then backticks"),
        pytest.param("$ npx playwright test", EvidenceCheck("command", "npx playwright test"), id="shell prompt"),
        pytest.param("./scripts/check.sh", EvidenceCheck("command", "./scripts/check.sh"), id="dot slash path"),
        pytest.param(
            "scripts/measure.py --max 1.5",
            EvidenceCheck("command", "scripts/measure.py --max 1.5"),
            id="path",
        ),
        pytest.param("./manage.py test billing", EvidenceCheck("command", "./manage.py test billing"), id="manage"),
        pytest.param("DEBUG=1 pytest", EvidenceCheck("command", "DEBUG=1 pytest"), id="env assignment"),
        pytest.param(
            "Run pytest tests/test_x.py.",
            EvidenceCheck("command", "pytest tests/test_x.py"),
            id="sentence period",
        ),
        pytest.param("  make  ", EvidenceCheck("command", "make"), id="surrounding space is stripped"),
        pytest.param("Run the tests.", EvidenceCheck("manual", description="Run the tests."), id="run the tests"),
        pytest.param(
            "Make sure the page loads.",
            EvidenceCheck("manual", description="Make sure the page loads."),
            id="capitalised make is prose",
        ),
        pytest.param(
            "make sure the page loads",
            EvidenceCheck("manual", description="make sure the page loads"),
            id="make sure is prose",
        ),
        pytest.param(
            "go to /dashboard and look",
            EvidenceCheck("manual", description="go to /dashboard and look"),
            id="go to",
        ),
        pytest.param("", EvidenceCheck("manual"), id="empty text is an empty manual check"),
    ],
)
def test_evidence_check_from_text(text, expected):
    assert EvidenceCheck.from_text(text) == expected


@pytest.mark.parametrize(
    ("check", "runnable"),
    [
        pytest.param(EvidenceCheck("command", "pytest"), True, id="command with text"),
        pytest.param(EvidenceCheck("command", ""), False, id="command without text"),
        pytest.param(EvidenceCheck("manual", "pytest", description="x"), False, id="manual never runs"),
    ],
)
def test_evidence_check_runnable(check, runnable):
    assert check.runnable is runnable


@pytest.mark.parametrize(
    ("budgets", "expected_count"),
    [
        pytest.param({}, 0, id="missing keys use the defaults"),
        pytest.param({"minutes": 30}, 0, id="a partial dict uses defaults for the rest"),
        pytest.param(dict.fromkeys(BUDGET_NAMES), len(BUDGET_NAMES), id="every None budget is unbounded"),
        pytest.param(dict.fromkeys(BUDGET_NAMES, 0), len(BUDGET_NAMES), id="every zero budget is unbounded"),
        pytest.param({"steps": 0, "tokens": None}, 2, id="one finding per unbounded budget"),
        pytest.param({"unknown": None}, 0, id="unknown budget names are ignored"),
    ],
)
def test_budget_unbounded_count(budgets, expected_count):
    findings = findings_for("budget_unbounded", seed_contract(budgets=budgets))

    assert len(findings) == expected_count
    assert all(finding.severity == BLOCKING for finding in findings)


@pytest.mark.parametrize("unbounded", [pytest.param(None, id="none"), pytest.param(0, id="zero")])
@pytest.mark.parametrize(
    ("name", "label", "suggestion"),
    [
        pytest.param("minutes", "wall-clock minutes", "120", id="minutes"),
        pytest.param("steps", "steps", "20", id="steps"),
        pytest.param("tokens", "tokens", "2,000,000", id="tokens"),
        pytest.param("files_per_step", "files per step", "5", id="files per step"),
        pytest.param("files_total", "files in total", "50", id="files in total"),
        pytest.param("approvals", "approvals", "10", id="approvals"),
        pytest.param("retries", "retries of the same failure", "3", id="retries"),
    ],
)
def test_budget_unbounded_message_names_the_budget_and_a_bound(name, label, suggestion, unbounded):
    [finding] = findings_for("budget_unbounded", seed_contract(budgets={name: unbounded}))

    assert label in finding.message
    assert suggestion in finding.message


def test_default_budgets_cover_every_budget_name():
    assert set(DEFAULT_BUDGETS) == set(BUDGET_NAMES)
    assert Contract().budgets == DEFAULT_BUDGETS
    assert Contract().budgets is not DEFAULT_BUDGETS


@pytest.mark.parametrize(
    ("work_type", "risk", "expected"),
    [
        pytest.param("docs", "", "low", id="empty risk takes the table risk"),
        pytest.param("docs", "high", "high", id="declared risk can raise the table risk"),
        pytest.param("migration", "low", "high", id="declared risk never lowers migration"),
        pytest.param("auth_billing", "medium", "high", id="declared risk never lowers auth and billing"),
        pytest.param("ui_refactor", "low", "medium", id="declared risk never lowers ui refactor"),
        pytest.param("other", "", "medium", id="other is medium"),
        pytest.param("gardening", "", "medium", id="unknown work type counts as other"),
        pytest.param("docs", "catastrophic", "low", id="unknown risk is ignored"),
    ],
)
def test_effective_risk(work_type, risk, expected):
    assert Contract(work_type=work_type, risk=risk).effective_risk == expected


@pytest.mark.parametrize("work_type", list(WORK_TYPE_RISK) + ["unknown"])
@pytest.mark.parametrize("risk", list(RISK_ORDER) + [""])
def test_effective_risk_is_never_below_the_table(work_type, risk):
    effective = Contract(work_type=work_type, risk=risk).effective_risk

    assert RISK_ORDER.index(effective) >= RISK_ORDER.index(minimum_risk(work_type))


@pytest.mark.parametrize(
    ("work_type", "expected"),
    [
        *[pytest.param(work_type, risk, id=work_type) for work_type, risk in WORK_TYPE_RISK.items()],
        pytest.param("unknown", "medium", id="unknown"),
    ],
)
def test_minimum_risk(work_type, expected):
    assert minimum_risk(work_type) == expected


@pytest.mark.parametrize(
    ("work_type", "risk", "rollback_note", "expected"),
    [
        pytest.param("migration", "", "", [("rollback_missing", BLOCKING)], id="high risk without rollback"),
        pytest.param("auth_billing", "", "   ", [("rollback_missing", BLOCKING)], id="blank rollback note"),
        pytest.param("docs", "high", "", [("rollback_missing", BLOCKING)], id="raised risk needs rollback"),
        pytest.param("migration", "", "Run the down migration 0042", [], id="rollback note present"),
        pytest.param("ui_refactor", "", "", [], id="medium risk needs no rollback"),
        pytest.param("migration", "low", "", [("rollback_missing", BLOCKING)], id="cannot declare it away"),
    ],
)
def test_rollback(work_type, risk, rollback_note, expected):
    contract = seed_contract(work_type=work_type, risk=risk, rollback_note=rollback_note)

    findings = findings_for("rollback_missing", contract)

    assert [(finding.rule, finding.severity) for finding in findings] == expected


@pytest.mark.parametrize(
    ("done_criteria", "expected"),
    [
        pytest.param("", [("done_criteria_missing", ADVICE)], id="missing done criteria is advice"),
        pytest.param("  ", [("done_criteria_missing", ADVICE)], id="blank done criteria is advice"),
        pytest.param("Script reports below 1.5s", [], id="done criteria present"),
    ],
)
def test_done_criteria(done_criteria, expected):
    findings = findings_for("done_criteria_missing", seed_contract(done_criteria=done_criteria))

    assert [(finding.rule, finding.severity) for finding in findings] == expected
    assert all("when to stop" in finding.message for finding in findings)


def test_blocking_findings_come_first_in_rule_order():
    contract = Contract(
        objective="Improve the dashboard and add a chart",
        work_type="migration",
        budgets={"steps": None, "retries": 0},
    )

    rules = [(finding.rule, finding.severity) for finding in lint(contract)]

    assert rules == [
        ("objective_no_target", BLOCKING),
        ("vague_verb", BLOCKING),
        ("constraints_missing", BLOCKING),
        ("evidence_missing", BLOCKING),
        ("budget_unbounded", BLOCKING),
        ("budget_unbounded", BLOCKING),
        ("rollback_missing", BLOCKING),
        ("multiple_objectives", ADVICE),
        ("done_criteria_missing", ADVICE),
    ]


def test_empty_contract_blocks_on_the_essentials():
    rules = rule_severities(lint(Contract()))

    assert rules == {
        ("objective_missing", BLOCKING),
        ("constraints_missing", BLOCKING),
        ("evidence_missing", BLOCKING),
        ("done_criteria_missing", ADVICE),
    }


@pytest.mark.parametrize(
    ("findings", "ready"),
    [
        pytest.param([], True, id="no findings"),
        pytest.param([Finding("done_criteria_missing", ADVICE, "x")], True, id="advice only"),
        pytest.param([Finding("done_criteria_missing", ADVICE, "x"), Finding("x", BLOCKING, "y")], False, id="blocked"),
        pytest.param([{"rule": "x", "severity": BLOCKING, "message": "y"}], False, id="dict findings"),
        pytest.param(iter([Finding("x", ADVICE, "y")]), True, id="any iterable"),
    ],
)
def test_is_ready(findings, ready):
    assert is_ready(findings) is ready


def test_finding_as_dict():
    finding = Finding("vague_verb", ADVICE, "Drop it.")

    assert finding.as_dict() == {"rule": "vague_verb", "severity": ADVICE, "message": "Drop it."}


def test_every_message_is_one_short_line():
    contract = Contract(
        objective="Improve things\nand make it better",
        evidence=(EvidenceCheck.from_text("tests pass"),),
        work_type="migration",
        budgets=dict.fromkeys(BUDGET_NAMES),
    )

    for finding in lint(contract):
        assert "\n" not in finding.message
        assert 0 < len(finding.message) <= 140


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("a" * 100_000, id="one long word"),
        pytest.param("move the thing " * 7_000, id="many moves without a destination"),
        pytest.param("make it " * 12_500, id="many makes without better"),
        pytest.param("fix the " * 12_500, id="many fixes without a suite"),
        pytest.param("1." * 50_000, id="dotted numbers"),
        pytest.param('"' * 100_000, id="quotes"),
        pytest.param("and add " * 12_500, id="many joined verbs"),
        pytest.param("x/" * 50_000, id="one long path"),
    ],
)
def test_a_100_kb_objective_is_linted_quickly(objective):
    started = time.perf_counter()

    lint(seed_contract(objective=objective))

    assert time.perf_counter() - started < 3.0


printable_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
OBJECTIVE_WORDS = (
    "improve", "make", "better", "tests", "pass", "fix", "the", "build", "move", "to", "and", "add", "1.5s",
    "below", "`pytest`", "test_x", "views.py", "::", "then", "without", "removing", ";", ",", ".", "5", "%",
    "ms", "\n", "- ", '"', "'",
)  # fmt: skip
objective_text = st.one_of(printable_text, st.lists(st.sampled_from(OBJECTIVE_WORDS), max_size=40).map(" ".join))
budget_values = st.one_of(st.none(), st.integers(min_value=-5, max_value=10**7))


@settings(max_examples=300, deadline=None)
@given(
    objective=objective_text,
    constraints=st.lists(printable_text, max_size=4),
    evidence_texts=st.lists(printable_text, max_size=4),
    raw_checks=st.lists(st.builds(EvidenceCheck, kind=printable_text, command=printable_text), max_size=2),
    done_criteria=printable_text,
    work_type=st.one_of(st.sampled_from(list(WORK_TYPE_RISK)), printable_text),
    risk=st.one_of(st.sampled_from(list(RISK_ORDER) + [""]), printable_text),
    rollback_note=printable_text,
    budgets=st.dictionaries(st.sampled_from(BUDGET_NAMES), budget_values),
)
def test_lint_never_raises_and_only_reports_known_rules(
    objective, constraints, evidence_texts, raw_checks, done_criteria, work_type, risk, rollback_note, budgets
):
    evidence = tuple(EvidenceCheck.from_text(text) for text in evidence_texts) + tuple(raw_checks)
    contract = Contract(
        objective=objective,
        constraints=tuple(constraints),
        evidence=evidence,
        done_criteria=done_criteria,
        work_type=work_type,
        risk=risk,
        rollback_note=rollback_note,
        budgets=budgets,
    )

    findings = lint(contract)

    assert all(finding.rule in KNOWN_RULES for finding in findings)
    assert all(finding.severity in (BLOCKING, ADVICE) for finding in findings)
    severities = [finding.severity for finding in findings]
    assert severities == sorted(severities, key=lambda severity: severity != BLOCKING)
    assert is_ready(findings) == (BLOCKING not in severities)
    assert RISK_ORDER.index(contract.effective_risk) >= RISK_ORDER.index(minimum_risk(work_type))


@pytest.mark.parametrize(
    ("objective", "kind"),
    [
        pytest.param("Make the CSV export twice as fast", "number", id="a ratio to today"),
        pytest.param("Use 3x less memory in the importer", "number", id="n times"),
        pytest.param(
            "Deprecate `Client.fetch_all()` in favour of `Client.iter_pages()`", "end state", id="deprecate in favour"
        ),
        pytest.param(
            "Add a 'Troubleshooting' section to docs/install.md covering the three install errors",
            "end state",
            id="a section added to a named page",
        ),
        pytest.param(
            "Update the pins in requirements/dev.txt with `pip-compile --upgrade requirements/dev.in`",
            "end state",
            id="the way there is a named command",
        ),
        pytest.param(
            "Get the lint job in the GitHub Actions workflow passing on main", "named check", id="a job, then a clause"
        ),
    ],
)
def test_finish_lines_read_in_the_third_round(objective, kind):
    assert kind in finish_lines(objective)


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Move to async where it makes sense", id="a hedged end state"),
        pytest.param("Split models.py into smaller files", id="a comparative is no place to end up"),
        pytest.param("Investigate why test_upload_resume is flaky", id="the test is the subject"),
        pytest.param("The error page should be nicer", id="should plus a comparative is a wish"),
    ],
)
def test_no_finish_line_in_the_third_round(objective):
    assert finish_lines(objective) == ()


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param("Add @flaky(max_runs=3) to test_drain so it stops failing", id="retry until it passes"),
        pytest.param("Raise the test timeout from 30 s to 120 s so test_sync passes", id="more time"),
        pytest.param("Lower the coverage threshold to 70% so CI is green", id="a lower bar"),
    ],
)
def test_more_ways_of_loosening_a_check_block(objective):
    [finding] = findings_for("objective_too_wide", seed_contract(objective=objective))
    assert finding.severity == BLOCKING


def test_raising_a_coverage_threshold_is_no_loosening():
    assert not findings_for("objective_too_wide", seed_contract(objective="Raise the coverage threshold to 90%"))
