"""The agent gateway's records: a goal's agent tokens, its always-allow rules and unanswered-call setting, the
tool calls agents proposed and what they reported."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from approvals.models import ApprovalRequest
from goals.models import Goal

AGENT_TOKEN_PREFIX = "gp_"  # noqa: S105 (a prefix, not a secret)
AGENT_TOKEN_DEFAULT_DAYS = 30
# What a token may do, for every token: propose steps and read decisions of its one goal. Never decide.
AGENT_TOKEN_SCOPES = ("propose", "read")


class TokenRefused(Exception):
    """A bearer token that cannot be used; `status` is the HTTP answer (401 or 403), the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def hash_agent_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", errors="replace")).hexdigest()


class AgentTokenQuerySet(models.QuerySet):
    def active(self, now=None) -> AgentTokenQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class AgentToken(models.Model):
    """A goal's credential for an agent running elsewhere: propose steps and read decisions, never decide.

    Only the sha256 of the secret is stored, with its first characters for people to tell tokens apart.
    """

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="agent_tokens")
    name = models.CharField(max_length=100, default="agent")
    prefix = models.CharField(max_length=16, help_text="The first characters of the token, for display.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = AgentTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) for goal {self.goal_id}"

    @property
    def scopes(self) -> tuple[str, ...]:
        return AGENT_TOKEN_SCOPES

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @classmethod
    def issue(cls, goal: Goal, user=None, *, name: str = "agent", days: int | None = AGENT_TOKEN_DEFAULT_DAYS):
        """Create a token for the goal; returns (token, secret). The secret is shown once and never stored."""
        secret = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = timezone.now()
        token = cls.objects.create(
            goal=goal,
            name=(name or "agent").strip()[:100] or "agent",
            prefix=secret[:10],
            token_hash=hash_agent_token(secret),
            created_by=user,
            created_at=now,
            expires_at=now + timedelta(days=days) if days else None,
        )
        goal.record("agent_token", f"Agent token “{token.name}” created ({token.prefix}…).", user, token=token.pk)
        return token, secret

    @classmethod
    def authenticate(cls, secret: str, now=None) -> AgentToken:
        """The token for a presented secret, or TokenRefused(401) saying why it cannot be used."""
        if not secret:
            raise TokenRefused(401, "Send the goal's agent token as `Authorization: Bearer <token>`.")
        token = cls.objects.select_related("goal").filter(token_hash=hash_agent_token(secret)).first()
        if token is None:
            raise TokenRefused(401, "Unknown agent token.")
        now = now or timezone.now()
        if token.revoked_at is not None:
            raise TokenRefused(401, f"This agent token was revoked at {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
        if token.expires_at is not None and token.expires_at <= now:
            raise TokenRefused(401, f"This agent token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC.")
        # At most one write a minute per token, however chatty the agent.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token

    def revoke(self, user=None) -> bool:
        """Revoke the token now; True if this call revoked it."""
        now = timezone.now()
        if not AgentToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now):
            return False
        self.revoked_at = now
        self.goal.record("agent_token", f"Agent token “{self.name}” revoked ({self.prefix}…).", user, token=self.pk)
        return True


class WhenUnanswered(models.TextChoices):
    DENY = "deny", "Deny the tool call; the request stays open on the phone"
    ASK = "ask", "Fall back to the agent's own prompt (Claude Code asks in its terminal)"


class GatewaySettings(models.Model):
    """How the gateway answers for one goal when the phone has not decided in time."""

    goal = models.OneToOneField(Goal, on_delete=models.CASCADE, related_name="gateway_settings")
    when_unanswered = models.CharField(max_length=10, choices=WhenUnanswered.choices, default=WhenUnanswered.DENY)

    def __str__(self) -> str:
        return f"goal {self.goal_id}: {self.when_unanswered}"

    @classmethod
    def for_goal(cls, goal: Goal) -> GatewaySettings:
        return cls.objects.filter(goal=goal).first() or cls(goal=goal)


class RuleKind(models.TextChoices):
    COMMAND_PREFIX = "command_prefix", "Command starts with"
    PATH = "path", "Path matches"


class AlwaysAllowRuleQuerySet(models.QuerySet):
    def active(self) -> AlwaysAllowRuleQuerySet:
        return self.filter(revoked_at__isnull=True)


class AlwaysAllowRule(models.Model):
    """A tool call the owner lets through without asking: a command prefix, or a path glob."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="always_allow_rules")
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    value = models.CharField(max_length=500)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AlwaysAllowRuleQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "value", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value!r}"

    def revoke(self, user=None) -> bool:
        now = timezone.now()
        if not AlwaysAllowRule.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now):
            return False
        self.revoked_at = now
        self.goal.record("rule", f"Always-allow rule revoked: {self}.", user, rule=self.pk)
        return True


class GatewayVerdict(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"
    ASK = "ask", "Ask a person"


class GatewayCall(models.Model):
    """One tool call an agent proposed, what the gates said, and the request it opened or joined."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="gateway_calls")
    token = models.ForeignKey(AgentToken, null=True, blank=True, on_delete=models.SET_NULL)
    agent = models.CharField(max_length=20, default="api", help_text="claude, codex or api")
    session_id = models.CharField(max_length=200, blank=True)
    tool_use_id = models.CharField(max_length=200, blank=True)
    tool_name = models.CharField(max_length=200)
    # sha256 of the tool, its input and cwd: the same call retried joins the request it opened.
    call_key = models.CharField(max_length=64)
    summary = models.CharField(max_length=500, blank=True)
    paths = models.JSONField(default=list, blank=True, help_text="Repository paths the call writes.")
    findings = models.JSONField(default=list, blank=True)
    verdict = models.CharField(max_length=10, choices=GatewayVerdict.choices)
    reason = models.CharField(max_length=1000, blank=True)
    request = models.ForeignKey(
        ApprovalRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="gateway_calls"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # When a retry picked up the settled request's answer: that answer is then used up.
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["goal", "call_key"])]

    def __str__(self) -> str:
        return f"{self.tool_name} on goal {self.goal_id}: {self.verdict}"


class AgentReport(models.Model):
    """What an agent reported: a check it ran (command, exit code, output tail) or the tokens it used."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="agent_reports")
    token = models.ForeignKey(AgentToken, null=True, blank=True, on_delete=models.SET_NULL)
    name = models.CharField(max_length=200, blank=True)
    command = models.TextField(blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    expected_exit = models.IntegerField(default=0)
    passed = models.BooleanField(null=True, blank=True, help_text="Empty for a usage-only report.")
    timed_out = models.BooleanField(default=False)
    failing_tests = models.JSONField(default=list, blank=True)
    output_tail = models.TextField(blank=True)
    failure_signature = models.CharField(max_length=500, blank=True)
    tokens = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"goal {self.goal_id}: {self.command or f'{self.tokens} tokens'}"
