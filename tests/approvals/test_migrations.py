"""The migration from a `details["source"]` key to a request's origin, forwards and back."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestOrigin

BEFORE = [("approvals", "0003_gateway")]  # the origin only in the JSON, as `details["source"] == "gateway"`
AFTER = [("approvals", "0005_fill_request_origin")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def latest_schema_after():
    yield
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_each_request_gets_its_origin_and_migrating_back_puts_the_source_key_back(goal, latest_schema_after):
    old = migrate(BEFORE)
    requests = old.get_model("approvals", "ApprovalRequest")

    def request(kind, details):
        expires = timezone.now() + timedelta(hours=1)
        return requests.objects.create(goal_id=goal.pk, kind=kind, details=details, expires_at=expires).pk

    ids = {
        "tool call": request("step", {"source": "gateway", "command": "make deploy"}),
        "loop step": request("step", {}),
        "plan": request("plan", {}),
        "done": request("done", {}),
        "stall": request("stall", {"reason": "No step finished in 40 minutes."}),
        "budget": request("budget", {"budget": "steps", "used": 20, "allowed": 20}),
    }

    migrate(AFTER)
    by_name = {name: ApprovalRequest.objects.get(pk=pk) for name, pk in ids.items()}
    assert {name: request.origin for name, request in by_name.items()} == {
        "tool call": RequestOrigin.GATEWAY,
        "loop step": RequestOrigin.LOOP,
        "plan": RequestOrigin.LOOP,
        "done": RequestOrigin.LOOP,
        "stall": RequestOrigin.STALL,
        "budget": RequestOrigin.BUDGET,
    }
    assert by_name["tool call"].details == {"command": "make deploy"} and by_name["tool call"].from_gateway
    assert by_name["budget"].details == {"budget": "steps", "used": 20, "allowed": 20}
    assert list(ApprovalRequest.objects.from_gateway().values_list("pk", flat=True)) == [ids["tool call"]]

    old = migrate(BEFORE)
    details = dict(old.get_model("approvals", "ApprovalRequest").objects.values_list("pk", "details"))
    assert details[ids["tool call"]] == {"source": "gateway", "command": "make deploy"}
    assert details[ids["loop step"]] == {} and details[ids["stall"]] == {"reason": "No step finished in 40 minutes."}
