from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from approvals import signals
from goals.models import BUDGET_FIELDS, Goal, GoalStatus, OnTimeout


class RequestKind(models.TextChoices):
    PLAN = "plan", "Plan"
    STEP = "step", "Step"
    BUDGET = "budget", "Budget"
    STALL = "stall", "Stall"
    DONE = "done", "Done"
    FOLLOW_UP = "follow_up", "Follow-up"


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

    def visible_to(self, user) -> ApprovalRequestQuerySet:
        return self.filter(goal__in=Goal.objects.visible_to(user))

    def overdue(self, now=None) -> ApprovalRequestQuerySet:
        return self.pending().filter(expires_at__lte=now or timezone.now())


class ApprovalRequest(models.Model):
    """A step, plan, budget, stall, done or follow-up that waits for a human's word."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="approval_requests")
    step_number = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=20, choices=RequestKind.choices)
    status = models.CharField(
        max_length=20, choices=RequestStatus.choices, default=RequestStatus.PENDING, db_index=True
    )
    findings = models.JSONField(default=list, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    plan = models.TextField(blank=True, help_text="The agent's plan, for a plan request.")
    details = models.JSONField(
        default=dict, blank=True, help_text="Kind-specific: the budget asked for, a draft…"
    )
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
    ) -> ApprovalRequest:
        """Open a request for the goal, superseding any it still had pending, and announce it."""
        if kind not in RequestKind.values:
            raise ValueError(f"unknown request kind {kind!r}")
        now = timezone.now()
        two_person = goal.contract().effective_risk == "high" and goal.approvers.count() >= 2
        with transaction.atomic():
            superseded = list(cls.objects.filter(goal=goal).pending().values_list("pk", flat=True))
            if superseded:
                cls.objects.filter(pk__in=superseded, status=RequestStatus.PENDING).update(
                    status=RequestStatus.SUPERSEDED, decided_at=now, version=F("version") + 1
                )
            request = cls.objects.create(
                goal=goal,
                kind=kind,
                findings=findings or [],
                summary=summary[:500],
                step_number=step_number,
                plan=plan,
                details=details or {},
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
            self.refresh_from_db()
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
    return verdict


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
