"""The sandbox, attacked as a hostile agent would: one test per class of attack.

Each test runs the real loop (`manage.py run_goal`) with a command agent whose script tries the attack inside the
real bubblewrap sandbox, then checks that the attack had no effect on the host and that the step failed, or was
contained, with a reason a person can read. docs/security.md maps each rule to these tests.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from goals import sandbox
from goals.models import AgentProfile, Goal, GoalStatus, StepStatus
from tests.factories import form_data, goal_git_dir, goal_worktree, registered_repository, run_git

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def real_sandbox(settings, tmp_path):
    if not sandbox.sandbox_available():
        pytest.skip(f"no sandbox here: {sandbox.sandbox_reason()}")
    settings.GOALPOST_WORKTREE_ROOT = tmp_path / "worktrees"


def attack(owner, repo: Path, script: str, *, egress_hosts=(), run_unsandboxed=False, **fields) -> tuple[Goal, dict]:
    """Run one step of a goal whose agent is ``bash -c script`` (the prompt is its first argument); return the
    goal and what run_goal printed last."""
    profile = AgentProfile.objects.create(
        name=f"Attacker {uuid.uuid4().hex[:6]}",
        adapter="command",
        preset="custom",
        options={"command": ["bash", "-c", script, "attacker", "{prompt}"]},
        egress_hosts=list(egress_hosts),
        run_unsandboxed=run_unsandboxed,
    )
    goal = Goal.objects.create(
        owner=owner,
        title="Attack",
        objective="Run the attacker's script",
        repository=registered_repository(repo, users=[owner]),
        base_branch="main",
        agent_profile=profile,
        status=GoalStatus.RUNNING,
        **fields,
    )
    out = StringIO()
    call_command("run_goal", goal.pk, "--max-steps", "1", stdout=out, stderr=StringIO())
    goal.refresh_from_db()
    return goal, json.loads(out.getvalue().strip().splitlines()[-1])


def loot_of(goal: Goal) -> str:
    """What the agent managed to write into its worktree's loot.txt, as the step's diff recorded it."""
    step = goal.steps.get()
    return step.diff + step.error


def test_it_cannot_read_host_secrets(owner, git_repo):
    secret_key = (Path(django_settings.VAR_DIR) / "secret_key").read_text().strip()
    os.environ["GOALPOST_PROBE_SECRET"] = secret_key  # in the worker's environment, as SECRET_KEY would be
    try:
        script = (
            f"{{ cat /etc/shadow; ls -A /root; cat {django_settings.VAR_DIR}/secret_key; "
            f"ls {django_settings.VAR_DIR}; env; grep -ra sessionid /var/lib/postgresql | head -1; "
            "cat /proc/1/environ; } > loot.txt 2>&1; echo done"
        )
        goal, _ = attack(owner, git_repo, script)
    finally:
        del os.environ["GOALPOST_PROBE_SECRET"]
    loot = loot_of(goal)
    assert "loot.txt" in loot, "the step should have kept what the agent could read"
    shadow_root = Path("/etc/shadow").read_text().splitlines()[0]
    for secret in (secret_key, shadow_root, "GOALPOST_PROBE_SECRET", "goalpost.sqlite3", "DATABASE_URL"):
        assert secret not in loot
    assert "Permission denied" in loot  # /etc/shadow is refused to the sandbox user


def test_it_cannot_write_outside_its_worktree(owner, git_repo, tmp_path):
    probe = f"goalpost-probe-{uuid.uuid4().hex[:8]}"
    before = (git_repo / "app.py").read_text()
    targets = [f"{git_repo}/app.py", f"/etc/{probe}", f"/tmp/{probe}", f"{django_settings.VAR_DIR}/{probe}",
               f"{tmp_path}/{probe}", f"/root/{probe}"]
    script = "; ".join(f"echo owned >> {target}" for target in targets) + "; echo tried > tried.txt"
    goal, _ = attack(owner, git_repo, script)

    assert (git_repo / "app.py").read_text() == before
    for target in targets[1:]:
        assert not Path(target).exists(), target
    assert goal.steps.get().status == StepStatus.PASSED  # contained: the attempts failed, the step went on


@pytest.mark.parametrize(
    ("plant", "what"),
    [
        pytest.param(
            'mkdir -p sub/.git && printf "[core]\\n\\tfsmonitor = touch {marker}\\n" > sub/.git/config '
            '&& echo "ref: refs/heads/main" > sub/.git/HEAD && mkdir -p sub/.git/objects sub/.git/refs',
            "sub/.git",
            id="a-nested-repository-with-an-fsmonitor",
        ),
        pytest.param(
            'printf "[filter \\"x\\"]\\n\\tclean = touch {marker}\\n" > cfg && echo "gitdir: $PWD/evil" > .git '
            '&& mkdir -p evil/objects evil/refs && echo "ref: refs/heads/main" > evil/HEAD && cp cfg evil/config '
            '&& echo "* filter=x" > .gitattributes',
            ".git",
            id="a-git-file-pointing-at-a-planted-config",
        ),
        pytest.param(
            'mkdir -p .git/worktrees/x && echo "$PWD" > .git/worktrees/x/gitdir '
            '&& printf "#!/bin/sh\\ntouch {marker}\\n" > .git/worktrees/x/post-checkout',
            ".git",
            id="a-worktree-admin-directory",
        ),
        pytest.param("mkfifo hang-the-worker", "hang-the-worker", id="a-fifo-to-hang-the-workers-git"),
    ],
)
def test_planted_git_control_files_fail_the_step_and_never_run(owner, git_repo, tmp_path, plant, what):
    marker = tmp_path / "planted-code-ran"
    tmp_path.chmod(0o755)  # so that the sandbox user could touch the marker, if anything ran it
    goal, _ = attack(owner, git_repo, plant.format(marker=marker))
    step = goal.steps.get()

    assert step.status == StepStatus.FAILED
    assert "planted" in step.error and what in step.error and "nothing of them ran" in step.error
    assert not marker.exists()
    assert "goalpost/" not in run_git(git_repo, "branch", "--list")


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("echo x >> $GIT_DIR/config; echo '[core] fsmonitor = touch {marker}' >> $GIT_DIR/config",
                     id="the-goals-git-config"),
        pytest.param("mkdir -p $GIT_DIR/hooks; printf '#!/bin/sh\\ntouch {marker}\\n' > $GIT_DIR/hooks/pre-commit",
                     id="a-hook-in-the-goals-git-directory"),
        pytest.param("echo /tmp/elsewhere > $GIT_DIR/objects/info/alternates", id="the-alternates-file"),
        pytest.param("printf '#!/bin/sh\\ntouch {marker}\\n' > {repo}/.git/hooks/post-receive; "
                     "echo '[core] fsmonitor = touch {marker}' >> {repo}/.git/config", id="the-users-repository"),
    ],
)
def test_the_git_directories_are_out_of_the_agents_reach(owner, git_repo, tmp_path, script):
    marker = tmp_path / "planted-code-ran"
    config_before = (git_repo / ".git" / "config").read_text()
    goal, _ = attack(owner, git_repo, script.format(marker=marker, repo=git_repo) + "; echo tried > tried.txt")
    git_dir = goal_git_dir(goal.pk)

    assert goal.steps.get().status == StepStatus.PASSED
    assert "fsmonitor" not in (git_dir / "config").read_text()
    assert not (git_dir / "hooks" / "pre-commit").exists()
    assert (git_dir / "objects" / "info" / "alternates").read_text().strip().endswith("/objects")
    assert (git_repo / ".git" / "config").read_text() == config_before
    assert not (git_repo / ".git" / "hooks" / "post-receive").exists()
    assert not marker.exists()


def test_it_cannot_move_the_refs_of_the_users_repository(owner, git_repo):
    main = run_git(git_repo, "rev-parse", "main").strip()
    script = (
        "echo evil > app.py; "
        f"git -C {git_repo} update-ref refs/heads/main HEAD; "
        f"echo 0000000000000000000000000000000000000000 > {git_repo}/.git/refs/heads/main; "
        f"git push {git_repo} HEAD:refs/heads/main; git update-ref refs/heads/main HEAD; "
        "echo tried > tried.txt"
    )
    goal, _ = attack(owner, git_repo, script)

    assert run_git(git_repo, "rev-parse", "main").strip() == main
    assert run_git(git_repo, "branch", "--list").split() == ["*", "main"]
    assert run_git(goal_git_dir(goal.pk), "rev-parse", "refs/heads/main").strip() == main


class Listener:
    """A loopback TCP server that counts the connections it accepts."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.server.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.accepted += 1
            connection.close()

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=2)
        self.server.close()


def test_egress_reaches_only_the_hosts_its_profile_allows(owner, git_repo):
    allowed, other = Listener(), Listener()
    try:
        fetch = "curl -sS -m 5 -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:{port}/ >> net.txt 2>&1"
        script = "; ".join([
            fetch.format(port=allowed.port),
            fetch.format(port=other.port),
            f"curl -sS -m 3 --noproxy '*' http://127.0.0.1:{allowed.port}/ >> net.txt 2>&1",
            "echo tried >> net.txt",
        ])
        goal, _ = attack(owner, git_repo, script, egress_hosts=[f"127.0.0.1:{allowed.port}"])
    finally:
        allowed.close()
        other.close()
    assert allowed.accepted == 1  # through the proxy, once; the raw connection ignoring it went nowhere
    assert other.accepted == 0
    diff = goal.steps.get().diff
    assert "+403" in diff and "Couldn't connect to server" in diff  # the raw attempt found no route out


def test_it_reaches_no_host_that_is_not_allowed(owner, git_repo):
    listener = Listener()
    try:
        script = (
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {listener.port}), timeout=3)\" "
            "> net.txt 2>&1; "
            f"curl -sS -m 3 http://127.0.0.1:{listener.port}/ >> net.txt 2>&1; "
            "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 6379), timeout=3)\" >> net.txt 2>&1; "
            "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 5432), timeout=3)\" >> net.txt 2>&1; "
            "echo tried >> net.txt"
        )
        goal, _ = attack(owner, git_repo, script)
    finally:
        listener.close()
    assert listener.accepted == 0
    diff = goal.steps.get().diff
    # Inside its own network namespace 127.0.0.1 is the box's own loopback: nothing listens there.
    assert "+tried" in diff and diff.count("Connection refused") >= 3


@pytest.mark.parametrize(
    ("limits", "script", "reason"),
    [
        pytest.param({"cpu_seconds": 2}, "while :; do :; done", "CPU", id="cpu"),
        pytest.param({"memory_mb": 64}, "python3 -c 'x = bytearray(512 * 1024 * 1024); x[::4096] = b\"x\" * (len(x) // 4096)'",
                     "memory", id="memory"),
        pytest.param({"processes": 16}, "for i in $(seq 200); do sleep 30 & done; wait", "processes", id="processes"),
        pytest.param({"disk_mb": 20}, "for i in $(seq 60); do head -c 1048576 /dev/zero > f$i; sleep 0.05; done",
                     "grew the worktree by more than 20 MB", id="disk"),
        pytest.param({"file_size_mb": 5}, "head -c 20000000 /dev/zero > big.bin", "MB", id="file-size"),
    ],
)
def test_exhausting_a_limit_stops_the_step_with_a_reason(owner, git_repo, settings, limits, script, reason):
    settings.GOALPOST_SANDBOX_LIMITS = {**settings.GOALPOST_SANDBOX_LIMITS, **limits}
    goal, _ = attack(owner, git_repo, script)
    step = goal.steps.get()

    assert step.status == StepStatus.FAILED
    assert reason.lower() in step.error.lower(), step.error
    assert "stopped" in step.error.lower() or "limit" in step.error.lower(), step.error


def test_files_the_step_creates_belong_to_the_sandbox_user(owner, git_repo):
    who = sandbox.identity()
    goal, _ = attack(owner, git_repo, "echo made > made.txt; id -u > whoami.txt")
    step = goal.steps.get()
    assert step.status == StepStatus.PASSED
    assert f"+{who.uid}" in step.diff
    worktree = goal_worktree(goal.pk)
    assert (worktree / "made.txt").stat().st_uid == who.uid
    assert subprocess.run(["stat", "-c", "%u", str(worktree / "whoami.txt")], capture_output=True, text=True,
                          check=True).stdout.strip() == str(who.uid)


class KeyCatcher:
    """A local OpenAI-compatible endpoint that records the Authorization headers it is sent."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        catcher = self
        self.authorizations: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                catcher.authorizations.append(self.headers.get("Authorization", ""))
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.dumps({"choices": [{"message": {"content": "No change. DONE"}}], "usage": {}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_an_owner_cannot_send_the_servers_environment_out_through_agent_settings(
    owner, git_repo, client, make_profile, settings
):
    catcher = KeyCatcher()
    try:
        # A staff profile pointed at the endpoint, its key taken from a variable staff named.
        os.environ["GOALPOST_TEST_OPENAI_KEY"] = "sk-staff-key"
        profile = make_profile(
            "openai", base_url=catcher.url, api_key_env="GOALPOST_TEST_OPENAI_KEY", models=["coder"],
            egress_hosts=[catcher.url.split("//")[1].split("/")[0]],
        )
        repository = registered_repository(git_repo, users=[owner])
        client.force_login(owner)
        # What the owner writes can name no variable, no executable and no URL: such fields are not taken.
        post = client.post("/goals/new/", {
            # A check that runs here: a goal whose command does not resolve would not start.
            **form_data(repository, agent_profile=str(profile.pk), agent_model="coder",
                        evidence_text=[f"{sys.executable} -V", "The table looks the same"]),
            "agent_settings": json.dumps({"api_key_env": "SECRET_KEY", "base_url": "http://127.0.0.1:1/"}),
            "api_key_env": "SECRET_KEY", "base_url": "http://127.0.0.1:1/", "executable": "/bin/sh",
        })
        assert post.status_code == 302, post.content[:2000]
        goal = Goal.objects.latest("pk")
        Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.RUNNING)
        call_command("run_goal", goal.pk, "--max-steps", "1", stdout=StringIO(), stderr=StringIO())
    finally:
        os.environ.pop("GOALPOST_TEST_OPENAI_KEY", None)
        catcher.close()
    assert catcher.authorizations == ["Bearer sk-staff-key"]
    assert settings.SECRET_KEY not in json.dumps(list(Goal.objects.filter(pk=goal.pk).values()), default=str)


def test_a_registered_folder_later_turned_into_a_link_to_goalposts_own_files_is_refused(owner, tmp_path):
    home = tmp_path / "alice"
    home.mkdir()
    real = home / "repo"
    run_git(tmp_path, "init", "-q", "-b", "main", str(real))
    (real / "app.py").write_text("x = 1\n")
    run_git(real, "add", "-A")
    run_git(real, "commit", "-q", "-m", "init")
    goal, _ = attack(owner, real, "echo ok > ok.txt")
    assert goal.steps.get().status == StepStatus.PASSED

    # The folder staff registered becomes a link to Goalpost's own checkout: a new goal on it never starts, and
    # the finished goal's branch is not pushed there.
    real.rename(home / "moved")
    real.symlink_to(django_settings.BASE_DIR)
    second, printed = attack(owner, real, "echo ok > ok.txt")
    assert printed["status"] == GoalStatus.PAUSED and not second.steps.exists()
    assert "inside Goalpost's own files" in second.events.filter(kind="status").first().message
    Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.DONE)
    from goals import loop

    assert loop.publish(goal.pk) is False
    assert "goalpost/" not in run_git(django_settings.BASE_DIR, "branch", "--list")
    assert goal.events.filter(kind="publish", message__contains="not pushed").exists()


def test_only_a_staff_profile_setting_runs_an_agent_unsandboxed_and_the_goal_page_says_so(owner, git_repo, client):
    goal, _ = attack(owner, git_repo, "id -u > who.txt")
    assert f"+{sandbox.identity().uid}" in goal.steps.get().diff
    AgentProfile.objects.filter(pk=goal.agent_profile_id).update(run_unsandboxed=True)
    client.force_login(owner)
    assert "staff set its profile to run unsandboxed" in client.get(f"/goals/{goal.pk}/").content.decode()

    unboxed, _ = attack(owner, git_repo, "id -u > who.txt", run_unsandboxed=True)
    assert f"+{os.geteuid()}" in unboxed.steps.get().diff
