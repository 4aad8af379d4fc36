import pytest

from approvals.models import ApprovalRequest
from goals.models import GoalStatus
from tests.approvals.gateway_server import running_daphne
from tests.conftest import subprocess_database_url


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


@pytest.fixture(scope="module")
def live_url(django_db_setup, django_db_blocker):
    """A real daphne on a free port, serving the test database, for the module's tests."""
    with django_db_blocker.unblock():
        database_url = subprocess_database_url()
    with running_daphne(database_url) as (url, _):
        yield url


@pytest.fixture
def running(goal):
    """The goal running, with `secrets/**` protected: what an agent attached to it works under."""
    goal.status = GoalStatus.RUNNING
    goal.protected_paths = ["secrets/**"]
    goal.save()
    return goal
