"""A fuzz of the API from its generated OpenAPI document (schemathesis) against a live daphne: whatever the body,
the path or the query, the server answers without a 5xx, and in JSON."""

import hashlib
import os
from urllib.parse import urlsplit

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from approvals.models import ApprovalRequest
from config.urls import api
from gateway.models import AgentToken
from goals.models import Goal, GoalStatus
from tests.factories import good_goal_fields, run_git, subprocess_database_url
from tests.support.processes import running_daphne

schema = schemathesis.openapi.from_dict(api.document())
# Per operation: the whole fuzz stays well under a minute. GOALPOST_FUZZ_EXAMPLES=500 digs deeper, at random.
EXAMPLES = int(os.environ.get("GOALPOST_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def server_url(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_url = subprocess_database_url()
    with running_daphne(database_url) as (url, _):
        yield url


@pytest.fixture
def target(server_url, transactional_db, tmp_path):
    """A running goal with a token and a decided request, committed for the server (one per operation)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('hello')\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "initial")
    owner = get_user_model().objects.create_user("fuzz-owner")
    goal = Goal.objects.create(owner=owner, status=GoalStatus.RUNNING, **good_goal_fields(repo))
    secret = AgentToken.issue(goal, owner)[1]
    decided = ApprovalRequest.open(goal, "step", summary="decided already")
    decided.decide(owner, "approve")
    return {"url": server_url, "secret": secret, "goal": goal.pk, "request": decided.pk, "repo": str(repo)}


def aimed(case, target) -> None:
    """Most cases go to the real goal and a decided request with the goal's token (deeper than a 401 or a 404);
    a few keep what was generated. Nothing waits: a wait is always 0 here (waiting has its own tests)."""
    seed = hashlib.sha256(repr((case.path_parameters, case.body, case.headers)).encode()).digest()[0]
    if seed % 5:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {target['secret']}"}
        if "goal_id" in (case.path_parameters or {}):
            case.path_parameters["goal_id"] = target["goal"]
        if "request_id" in (case.path_parameters or {}):
            case.path_parameters["request_id"] = target["request"]
    if case.operation.path.endswith("/changes") and isinstance(case.body, dict) and seed % 3:
        case.body["cwd"] = target["repo"]  # past the cwd check, into the diff's
    if case.query and "wait" in case.query:
        case.query["wait"] = 0
    elif case.operation.path == "/hooks/claude":
        case.query = {**(case.query or {}), "wait": 0}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="GOALPOST_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_whatever_the_input(case, target):
    aimed(case, target)
    response = case.call(
        base_url=f"{target['url']}/api/v1", headers={"Authorization": f"Bearer {target['secret']}"}, timeout=30
    )
    case.validate_response(response, checks=[not_a_server_error])
    # A request daphne itself refuses (a generated header it cannot parse) gets a bare 400 without a body type.
    if answered_by_the_api(response.request.url) and response.headers:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), response.text[:200]


def answered_by_the_api(url: str) -> bool:
    """Whether the URL reaches one of the API's views (a generated path parameter may leave the API)."""
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        return False
    return (match.url_name or "").startswith("api_")
