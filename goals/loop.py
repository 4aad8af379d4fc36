"""One step of a goal's loop: the state machine over the workspace, the agent, the evidence and the gates.

A worker claims the goal with a lease (an atomic conditional update), keeps the lease alive while the step runs,
and releases it at the end. A worker that dies mid-step leaves a running step and a lease that runs out; the
next claim reruns that same step from the last kept commit, so no step is lost and none is run twice.
Decisions come back through the approvals signals (goals/receivers.py) and only change rows here: the git work
of undoing a rejected step happens at the start of the next step, in the worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
    transaction,
)
from django.db.models import Max, Q
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestKind, RequestOrigin, RequestStatus, Verdict
from goals import agents, egress, evidence, gates, judge, lint, repopaths, sandbox
from goals.diffs import DiffError, FileDiff, ParsedDiff, parse_diff
from goals.models import (
    BASELINE_OUTPUT_CHARS,
    KEPT_STEP_STATUSES,
    AgentProfile,
    BaselineStatus,
    EvidenceBaseline,
    Goal,
    GoalStatus,
    OnTimeout,
    Step,
    StepStatus,
    baseline_commands,
    check_local_source,
    command_checks,
)
from goals.workspace import TRAVERSE_ONLY, Mirror, PlantedFiles, Workspace, WorkspaceError

log = logging.getLogger(__name__)

MAX_STORED_DIFF = 2_000_000
AGENT_LOG_CAP = 20_000
# Goal states a worker may step in, and states that end a goal.
FINAL_STATUSES = (GoalStatus.DONE, GoalStatus.FAILED, GoalStatus.CANCELLED)


@dataclass(frozen=True)
class StepOutcome:
    """What a step ended in: `continue` (enqueue the next), or the goal's new state, or `busy`/`idle`."""

    goal_id: int
    status: str
    step_number: int | None = None
    request: ApprovalRequest | None = None

    def as_dict(self, goal: Goal | None = None) -> dict:
        request = self.request
        return {
            "goal": self.goal_id,
            "status": goal.status if goal else self.status,
            "approval": {"id": request.pk, "kind": request.kind, "gates": request.gates} if request else None,
        }


def lease_seconds() -> int:
    return int(getattr(settings, "GOALPOST_STEP_LEASE_S", 120))


def worktree_root() -> Path:
    return Path(getattr(settings, "GOALPOST_WORKTREE_ROOT", settings.VAR_DIR / "worktrees"))


def workspace_for(goal: Goal) -> Workspace:
    """The goal's own checkout: Goalpost's mirror of its repository, a root-owned git directory under var/,
    and a worktree owned by the sandbox user."""
    root = worktree_root()
    repository = goal.repository
    return Workspace(
        repository.source,
        goal.pk,
        goal.base_branch,
        root=root,
        git_root=root.parent / "gitdirs",
        mirror_dir=root.parent / "repos" / repository.mirror_name,
        owner=sandbox_owner(),
        instance=settings.GOALPOST_INSTANCE,
    )


def agent_home(goal: Goal) -> Path:
    """The goal's private folder for its agent's own state (Codex's CODEX_HOME, with the provider's config):
    beside the worktrees, never inside one, owned by the sandbox user and closed to everyone else. The folder
    above it is the worker's, so the agent can replace what is inside its home but never the home itself."""
    root = worktree_root().parent / "agent-homes" / settings.GOALPOST_INSTANCE
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    root.chmod(0o711)
    home = root / f"goal-{goal.pk}"
    with contextlib.suppress(FileExistsError):
        home.mkdir(mode=0o700)
    if home.is_symlink() or not home.is_dir():
        raise WorkspaceError(f"The agent's home {home} is not a folder.")
    owner = sandbox_owner()
    if owner is not None:
        os.chown(home, *owner, follow_symlinks=False)
    home.chmod(0o700)
    return home


def sandbox_owner() -> tuple[int, int] | None:
    """Who the files of a worktree belong to: the sandbox's unprivileged user (None: the server's own user)."""
    who = sandbox.identity()
    return (who.uid, who.gid) if who.switched else None


# --- leases -------------------------------------------------------------------------------------------------


def claim(goal_id: int, token: str, enqueued_at: datetime | None = None) -> bool:
    """Take the goal's lease if it is running and nobody holds a live lease; True when this caller got it.

    A step queued by `enqueue_step` (it carries `enqueued_at`) claims only while a step is due: of two messages
    for one due step (the reaper re-queued one it thought lost, the broker redelivered one), the first to arrive
    takes it and the other claims nothing; neither waits for the other, so a long queue starves no goal.
    """
    now = timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    if enqueued_at is not None:
        free &= Q(step_enqueued_at__isnull=False)
    return bool(
        Goal.objects.filter(free, pk=goal_id, status=GoalStatus.RUNNING).update(
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds()),
            step_enqueued_at=None,
        )
    )


def release(goal_id: int, token: str) -> None:
    Goal.objects.filter(pk=goal_id, lease_token=token).update(lease_token="", lease_expires_at=None)


class LeaseKeeper:
    """Renews the lease from a thread while the step runs, so an hour-long agent turn is not taken over."""

    def __init__(self, goal_id: int, token: str):
        self.goal_id, self.token = goal_id, token
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._renew, name=f"lease-{goal_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _renew(self) -> None:
        interval = max(1.0, lease_seconds() / 4)
        try:
            while not self.stopped.wait(interval):
                try:
                    Goal.objects.filter(pk=self.goal_id, lease_token=self.token).update(
                        lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds())
                    )
                except Exception:  # a dropped connection: reopen it next time, or another worker takes the step
                    log.warning("could not renew the lease of goal %s", self.goal_id, exc_info=True)
                    close_old_connections()
        finally:
            close_old_connections()


# --- one step -----------------------------------------------------------------------------------------------


def run_step(goal_id: int, worker: str = "", enqueued_at: datetime | None = None) -> StepOutcome:
    """Claim the goal, run one step, release the goal. Never raises for what an agent or a repository does."""
    token = uuid.uuid4().hex
    if not claim(goal_id, token, enqueued_at):
        goal = Goal.objects.filter(pk=goal_id).first()
        return StepOutcome(goal_id, "busy" if goal and goal.status == GoalStatus.RUNNING else "idle")
    try:
        with LeaseKeeper(goal_id, token):
            goal = Goal.objects.get(pk=goal_id)
            return _run_claimed_step(goal, worker)
    finally:
        release(goal_id, token)


def _run_claimed_step(goal: Goal, worker: str) -> StepOutcome:
    if goal.require_sandbox and not sandbox.sandbox_available():
        goal.set_status(
            GoalStatus.PAUSED, None, f"Paused: this goal requires a sandbox ({sandbox.sandbox_reason()})."
        )
        return StepOutcome(goal.pk, GoalStatus.PAUSED)
    exhausted = goal.exhausted_budget()
    if exhausted is not None:
        request = judge.open_request(goal, [exhausted], summary=exhausted.reason)
        return StepOutcome(goal.pk, GoalStatus.WAITING, request=request)

    workspace = workspace_for(goal)
    refused = "" if workspace.exists() else source_refusal(goal)
    if refused:
        goal.set_status(GoalStatus.PAUSED, None, f"Paused: {refused}"[:500])
        return StepOutcome(goal.pk, GoalStatus.PAUSED)
    try:
        workspace.ensure()
        workspace.reset_to(kept_head(goal, workspace))
    except (WorkspaceError, OSError) as error:
        goal.set_status(GoalStatus.PAUSED, None, f"Paused: the workspace failed: {error}"[:500])
        return StepOutcome(goal.pk, GoalStatus.PAUSED)

    if not goal.steps.exists():
        not_started = _baseline_before_first_step(goal, workspace)
        if not_started is not None:
            return not_started
    step = _begin_step(goal, worker, parent_sha=workspace.head())
    if step is None:
        return StepOutcome(goal.pk, "busy")
    judge.started(goal, step.started_at)
    try:
        return _run_agent_and_judge(goal, step, workspace)
    except Exception as error:  # the loop never crashes on a step: record it and go on
        if isinstance(error, (OperationalError, InterfaceError)) and step.attempts < DATABASE_LOST_ATTEMPTS:
            # The database went away under the step (a dropped session, a failover), not the agent: the step stays
            # running, and the next claim runs it again from the last kept commit, as after a lost worker.
            log.warning("step %s of goal %s lost its database; it runs again: %s", step.number, goal.pk, error)
            _drop_broken_connections()
            return StepOutcome(goal.pk, "continue", step.number)
        log.exception("step %s of goal %s failed (attempt %s)", step.number, goal.pk, step.attempts)
        _fail_step(step, workspace, f"Internal error: {error}"[:2000])
        return StepOutcome(goal.pk, "continue", step.number)


def _drop_broken_connections() -> None:
    """Close this thread's database connections that no longer answer, so the next query opens a fresh one."""
    for connection in connections.all(initialized_only=True):
        if not connection.is_usable():
            connection.close()


# How many times one step may start over after losing the database before it is recorded failed.
DATABASE_LOST_ATTEMPTS = 3


def kept_head(goal: Goal, workspace: Workspace) -> str:
    """The commit the next step starts from: the last kept step's, else where the goal branched off."""
    last = goal.steps.filter(status__in=KEPT_STEP_STATUSES).exclude(commit_sha="").order_by("-number").first()
    return last.commit_sha if last else workspace.base_sha()


def _begin_step(goal: Goal, worker: str, parent_sha: str) -> Step | None:
    """Reuse a step a lost worker left running (same number, one more attempt), else number the next one."""
    now = timezone.now()
    runs_before = goal.steps.exclude(status=StepStatus.RUNNING).count()
    interrupted = goal.steps.filter(status=StepStatus.RUNNING).order_by("number").first()
    if interrupted is not None:
        interrupted.attempts += 1
        interrupted.worker, interrupted.started_at, interrupted.parent_sha = worker, now, parent_sha
        interrupted.save(update_fields=["attempts", "worker", "started_at", "parent_sha"])
        goal.record(
            "step", f"Step {interrupted.number} restarted: its worker was lost.", step=interrupted.number
        )
        return interrupted
    number = (goal.steps.aggregate(n=Max("number"))["n"] or 0) + 1
    try:
        with transaction.atomic():
            return Step.objects.create(
                goal=goal,
                number=number,
                worker=worker,
                started_at=now,
                parent_sha=parent_sha,
                run_index=runs_before,
            )
    except IntegrityError:
        return None


def _context(
    goal: Goal, step: Step, workspace: Workspace, box: sandbox.Session | None, home: Path | None = None
) -> agents.AgentContext:
    earlier = list(goal.steps.filter(number__lt=step.number).order_by("number"))
    rejected = set(goal.approval_requests.filter(status=RequestStatus.REJECTED).values_list("step_number", flat=True))
    previous = earlier[-1] if earlier else None
    usage = judge.usage(goal)
    remaining = {
        name: max(0, limit - used)
        for name, limit, used in (
            ("steps", goal.budget_steps, usage.steps),
            ("tokens", goal.budget_tokens, usage.tokens),
            ("minutes", goal.budget_minutes, int(usage.minutes)),
        )
        if limit
    }
    return agents.AgentContext(
        contract=goal.contract(),
        goal_title=goal.title,
        step_number=step.number,
        run_index=step.run_index,
        worktree=workspace.path,
        history=tuple(
            f"Step {s.number} ({s.get_status_display().lower()}): {s.summary or s.error}"[:300]
            for s in earlier
        ),
        last_findings=tuple(previous.findings) if previous else (),
        human_comments=tuple(latest_human_comments(goal)),
        outcomes=tuple(StepStatus.REJECTED.value if s.number in rejected else s.status for s in earlier),
        remaining=remaining,
        timeout_s=_step_timeout(goal, usage),
        env=box.env() if box is not None else sandbox.scrubbed_env(),
        wrap=box.wrap if box is not None else None,
        git=workspace.git_for_agents(),
        http=lambda: egress.requests_session(agent_egress(goal)),
        home=home,
    )


def _step_timeout(goal: Goal, usage: gates.Usage) -> float:
    if goal.budget_minutes:
        return max(60.0, (goal.budget_minutes - usage.minutes) * 60)
    return 3600.0


def agent_egress(goal: Goal) -> tuple[egress.Rule, ...]:
    """Where the goal's agent may connect, through the sandbox's proxy: its profile's model API and hosts
    (staff-written, so private addresses may be named) and the goal's own (public only)."""
    return tuple(egress.Rule.parse(entry, private_ok=private_ok) for entry, private_ok in goal.egress())


def evidence_egress(goal: Goal) -> tuple[egress.Rule, ...]:
    """Where the goal's evidence commands may connect: only the hosts the goal itself names (public only)."""
    return tuple(egress.Rule.parse(entry) for entry in goal.network_hosts)


def box_for(
    goal: Goal, workspace: Workspace, rules: tuple[egress.Rule, ...] = (), home: Path | None = None
) -> sandbox.Box:
    """The sandbox of a step: the worktree (and the agent's ``home``) writable, the goal's git directory and the
    mirror's objects read-only, egress only to ``rules``, the limits from settings."""
    git_dir, objects = workspace.git_dirs()
    writable = (home,) if home is not None else ()
    tools = tuple(Path(path) for path in getattr(settings, "GOALPOST_SANDBOX_READ_ONLY", ()) or ())
    return sandbox.Box(
        workspace.path, egress=rules, git_dir=git_dir, read_only=(objects, *tools), writable=writable
    )


@contextlib.contextmanager
def _boxed(goal: Goal, box: sandbox.Box, *, agent: bool = False) -> Iterator[sandbox.Session | None]:
    """A sandbox session for the box, or None where bubblewrap cannot run (the goal page says so, and a goal
    that requires a sandbox never gets this far) or where staff let the goal's agent run unsandboxed."""
    if not sandbox.sandbox_available() or (agent and goal.agent_profile.run_unsandboxed):
        yield None
        return
    with sandbox.Session(box) as session:
        yield session


def _run_agent_and_judge(goal: Goal, step: Step, workspace: Workspace) -> StepOutcome:
    failure: agents.AgentError | None = None
    try:
        home = agent_home(goal)
    except (WorkspaceError, OSError) as error:
        _fail_step(step, workspace, f"The agent's home could not be set up: {error}", signature="agent home")
        return _after_failed_step(goal, step)
    try:
        with _boxed(goal, box_for(goal, workspace, agent_egress(goal), home), agent=True) as box:
            context = _context(goal, step, workspace, box, home)
            try:
                agent = goal.build_agent()
                result = agent.run_step(context)
            except agents.AgentError as error:
                failure = error
            stopped = _stopped(box)
            refused = list(box.refused) if box is not None else []
    except sandbox.SandboxError as error:
        _fail_step(step, workspace, f"The sandbox could not start: {error}", signature="sandbox")
        goal.set_status(GoalStatus.PAUSED, None, f"Paused: the sandbox could not start: {error}"[:500])
        return StepOutcome(goal.pk, GoalStatus.PAUSED, step.number)
    if stopped:
        _fail_step(step, workspace, stopped, signature=f"limit: {_normalised(stopped)}")
        return _after_failed_step(goal, step)
    if failure is not None:
        step.agent_log = "\n".join(f"sandbox: {line}" for line in refused[:20])
        _fail_step(step, workspace, str(failure), signature=f"agent: {_normalised(str(failure))}")
        if failure.permanent:
            goal.set_status(GoalStatus.FAILED, None, f"Failed: the agent cannot run: {failure}"[:500])
            return StepOutcome(goal.pk, GoalStatus.FAILED, step.number)
        return _after_failed_step(goal, step)

    try:
        workspace.refuse_planted()
    except PlantedFiles as error:
        _fail_step(step, workspace, str(error), signature="planted git control files")
        return _after_failed_step(goal, step)
    escapes = workspace.escaping_paths()
    if escapes:
        _fail_step(step, workspace, f"The agent wrote outside the worktree: {', '.join(escapes[:5])}")
        return _after_failed_step(goal, step)

    key = goal.agent_profile.resolve_api_key() if goal.agent_profile.takes_provider() else ""
    if len(key) >= 8 and key in workspace.pending_diff():
        # The agent holds the key to reach its model API; a hostile one must not publish it through the branch.
        _fail_step(step, workspace, "Refused: the step's changes contain the agent profile's API key (its model "
                   "API key): thrown away.", signature="the profile's API key in the changes")
        return _after_failed_step(goal, step)
    commit = workspace.commit_step(step.number, result.summary or "no summary")
    unreadable: list[gates.GateFinding] = []
    try:
        parsed = parse_diff(commit.diff, is_binary=partial(_holds_nul, workspace.path))
    except DiffError as error:
        log.warning("goal %s step %s: unreadable diff: %s", goal.pk, step.number, error)
        # The step's changed files known by name only (from git): path rules still apply to an unreadable diff.
        parsed = ParsedDiff.of(FileDiff.by_path(path) for path in commit.paths)
        unreadable = [_unreadable_diff(error)]
    with _boxed(goal, box_for(goal, workspace, evidence_egress(goal))) as box:
        runs = evidence.run_checks(goal.evidence, workspace.path, session=box, timeout_s=_evidence_timeout())
    history = goal.step_history(step.number)
    findings = judge.judge(
        goal,
        gates.Step(
            diff=parsed,
            evidence=tuple(run.to_gate() for run in runs),
            reported_bugs=result.reported_bugs,
            agent_done=result.done,
        ),
        history=history,
        usage=judge.usage_with(goal, tokens=result.tokens, paths=(f.path for f in parsed.files), history=history),
        file_head=lambda path: _file_head(workspace.path, path),
        extra=_too_large(commit) + unreadable,
        paths=detect_path_rules(goal, workspace),
    )
    signature = gates.failure_signature(run.to_gate() for run in runs) or ""

    step.summary = result.summary
    step.tokens = result.tokens
    step.cost_usd = result.cost_usd
    step.agent_done = result.done
    step.reported_bugs = list(result.reported_bugs)
    step.plan = result.plan
    # What the agent tried to reach beyond its egress rules is part of its record, whatever it says of it.
    refusals = "".join(f"\nsandbox: {line}" for line in refused[:20])
    step.agent_log = (result.log + refusals)[-AGENT_LOG_CAP:]
    step.commit_sha = commit.sha
    step.diff = commit.diff[:MAX_STORED_DIFF]
    step.diff_truncated = commit.truncated or len(commit.diff) > MAX_STORED_DIFF
    step.diff_stats = {**parsed.stats.__dict__, "summary": parsed.summary_line()}
    step.files = parsed.compact()
    step.evidence = [{**run.as_dict(), "summary": run.summary()} for run in runs]
    step.findings = [finding.as_dict() for finding in findings]
    step.failure_signature = signature[:500]
    return _conclude(goal, step, findings, result)


# --- the evidence baseline: the checks on the base branch, before any agent work --------------------------------

# A baseline queued or running longer than this was lost with its worker: the page offers to check again.
BASELINE_LOST_AFTER = timedelta(hours=1)


def baseline_root() -> Path:
    """Where throwaway checkouts of the base branch live while the checks run on them (beside the worktrees)."""
    return worktree_root().parent / "baselines"


def request_baseline(goal: Goal, actor) -> EvidenceBaseline:
    """A baseline of the goal's checks, queued (the caller enqueues its run); one already queued or running for
    the same checks is returned instead, so a double click runs nothing twice."""
    recent = timezone.now() - BASELINE_LOST_AFTER
    for pending in goal.baselines.filter(
        status__in=(BaselineStatus.QUEUED, BaselineStatus.RUNNING), created_at__gt=recent
    ):
        if pending.matches(goal):
            return pending
    baseline = EvidenceBaseline.objects.create(
        goal=goal, base_branch=goal.base_branch, commands=baseline_commands(goal), requested_by=actor
    )
    goal.record("baseline", "Evidence check requested on the base branch.", actor, baseline=baseline.pk)
    return baseline


def take_baseline(baseline_id: int) -> EvidenceBaseline | None:
    """Claim a queued baseline and run it on the base branch's newest commit; None when another worker has it
    (or had it). Never raises for what the repository or its checks do: the row says what happened."""
    if not EvidenceBaseline.objects.filter(pk=baseline_id, status=BaselineStatus.QUEUED).update(
        status=BaselineStatus.RUNNING
    ):
        return None
    baseline = EvidenceBaseline.objects.select_related("goal__repository", "goal__agent_profile").get(pk=baseline_id)
    goal = baseline.goal
    mirror = workspace_for(goal).mirror
    try:
        refused = source_refusal(goal)
        if refused:
            raise WorkspaceError(refused)
        mirror.refresh()
        if not mirror.has_branch(baseline.base_branch):
            raise WorkspaceError(f"The repository has no branch “{baseline.base_branch}”.")
        sha = mirror.tip(baseline.base_branch)
    except (WorkspaceError, OSError) as error:
        _baseline_failed(baseline, f"the repository could not be read: {error}")
        return baseline
    _record_baseline(goal, baseline, mirror, sha)
    return baseline


def _baseline_before_first_step(goal: Goal, workspace: Workspace) -> StepOutcome | None:
    """Before step 1 the checks run on the base commit, so every done review has a before (unless a baseline of
    that commit exists). A check whose command does not run here stops the start: the goal goes back to ready,
    with the reason, and its owner edits it."""
    if not command_checks(goal.evidence):
        return None
    sha = workspace.base_sha()
    baseline = goal.current_baseline()
    if baseline is None or baseline.base_sha != sha or baseline.status != BaselineStatus.DONE:
        baseline = EvidenceBaseline.objects.create(
            goal=goal,
            base_branch=goal.base_branch,
            base_sha=sha,
            commands=baseline_commands(goal),
            status=BaselineStatus.RUNNING,
        )
        _record_baseline(goal, baseline, workspace.mirror, sha)
    if not baseline.unresolved:
        return None
    reason = f"Not started: {' '.join(baseline.unresolved)}"
    goal.set_status(GoalStatus.READY, None, reason[:500], only_from=(GoalStatus.RUNNING,))
    return StepOutcome(goal.pk, GoalStatus.READY)


def _record_baseline(goal: Goal, baseline: EvidenceBaseline, mirror: Mirror, sha: str) -> None:
    """Run the baseline's checks on a throwaway checkout of ``sha``, in the evidence sandbox, and store them."""
    root = baseline_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, TRAVERSE_ONLY)
        checkout = Path(tempfile.mkdtemp(prefix=f"goal-{goal.pk}-", dir=root))
    except OSError as error:
        _baseline_failed(baseline, f"no room for a checkout: {error}", sha)
        return
    try:
        checkout.chmod(0o755)
        mirror.export(sha, checkout, sandbox_owner())
        tools = tuple(Path(path) for path in getattr(settings, "GOALPOST_SANDBOX_READ_ONLY", ()) or ())
        box = sandbox.Box(checkout, egress=evidence_egress(goal), read_only=tools)
        with _boxed(goal, box) as session:
            checks = baseline_checks(baseline.commands, checkout, session)
    except (WorkspaceError, sandbox.SandboxError, OSError) as error:
        _baseline_failed(baseline, str(error), sha)
        return
    finally:
        shutil.rmtree(checkout, ignore_errors=True)
    baseline.base_sha, baseline.checks = sha, checks
    baseline.status, baseline.finished_at = BaselineStatus.DONE, timezone.now()
    baseline.save(update_fields=["base_sha", "checks", "status", "finished_at"])
    goal.record("baseline", baseline.headline()[:500], baseline=baseline.pk)


def baseline_checks(commands: list[dict], checkout: Path, session: sandbox.Session | None) -> list[dict]:
    """Each check's command resolved, then run, in the box: what the baseline keeps of each."""
    unresolved = evidence.unresolved_commands([check["command"] for check in commands], checkout, session=session)
    checks = []
    for check in commands:
        command, expected = check["command"], int(check.get("expect_exit") or 0)
        message = unresolved.get(command)
        if message:
            checks.append(
                {
                    "name": command,
                    "command": command,
                    "resolved": False,
                    "passed": False,
                    "exit_code": None,
                    "timed_out": False,
                    "failing_tests": [],
                    "summary": "not a command here",
                    "message": message,
                    "output_tail": "",
                }
            )
            continue
        run = evidence.run_check(
            command, checkout, name=command, expected_exit=expected, session=session, timeout_s=_evidence_timeout()
        )
        checks.append(
            {
                "name": command,
                "command": command,
                "resolved": True,
                "passed": run.passed,
                "exit_code": run.exit_code,
                "timed_out": run.timed_out,
                "failing_tests": list(run.failing_tests[:50]),
                "summary": run.summary(),
                "message": run.summary(),
                "output_tail": run.output[-BASELINE_OUTPUT_CHARS:],
            }
        )
    return checks


def _baseline_failed(baseline: EvidenceBaseline, reason: str, sha: str = "") -> None:
    baseline.status, baseline.error, baseline.finished_at = BaselineStatus.FAILED, reason[:500], timezone.now()
    baseline.base_sha = sha or baseline.base_sha
    baseline.save(update_fields=["status", "error", "finished_at", "base_sha"])
    baseline.goal.record("baseline", baseline.headline()[:500], baseline=baseline.pk)


def _stopped(box: sandbox.Session | None) -> str:
    """Why the sandbox stopped the agent (a limit, in words, with any connection it refused), or ""."""
    if box is None or not box.exceeded:
        return ""
    refused = f" Refused: {'; '.join(box.refused[:3])}." if box.refused else ""
    return f"{box.exceeded}{refused}"


def _too_large(commit) -> list[gates.GateFinding]:
    """A diff past what the worker reads is judged on its first files only: a person looks at the rest."""
    if not commit.truncated:
        return []
    size = f"{commit.diff_bytes / 1_000_000:.0f} MB"
    return [
        gates.GateFinding(
            gate="blast_radius",
            severity=gates.APPROVAL,
            reason=f"The diff is {size} across {len(commit.paths)} files: too large to review here in full.",
            kind="step",
            data={"files": len(commit.paths), "diff_bytes": commit.diff_bytes},
        )
    ]


def _unreadable_diff(error: DiffError) -> gates.GateFinding:
    """A diff the gates cannot read is judged by a person: no gate may pass what it did not see."""
    return gates.GateFinding(
        gate="blast_radius",
        severity=gates.APPROVAL,
        reason=_shorten(f"A person reviews this step: its diff is unreadable ({error})", gates.REASON_LIMIT),
        kind="step",
        data={"diff_error": str(error)[:500]},
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _evidence_timeout() -> float:
    return float(getattr(settings, "GOALPOST_EVIDENCE_TIMEOUT_S", 600))


def _holds_nul(worktree: Path, path: str) -> bool:
    """Git's own test for a binary file: a NUL byte in its first 8000 bytes (a file git only renamed shows none)."""
    target = (worktree / path).resolve()
    if not target.is_relative_to(worktree.resolve()) or not target.is_file():
        return False
    with target.open("rb") as handle:
        return b"\0" in handle.read(8000)


def detect_path_rules(goal: Goal, workspace: Workspace) -> repopaths.RepoPaths:
    """The goal's path rules, detected once from its base commit's config files (read from the goal's git
    directory, never the agent's worktree: an agent rewriting .gitattributes or pytest's testpaths changes nothing
    for its goal), then with staff's settings on top."""
    try:
        sha = workspace.base_sha()
    except WorkspaceError:
        sha = ""
    if sha and (goal.detected_paths or {}).get("sha") != sha:
        rules = repopaths.detect(workspace.base_file_reader(sha))
        goal.detected_paths = {"sha": sha, "rules": rules.as_dict()}
        Goal.objects.filter(pk=goal.pk).update(detected_paths=goal.detected_paths)
    return goal.path_rules()


def _file_head(worktree: Path, path: str, limit: int = 2048) -> str:
    target = (worktree / path).resolve()
    if not target.is_relative_to(worktree.resolve()) or not target.is_file():
        return ""
    with target.open("rb") as handle:
        return handle.read(limit).decode("utf-8", errors="replace")


def _finish(step: Step, status: str) -> None:
    step.status = status
    step.finished_at = timezone.now()
    step.duration_s = (step.finished_at - step.started_at).total_seconds()
    step.save()


def _conclude(goal: Goal, step: Step, findings: list[gates.GateFinding], result) -> StepOutcome:
    kind = gates.request_kind(findings)
    with transaction.atomic():
        judge.progress(goal)
        if kind is not None:
            _finish(step, StepStatus.WAITING)
            if any(f.gate == "follow_up" for f in findings):
                _draft_follow_ups(goal, findings)
            request = judge.open_request(
                goal,
                findings,
                step_number=step.number,
                summary=_request_summary(step, findings),
                plan=result.plan,
            )
            return StepOutcome(goal.pk, GoalStatus.WAITING, step.number, request)
        _finish(step, StepStatus.PASSED)
        goal.record("step", f"Step {step.number}: {step.summary}"[:500], step=step.number)
        if _said_done(step):
            request = judge.open_request(
                goal,
                (),
                kind=RequestKind.DONE,
                summary=_done_summary(step),
                step_number=step.number,
                details=_done_details(goal, step),
            )
            return StepOutcome(goal.pk, GoalStatus.WAITING, step.number, request)
    return StepOutcome(goal.pk, "continue", step.number)


def _said_done(step: Step) -> bool:
    """The agent said the goal is done on this step, and every check passed: the done review comes next. A goal
    whose evidence is only manual checks ran none: the person makes them at the done review."""
    if not step.agent_done:
        return False
    if step.evidence:
        return step.passed_evidence
    return not command_checks(step.goal.evidence)


def _done_summary(step: Step) -> str:
    if not step.evidence:
        manual = len(step.goal.evidence)
        if not manual:
            return "The agent says the goal is done. The goal has no checks: read the changes before you approve."
        plural = "s" if manual != 1 else ""
        return (
            f"The agent says the goal is done. No command checks ran: make the {manual} manual check{plural} "
            "listed below before you approve."
        )
    return f"The agent says the goal is done; every check passed. {step.evidence_summary}"[:500]


def _done_details(goal: Goal, step: Step) -> dict:
    """The done review's before and after: the baseline against this step's checks."""
    comparison = goal.done_comparison(step.evidence)
    return {"baseline": comparison} if comparison else {}


def _request_summary(step: Step, findings: list[gates.GateFinding]) -> str:
    stats = step.diff_stats.get("summary", "")
    reasons = "; ".join(f.reason for f in findings if f.severity != gates.INFO)
    return f"Step {step.number}: {stats}. {reasons}"[:500]


def _draft_follow_ups(goal: Goal, findings: list[gates.GateFinding]) -> None:
    for finding in findings:
        draft = finding.data.get("draft") if finding.gate == "follow_up" else None
        if not draft:
            continue
        follow_up = Goal.objects.create(
            owner=goal.owner,
            parent=goal,
            title=str(draft.get("title") or "Follow-up")[:200],
            objective=str(draft.get("objective") or finding.reason),
            constraints=list(goal.constraints),
            evidence=list(goal.evidence),
            work_type=goal.work_type,
            risk=goal.risk,
            protected_paths=list(goal.protected_paths),
            scope_paths=[str(p) for p in draft.get("paths", [])],
            repository=goal.repository,
            base_branch=goal.base_branch,
            agent_profile=goal.agent_profile,
            agent_model=goal.agent_model,
            agent_script=list(goal.agent_script),
            network_hosts=list(goal.network_hosts),
        )
        follow_up.approvers.set(goal.approvers.all())
        follow_up.record("created", f"Drafted as a follow-up of goal {goal.pk}.", parent=goal.pk)
        goal.record("follow_up", f"Follow-up goal drafted: {follow_up.title}"[:500], follow_up=follow_up.pk)


def _fail_step(step: Step, workspace: Workspace, reason: str, signature: str = "") -> None:
    try:
        workspace.discard_changes()
    except (WorkspaceError, OSError):
        log.exception("could not discard the changes of a failed step")
    step.error = reason[:2000]
    step.failure_signature = (signature or f"step: {reason}")[:500]
    _finish(step, StepStatus.FAILED)
    step.goal.record("step", f"Step {step.number} failed: {reason}"[:500], step=step.number)


def _after_failed_step(goal: Goal, step: Step) -> StepOutcome:
    """A failed step is judged too: the same failure K times, or a budget used up, asks a human."""
    history = goal.step_history(step.number)
    findings = judge.failed_step_findings(goal, history, step.failure_signature, step.error)
    step.findings = [f.as_dict() for f in findings]
    step.save(update_fields=["findings"])
    if findings:
        request = judge.open_request(
            goal, findings, step_number=step.number, summary=f"Step {step.number} failed: {step.error}"
        )
        return StepOutcome(goal.pk, GoalStatus.WAITING, step.number, request)
    return StepOutcome(goal.pk, "continue", step.number)


# --- what the human said ----------------------------------------------------------------------------------


def latest_human_comments(goal: Goal) -> list[str]:
    """The comments of the last decided request: what the human wants the agent to hear next."""
    request = goal.approval_requests.exclude(decided_at=None).order_by("-decided_at").first()
    if request is None:
        return []
    comments = []
    for decision in request.decisions.order_by("created_at"):
        if decision.comment:
            verb = "approved" if decision.verdict in (Verdict.APPROVE, Verdict.EXTEND) else "rejected"
            comments.append(
                f"The human {verb} step {request.step_number or ''}: {decision.comment}".replace("  ", " ")
            )
    if request.status == RequestStatus.EXPIRED:
        comments.append("Nobody answered the last request in time: it was denied. Try another way.")
    return comments


# --- decisions, controls, stalls ----------------------------------------------------------------------------


def apply_decision(request: ApprovalRequest, verdict: str) -> bool:
    """The rows a decision changes; True when the goal should step again (the caller enqueues)."""
    goal = Goal.objects.get(pk=request.goal_id)
    step = goal.steps.filter(number=request.step_number).first() if request.step_number else None
    approved = verdict in (Verdict.APPROVE, Verdict.EXTEND)
    with transaction.atomic(savepoint=False):  # inside the decision's transaction: no savepoint round trips
        approved_now = step is not None and step.status == StepStatus.WAITING and approved
        if step is not None and step.status == StepStatus.WAITING:
            step.status = StepStatus.APPROVED if approved else StepStatus.REJECTED
            step.save(update_fields=["status"])
        if verdict == Verdict.STOP or goal.status in FINAL_STATUSES:
            return False
        if request.kind == RequestKind.DONE and approved:
            goal.set_status(
                GoalStatus.DONE, None, "Done: the final word was yes. The branch is ready to merge."
            )
            return False
        if approved_now and request.kind != RequestKind.DONE and _said_done(step):
            # The step that said done needed a review first (every step of a high-risk goal does): now that it
            # is approved, the done review comes next, instead of another step with nothing left to do.
            judge.open_request(
                goal,
                (),
                kind=RequestKind.DONE,
                summary=_done_summary(step),
                step_number=step.number,
                details=_done_details(goal, step),
            )
            return False
        if request.kind in (RequestKind.BUDGET, RequestKind.STALL) and not approved:
            goal.set_status(GoalStatus.PAUSED, None, "Paused: the budget or stall request was declined.")
            return False
        return (
            goal.set_status(
                GoalStatus.RUNNING,
                None,
                "Running again after a decision.",
                only_from=(GoalStatus.WAITING, GoalStatus.STALLED),
            )
            or goal.status == GoalStatus.RUNNING
        )


def source_refusal(goal: Goal) -> str:
    """Why the goal's registered local repository may not be read or written now, or "": checked again when it
    is used, since the folder registered could since have become a link into Goalpost's own files."""
    repository = goal.repository
    if repository.is_url:
        return ""
    try:
        check_local_source(repository.source, goal.base_branch)
    except ValidationError as error:
        return f"the repository {repository.name} cannot be used: {' '.join(error.messages)}"
    return ""


def publish(goal_id: int) -> bool:
    """Push a done goal's branch to its registered repository, the one write Goalpost makes there; the goal's
    trail says what happened either way. True when the push went through."""
    goal = Goal.objects.get(pk=goal_id)
    if goal.status != GoalStatus.DONE:
        return False
    refused = source_refusal(goal)
    if refused:
        goal.record("publish", f"The goal's branch was not pushed: {refused}"[:500], pushed=False)
        return False
    try:
        said = workspace_for(goal).publish()
    except (WorkspaceError, OSError) as error:
        goal.record("publish", f"Could not push the goal's branch: {error}"[:500], pushed=False)
        return False
    goal.record("publish", said[:500], pushed=True)
    return True


def apply_expiry(request: ApprovalRequest, rule: str) -> bool:
    """An unanswered request was denied; True when the goal should step again."""
    goal = Goal.objects.get(pk=request.goal_id)
    if request.step_number:
        goal.steps.filter(number=request.step_number, status=StepStatus.WAITING).update(
            status=StepStatus.REJECTED
        )
    if rule == OnTimeout.DENY_AND_CONTINUE and request.kind not in (RequestKind.BUDGET, RequestKind.STALL):
        return goal.set_status(
            GoalStatus.RUNNING,
            None,
            "Running again: the unanswered request was denied.",
            only_from=(GoalStatus.WAITING,),
        )
    return False


class ControlRefused(Exception):
    """Start, pause, resume or cancel that does not fit the goal's state; the message says why."""


def start(goal: Goal, actor) -> None:
    if goal.status != GoalStatus.READY:
        raise ControlRefused("Only a ready goal can start: fix its checklist and mark it ready first.")
    if goal.require_sandbox and not sandbox.sandbox_available():
        raise ControlRefused(
            f"This goal requires a sandbox, and this server has none: {sandbox.sandbox_reason()}."
        )
    baseline = goal.current_baseline()
    if baseline is not None and baseline.unresolved:
        raise ControlRefused(f"Not started: {' '.join(baseline.unresolved)} Then check the evidence again.")
    cannot_run = agent_refusal(goal)
    if cannot_run:  # it would fail on its first step: say so now, and the goal stays ready to edit
        raise ControlRefused(f"Not started: {cannot_run} Edit the goal to choose another agent.")
    goal.set_status(GoalStatus.RUNNING, actor, "Started.", only_from=(GoalStatus.READY,))


def pause(goal: Goal, actor) -> None:
    if not goal.set_status(
        GoalStatus.PAUSED,
        actor,
        "Paused by a person.",
        only_from=(GoalStatus.RUNNING, GoalStatus.WAITING, GoalStatus.STALLED),
    ):
        raise ControlRefused(f"A {goal.get_status_display().lower()} goal cannot be paused.")


def resume(goal: Goal, actor) -> bool:
    """Paused or stalled → running (or waiting, when a request is still open); True when it should step.
    A failed goal resumes from its last kept step, once its contract and its agent can run."""
    if goal.status == GoalStatus.FAILED:
        _refuse_unrunnable(goal, "resumed")
        return goal.set_status(
            GoalStatus.RUNNING, actor, "Resumed from the last kept step.", only_from=(GoalStatus.FAILED,)
        )
    pending = goal.approval_requests.pending().from_loop().exists()  # an agent elsewhere waits on its own
    target = GoalStatus.WAITING if pending else GoalStatus.RUNNING
    if not goal.set_status(target, actor, "Resumed.", only_from=(GoalStatus.PAUSED, GoalStatus.STALLED)):
        raise ControlRefused(f"A {goal.get_status_display().lower()} goal cannot be resumed.")
    return target == GoalStatus.RUNNING


def retry(goal: Goal, actor) -> bool:
    """Failed → running, starting over from the base branch: the kept steps are set aside (their commits leave
    the branch; their usage still counts against the budgets). True when it should step."""
    if goal.status != GoalStatus.FAILED:
        raise ControlRefused(f"Only a failed goal can be retried; this one is {goal.get_status_display().lower()}.")
    _refuse_unrunnable(goal, "retried")
    with transaction.atomic():
        if not goal.set_status(
            GoalStatus.RUNNING, actor, "Retried: starting over from the base branch.", only_from=(GoalStatus.FAILED,)
        ):
            raise ControlRefused("The goal changed meanwhile: reload the page.")
        set_aside = goal.steps.filter(status__in=KEPT_STEP_STATUSES).update(status=StepStatus.SET_ASIDE)
        goal.approval_requests.pending().update(status=RequestStatus.SUPERSEDED, decided_at=timezone.now())
        if set_aside:
            goal.record(
                "retry",
                f"{set_aside} kept step(s) set aside: the next step starts from the base branch.",
                actor,
                set_aside=set_aside,
            )
    return True


def _refuse_unrunnable(goal: Goal, verb: str) -> None:
    """A failed goal goes again only when its contract passes the linter and its agent can run here."""
    blocking = [f for f in goal.lint() if f.severity == lint.BLOCKING]
    if blocking:
        raise ControlRefused(
            f"The goal cannot be {verb} yet: its checklist has {len(blocking)} blocking finding(s). Edit it first."
        )
    reason = agent_refusal(goal)
    if reason:
        raise ControlRefused(f"The goal cannot be {verb} yet: {reason} Edit it to choose another agent.")


def agent_refusal(goal: Goal) -> str:
    """Why the goal's agent cannot run a step here, or "": no longer offered to the owner, or unable to run on
    this server (a scripted profile with nothing to replay, a command agent whose program is missing)."""
    profile = goal.agent_profile
    if not AgentProfile.objects.usable_by(goal.owner).filter(pk=profile.pk).exists():
        return f"the agent {profile} is no longer offered to its owner."
    return profile.cannot_run_here(goal_script=bool(goal.agent_script))


def cancel(goal: Goal, actor) -> None:
    if goal.status in FINAL_STATUSES:
        raise ControlRefused(f"The goal is already {goal.get_status_display().lower()}.")
    with transaction.atomic():
        goal.approval_requests.pending().update(status=RequestStatus.SUPERSEDED, decided_at=timezone.now())
        goal.set_status(GoalStatus.CANCELLED, actor, "Cancelled.")


def requeue_after_s() -> int:
    """How long a queued step may wait unclaimed before the reaper queues it again (the first to arrive runs)."""
    return int(getattr(settings, "GOALPOST_REQUEUE_AFTER_S", 0)) or max(30, lease_seconds())


def lost_goals(now=None) -> list[int]:
    """Running goals whose worker died (lease ran out) or whose queued step never arrived.

    "Never arrived" covers a broker that was down when the step was queued: the decision and the goal's
    `step_enqueued_at` were stored, the message was not, and the reaper queues it once the broker is back.
    """
    now = now or timezone.now()
    stale_queue = now - timedelta(seconds=requeue_after_s())
    lost = Goal.objects.filter(status=GoalStatus.RUNNING).filter(
        Q(lease_expires_at__lt=now)
        | Q(lease_expires_at__isnull=True, step_enqueued_at__lt=stale_queue)
        | Q(lease_expires_at__isnull=True, step_enqueued_at__isnull=True, updated_at__lt=stale_queue)
    )
    return list(lost.values_list("pk", flat=True))


def stall_after() -> timedelta:
    return timedelta(minutes=int(getattr(settings, "GOALPOST_STALL_AFTER_MINUTES", 30)))


def detect_stalls(now=None) -> list[tuple[int, str]]:
    """Mark stalled goals and open a stall request for each; returns (goal id, reason) for the notification."""
    from goals import signals as goal_signals

    now = now or timezone.now()
    found: list[tuple[int, str]] = []
    # Waiting past the SLA: remind the person (the open request stays as it is), once per goal and sweep
    # however many of an agent's parallel tool calls wait.
    reminded_goals: set[int] = set()
    for request in (
        ApprovalRequest.objects.pending().filter(created_at__lt=now - stall_after()).select_related("goal")
    ):
        if not request.details.get("reminded"):
            request.details = {**request.details, "reminded": now.isoformat()}
            request.save(update_fields=["details"])
            if request.goal_id in reminded_goals:
                continue
            reminded_goals.add(request.goal_id)
            reason = (
                f"A {request.get_kind_display().lower()} request has waited {_ago(now - request.created_at)}."
            )
            request.goal.record("stall", reason, request=request.pk)
            found.append((request.goal_id, reason))
            goal_signals.goal_stalled.send(Goal, goal=request.goal, reason=reason)
    # Running with no progress: a step that outlives the lease many times over, or nothing finished for long.
    quiet_since = now - stall_after()
    for goal in Goal.objects.filter(status=GoalStatus.RUNNING).filter(
        Q(last_progress_at__lt=quiet_since) | Q(last_progress_at__isnull=True, started_at__lt=quiet_since)
    ):
        reason = f"No step has finished in {_ago(now - (goal.last_progress_at or goal.started_at))}."
        _stall(goal, reason)
        found.append((goal.pk, reason))
    return found


def _stall(goal: Goal, reason: str) -> None:
    from goals import signals as goal_signals

    with transaction.atomic():
        if not goal.set_status(
            GoalStatus.STALLED, None, f"Stalled: {reason}", only_from=(GoalStatus.RUNNING,)
        ):
            return
        ApprovalRequest.open(
            goal, RequestKind.STALL, summary=reason, details={"reason": reason}, origin=RequestOrigin.STALL
        )
        goal_signals.goal_stalled.send(Goal, goal=goal, reason=reason)


def _normalised(message: str) -> str:
    """An error message without the numbers that change between attempts (lines, pids, durations)."""
    return re.sub(r"\d+", "N", message.strip().splitlines()[0] if message.strip() else "")[:300]


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
