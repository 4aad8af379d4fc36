"""The goals' operation of the JSON API under /api/v1/ (django-ninja; config/api.py has the plumbing): the goal
linter for a signed-in person's page."""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import BeforeValidator

from config.api import Body, SignedIn, refusals
from goals import lint

MAX_TEXT = 20_000

router = Router(tags=["goals"])

Text = Annotated[str | None, Field(max_length=MAX_TEXT)]
Strings = Annotated[list[str] | None, Field(description="Blank entries are dropped.")]
Budget = Annotated[int | None, Field(ge=0, description="null: unbounded (which the linter blocks).")]
# An empty work type or risk is no choice, as on the form.
WorkType = Annotated[Literal[tuple(lint.WORK_TYPE_RISK)] | None, BeforeValidator(lambda value: value or None)]
Risk = Annotated[Literal[lint.RISK_ORDER] | None, BeforeValidator(lambda value: value or None)]


class Budgets(Body):
    """Absent keys take bounded defaults; unknown keys are ignored."""

    minutes: Budget = None
    steps: Budget = None
    tokens: Budget = None
    files_per_step: Budget = None
    files_total: Budget = None
    approvals: Budget = None
    retries: Budget = None


class ContractInput(Body):
    objective: Text = None
    constraints: Strings = None
    evidence: Strings = Field(None, description="Checks: a command (run) or a sentence (a manual check).")
    done_criteria: Text = None
    work_type: WorkType = None
    risk: Risk = None
    rollback_note: Text = None
    budgets: Budgets | None = None

    def contract(self) -> lint.Contract:
        budgets = {**lint.DEFAULT_BUDGETS, **(self.budgets.model_dump(exclude_unset=True) if self.budgets else {})}
        return lint.Contract(
            objective=(self.objective or "").strip(),
            constraints=tuple(_present(self.constraints)),
            evidence=tuple(lint.EvidenceCheck.from_text(item) for item in _present(self.evidence)),
            done_criteria=(self.done_criteria or "").strip(),
            work_type=self.work_type or "other",
            risk=self.risk or "",
            rollback_note=(self.rollback_note or "").strip(),
            budgets=budgets,
        )


def _present(items: list[str] | None) -> list[str]:
    return [item.strip() for item in items or [] if item.strip()]


class LintFinding(Schema):
    rule: str
    severity: str
    message: str


class LintResult(Schema):
    ready: bool
    findings: list[LintFinding]


@router.post(
    "/goals/lint",
    auth=SignedIn("Sign in first: this endpoint needs a login session."),
    response={200: LintResult, **refusals(400, 401, 403, 413)},
    url_name="api_lint_goal",
    operation_id="lintGoal",
    summary="Lint a goal's contract (a signed-in person, with the CSRF token)",
)
def lint_goal(request: HttpRequest, contract: ContractInput) -> dict:
    findings = lint.lint(contract.contract())
    return {"ready": lint.is_ready(findings), "findings": [finding.as_dict() for finding in findings]}
