"""The gateway: a tool call → the managed loop's gates → allow, deny or ask; rules; retries joining requests."""

from pathlib import Path

import pytest

from approvals.models import ApprovalRequest, RequestOrigin, RequestStatus
from gateway import calls as gateway
from gateway.calls import ALLOW, ASK, DENY, ToolCall
from gateway.models import AlwaysAllowRule, GatewayCall, RuleKind
from goals.models import GoalStatus
from tests.factories import run_git

# --- reading tool calls (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "written"),
    [
        pytest.param("pytest -q", [], id="a-plain-command-writes-nothing"),
        pytest.param("cat secrets.env", [], id="reading-is-not-writing"),
        pytest.param("echo hi > out.txt", ["out.txt"], id="redirection"),
        pytest.param("echo hi >> logs/a.log 2>&1", ["logs/a.log"], id="append-and-fd-duplication"),
        pytest.param("make 2> err.log", ["err.log"], id="stderr-redirection-drops-the-fd"),
        pytest.param("rm -rf build/ && ls", ["build/"], id="rm-then-another-command"),
        pytest.param("mv a.py b.py", ["a.py", "b.py"], id="mv-writes-both"),
        pytest.param("cp a.py dest/", ["dest/a.py"], id="cp-into-a-directory-writes-the-file-there"),
        pytest.param("sed -i 's/a/b/' app.py", ["app.py"], id="sed-in-place"),
        pytest.param("sed 's/a/b/' app.py", [], id="sed-to-stdout"),
        pytest.param("cat a | tee b.log", ["b.log"], id="tee"),
        pytest.param("sudo rm x", ["x"], id="through-sudo"),
        pytest.param("FOO=1 touch y", ["y"], id="after-an-assignment"),
        pytest.param("git rm old.py", ["old.py"], id="git-rm"),
        pytest.param("cmd > /dev/null", [], id="dev-null-is-not-a-file"),
        pytest.param("echo 'unterminated", [], id="unparseable-writes-nothing"),
    ],
)
def test_command_writes_names_the_files_a_command_visibly_writes(command, written):
    assert gateway.command_writes(command) == written


def describe(tool, tool_input, repo, cwd=""):
    return gateway.describe(ToolCall(tool, tool_input, cwd=cwd or str(repo)), repo)


def test_a_write_to_an_existing_file_is_a_real_diff_against_it(git_repo):
    proposal = describe("Write", {"file_path": str(git_repo / "app.py"), "content": "print('bye')\n"}, git_repo)
    [file] = proposal.diff.files
    assert (file.path, file.change, file.added, file.removed) == ("app.py", "modified", 1, 1)
    assert "-print('hello')" in proposal.diff_text and "+print('bye')" in proposal.diff_text


def test_a_write_to_a_new_file_adds_it(git_repo):
    proposal = describe("Write", {"file_path": "src/new.py", "content": "a\nb\n"}, git_repo)
    [file] = proposal.diff.files
    assert (file.path, file.change, file.added) == ("src/new.py", "added", 2)


def test_an_edit_that_removes_an_assertion_shows_the_removed_line(git_repo):
    (git_repo / "tests").mkdir()
    (git_repo / "tests" / "test_app.py").write_text("def test_x():\n    assert f() == 3\n")
    proposal = describe(
        "Edit",
        {"file_path": "tests/test_app.py", "old_string": "    assert f() == 3\n", "new_string": "    pass\n"},
        git_repo,
    )
    [file] = proposal.diff.files
    removed = [line.text for hunk in file.hunks for line in hunk.lines if line.kind == "-"]
    assert removed == ["    assert f() == 3"] and file.category == "test"


def test_an_edit_of_a_file_it_cannot_read_is_judged_from_its_strings(git_repo):
    proposal = describe(
        "MultiEdit", {"file_path": "gone.py", "edits": [{"old_string": "a", "new_string": "b"}]}, git_repo
    )
    [file] = proposal.diff.files
    assert (file.path, file.added, file.removed) == ("gone.py", 1, 1)


@pytest.mark.parametrize(
    ("tool_input", "paths"),
    [
        pytest.param(
            {
                "patch": "*** Begin Patch\n*** Add File: docs/a.md\n+hello\n*** Update File: app.py\n@@\n-x\n+y\n*** End Patch\n"
            },
            ("docs/a.md", "app.py"),
            id="codex-patch-format",
        ),
        pytest.param(
            {"patch": "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-a\n+b\n"},
            ("app.py",),
            id="unified-diff",
        ),
        pytest.param(
            {"changes": [{"path": "lib/x.py", "kind": {"type": "add"}, "diff": "x = 1\n"}]},
            ("lib/x.py",),
            id="codex-v2-changes",
        ),
        pytest.param(
            {"fileChanges": {"lib/y.py": {"update": {"unified_diff": "@@ -1 +1 @@\n-a\n+b\n", "move_path": None}}}},
            ("lib/y.py",),
            id="codex-legacy-file-changes",
        ),
    ],
)
def test_patches_become_the_files_they_change(git_repo, tool_input, paths):
    assert describe("apply_patch", tool_input, git_repo).paths == paths


def test_a_file_tool_writing_outside_the_repository_is_named(git_repo, tmp_path):
    proposal = describe("Write", {"file_path": str(tmp_path / "elsewhere.txt"), "content": ""}, git_repo)
    assert proposal.outside == (str(tmp_path / "elsewhere.txt"),) and not proposal.paths


@pytest.mark.parametrize(
    ("tool", "tool_input"),
    [
        pytest.param("Write", {"content": "x"}, id="write-without-a-path"),
        pytest.param("Bash", {}, id="bash-without-a-command"),
        pytest.param("Edit", {"file_path": "a.py", "old_string": 1}, id="edit-without-strings"),
        pytest.param("apply_patch", {"patch": "not a diff"}, id="patch-that-is-no-diff"),
    ],
)
def test_unreadable_tool_calls_say_what_is_missing(git_repo, tool, tool_input):
    with pytest.raises(gateway.BadToolCall):
        describe(tool, tool_input, git_repo)


@pytest.mark.parametrize(
    ("kind", "value", "tool", "tool_input", "allowed"),
    [
        pytest.param(
            "command_prefix", "npm test", "Bash", {"command": "npm test -- --watch=false"}, True, id="prefix-words"
        ),
        pytest.param(
            "command_prefix", "npm test", "Bash", {"command": "npm testing"}, False, id="prefix-is-whole-words"
        ),
        pytest.param(
            "command_prefix", "git status", "Bash", {"command": "git status && rm -rf /"}, False, id="no-chaining"
        ),
        pytest.param(
            "command_prefix", "echo", "Bash", {"command": "echo $(cat ~/.ssh/id_rsa)"}, False, id="no-expansion"
        ),
        pytest.param("path", "docs/**", "Write", {"file_path": "docs/a/b.md", "content": ""}, True, id="path-glob"),
        pytest.param("path", "docs/**", "Write", {"file_path": "src/a.py", "content": ""}, False, id="path-elsewhere"),
        pytest.param("path", "docs/**", "Bash", {"command": "ls"}, False, id="path-rule-never-covers-a-command"),
    ],
)
def test_always_allow_rules_cover_only_what_they_say(git_repo, kind, value, tool, tool_input, allowed):
    assert gateway.rule_allows(kind, value, describe(tool, tool_input, git_repo)) is allowed


def test_the_same_call_retried_has_the_same_key_whatever_its_id(git_repo):
    first = ToolCall("Bash", {"command": "ls"}, cwd=str(git_repo), tool_use_id="toolu_1")
    retry = ToolCall("Bash", {"command": "ls"}, cwd=str(git_repo), tool_use_id="toolu_2")
    other = ToolCall("Bash", {"command": "ls -a"}, cwd=str(git_repo))
    assert gateway.call_key(first, git_repo) == gateway.call_key(retry, git_repo) != gateway.call_key(other, git_repo)


# --- judging calls (database) -----------------------------------------------------------------------------------


@pytest.fixture
def running(goal):
    goal.status = GoalStatus.RUNNING
    goal.protected_paths = ["secrets/**"]
    goal.scope_paths = []
    goal.save()
    return goal


def bash(repo: Path, command: str) -> ToolCall:
    return ToolCall("Bash", {"command": command}, cwd=str(repo), agent="claude")


def write(repo: Path, path: str, content: str = "x = 1\n") -> ToolCall:
    return ToolCall("Write", {"file_path": str(repo / path), "content": content}, cwd=str(repo), agent="claude")


def test_a_call_no_gate_minds_is_allowed(running, git_repo):
    outcome = gateway.propose(running, bash(git_repo, "pytest -q"))
    assert outcome.verdict == ALLOW and outcome.request is None
    assert GatewayCall.objects.get().verdict == ALLOW


def test_a_protected_path_is_denied_with_the_reason(running, git_repo):
    outcome = gateway.propose(running, write(git_repo, "secrets/key.txt"))
    assert outcome.verdict == DENY
    assert "Protected path changed: secrets/key.txt" in outcome.reason
    assert not ApprovalRequest.objects.exists()


def test_a_shell_command_that_deletes_a_protected_path_is_denied(running, git_repo):
    (git_repo / "secrets").mkdir()
    (git_repo / "secrets" / "key.txt").write_text("k")
    assert gateway.propose(running, bash(git_repo, "rm -rf secrets/")).verdict == DENY


@pytest.mark.parametrize("status", [GoalStatus.PAUSED, GoalStatus.READY, GoalStatus.CANCELLED])
def test_a_goal_that_is_not_running_denies_every_call_and_tells_the_agent_to_stop(running, git_repo, status):
    running.status = status
    running.save()
    outcome = gateway.propose(running, bash(git_repo, "ls"))
    assert outcome.verdict == DENY and outcome.stop
    assert running.get_status_display().lower().split()[0] in outcome.reason.lower() or "not started" in outcome.reason


def test_a_cwd_outside_the_repository_is_denied(running, tmp_path):
    outcome = gateway.propose(running, ToolCall("Bash", {"command": "ls"}, cwd=str(tmp_path)))
    assert outcome.verdict == DENY and "outside the goal's repository" in outcome.reason


def test_a_high_risk_goal_asks_for_every_command_and_opens_a_request(running, git_repo):
    running.risk = "high"
    running.rollback_note = "git revert"
    running.save()
    outcome = gateway.propose(running, bash(git_repo, "ls"))
    assert outcome.verdict == ASK
    request = outcome.request
    assert request.status == RequestStatus.PENDING and request.kind == "step"
    assert request.origin == RequestOrigin.GATEWAY and "source" not in request.details and request.details["command"] == "ls"
    assert "Claude Code wants to run: ls" in request.summary
    assert [f["gate"] for f in request.findings] == ["risk"]
    running.refresh_from_db()
    assert running.status == GoalStatus.RUNNING  # the agent waits on its own side


def test_reading_is_never_gated_even_on_a_high_risk_goal(running, git_repo):
    running.risk = "high"
    running.save()
    assert gateway.propose(running, ToolCall("Read", {"file_path": "app.py"}, cwd=str(git_repo))).verdict == ALLOW


def weaken_tests(repo: Path) -> ToolCall:
    (repo / "tests").mkdir(exist_ok=True)
    (repo / "tests" / "test_app.py").write_text("def test_x():\n    assert f() == 3\n")
    return ToolCall(
        "Edit",
        {
            "file_path": str(repo / "tests/test_app.py"),
            "old_string": "    assert f() == 3\n",
            "new_string": "    pass\n",
        },
        cwd=str(repo),
        agent="claude",
    )


def test_removing_an_assertion_asks_and_the_retry_joins_the_same_request(running, git_repo):
    call = weaken_tests(git_repo)
    first = gateway.propose(running, call)
    assert first.verdict == ASK and {"tests_weakened", "tests_without_code"} <= {f["gate"] for f in first.findings}
    retry = gateway.propose(running, call)
    assert retry.verdict == ASK and retry.joined and retry.request.pk == first.request.pk
    assert ApprovalRequest.objects.count() == 1


def test_a_retry_after_the_phone_approved_is_allowed_once(running, git_repo, owner):
    call = weaken_tests(git_repo)
    request = gateway.propose(running, call).request
    request.decide(owner, "approve", comment="fine, it was dead code")
    retry = gateway.propose(running, call)
    assert retry.verdict == ALLOW and retry.joined
    assert retry.reason == "Approved on the phone by owner: fine, it was dead code"
    again = gateway.propose(running, call)
    assert again.verdict == ASK and not again.joined and again.request.pk != request.pk


def test_a_retry_after_the_phone_rejected_is_denied_with_the_comment(running, git_repo, approver):
    call = weaken_tests(git_repo)
    request = gateway.propose(running, call).request
    request.decide(approver, "reject", comment="keep the assertion")
    retry = gateway.propose(running, call)
    assert retry.verdict == DENY and "keep the assertion" in retry.reason


def test_an_always_allow_rule_turns_an_ask_into_an_allow(running, git_repo, owner):
    running.risk = "high"
    running.save()
    AlwaysAllowRule.objects.create(goal=running, kind=RuleKind.COMMAND_PREFIX, value="npm test", created_by=owner)
    outcome = gateway.propose(running, bash(git_repo, "npm test --silent"))
    assert outcome.verdict == ALLOW and "npm test" in outcome.reason


def test_a_revoked_rule_no_longer_allows(running, git_repo, owner):
    running.risk = "high"
    running.save()
    rule = AlwaysAllowRule.objects.create(
        goal=running, kind=RuleKind.COMMAND_PREFIX, value="npm test", created_by=owner
    )
    rule.revoke(owner)
    assert gateway.propose(running, bash(git_repo, "npm test")).verdict == ASK


def test_an_always_allow_rule_never_lifts_a_deny(running, git_repo, owner):
    AlwaysAllowRule.objects.create(goal=running, kind=RuleKind.PATH, value="secrets/**", created_by=owner)
    assert gateway.propose(running, write(git_repo, "secrets/key.txt")).verdict == DENY


def test_blast_radius_counts_the_files_touched_since_the_last_approval(running, git_repo, owner):
    running.budget_files_per_step = 3
    running.save()
    for name in ("a.py", "b.py", "c.py"):
        assert gateway.propose(running, write(git_repo, f"src/{name}")).verdict == ALLOW
    fourth = gateway.propose(running, write(git_repo, "src/d.py"))
    assert fourth.verdict == ASK and [f["gate"] for f in fourth.findings if f["severity"] != "info"] == ["blast_radius"]
    fourth.request.decide(owner, "approve")
    assert gateway.propose(running, write(git_repo, "src/e.py")).verdict == ALLOW


def test_a_used_up_budget_denies_and_tells_the_agent_to_stop(running, git_repo):
    running.budget_tokens = 1000
    running.save()
    gateway.record_usage(running, None, 1500)
    outcome = gateway.propose(running, bash(git_repo, "ls"))
    assert outcome.verdict == DENY and outcome.stop and "Budget used up" in outcome.reason


def test_the_same_failure_reported_again_and_again_asks_a_person(running, git_repo):
    for _ in range(3):
        gateway.record_evidence(running, None, command="pytest", exit_code=1, output_tail="E   AssertionError: 2 != 3")
    outcome = gateway.propose(running, bash(git_repo, "pytest"))
    assert outcome.verdict == ASK and "repeated_failure" in {f["gate"] for f in outcome.findings}


def test_the_request_outcome_says_who_decided_and_whether_to_stop(running, git_repo, owner):
    running.risk = "high"
    running.save()
    request = gateway.propose(running, bash(git_repo, "ls")).request
    assert not gateway.request_outcome(request.pk).settled
    request.decide(owner, "stop")
    outcome = gateway.request_outcome(request.pk)
    assert (outcome.status, outcome.decision, outcome.verdict, outcome.stop, outcome.decided_by) == (
        "rejected",
        "deny",
        "stop",
        True,
        "owner",
    )


def test_an_agent_token_can_never_decide(running, agent_token, git_repo):
    running.risk = "high"
    running.save()
    token, _ = agent_token
    request = gateway.propose(running, bash(git_repo, "ls"), token).request
    with pytest.raises(Exception, match="agent never can"):
        request.decide(token, "approve")


def test_a_decision_wakes_the_waiting_agents_after_the_commit(
    running, git_repo, owner, django_capture_on_commit_callbacks, monkeypatch
):
    published = []
    monkeypatch.setattr(gateway, "publish_settled", published.append)
    running.risk = "high"
    running.save()
    request = gateway.propose(running, bash(git_repo, "ls")).request
    with django_capture_on_commit_callbacks(execute=True):
        request.decide(owner, "approve")
    assert request.pk in published


def test_path_rules_come_from_the_committed_base_branch_not_from_what_the_agent_wrote(running, git_repo):
    (git_repo / ".gitattributes").write_text("api/gen/** linguist-generated\n")
    run_git(git_repo, "add", ".gitattributes")
    run_git(git_repo, "-c", "user.name=a", "-c", "user.email=a@a", "commit", "-qm", "mark generated code")
    # The agent elsewhere rewrites the attributes in the worktree and marks the tests vendored, then edits.
    (git_repo / ".gitattributes").write_text("tests/** linguist-vendored\n")
    outcome = gateway.propose(running, write(git_repo, "api/gen/client.py"))
    assert outcome.verdict == DENY
    assert "Generated file changed: api/gen/client.py" in outcome.reason
    new_test = write(git_repo, "tests/test_new.py", "def test_x():\n    assert 1\n")
    assert gateway.propose(running, new_test).verdict == ALLOW
    running.refresh_from_db()
    assert running.detected_paths["branch"] == "main"
    assert running.path_rules().generated.patterns == ("api/gen/**",)
