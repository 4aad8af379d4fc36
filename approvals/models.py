from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from approvals import signals
from goals import gates
from goals.models import BUDGET_FIELDS, Goal, GoalStatus, OnTimeout


class RequestKind(models.TextChoices):
    PLAN = "plan", "Plan"
    STEP = "step", "Step"
    BUDGET = "budget", "Budget"
    STALL = "stall", "Stall"
    DONE = "done", "Done"
    FOLLOW_UP = "follow_up", "Follow-up"
    # The real changes of an agent elsewhere broke a rule (a protected path): its goal is stopped.
    STOP = "stop", "Stop"


class RequestOrigin(models.TextChoices):
    """Who opened a request: the managed loop (a step, a stall, a budget) or an agent running elsewhere."""

    LOOP = "loop", "A managed loop step"
    GATEWAY = "gateway", "An agent running elsewhere (a tool call)"
    STALL = "stall", "A stall"
    BUDGET = "budget", "A budget"


# Who asked, as a gateway request's card and page name the agent (details["agent"]); anything else is "api".
AGENT_LABELS = {"claude": "Claude Code", "codex": "Codex"}


def loop_origin(kind: str) -> RequestOrigin:
    """The origin of a request of this kind that the managed loop opens."""
    return {RequestKind.STALL: RequestOrigin.STALL, RequestKind.BUDGET: RequestOrigin.BUDGET}.get(
        kind, RequestOrigin.LOOP
    )


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    SUPERSEDED = "superseded", "Superseded"


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    STOP = "stop", "Stop the goal"
    EXTEND = "extend", "Extend the budget"


# What each verdict does to the request once it settles it.
VERDICT_STATUS = {
    Verdict.APPROVE: RequestStatus.APPROVED,
    Verdict.EXTEND: RequestStatus.APPROVED,
    Verdict.REJECT: RequestStatus.REJECTED,
    Verdict.STOP: RequestStatus.REJECTED,
}
EXTENDABLE_BUDGETS = tuple(BUDGET_FIELDS)


class DecisionRefused(Exception):
    """A decision that cannot be taken; `code` for programs, the message for people."""

    def __init__(self, code: str, message: str, decision: Decision | None = None):
        super().__init__(message)
        self.code = code
        self.decision = decision


@dataclass(frozen=True)
class DecisionResult:
    request: ApprovalRequest
    decision: Decision
    settled: bool  # False when the vote was recorded but another approver must still approve


class ApprovalRequestQuerySet(models.QuerySet):
    def pending(self) -> ApprovalRequestQuerySet:
        return self.filter(status=RequestStatus.PENDING)

    def from_gateway(self) -> ApprovalRequestQuerySet:
        """Requests opened for tool calls of agents running elsewhere: one per call, several pending at once."""
        return self.filter(origin=RequestOrigin.GATEWAY)

    def from_loop(self) -> ApprovalRequestQuerySet:
        """Requests the managed loop opened (steps, plans, budgets, stalls, done): one pending per goal."""
        return self.exclude(origin=RequestOrigin.GATEWAY)

    def visible_to(self, user) -> ApprovalRequestQuerySet:
        return self.filter(goal__in=Goal.objects.visible_to(user))

    def answerable_by(self, user) -> ApprovalRequestQuerySet:
        """Requests of goals the user owns or approves for: a goal's viewers see its requests, never answer them."""
        return self.filter(goal__in=Goal.objects.decidable_by(user))

    def answerable_counts(self, user_ids) -> dict[int, int]:
        """`answerable_by(user).count()` for each of several users, in one query."""
        answerable: dict[int, set[int]] = {user_id: set() for user_id in user_ids}
        ids = list(answerable)
        rows = self.filter(models.Q(goal__owner_id__in=ids) | models.Q(goal__approvers__in=ids))
        for pk, owner_id, approver_id in rows.values_list("pk", "goal__owner_id", "goal__approvers"):
            for user_id in (owner_id, approver_id):
                if user_id in answerable:
                    answerable[user_id].add(pk)
        return {user_id: len(pks) for user_id, pks in answerable.items()}

    def overdue(self, now=None) -> ApprovalRequestQuerySet:
        return self.pending().filter(expires_at__lte=now or timezone.now())


class ApprovalRequest(models.Model):
    """A step, plan, budget, stall, done or follow-up that waits for a human's word."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="approval_requests")
    step_number = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=20, choices=RequestKind.choices)
    origin = models.CharField(max_length=20, choices=RequestOrigin.choices, db_index=True)
    status = models.CharField(
        max_length=20, choices=RequestStatus.choices, default=RequestStatus.PENDING, db_index=True
    )
    findings = models.JSONField(default=list, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    plan = models.TextField(blank=True, help_text="The agent's plan, for a plan request.")
    details = models.JSONField(
        default=dict, blank=True, help_text="Kind-specific: the budget asked for, a draft…"
    )
    # A gateway request's diff: the files its tool call writes (a loop request's diff is its step's).
    diff = models.TextField(blank=True)
    diff_truncated = models.BooleanField(default=False)
    # A gateway request's evidence: the checks the agent reported before it asked (a loop request's are its step's).
    evidence = models.JSONField(default=list, blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every decision attempt that gets through: the row lock that makes deciding exactly-once.
    version = models.PositiveIntegerField(default=0)

    objects = ApprovalRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "expires_at"]), models.Index(fields=["goal", "status"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} request #{self.pk} for {self.goal}"

    @property
    def gates(self) -> list[str]:
        return sorted({finding.get("gate", "") for finding in self.findings if finding.get("gate")})

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING

    @property
    def from_gateway(self) -> bool:
        return self.origin == RequestOrigin.GATEWAY

    @classmethod
    def open(
        cls,
        goal: Goal,
        kind: str,
        *,
        findings: list[dict] | None = None,
        summary: str = "",
        step_number: int | None = None,
        plan: str = "",
        details: dict | None = None,
        origin: str | None = None,
        diff: str = "",
        diff_truncated: bool = False,
        evidence: list[dict] | None = None,
    ) -> ApprovalRequest:
        """Open a request for the goal and announce it.

        The managed loop keeps one pending request per goal: its new request supersedes the loop's older one.
        A gateway request (`origin="gateway"`) is one agent tool call: agents run tools in parallel, so
        gateway requests never supersede anything and nothing the loop opens supersedes them. Without an
        origin the request is the loop's, by its kind (`loop_origin`).
        """
        if kind not in RequestKind.values:
            raise ValueError(f"unknown request kind {kind!r}")
        origin = origin or loop_origin(kind)
        if origin not in RequestOrigin.values:
            raise ValueError(f"unknown request origin {origin!r}")
        now = timezone.now()
        two_person = goal.contract().effective_risk == "high" and goal.approvers.count() >= 2
        with transaction.atomic():
            earlier = cls.objects.filter(goal=goal).pending().from_loop()
            superseded = [] if origin == RequestOrigin.GATEWAY else list(earlier.values_list("pk", flat=True))
            if superseded:
                cls.objects.filter(pk__in=superseded, status=RequestStatus.PENDING).update(
                    status=RequestStatus.SUPERSEDED, decided_at=now, version=F("version") + 1
                )
            request = cls.objects.create(
                goal=goal,
                kind=kind,
                origin=origin,
                findings=findings or [],
                summary=summary[:500],
                step_number=step_number,
                plan=plan,
                details=details or {},
                diff=diff,
                diff_truncated=diff_truncated,
                evidence=evidence or [],
                required_approvals=2 if two_person else 1,
                created_at=now,
                expires_at=now + timedelta(minutes=goal.approval_timeout_minutes),
            )
            goal.record(
                "request", f"{request.get_kind_display()} request opened: {summary}"[:500], request=request.pk
            )
            for pk in superseded:
                signals.request_superseded.send(cls, request=cls.objects.get(pk=pk))
            signals.request_opened.send(cls, request=request)
        return request

    def decide(
        self,
        user,
        verdict: str,
        *,
        comment: str = "",
        device: str = "",
        extend: dict | None = None,
    ) -> DecisionResult:
        """Answer the request exactly once, however many people or devices answer at the same moment.

        Raises DecisionRefused ("not_allowed", "invalid", "already_decided", "expired", "superseded",
        "already_voted") with a message that says who decided and how, where someone did.
        """
        if not isinstance(user, get_user_model_class()) or not user.is_authenticated:
            raise DecisionRefused("not_allowed", "Only a signed-in person can decide; an agent never can.")
        if not self.goal.can_decide(user):
            raise DecisionRefused("not_allowed", "Only the goal's owner and approvers can decide.")
        verdict = _clean_verdict(self, verdict, extend)
        now = timezone.now()
        result = self._settle(user, verdict, comment, device, extend, now)
        if result is None:
            # Outside the failed attempt's transaction, so an overdue request's expiry is kept.
            raise self._why_not_pending(now)
        return result

    def _settle(self, user, verdict, comment, device, extend, now) -> DecisionResult | None:
        with transaction.atomic():
            # The conditional update takes the row lock: concurrent deciders queue here, and only those
            # that still find the request pending and in time get through.
            claimed = ApprovalRequest.objects.filter(
                pk=self.pk, status=RequestStatus.PENDING, expires_at__gt=now
            )
            if not claimed.update(version=F("version") + 1):
                return None
            # The request's own fields as the lock found them; its goal stays loaded (its row is not re-read).
            self.refresh_from_db(fields=[f.attname for f in self._meta.concrete_fields if f.name not in ("id", "goal")])
            voted = self.decisions.filter(user=user, verdict=Verdict.APPROVE)
            if verdict == Verdict.APPROVE and self.required_approvals > 1 and voted.exists():
                raise DecisionRefused(
                    "already_voted", "You already approved: a second approver must approve too."
                )
            decision = Decision.objects.create(
                request=self,
                user=user,
                verdict=verdict,
                comment=comment.strip()[:4000],
                device=device[:120],
                extend=extend or {},
                created_at=now,
            )
            approvals = self.decisions.filter(verdict=Verdict.APPROVE).values("user").distinct().count()
            if verdict == Verdict.APPROVE and approvals < self.required_approvals:
                missing = self.required_approvals - approvals
                self.goal.record(
                    "vote",
                    f"{user.get_username()} approved; waiting for {missing} more.",
                    user,
                    request=self.pk,
                )
                signals.vote_recorded.send(ApprovalRequest, request=self, decision=decision)
                return DecisionResult(self, decision, settled=False)
            self.status = VERDICT_STATUS[verdict]
            self.decided_at = now
            self.save(update_fields=["status", "decided_at"])
            self.goal.record(
                "decision",
                f"{user.get_username()}: {decision.get_verdict_display().lower()}"
                + (f" — {decision.comment}" if decision.comment else ""),
                user,
                request=self.pk,
                verdict=verdict,
            )
            if verdict == Verdict.STOP:
                self.goal.set_status(GoalStatus.PAUSED, user, "Paused: stopped from an approval request.")
            elif verdict == Verdict.EXTEND:
                self.goal.extend_budgets(extend, user)
            signals.decision_made.send(ApprovalRequest, request=self, decision=decision)
        return DecisionResult(self, decision, settled=True)

    def _why_not_pending(self, now) -> DecisionRefused:
        current = ApprovalRequest.objects.get(pk=self.pk)
        if current.status == RequestStatus.PENDING:
            # Past its deadline but not yet swept: settle it now, by the goal's rule, never as an approval.
            current.expire(now)
            current.refresh_from_db()
        if current.status == RequestStatus.EXPIRED:
            return DecisionRefused(
                "expired", "This request expired unanswered; the goal's timeout rule applied."
            )
        if current.status == RequestStatus.SUPERSEDED:
            return DecisionRefused(
                "superseded", "A newer request replaced this one: answer that one instead."
            )
        last = current.decisions.select_related("user").order_by("-created_at", "-id").first()
        who = last.user.get_username() if last and last.user else "someone"
        how = last.get_verdict_display().lower() if last else current.get_status_display().lower()
        when = timezone.localtime(last.created_at).strftime("%H:%M:%S") if last else ""
        return DecisionRefused("already_decided", f"Already decided: {who} chose “{how}” at {when}.", last)

    def expire(self, now=None) -> bool:
        """Settle an overdue request by the goal's on-timeout rule; True if this call expired it."""
        now = now or timezone.now()
        with transaction.atomic():
            changed = ApprovalRequest.objects.filter(
                pk=self.pk, status=RequestStatus.PENDING, expires_at__lte=now
            ).update(status=RequestStatus.EXPIRED, decided_at=now, version=F("version") + 1)
            if not changed:
                return False
            self.status, self.decided_at = RequestStatus.EXPIRED, now
            goal = self.goal
            rule = goal.on_timeout
            goal.record(
                "expired", f"{self.get_kind_display()} request expired unanswered: denied.", request=self.pk
            )
            if rule == OnTimeout.DENY_AND_PAUSE:
                goal.set_status(GoalStatus.PAUSED, None, "Paused: an approval request expired unanswered.")
            signals.request_expired.send(ApprovalRequest, request=self, rule=rule)
        return True


def expire_overdue_requests(now=None) -> int:
    """Expire every overdue pending request; safe to run from several places at once."""
    return sum(request.expire(now) for request in ApprovalRequest.objects.overdue(now).select_related("goal"))


def get_user_model_class():
    from django.contrib.auth import get_user_model

    return get_user_model()


def _clean_verdict(request: ApprovalRequest, verdict: str, extend: dict | None) -> str:
    if verdict not in Verdict.values:
        raise DecisionRefused("invalid", f"Unknown decision “{verdict}”: approve, reject, stop or extend.")
    if verdict == Verdict.EXTEND:
        if request.kind != RequestKind.BUDGET:
            raise DecisionRefused("invalid", "Only a budget request can be extended.")
        if not isinstance(extend, dict) or not extend:
            raise DecisionRefused("invalid", "Say which budget to extend and by how much.")
        for name, amount in extend.items():
            if name not in EXTENDABLE_BUDGETS:
                raise DecisionRefused("invalid", f"No budget called “{name}”.")
            if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                raise DecisionRefused("invalid", f"Extend {name} by a whole number above 0.")
    elif extend:
        raise DecisionRefused("invalid", "Only an extend decision carries a budget extension.")
    if verdict == Verdict.APPROVE and request.kind == RequestKind.BUDGET:
        spent = _budget_still_spent(request)
        if spent:
            # Approving alone would only run into the same budget again and ask again, without end.
            raise DecisionRefused("invalid", f"{spent} Extend it to go on, or reject or stop the goal.")
    return verdict


def _budget_still_spent(request: ApprovalRequest) -> str:
    """The reason, when the budget this request is about is still used up; "" when it no longer is."""
    named = request.details.get("budget") if isinstance(request.details, dict) else None
    finding = request.goal.exhausted_budget()
    if finding is None or (named and finding.data.get("budget") != named):
        return ""
    return gates.budget_used_up(finding.data["budget"], finding.data["used"], finding.data["allowed"])


class Decision(models.Model):
    """One person's answer to a request. Append-only: never changed, never deleted, the goal's audit trail."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    device = models.CharField(max_length=120, blank=True)
    extend = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One approving vote per person and request: the two-person rule counts people, not taps.
            models.UniqueConstraint(
                fields=["request", "user"],
                condition=models.Q(verdict="approve"),
                name="one_approval_per_person",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.verdict} #{self.request_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Decisions are append-only.")
        try:
            return super().save(*args, **kwargs)
        except IntegrityError as error:
            raise DecisionRefused("already_voted", "You already approved this request.") from error

    def delete(self, *args, **kwargs):
        raise ValidationError("Decisions are append-only.")


class NotifyMode(models.TextChoices):
    EVERY_REQUEST = "every", "Every request"
    HIGH_RISK = "high_risk", "High-risk requests only"
    STALLS = "stalls", "Stalls only"


class NotificationSettings(models.Model):
    """What a person wants pushed to their devices, and when not to."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    mode = models.CharField(max_length=20, choices=NotifyMode.choices, default=NotifyMode.EVERY_REQUEST)
    quiet_start = models.TimeField(null=True, blank=True, help_text="Quiet hours start (local time); empty: none.")
    quiet_end = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")

    def __str__(self) -> str:
        return f"{self.user}: {self.get_mode_display()}"

    @classmethod
    def for_user(cls, user) -> NotificationSettings:
        return cls.objects.get_or_create(user=user)[0]


class PushSubscription(models.Model):
    """One device's Web Push subscription (the browser's endpoint and keys)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200, help_text="The browser's public key: raw P-256 point, base64url.")
    auth = models.CharField(max_length=100, help_text="The browser's auth secret, base64url.")
    device_name = models.CharField(max_length=100, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.device_name or self.endpoint[:60]


class ActionToken(models.Model):
    """A single-use, short-lived permission to decide one request from a notification's button."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="action_tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    nonce = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.verdict} #{self.request_id} for {self.user}"
