import pytest

from approvals.models import ApprovalRequest


@pytest.fixture
def pending(goal):
    """A pending step request on the owner's medium-risk goal."""
    return ApprovalRequest.open(
        goal,
        "step",
        findings=[{"gate": "tests_weakened", "severity": "approval", "reason": "assert removed", "path": "t.py"}],
        summary="2 files, +3 −1, 1 test",
        step_number=4,
    )
