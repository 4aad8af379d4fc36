"""One goal with every kind of person around it, for the security tests."""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from approvals.models import ApprovalRequest, PushSubscription
from gateway.models import AgentToken, AlwaysAllowRule
from goals.models import Goal, Step, WorkerHeartbeat
from tests.factories import good_goal_fields

ROLES = ("anonymous", "outsider", "viewer", "approver", "owner", "agent")
DIFF = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-print('hello')\n+print('hi')\n"


@dataclass
class World:
    goal: Goal
    users: dict
    request: ApprovalRequest
    secret: str
    spare_token: AgentToken
    rule: AlwaysAllowRule
    device: PushSubscription


@pytest.fixture
def world(db, tmp_path) -> World:
    """A draft goal (owner, one approver, one viewer), a pending step request with a diff, an agent token."""
    make = get_user_model().objects.create_user
    users = {name: make(name, f"{name}@example.invalid", f"{name}-pass-123") for name in ROLES[1:5]}
    goal = Goal.objects.create(owner=users["owner"], **good_goal_fields(tmp_path))
    goal.approvers.add(users["approver"])
    goal.viewers.add(users["viewer"])
    Step.objects.create(goal=goal, number=1, status="waiting", diff=DIFF, diff_stats={"files": 1})
    request = ApprovalRequest.open(goal, "step", summary="1 file", step_number=1)
    secret = AgentToken.issue(goal, users["owner"])[1]
    spare_token = AgentToken.issue(goal, users["owner"], name="spare")[0]
    rule = AlwaysAllowRule.objects.create(goal=goal, kind="path", value="docs/**", created_by=users["owner"])
    device = PushSubscription.objects.create(
        user=users["owner"], endpoint="https://push.example.invalid/owner", p256dh="x", auth="y"
    )
    WorkerHeartbeat.beat("security-tests")
    return World(goal, users, request, secret, spare_token, rule, device)


def client_for(world: World, role: str, *, csrf: bool = True) -> Client:
    """A client as the role: signed in (with a CSRF cookie and header, or none), a bearer token, or nobody."""
    client = Client(enforce_csrf_checks=True)
    if role == "agent":
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.secret}"
    elif role != "anonymous":
        client.force_login(world.users[role])
    if csrf and role != "agent":
        token = _get_new_csrf_string()
        client.cookies["csrftoken"] = token
        client.defaults["HTTP_X_CSRFTOKEN"] = token
    return client
