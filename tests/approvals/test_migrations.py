"""The migrations from `details["source"]` to a request's origin, and of a gateway request's diff out of
`details` into its own fields, forwards and back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestOrigin
from gateway.models import AgentReport, AgentToken, GatewayCall
from tests.factories import migrate, migrate_to_latest

BEFORE = [("approvals", "0003_gateway")]  # the origin only in the JSON, as `details["source"] == "gateway"`
AFTER = [("approvals", "0007_move_gateway_diff")]
DIFF = "diff --git a/deploy.sh b/deploy.sh\n--- a/deploy.sh\n+++ b/deploy.sh\n@@ -1 +1 @@\n-old\n+new\n"
TOOL_CALL = {"source": "gateway", "command": "", "paths": ["deploy.sh"], "diff": DIFF, "diff_truncated": True}


MOVE_BEFORE = [("approvals", "0007_move_gateway_diff"), ("gateway", None)]  # the gateway's models in approvals






@pytest.mark.django_db(transaction=True)
def test_each_request_gets_its_origin_and_diff_and_migrating_back_puts_the_keys_back(goal, latest_schema_after):
    old = migrate(BEFORE)
    requests = old.get_model("approvals", "ApprovalRequest")

    def request(kind, details):
        expires = timezone.now() + timedelta(hours=1)
        return requests.objects.create(goal_id=goal.pk, kind=kind, details=details, expires_at=expires).pk

    ids = {
        "tool call": request("step", TOOL_CALL),
        "command call": request("step", {"source": "gateway", "command": "make deploy", "diff": ""}),
        "loop step": request("step", {}),
        "plan": request("plan", {}),
        "done": request("done", {}),
        "stall": request("stall", {"reason": "No step finished in 40 minutes."}),
        "budget": request("budget", {"budget": "steps", "used": 20, "allowed": 20}),
    }

    new = migrate(AFTER).get_model("approvals", "ApprovalRequest")
    by_name = {name: new.objects.get(pk=pk) for name, pk in ids.items()}
    assert {name: request.origin for name, request in by_name.items()} == {
        "tool call": RequestOrigin.GATEWAY,
        "command call": RequestOrigin.GATEWAY,
        "loop step": RequestOrigin.LOOP,
        "plan": RequestOrigin.LOOP,
        "done": RequestOrigin.LOOP,
        "stall": RequestOrigin.STALL,
        "budget": RequestOrigin.BUDGET,
    }
    call = by_name["tool call"]
    assert call.details == {"command": "", "paths": ["deploy.sh"]} and call.origin == RequestOrigin.GATEWAY
    assert (call.diff, call.diff_truncated) == (DIFF, True)
    assert by_name["command call"].details == {"command": "make deploy"} and by_name["command call"].diff == ""
    assert by_name["budget"].diff == "" and not by_name["budget"].diff_truncated
    assert by_name["budget"].details == {"budget": "steps", "used": 20, "allowed": 20}
    gateway = {ids["tool call"], ids["command call"]}
    assert set(new.objects.filter(origin=RequestOrigin.GATEWAY).values_list("pk", flat=True)) == gateway

    old = migrate(BEFORE)
    details = dict(old.get_model("approvals", "ApprovalRequest").objects.values_list("pk", "details"))
    assert details[ids["tool call"]] == TOOL_CALL
    assert details[ids["command call"]] == {
        "source": "gateway", "command": "make deploy", "diff": "", "diff_truncated": False
    }
    assert details[ids["loop step"]] == {} and details[ids["stall"]] == {"reason": "No step finished in 40 minutes."}


@pytest.mark.django_db(transaction=True)
def test_the_gateway_models_move_to_their_app_with_their_rows_and_back(goal, latest_schema_after):
    from django.contrib.contenttypes.models import ContentType

    old = migrate(MOVE_BEFORE)
    token = old.get_model("approvals", "AgentToken").objects.create(
        goal_id=goal.pk, name="laptop", prefix="gp_abc", token_hash="0" * 64
    )
    reports = old.get_model("approvals", "AgentReport")
    reports.objects.create(goal_id=goal.pk, token=token, command="pytest", exit_code=1, passed=False, output_tail="E1")
    reports.objects.create(goal_id=goal.pk, token=token, name="usage", tokens=900)  # not a check
    expires = timezone.now() + timedelta(hours=1)
    request = old.get_model("approvals", "ApprovalRequest").objects.create(
        goal_id=goal.pk, kind="step", origin="gateway", expires_at=expires, details={"command": "make deploy"}
    )
    loop_request = old.get_model("approvals", "ApprovalRequest").objects.create(
        goal_id=goal.pk, kind="step", origin="loop", expires_at=expires
    )
    old.get_model("approvals", "GatewayCall").objects.create(
        goal_id=goal.pk, token=token, tool_name="Bash", call_key="k" * 64, verdict="ask", request_id=request.pk
    )
    ContentType.objects.get_or_create(app_label="approvals", model="agenttoken")

    migrate_to_latest()
    assert AgentToken.objects.get().name == "laptop"
    assert GatewayCall.objects.get().request_id == request.pk
    assert sorted(AgentReport.objects.values_list("tokens", flat=True)) == [0, 900]
    moved = ApprovalRequest.objects.get(pk=request.pk)
    assert [(check["command"], check["passed"], check["output_tail"]) for check in moved.evidence] == [
        ("pytest", False, "E1")
    ]
    assert ApprovalRequest.objects.get(pk=loop_request.pk).evidence == []
    assert ContentType.objects.filter(app_label="gateway", model="agenttoken").exists()
    assert not ContentType.objects.filter(app_label="approvals", model="agenttoken").exists()

    back = migrate(MOVE_BEFORE)
    assert back.get_model("approvals", "AgentToken").objects.get().name == "laptop"
    assert back.get_model("approvals", "GatewayCall").objects.get().request_id == request.pk
    assert ContentType.objects.filter(app_label="approvals", model="agenttoken").exists()
