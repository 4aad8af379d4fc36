"""A fuzz of the API from its generated OpenAPI document (schemathesis), every operation, against the ASGI
application daphne serves (config.asgi), in this process: whatever the body, the path, the query or the
credential, the server answers without a 5xx, and in JSON.

Most cases carry a working credential (the goal's agent token, or the owner's session and CSRF token for the
operations that take one) and the ids of real objects, so they reach the operations' own checks instead of stopping
at a 401 or a 404. Derandomized, a few examples an operation: it adds seconds to the suite. GOALPOST_FUZZ_EXAMPLES=500
digs deeper, at random."""

import hashlib
import os

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from approvals.models import ApprovalRequest
from config.asgi import application
from config.urls import api
from gateway.models import AgentToken, AlwaysAllowRule
from goals.models import GoalStatus
from tests.factories import make_goal

schema = schemathesis.openapi.from_dict(api.document())
EXAMPLES = int(os.environ.get("GOALPOST_FUZZ_EXAMPLES", "12"))
CSRF_SECRET = "f" * 32  # a CSRF cookie and the same value in X-CSRFToken: the check Django does


@pytest.fixture
def target(transactional_db, owner, git_repo):
    """A running goal with an agent token, a decided request and a rule, and its owner signed in; committed, since
    the waiting operations read in worker threads of their own."""
    goal = make_goal(owner, git_repo, status=GoalStatus.RUNNING)
    secret = AgentToken.issue(goal, owner)[1]
    decided = ApprovalRequest.open(goal, "step", summary="decided already")
    decided.decide(owner, "approve")
    rule = AlwaysAllowRule.objects.create(goal=goal, kind="path", value="docs/**", created_by=owner)
    browser = Client()
    browser.force_login(owner)
    return {
        "secret": secret,
        "session": browser.cookies["sessionid"].value,
        "ids": {"goal_id": goal.pk, "request_id": decided.pk, "rule_id": rule.pk},
        "repo": str(git_repo),
    }


def aimed(case, target) -> dict:
    """Credentials and real ids for most cases (four in five); a few keep what was generated. Nothing waits."""
    seed = hashlib.sha256(repr((case.path_parameters, case.body, case.query)).encode()).digest()[0]
    credentials: dict = {"headers": {}, "cookies": {}}
    if seed % 5:
        schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
        if "AgentTokenAuth" in schemes and (seed % 2 or "SignedIn" not in schemes):
            credentials["headers"]["Authorization"] = f"Bearer {target['secret']}"
        elif "SignedIn" in schemes:
            credentials["cookies"] = {"sessionid": target["session"], "csrftoken": CSRF_SECRET}
            credentials["headers"]["X-CSRFToken"] = CSRF_SECRET
        for name in case.path_parameters or {}:
            case.path_parameters[name] = target["ids"].get(name, case.path_parameters[name])
    if case.operation.path.endswith("/changes") and isinstance(case.body, dict) and seed % 3:
        case.body["cwd"] = target["repo"]  # past the cwd check, into the diff's
    if case.query and "wait" in case.query:
        case.query["wait"] = 0
    elif case.operation.path == "/hooks/claude":
        case.query = {**(case.query or {}), "wait": 0}
    return credentials


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="GOALPOST_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_whatever_the_input(case, target):
    credentials = aimed(case, target)
    response = case.call(app=application, base_url="http://testserver/api/v1", **credentials)
    case.validate_response(response, checks=[not_a_server_error])
    content_type = response.headers.get("content-type") or [""]
    assert content_type[0].startswith("application/json"), (response.status_code, response.text[:200])
