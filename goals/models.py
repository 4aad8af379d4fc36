from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q, Sum
from django.urls import reverse
from django.utils import timezone

from goals import gates, lint

RISK_CHOICES = [("low", "Low"), ("medium", "Medium"), ("high", "High")]

WORK_TYPE_CHOICES = [
    ("docs", "Documentation"),
    ("test_repair", "Test repair"),
    ("ui_refactor", "UI refactor"),
    ("auth_billing", "Auth or billing"),
    ("migration", "Data or schema migration"),
    ("other", "Other"),
]

AGENT_CHOICES = [
    ("scripted", "Scripted (replays patches)"),
    ("command", "Command-line agent (Codex CLI, Claude Code, Aider)"),
    ("openai", "OpenAI-compatible endpoint"),
]

# Budget name (as the API and the linter say it) -> model field.
BUDGET_FIELDS = {name: f"budget_{name}" for name in lint.BUDGET_NAMES}


class GoalStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    READY = "ready", "Ready"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for a human"
    STALLED = "stalled", "Stalled"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class OnTimeout(models.TextChoices):
    DENY_AND_PAUSE = "deny_and_pause", "Deny the step and pause the goal"
    DENY_AND_CONTINUE = "deny_and_continue", "Deny the step; the agent tries another way"


class GoalNotReady(Exception):
    """Raised when a goal with blocking lint findings is asked to leave draft."""

    def __init__(self, findings: list[lint.Finding]):
        self.findings = findings
        super().__init__("; ".join(f.message for f in findings if f.severity == lint.BLOCKING))


def _approved_by(user):
    """The ids of the goals a user approves for, as a subquery on the approvers table's user index.

    Joining the approvers and filtering `owner OR approver` needs DISTINCT and defeats the indexes (PostgreSQL scans
    every goal: ~70 ms per query at 10,000 goals); `owner OR id IN (…)` uses both indexes and returns each goal once.
    """
    return Goal.approvers.through.objects.filter(user=user).values("goal_id")


class GoalQuerySet(models.QuerySet):
    def visible_to(self, user) -> GoalQuerySet:
        """Goals a user owns, approves for or watches as a viewer; nobody else's."""
        if not user.is_authenticated:
            return self.none()
        watched = Goal.viewers.through.objects.filter(user=user).values("goal_id")
        return self.filter(Q(owner=user) | Q(pk__in=_approved_by(user)) | Q(pk__in=watched))

    def decidable_by(self, user) -> GoalQuerySet:
        """Goals whose requests a user answers: the ones they own or approve for (viewers only watch)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(Q(owner=user) | Q(pk__in=_approved_by(user)))


class Goal(models.Model):
    """A durable goal: the contract an agent works under, with its budgets and its reviewers."""

    title = models.CharField(max_length=200)
    objective = models.TextField(
        help_text="The measurable target: a number with a unit, a named test, or an end state."
    )
    constraints = models.JSONField(default=list, blank=True, help_text="What the agent must not change.")
    evidence = models.JSONField(
        default=list,
        blank=True,
        help_text='Checks: {"kind": "command", "command": "…", "expect_exit": 0} or {"kind": "manual", …}.',
    )
    done_criteria = models.TextField(blank=True)
    rollback_note = models.TextField(blank=True)

    work_type = models.CharField(max_length=20, choices=WORK_TYPE_CHOICES, default="other")
    risk = models.CharField(max_length=10, choices=RISK_CHOICES, default="medium")

    budget_minutes = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["minutes"], verbose_name="wall-clock minutes"
    )
    budget_steps = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["steps"], verbose_name="steps"
    )
    budget_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["tokens"], verbose_name="tokens"
    )
    budget_files_per_step = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["files_per_step"], verbose_name="files per step"
    )
    budget_files_total = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["files_total"], verbose_name="files in total"
    )
    budget_approvals = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["approvals"], verbose_name="approvals"
    )
    budget_retries = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=lint.DEFAULT_BUDGETS["retries"],
        verbose_name="retries of the same failure",
        help_text="Retries after a failure first occurs: with 3, the 4th occurrence ends the budget.",
    )
    repeated_failure_threshold = models.PositiveSmallIntegerField(
        default=3,
        verbose_name="ask a human after the same failure",
        help_text="The repeated-failure gate asks a human when one failure occurs this many times.",
    )

    protected_paths = models.JSONField(
        default=list, blank=True, help_text="Glob patterns the agent must not edit."
    )
    scope_paths = models.JSONField(
        default=list,
        blank=True,
        verbose_name="working area",
        help_text="Globs the goal is expected to touch; a change elsewhere proposes a follow-up goal.",
    )
    approval_timeout_minutes = models.PositiveIntegerField(
        default=24 * 60, verbose_name="a request waits for an answer (minutes)"
    )
    on_timeout = models.CharField(
        max_length=20,
        choices=OnTimeout.choices,
        default=OnTimeout.DENY_AND_PAUSE,
        help_text="What an unanswered request becomes. Never an approval.",
    )

    repo_path = models.CharField("repository", max_length=1000, help_text="A local path to a git repository.")
    base_branch = models.CharField(max_length=255, default="main")

    agent = models.CharField(max_length=20, choices=AGENT_CHOICES, default="scripted")
    agent_settings = models.JSONField(default=dict, blank=True)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="goals")
    approvers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="goals_to_approve")
    viewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="goals_to_watch",
        help_text="People who see the goal, its requests and its timeline, but decide nothing and get no push.",
    )
    status = models.CharField(
        max_length=20, choices=GoalStatus.choices, default=GoalStatus.DRAFT, db_index=True
    )

    require_sandbox = models.BooleanField(
        default=False, help_text="Refuse to start unless the agent can run in a bubblewrap sandbox."
    )
    allow_network = models.BooleanField(
        default=False, help_text="Let the agent and the evidence commands reach the network."
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
        help_text="The goal this one was split off from as a follow-up.",
    )

    # The loop's bookkeeping: when the goal started, and the lease of the worker running its step.
    started_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    step_enqueued_at = models.DateTimeField(null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GoalQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("goals:detail", args=[self.pk])

    @property
    def budgets(self) -> dict[str, int | None]:
        return {name: getattr(self, field) for name, field in BUDGET_FIELDS.items()}

    @property
    def minimum_risk(self) -> str:
        return lint.minimum_risk(self.work_type)

    def contract(self) -> lint.Contract:
        """The goal as the pure linter and gates see it."""
        return lint.Contract(
            objective=self.objective,
            constraints=tuple(self.constraints),
            evidence=tuple(lint.EvidenceCheck(**check) for check in self.evidence),
            done_criteria=self.done_criteria,
            work_type=self.work_type,
            risk=self.risk,
            rollback_note=self.rollback_note,
            budgets=self.budgets,
            protected_paths=tuple(self.protected_paths),
            scope_paths=tuple(self.scope_paths),
            repeated_failure_threshold=self.repeated_failure_threshold,
        )

    def lint(self) -> list[lint.Finding]:
        return lint.lint(self.contract())

    def can_edit(self, user) -> bool:
        return user.pk == self.owner_id

    def can_decide(self, user) -> bool:
        """The owner and the named approvers answer the goal's approval requests."""
        if not getattr(user, "is_authenticated", False):
            return False
        return user.pk == self.owner_id or self.approvers.filter(pk=user.pk).exists()

    def set_status(
        self, status: str, actor=None, reason: str = "", *, only_from: tuple[str, ...] = ()
    ) -> bool:
        """Move to `status` (only from the given states, when named), writing the trail; True if it moved."""
        goals = Goal.objects.filter(pk=self.pk)
        if only_from:
            goals = goals.filter(status__in=only_from)
        with transaction.atomic():
            if not goals.exclude(status=status).update(status=status, updated_at=timezone.now()):
                return False
            self.status = status
            self.record("status", reason or f"Now {self.get_status_display().lower()}.", actor, status=status)
        return True

    def record(self, kind: str, message: str, actor=None, **data) -> GoalEvent:
        return GoalEvent.objects.create(goal=self, kind=kind, message=message, actor=actor, data=data)

    def step_history(self, before_number: int) -> gates.History:
        """What the gates need to know of the steps before this one: failures, attempts, files kept."""
        earlier = list(self.steps.filter(number__lt=before_number).order_by("number"))
        touched = sorted({f["path"] for s in earlier if s.kept for f in s.files if f.get("path")})
        return gates.History(
            failure_signatures=tuple(s.failure_signature or None for s in earlier),
            attempts=tuple(f"Step {s.number}: {s.summary or s.error}"[:200] for s in earlier),
            touched_paths=tuple(touched),
        )

    def usage(self) -> gates.Usage:
        """What the goal has used of its budgets so far (finished steps, time since start, requests)."""
        finished = self.steps.exclude(status=StepStatus.RUNNING)
        minutes = (timezone.now() - self.started_at).total_seconds() / 60 if self.started_at else 0.0
        touched = {f["path"] for s in finished.filter(status__in=KEPT_STEP_STATUSES) for f in s.files if f.get("path")}
        return gates.Usage(
            minutes=minutes,
            steps=finished.count(),
            tokens=finished.aggregate(t=Sum("tokens"))["t"] or 0,
            files_total=len(touched),
            approvals=self.approval_requests.exclude(status="superseded").count(),
            retries=same_failure_retries([s.failure_signature for s in finished.order_by("number")]),
        )

    def extend_budgets(self, extend: dict[str, int], actor) -> None:
        """Raise budgets by the given amounts (an unbounded budget stays unbounded)."""
        updates = {BUDGET_FIELDS[name]: F(BUDGET_FIELDS[name]) + amount for name, amount in extend.items()}
        with transaction.atomic():
            Goal.objects.filter(pk=self.pk).update(**updates, updated_at=timezone.now())
            self.refresh_from_db(fields=[*updates, "updated_at"])
            described = ", ".join(f"{name.replace('_', ' ')} +{amount:,}" for name, amount in extend.items())
            self.record("budget", f"Budget extended: {described}.", actor, extend=extend)

    def mark_ready(self, actor) -> None:
        """Draft → ready, only with no blocking lint finding."""
        findings = self.lint()
        if not lint.is_ready(findings):
            raise GoalNotReady(findings)
        self.set_status(
            GoalStatus.READY,
            actor,
            "Marked ready: the contract passes the linter.",
            only_from=(GoalStatus.DRAFT,),
        )

    def back_to_draft(self, actor, reason: str) -> None:
        """Ready → draft, when an edit brings back a blocking finding."""
        self.set_status(GoalStatus.DRAFT, actor, reason, only_from=(GoalStatus.READY,))


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed the gates"
    WAITING = "waiting", "Waiting for a human"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected and reverted"
    FAILED = "failed", "Failed"


# Steps whose commit stays on the goal's branch.
KEPT_STEP_STATUSES = (StepStatus.PASSED, StepStatus.APPROVED)


class Step(models.Model):
    """One turn of the agent: its commit, its diff, the evidence after it and what the gates said."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.RUNNING)
    attempts = models.PositiveSmallIntegerField(
        default=1, help_text="Runs of this step (a worker lost mid-step reruns it)."
    )
    run_index = models.PositiveIntegerField(
        default=0, help_text="How many agent runs the goal had before this one."
    )

    summary = models.TextField(blank=True)
    tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.FloatField(null=True, blank=True)
    agent_done = models.BooleanField(default=False)
    reported_bugs = models.JSONField(default=list, blank=True)
    plan = models.TextField(blank=True)
    agent_log = models.TextField(blank=True)
    error = models.TextField(blank=True)

    parent_sha = models.CharField(max_length=64, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    diff = models.TextField(blank=True)
    diff_truncated = models.BooleanField(default=False)
    diff_stats = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=list, blank=True)
    findings = models.JSONField(default=list, blank=True)
    failure_signature = models.CharField(max_length=500, blank=True)

    worker = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["goal", "number"]
        constraints = [models.UniqueConstraint(fields=["goal", "number"], name="one_step_per_number")]

    def __str__(self) -> str:
        return f"{self.goal_id} step {self.number} ({self.status})"

    @property
    def kept(self) -> bool:
        return self.status in KEPT_STEP_STATUSES

    @property
    def evidence_summary(self) -> str:
        return "; ".join(run.get("summary", "") for run in self.evidence if run.get("summary"))

    @property
    def passed_evidence(self) -> bool:
        return all(run.get("passed") for run in self.evidence)


def same_failure_retries(signatures: list[str]) -> int:
    """Retries of the failure the goal is stuck on: consecutive repeats of the last signature, after the first."""
    if not signatures or not signatures[-1]:
        return 0
    run = 0
    for signature in reversed(signatures):
        if signature != signatures[-1]:
            break
        run += 1
    return run - 1


class GoalEvent(models.Model):
    """One line of a goal's audit trail: who changed what, and when."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=500)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.goal_id} {self.kind}: {self.message}"


class WorkerHeartbeat(models.Model):
    """The last time each celery worker proved it was alive; /healthz reads the newest."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, hostname: str) -> None:
        cls.objects.update_or_create(hostname=hostname, defaults={"seen_at": timezone.now()})
