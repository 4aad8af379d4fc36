"""Gateway requests on the human side: the approval page shows the tool call and its diff, and each tool call keeps
its own pending request next to the managed loop's one (inbox, push, expiry, goal page)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from approvals import push
from approvals.models import ApprovalRequest, RequestStatus, expire_overdue_requests
from gateway import api
from gateway import calls as gateway
from gateway.calls import ASK, ToolCall
from gateway.models import AgentToken
from goals import loop
from goals.models import GoalStatus, OnTimeout
from tests.factories import HTMX

pytestmark = pytest.mark.django_db


@pytest.fixture
def high_risk(goal):
    """A running high-risk goal: every command and write asks a person."""
    goal.status = GoalStatus.RUNNING
    goal.risk = "high"
    goal.rollback_note = "git revert the branch"
    goal.protected_paths = ["secrets/**"]
    goal.save()
    return goal


def bash(repo: Path, command: str, **extra) -> ToolCall:
    return ToolCall("Bash", {"command": command}, cwd=str(repo), agent="claude", **extra)


def patch_of(count: int, lines: int = 0) -> str:
    """A unified diff adding `count` new files, each two lines long plus `lines` more."""
    filler = "".join(f"+line_{i} = 'some text to make the file longer'\n" for i in range(lines))
    return "".join(
        f"diff --git a/src/mod_{n}.py b/src/mod_{n}.py\nnew file mode 100644\n--- /dev/null\n+++ b/src/mod_{n}.py\n"
        f"@@ -0,0 +1,{2 + lines} @@\n+value_{n} = {n}\n{filler}+name_{n} = 'mod {n}'\n"
        for n in range(count)
    )


def ask(goal, call: ToolCall, token=None) -> ApprovalRequest:
    outcome = gateway.propose(goal, call, token)
    assert outcome.verdict == ASK, outcome.reason
    return outcome.request


# --- the approval page of a gateway request ----------------------------------------------------------------------


def test_a_bash_call_shows_the_command_and_who_asked(client, high_risk, git_repo, owner):
    token = AgentToken.issue(high_risk, owner, name="claude on my laptop")[0]
    call = bash(git_repo, "npm run migrate -- --force", session_id="sess-42", tool_use_id="toolu_01")
    request = ask(high_risk, call, token)
    client.force_login(owner)
    html = client.get(f"/approvals/{request.pk}/").text
    assert '<h1 class="ask">Allow Claude Code to run Bash: npm run migrate -- --force' in html
    assert '<pre class="tool-command">npm run migrate -- --force</pre>' in html
    assert "token “claude on my laptop”" in html
    assert "<code>sess-42</code>" in html and "toolu_01" in html and f"<code>{git_repo}</code>" in html
    assert "No changes come with this request." in html


def test_a_patch_shows_its_files_the_first_few_rendered_the_rest_on_demand(client, high_risk, git_repo, owner):
    call = ToolCall("apply_patch", {"patch": patch_of(6)}, cwd=str(git_repo), agent="codex")
    request = ask(high_risk, call)
    client.force_login(owner)
    html = client.get(f"/approvals/{request.pk}/").text
    assert '<h1 class="ask">Allow Codex to run apply_patch: src/mod_0.py, src/mod_1.py, src/mod_2.py' in html and "<code>src/mod_5.py</code>" in html
    assert html.count('<table class="hunk">') == 3
    for index in range(3):
        assert f'<details class="file" id="file-{index}" open>' in html
    for index in range(3, 6):
        assert f'hx-get="/approvals/{request.pk}/files/{index}/" hx-trigger="toggle once"' in html
    assert "value_0" in html and "value_4" not in html
    partial = client.get(f"/approvals/{request.pk}/files/4/", **HTMX)
    assert partial.status_code == 200 and "value_4" in partial.text and "<html" not in partial.text
    full = client.get(f"/approvals/{request.pk}/files/4/")
    assert full.status_code == 200 and "value_4" in full.text and "<html" in full.text
    assert client.get(f"/approvals/{request.pk}/files/6/").status_code == 404


def test_a_write_shows_its_diff_against_the_file_in_the_repository(client, high_risk, git_repo, owner):
    (git_repo / "app.py").write_text("def f():\n    return 1\n")
    call = ToolCall(
        "Write", {"file_path": str(git_repo / "app.py"), "content": "def f():\n    return 2\n"}, cwd=str(git_repo)
    )
    request = ask(high_risk, call)
    client.force_login(owner)
    html = client.get(f"/approvals/{request.pk}/").text
    assert "Allow an agent (API) to run Write" in html and "app.py" in html and "+1 −1" in html
    assert html.count('<tr class="ln ln-add') == 1 and html.count('<tr class="ln ln-del') == 1


def test_an_mcp_tool_shows_its_input(client, high_risk, git_repo, owner):
    call = ToolCall("mcp__db__query", {"sql": "DROP TABLE users"}, cwd=str(git_repo), agent="claude")
    request = ask(high_risk, call)
    client.force_login(owner)
    html = client.get(f"/approvals/{request.pk}/").text
    assert "Allow Claude Code to run mcp__db__query" in html and "DROP TABLE users" in html


def test_the_checks_the_agent_reported_before_it_asked_are_the_evidence(client, high_risk, git_repo, owner):
    gateway.record_evidence(high_risk, None, command="pytest -q", exit_code=1, output_tail="1 failed: test_login")
    request = ask(high_risk, bash(git_repo, "git push"))
    gateway.record_evidence(high_risk, None, command="later check", exit_code=0)
    client.force_login(owner)
    page = client.get(f"/approvals/{request.pk}/").text
    html = page[page.index('id="evidence-h"') : page.index('id="contract-h"')]
    assert "pytest -q" in html and "1 failed: test_login" in html and "later check" not in html


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("approver", 200), ("outsider", 404)])
def test_a_gateway_request_and_its_files_are_for_the_goals_people(client, high_risk, git_repo, who, status, request):
    approval = ask(high_risk, ToolCall("apply_patch", {"patch": patch_of(1)}, cwd=str(git_repo)))
    client.force_login(request.getfixturevalue(who))
    assert client.get(f"/approvals/{approval.pk}/").status_code == status
    assert client.get(f"/approvals/{approval.pk}/files/0/").status_code == status
    assert client.get(f"/approvals/{approval.pk}/files/?start=0").status_code == status


def test_a_huge_patch_is_kept_in_whole_files(high_risk, git_repo):
    call = ToolCall("apply_patch", {"patch": patch_of(30, lines=60)}, cwd=str(git_repo))
    request = ask(high_risk, call)
    kept = request.diff
    assert request.diff_truncated and len(kept) <= gateway.MAX_DIFF_DETAIL and "diff" not in request.details
    assert kept.endswith("'\n") and kept.count("diff --git") == kept.count("+++ b/")


# --- several pending requests per goal -----------------------------------------------------------------------------


def test_parallel_tool_calls_each_keep_their_own_request(high_risk, git_repo, owner):
    first = ask(high_risk, bash(git_repo, "npm run build"))
    second = ask(high_risk, bash(git_repo, "npm run lint"))
    assert first.pk != second.pk
    assert set(ApprovalRequest.objects.pending().values_list("pk", flat=True)) == {first.pk, second.pk}
    second.decide(owner, "approve")
    first.refresh_from_db()
    assert first.status == RequestStatus.PENDING
    assert gateway.request_outcome(second.pk).decision == "allow"


def test_the_loop_keeps_one_request_and_never_supersedes_the_agents(high_risk, git_repo):
    agents = ask(high_risk, bash(git_repo, "make deploy"))
    old_loop = ApprovalRequest.open(high_risk, "step", summary="Step 3", step_number=3)
    new_loop = ApprovalRequest.open(high_risk, "stall", summary="No step finished")
    statuses = dict(ApprovalRequest.objects.values_list("pk", "status"))
    assert statuses == {
        agents.pk: RequestStatus.PENDING,
        old_loop.pk: RequestStatus.SUPERSEDED,
        new_loop.pk: RequestStatus.PENDING,
    }
    later = ask(high_risk, bash(git_repo, "make release"))
    assert ApprovalRequest.objects.get(pk=new_loop.pk).status == RequestStatus.PENDING
    assert set(ApprovalRequest.objects.pending().from_gateway().values_list("pk", flat=True)) == {agents.pk, later.pk}
    assert list(ApprovalRequest.objects.pending().from_loop().values_list("pk", flat=True)) == [new_loop.pk]


def test_the_inbox_lists_every_pending_call_of_one_goal(client, high_risk, git_repo, owner):
    requests = [ask(high_risk, bash(git_repo, f"make target_{n}")) for n in range(3)]
    client.force_login(owner)
    html = client.get("/").text
    for request in requests:
        assert f"/approvals/{request.pk}/" in html
    assert "<code>make target_2</code>" in html


def test_each_calls_notification_has_its_own_tag(high_risk, git_repo, owner):
    first, second = (ask(high_risk, bash(git_repo, command)) for command in ("make a", "make b"))
    loop_request = ApprovalRequest.open(high_risk, "step", summary="Step 1", step_number=1)
    tags = {push.payload_for_request(request, owner)["tag"] for request in (first, second, loop_request)}
    assert len(tags) == 3


def test_several_overdue_calls_each_expire_and_deny(high_risk, git_repo):
    high_risk.on_timeout = OnTimeout.DENY_AND_CONTINUE
    high_risk.save()
    requests = [ask(high_risk, bash(git_repo, f"make step_{n}")) for n in range(3)]
    ApprovalRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_overdue_requests() == 3
    for request in requests:
        outcome = gateway.request_outcome(request.pk)
        assert outcome.status == RequestStatus.EXPIRED and outcome.decision == "deny"


def test_the_goal_page_counts_the_waiting_requests(client, high_risk, git_repo, owner):
    for command in ("make a", "make b"):
        ask(high_risk, bash(git_repo, command))
    client.force_login(owner)
    html = client.get(f"/goals/{high_risk.pk}/").text
    waiting = high_risk.approval_requests.pending()
    assert waiting.count() == 2
    assert all(f'href="/approvals/{request.pk}/"' in html for request in waiting)


def test_resuming_a_goal_with_only_agent_requests_pending_runs_it(high_risk, git_repo, owner):
    ask(high_risk, bash(git_repo, "make a"))
    high_risk.status = GoalStatus.PAUSED
    high_risk.save()
    assert loop.resume(high_risk, owner)
    high_risk.refresh_from_db()
    assert high_risk.status == GoalStatus.RUNNING


def test_an_agent_that_sits_at_its_own_prompt_becomes_a_stall_and_its_calls_stay_open(high_risk, git_repo, owner):
    token, _ = AgentToken.issue(high_risk, owner, name="claude")
    waiting = ask(high_risk, bash(git_repo, "make deploy"))
    quiet_since = timezone.now() - loop.stall_after() - timedelta(minutes=1)
    type(high_risk).objects.filter(pk=high_risk.pk).update(last_progress_at=quiet_since)
    for event, body in (("Notification", {"message": "Claude is waiting for your input"}), ("Stop", {})):
        api.record_hook_event(token, event, {"session_id": "s1", **body})  # no progress: the clock keeps running
    assert high_risk.pk in [goal_id for goal_id, _ in loop.detect_stalls()]
    high_risk.refresh_from_db()
    assert high_risk.status == GoalStatus.STALLED
    stall = ApprovalRequest.objects.pending().from_loop().get()
    assert stall.kind == "stall" and ApprovalRequest.objects.get(pk=waiting.pk).is_pending
    messages = list(high_risk.events.values_list("message", flat=True))
    assert "Claude Code: Claude is waiting for your input" in messages and "Claude Code finished its turn." in messages
    denied = gateway.propose(high_risk, bash(git_repo, "make other"))
    assert denied.verdict == "deny" and denied.reason == gateway.STALLED_REASON


def test_several_calls_waiting_past_the_limit_remind_once(high_risk, git_repo):
    for command in ("make a", "make b", "make c"):
        ask(high_risk, bash(git_repo, command))
    long_ago = timezone.now() - loop.stall_after() - timedelta(minutes=1)
    ApprovalRequest.objects.update(created_at=long_ago)
    type(high_risk).objects.filter(pk=high_risk.pk).update(last_progress_at=timezone.now())
    reminders = loop.detect_stalls()
    assert [goal_id for goal_id, _ in reminders] == [high_risk.pk]
    assert all(request.details.get("reminded") for request in ApprovalRequest.objects.all())
    assert loop.detect_stalls() == []
