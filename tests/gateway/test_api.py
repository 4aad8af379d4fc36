"""The gateway's JSON API: tokens and their scope, proposing steps, decisions, reports, rules, the schema, and
200 agents long-polling one daphne at once."""

import asyncio
import json
import os
import re
import time
from datetime import timedelta
from urllib.parse import urlsplit

import aiohttp
import psutil
import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import URLPattern, get_resolver
from django.utils import timezone
from openapi_spec_validator import validate

from approvals.models import ApprovalRequest, RequestStatus
from gateway.models import AgentReport, AgentToken, AlwaysAllowRule, GatewayCall
from goals.models import Goal, GoalStatus
from tests.factories import good_goal_fields, subprocess_database_url
from tests.support.processes import running_daphne


@pytest.fixture
def secret(running):
    return AgentToken.issue(running, running.owner)[1]


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def propose(client, goal_id, secret, body, **extra):
    return client.post(
        f"/api/v1/goals/{goal_id}/steps", body, content_type="application/json", **bearer(secret), **extra
    )


def bash(repo, command):
    return {"tool": "Bash", "input": {"command": command}, "cwd": str(repo)}


# --- tokens -----------------------------------------------------------------------------------------------------


def test_a_missing_token_is_401_json(client, running, git_repo):
    response = client.post(f"/api/v1/goals/{running.pk}/steps", bash(git_repo, "ls"), content_type="application/json")
    assert response.status_code == 401 and "Authorization: Bearer" in response.json()["error"]


def test_a_wrong_token_is_401(client, running, git_repo):
    assert propose(client, running.pk, "gp_wrong", bash(git_repo, "ls")).status_code == 401


def test_an_expired_token_is_401_with_the_reason(client, running, git_repo):
    token, secret = AgentToken.issue(running, days=1)
    AgentToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = propose(client, running.pk, secret, bash(git_repo, "ls"))
    assert response.status_code == 401 and "expired" in response.json()["error"]


def test_a_revoked_token_is_401_with_the_reason(client, running, git_repo):
    token, secret = AgentToken.issue(running)
    token.revoke()
    response = propose(client, running.pk, secret, bash(git_repo, "ls"))
    assert response.status_code == 401 and "revoked" in response.json()["error"]


def test_another_goals_token_answers_as_for_an_unknown_goal(client, running, owner, git_repo):
    other = Goal.objects.create(owner=owner, **good_goal_fields(git_repo))
    other_secret = AgentToken.issue(other)[1]
    response = propose(client, running.pk, other_secret, bash(git_repo, "ls"))
    unknown = propose(client, 987654, other_secret, bash(git_repo, "ls"))
    assert response.status_code == unknown.status_code == 404
    assert response.json() == {"error": f"No goal {running.pk}."}
    assert unknown.json() == {"error": "No goal 987654."}
    assert not GatewayCall.objects.exists()


def test_an_unknown_goal_is_404_json(client, secret, git_repo):
    response = propose(client, 999_999, secret, bash(git_repo, "ls"))
    assert response.status_code == 404 and response.json() == {"error": "No goal 999999."}


def test_only_the_hash_and_a_prefix_are_stored(running):
    token, secret = AgentToken.issue(running)
    assert secret.startswith("gp_") and secret.startswith(token.prefix) and secret not in token.token_hash
    assert AgentToken.authenticate(secret).pk == token.pk


def test_a_token_cannot_decide_there_is_no_endpoint_for_it(client, running, secret, git_repo):
    running.risk = "high"
    running.save()
    request_id = propose(client, running.pk, secret, bash(git_repo, "ls")).json()["request"]["id"]
    client.post(f"/approvals/{request_id}/decide", {"verdict": "approve"}, **bearer(secret))
    assert ApprovalRequest.objects.get(pk=request_id).status == RequestStatus.PENDING


def test_agent_token_command_prints_the_token_as_the_last_word(running, capsys, client, git_repo):
    call_command("agent_token", str(running.pk), "--name", "ci", "--days", "7")
    lines = capsys.readouterr().out.strip().splitlines()
    secret = lines[-1].split()[-1].split("=")[-1]
    assert lines[-2] == f"export GOALPOST_GOAL={running.pk}"  # goalpost-hook's PostToolUse posts to this goal
    token = AgentToken.objects.get()
    assert (token.name, token.goal_id) == ("ci", running.pk)
    assert timedelta(days=6) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert propose(client, running.pk, secret, bash(git_repo, "ls")).status_code == 200


def test_agent_token_command_refuses_an_unknown_goal(db):
    with pytest.raises(CommandError, match="No goal 4242"):
        call_command("agent_token", "4242")


# --- proposing ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"{nope", "Malformed JSON", id="bad-json"),
        pytest.param(b"[1, 2]", "must be a JSON object", id="not-an-object"),
        pytest.param(b'{"input": {}}', "`tool` is required", id="no-tool"),
        pytest.param(b'{"tool": "Bash", "input": "ls"}', "`input` must be an object", id="input-not-object"),
        pytest.param(b'{"tool": "Bash", "input": {}}', "needs `command`", id="bash-without-command"),
        pytest.param(
            b'{"tool": "Bash", "input": {"command": "ls"}, "cwd": 3}', "`cwd` must be a string", id="cwd-not-string"
        ),
    ],
)
def test_a_body_it_cannot_use_is_400_with_a_json_reason(client, running, secret, body, reason):
    response = client.post(f"/api/v1/goals/{running.pk}/steps", body, content_type="application/json", **bearer(secret))
    assert response.status_code == 400 and reason in response.json()["error"]


def test_unknown_fields_are_ignored(client, running, secret, git_repo):
    body = {**bash(git_repo, "ls"), "model": "claude-x", "future_field": {"a": 1}}
    assert propose(client, running.pk, secret, body).json()["verdict"] == "allow"


def test_the_verdicts_allow_deny_and_ask(client, running, secret, git_repo):
    allowed = propose(client, running.pk, secret, bash(git_repo, "ls")).json()
    assert allowed["verdict"] == "allow" and allowed["request"] is None
    write = {"tool": "Write", "input": {"file_path": "secrets/a.key", "content": "x"}, "cwd": str(git_repo)}
    denied = propose(client, running.pk, secret, write).json()
    assert denied["verdict"] == "deny" and denied["findings"][0]["gate"] == "protected_path"
    running.risk = "high"
    running.save()
    asked = propose(client, running.pk, secret, bash(git_repo, "make deploy")).json()
    request = ApprovalRequest.objects.get()
    assert asked["verdict"] == "ask" and asked["request"] == {
        "id": request.pk,
        "status": "pending",
        "decision_url": f"/api/v1/requests/{request.pk}/decision",
    }
    again = propose(client, running.pk, secret, bash(git_repo, "make deploy")).json()
    assert again["joined"] and again["request"]["id"] == request.pk


def test_a_paused_goal_denies_with_stop(client, running, secret, git_repo):
    running.status = GoalStatus.PAUSED
    running.save()
    body = propose(client, running.pk, secret, bash(git_repo, "ls")).json()
    assert body["verdict"] == "deny" and body["stop"] and "paused" in body["reason"]


# --- decisions (async views: the data must be committed for their worker threads) ------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_decision_of_a_request(client, running, secret, owner, git_repo):
    running.risk = "high"
    running.save()
    request_id = propose(client, running.pk, secret, bash(git_repo, "make deploy")).json()["request"]["id"]
    url = f"/api/v1/requests/{request_id}/decision"
    pending = client.get(url, **bearer(secret)).json()
    assert (pending["status"], pending["decision"]) == ("pending", None)
    ApprovalRequest.objects.get(pk=request_id).decide(owner, "approve", comment="go")
    decided = client.get(url, {"wait": "5"}, **bearer(secret)).json()
    assert decided | {"decided_at": None} == {
        "request": request_id,
        "goal": running.pk,
        "status": "approved",
        "decision": "allow",
        "verdict": "approve",
        "stop": False,
        "reason": "Approved on the phone by owner: go",
        "decided_by": "owner",
        "comment": "go",
        "decided_at": None,
    }


@pytest.mark.django_db(transaction=True)
def test_the_decision_endpoint_refuses_other_goals_and_bad_waits(client, running, secret, owner, git_repo):
    other = Goal.objects.create(owner=owner, **good_goal_fields(git_repo))
    other_request = ApprovalRequest.open(other, "step", summary="other")
    another_goals = client.get(f"/api/v1/requests/{other_request.pk}/decision", **bearer(secret))
    assert another_goals.status_code == 404 and another_goals.json() == {"error": f"No request {other_request.pk}."}
    assert client.get("/api/v1/requests/987654/decision", **bearer(secret)).status_code == 404
    assert client.get(f"/api/v1/requests/{other_request.pk}/decision").status_code == 401
    bad = client.get(f"/api/v1/requests/{other_request.pk}/decision", {"wait": "soon"}, **bearer(secret))
    assert bad.status_code == 400 and "wait" in bad.json()["error"]


# --- reports ---------------------------------------------------------------------------------------------------


def test_evidence_is_recorded_and_repeated_failures_ask_a_person(client, running, secret, git_repo):
    failing = {"command": "pytest -q", "exit_code": 1, "output_tail": "E   AssertionError: 2 != 3\n1 failed"}
    for _ in range(3):
        response = client.post(
            f"/api/v1/goals/{running.pk}/evidence", failing, content_type="application/json", **bearer(secret)
        )
        assert response.status_code == 201 and response.json()["passed"] is False
    assert response.json()["failure_signature"] == "pytest -q: E AssertionError: N != N"
    asked = propose(client, running.pk, secret, bash(git_repo, "pytest -q")).json()
    assert asked["verdict"] == "ask" and "repeated_failure" in {f["gate"] for f in asked["findings"]}


def test_evidence_needs_a_command_and_an_exit_code(client, running, secret):
    response = client.post(
        f"/api/v1/goals/{running.pk}/evidence", {"command": "pytest"}, content_type="application/json", **bearer(secret)
    )
    assert response.status_code == 400 and "exit_code" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        pytest.param("usage", {"tokens": -1}, 400, "`tokens` must be a whole number from 0 to 1000000000000.", id="negative-tokens"),
        pytest.param("usage", {"tokens": 10**12 + 1}, 400, "`tokens` must be a whole number from 0 to 1000000000000.", id="too-many-tokens"),
        pytest.param("usage", {"tokens": True}, 400, "`tokens` must be a whole number", id="tokens-a-boolean"),
        pytest.param("usage", {"tokens": "12"}, 400, "`tokens` must be a whole number", id="tokens-a-string"),
        pytest.param("usage", {}, 400, "`tokens` is required.", id="no-tokens"),
        pytest.param("usage", b"", 400, "Malformed JSON", id="empty-body"),
        pytest.param("evidence", {"command": "pytest", "exit_code": 2**31}, 400, "`exit_code` must be a whole number from -2147483648 to 2147483647", id="exit-code-beyond-int32"),
        pytest.param("evidence", {"command": "x" * 10_001, "exit_code": 0}, 400, "`command` must be a string of at most 10000 characters", id="command-too-long"),
        pytest.param("evidence", {"command": "pytest", "exit_code": 1, "failing_tests": "t"}, 400, "`failing_tests` must be a list of strings", id="tests-not-a-list"),
        pytest.param("evidence", {"command": "pytest", "exit_code": 1, "failing_tests": ["a", 2]}, 400, "`failing_tests` must be a list of strings", id="tests-not-strings"),
        pytest.param("evidence", {"command": "pytest", "exit_code": 0, "timed_out": "no"}, 400, "`timed_out` must be true or false.", id="timed-out-a-string"),
        pytest.param("steps", {"tool": "Bash", "input": {"command": "ls \u0000"}}, 400, "NUL characters", id="nul"),
        pytest.param("steps", {"tool": "Bash", "input": {"x\u0000": "ls"}}, 400, "NUL characters", id="nul-in-a-key"),
        pytest.param("steps", b'{"tool": "Bash", "input": {"command": "\\udc00"}}', 400, "lone surrogates", id="lone-surrogate"),
        pytest.param("steps", {"tool": "Bash", "input": {"command": "x" * 1024 * 1024}}, 413, "larger than 1024 KB", id="oversized"),
    ],
)
def test_every_refusal_is_one_json_shape_whose_reason_names_the_field(client, running, secret, path, body, status, reason):
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = client.post(
        f"/api/v1/goals/{running.pk}/{path}", data, content_type="application/json", **bearer(secret)
    )
    assert response.status_code == status and set(response.json()) == {"error"}
    assert reason in response.json()["error"]
    assert not AgentReport.objects.exists() and not GatewayCall.objects.exists()


def test_a_long_output_keeps_its_end_and_a_long_list_of_failing_tests_its_first_200(client, running, secret):
    body = {
        "command": "pytest",
        "exit_code": 1,
        "output_tail": "x" * 30_000 + "1 failed",
        "failing_tests": [f"t{i}.py::test_" + "x" * 600 for i in range(300)],
    }
    response = client.post(f"/api/v1/goals/{running.pk}/evidence", body, content_type="application/json", **bearer(secret))
    assert response.status_code == 201
    report = AgentReport.objects.get()
    assert len(report.output_tail) == 20_000 and report.output_tail.endswith("1 failed")
    assert len(report.failing_tests) == 200 and {len(test) for test in report.failing_tests} == {500}
    assert report.failing_tests[0].startswith("t0.py::")


def test_a_wrong_method_is_a_json_405_with_allow(client, running, secret):
    response = client.get(f"/api/v1/goals/{running.pk}/steps", **bearer(secret))
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json() == {"error": "Use POST."}


def test_reported_tokens_count_against_the_budget(client, running, secret, git_repo):
    running.budget_tokens = 1000
    running.save()
    response = client.post(
        f"/api/v1/goals/{running.pk}/usage", {"tokens": 1200}, content_type="application/json", **bearer(secret)
    )
    assert response.json() == {"reported_tokens": 1200, "budget_tokens": 1000}
    denied = propose(client, running.pk, secret, bash(git_repo, "ls")).json()
    assert denied["verdict"] == "deny" and denied["stop"] and "Budget used up: 1200 of 1000" in denied["reason"]


def test_a_heartbeat_marks_progress_so_a_silent_agent_becomes_a_stall(client, running, secret):
    response = client.post(f"/api/v1/goals/{running.pk}/heartbeat", **bearer(secret))
    assert response.json() == {"goal": running.pk, "status": "running", "stop": False, "reason": ""}
    running.refresh_from_db()
    assert timezone.now() - running.last_progress_at < timedelta(seconds=5)


def test_the_goal_as_the_agent_reads_it(client, running, secret):
    body = client.get(f"/api/v1/goals/{running.pk}", **bearer(secret)).json()
    assert body["objective"] == running.objective and body["budgets"]["tokens"] == running.budget_tokens
    assert body["status"] == "running" and body["when_unanswered"] == "deny"


# --- always-allow rules ------------------------------------------------------------------------------------------


def test_an_agent_lists_rules_but_never_adds_them(client, running, secret, owner):
    AlwaysAllowRule.objects.create(goal=running, kind="command_prefix", value="npm test", created_by=owner)
    listed = client.get(f"/api/v1/goals/{running.pk}/rules", **bearer(secret)).json()["rules"]
    assert [(rule["kind"], rule["value"]) for rule in listed] == [("command_prefix", "npm test")]
    response = client.post(
        f"/api/v1/goals/{running.pk}/rules",
        {"kind": "path", "value": "**"},
        content_type="application/json",
        **bearer(secret),
    )
    assert response.status_code == 403 and AlwaysAllowRule.objects.count() == 1


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 201), ("approver", 403), ("outsider", 404), (None, 401)],
)
def test_only_the_owner_adds_rules(client, running, who, status, request):
    if who:
        client.force_login(request.getfixturevalue(who))
    response = client.post(
        f"/api/v1/goals/{running.pk}/rules", {"kind": "path", "value": "docs/**"}, content_type="application/json"
    )
    assert response.status_code == status


def test_the_owner_revokes_a_rule(client, running, owner):
    client.force_login(owner)
    rule_id = client.post(
        f"/api/v1/goals/{running.pk}/rules",
        {"kind": "command_prefix", "value": "npm   test"},
        content_type="application/json",
    ).json()["id"]
    assert AlwaysAllowRule.objects.get(pk=rule_id).value == "npm test"
    response = client.delete(f"/api/v1/goals/{running.pk}/rules/{rule_id}")
    assert response.status_code == 200 and response.json()["revoked_at"]
    assert not running.always_allow_rules.active().exists()


def test_a_command_prefix_with_shell_operators_is_refused(client, running, owner):
    client.force_login(owner)
    response = client.post(
        f"/api/v1/goals/{running.pk}/rules",
        {"kind": "command_prefix", "value": "ls; rm"},
        content_type="application/json",
    )
    assert response.status_code == 400


# --- the schema ------------------------------------------------------------------------------------------------


def api_routes() -> dict[str, str]:
    """Every route under /api/v1/, by URL name: the OpenAPI paths they should have."""
    (api,) = [entry for entry in get_resolver().url_patterns if str(entry.pattern) == "api/v1/"]
    routes = {}
    for pattern in api.url_patterns:
        assert isinstance(pattern, URLPattern)
        routes[pattern.name] = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
    return routes


def test_the_openapi_document_is_generated_valid_and_served_without_login(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)  # raises on any error against the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0" and document["servers"] == [{"url": "/api/v1"}]
    assert set(document["paths"]) == set(api_routes().values())


def test_every_operation_documents_its_answer_and_the_errors_it_gives(client):
    document = client.get("/api/v1/openapi.json").json()
    operations = [op for path, item in document["paths"].items() if path != "/openapi.json" for op in item.values()]
    assert len(operations) == 13
    for operation in operations:
        codes = set(operation["responses"])
        assert codes & {"200", "201"}, operation["operationId"]
        if operation["operationId"] != "claudeCodeHook":  # its refusals are 200 denies (tests/gateway/test_claude_hook)
            assert "401" in codes, operation["operationId"]
        for code in codes - {"200", "201"}:
            schema = operation["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (operation["operationId"], code)
    body = document["components"]["schemas"]["Evidence"]["properties"]
    assert {key: body["tokens"][key] for key in ("type", "minimum", "maximum")} == {
        "type": "integer", "minimum": 0, "maximum": 10**12
    }
    assert body["exit_code"]["anyOf"][0]["maximum"] == 2**31 - 1


def test_every_documented_path_resolves(client):
    resolver = get_resolver()
    for path in client.get("/api/v1/openapi.json").json()["paths"]:
        concrete = path.replace("{goal_id}", "1").replace("{rule_id}", "1").replace("{request_id}", "1")
        assert resolver.resolve("/api/v1" + concrete).url_name.startswith("api_")


# --- 200 agents at once ---------------------------------------------------------------------------------------

AGENTS = 200
# The event loop's own worker threads (asyncio's default executor, where the waits' short database reads run) may
# grow up to this while the agents arrive; beyond it, a thread per waiting agent would show.
SHARED_WORKERS = min(32, (os.cpu_count() or 1) + 4)


def database_connections() -> int | None:
    """Connections to the test database other than this process's, on PostgreSQL (None elsewhere)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_200_agents_long_poll_one_server_without_a_thread_or_connection_each(owner, git_repo):
    """Through Django's own ASGI handler and the whole middleware stack, as every request is served."""
    waiting = []
    for _ in range(AGENTS):
        goal = Goal.objects.create(owner=owner, status=GoalStatus.RUNNING, **good_goal_fields(git_repo))
        waiting.append((ApprovalRequest.open(goal, "step", summary="deploy?"), AgentToken.issue(goal)[1]))
    with running_daphne(subprocess_database_url()) as (url, server):
        daphne = psutil.Process(server.pid)
        answers, decided_at, load = asyncio.run(long_poll_and_decide(url, daphne, waiting, owner))
    assert [answer["status"] for answer in answers] == ["approved"] * AGENTS
    # Every agent heard "approved" within its one long-poll (no timeout answer, no second call): delivery
    # latency itself is a bench figure (gateway_waiters), not a unit-test assertion on a shared machine.
    grown = load["threads"] - load["threads_before"]
    threads = f"{load['threads_before']} before, {load['threads']} while they wait"
    assert grown <= SHARED_WORKERS + 2, f"daphne grew {grown} threads for {AGENTS} waiting agents: {threads}"
    if load["connections"] is not None:
        assert load["connections"] < 20, f"{load['connections']} database connections for {AGENTS} waiting agents"


async def long_poll_and_decide(url, daphne, waiting, owner):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def agent(request, secret, wait="25"):
            async with session.get(
                f"{url}/api/v1/requests/{request.pk}/decision",
                params={"wait": wait},
                headers={"Authorization": f"Bearer {secret}"},
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                assert response.status == 200
                return await response.json(), time.monotonic()

        await agent(*waiting[0], wait="0")  # the first request's imports are not the waiters'
        await asyncio.sleep(0.5)
        load = {"threads_before": daphne.num_threads()}
        tasks = [asyncio.create_task(agent(request, secret)) for request, secret in waiting]
        deadline = time.monotonic() + 20
        while established(daphne) < AGENTS:
            assert time.monotonic() < deadline, f"only {established(daphne)} agents connected"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # every request has reached its view and is waiting
        load |= {"threads": daphne.num_threads(), "connections": await asyncio.to_thread(database_connections)}
        decided_at = await asyncio.to_thread(decide_all, waiting, owner)
        results = await asyncio.gather(*tasks)
    load["answered"] = [answered for _, answered in results]
    return [answer for answer, _ in results], decided_at, load


def established(process) -> int:
    return sum(1 for conn in process.net_connections(kind="tcp") if conn.status == psutil.CONN_ESTABLISHED)


def decide_all(waiting, owner) -> dict[int, float]:
    decided_at = {}
    for request, _ in waiting:
        request.decide(owner, "approve")
        decided_at[request.pk] = time.monotonic()
    connection.close()
    return decided_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/requests/{request}/decision?wait=25"), ("POST", "/api/v1/hooks/claude?wait=25")],
    ids=["decision", "claude-hook"],
)
def test_the_waiting_endpoints_refuse_a_host_the_server_does_not_serve(live_url, running, secret, method, path):
    """The waits go through Django's middleware like every request: its Host check (ALLOWED_HOSTS) included."""
    request = ApprovalRequest.open(running, "step", summary="deploy?")
    url = live_url + path.format(request=request.pk)
    headers = {"Authorization": f"Bearer {secret}", "Host": "goalpost.attacker.example"}
    response = requests.request(method, url, json={"hook_event_name": "Stop"}, headers=headers, timeout=30)
    if method == "GET":
        assert response.status_code == 400
    else:  # Claude Code's hook answers every refusal with a 200 (a message here: a Stop has nothing to deny)
        assert response.status_code == 200 and "host name it does not serve" in response.json()["systemMessage"]
    headers["Host"] = urlsplit(live_url).netloc
    assert requests.request(method, url.replace("wait=25", "wait=0"), json={"hook_event_name": "Stop"},
                            headers=headers, timeout=30).status_code == 200  # fmt: skip
