"""Web Push: encrypt and send one notification to one browser subscription, and what Goalpost's notifications say.

The protocol is RFC 8030 (TTL, Urgency, Topic headers), RFC 8291 (aes128gcm payload encryption) and RFC 8292
(VAPID). pywebpush does the encryption and signing; this module adds the error policy: `PushError(permanent=True)`
means the subscription is gone (404/410) and the caller deletes it; otherwise `retryable` says whether to try
again later (429, 5xx, timeouts), after `retry_delay()`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

import http_ece
import requests
from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from approvals.models import ActionToken, ApprovalRequest, PushSubscription, RequestKind, Verdict
from goals import egress

# Push services accept 4 KB of encrypted record; the JSON stays well inside it.
MAX_PAYLOAD_BYTES = 3 * 1024
# Seconds to connect and to wait for an answer: a slow push service must not hold a worker.
TIMEOUT_S = 5.0
REQUEST_TTL_S = 60 * 60
STALL_TTL_S = 6 * 60 * 60
TEST_TTL_S = 10 * 60
URGENCIES = ("very-low", "low", "normal", "high")
# RFC 8030: at most 32 characters of the URL-safe base64 alphabet.
TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
RETRY_DELAY_CAP_S = 60 * 60

ACTION_URL = "/push/action"
ACTION_SALT = "approvals.push.action-token"
ACTION_TOKEN_LIFETIME = timedelta(minutes=15)
# Kinds a notification button may answer; a plan or a budget asks for a reading, a stall for a look.
ONE_TAP_KINDS = (RequestKind.STEP, RequestKind.DONE, RequestKind.FOLLOW_UP)
ONE_TAP_ACTIONS = ((Verdict.APPROVE, "Approve"), (Verdict.REJECT, "Reject"))

REQUEST_LABELS = {
    RequestKind.PLAN: "Plan to review",
    RequestKind.STEP: "Step to review",
    RequestKind.BUDGET: "Budget reached",
    RequestKind.STALL: "Stalled",
    RequestKind.DONE: "Done? Your final word",
    RequestKind.FOLLOW_UP: "Follow-up to approve",
    RequestKind.STOP: "Stopped: see what changed",
}


class PushError(Exception):
    """A push that did not go through. `permanent`: the subscription is gone and must be deleted."""

    def __init__(
        self, message: str, *, permanent: bool = False, status: int | None = None, retry_after: int | None = None
    ):
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Worth another try later: throttled, a push service error, or no answer at all."""
        return not self.permanent and (self.status is None or self.status == 429 or self.status >= 500)


def allow_private() -> bool:
    """settings.GOALPOST_PUSH_ALLOW_PRIVATE: the tests' local push service, on plain http at 127.0.0.1."""
    return bool(getattr(settings, "GOALPOST_PUSH_ALLOW_PRIVATE", False))


def endpoint_refusal(endpoint: str, *, resolve: bool = True) -> str:
    """Why Goalpost will not send to a push endpoint, for a person ("" when it will): it must be https, and its host
    must resolve to public addresses only (an IP literal must be a public one; `resolve=False` checks only that,
    leaving a name to the connection's own check)."""
    parts = urlsplit(endpoint)
    try:
        host, port = parts.hostname, parts.port or 443
    except ValueError:
        return "The endpoint's port is not a number."
    if allow_private():
        return "" if parts.scheme in ("http", "https") and host else "The endpoint must be an http(s) URL."
    if parts.scheme != "https" or not host:
        return "The endpoint must be an https:// URL of a push service."
    if not resolve and not egress.is_ip(host):
        return ""
    try:
        egress.check(host, port, [egress.Rule(host, port)], every=True)
    except egress.EgressRefused as refused:
        return f"The endpoint is not a public push service: {refused}."
    return ""


def push_session(endpoint: str) -> requests.Session:
    """A session for the endpoint's push service that connects only to the public addresses it checked, at each
    connection (egress.public_session), or through the proxy the environment names for it: that proxy resolves
    the name, so it must refuse private destinations itself (docs/deploy.md)."""
    proxies = requests.utils.get_environ_proxies(endpoint)
    if allow_private() or proxies:
        # requests re-reads the proxy variables on every request (about a millisecond): read them once here.
        session = requests.Session()
        session.trust_env = False
        session.proxies = proxies
    else:
        session = egress.public_session()
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return session


def send(
    subscription: PushSubscription,
    payload: dict,
    *,
    ttl: int,
    urgency: str,
    topic: str | None,
    session: requests.Session | None = None,
) -> None:
    """Encrypt `payload` (aes128gcm) for the subscription and post it to its push service, signed with VAPID.

    `session` comes from push_session(); without one, a session of its own. An endpoint that is not https, or
    whose host is a private address or resolves to one, is refused before any connection to it (permanent: the
    subscription is deleted)."""
    if refusal := endpoint_refusal(subscription.endpoint, resolve=False):
        raise PushError(refusal, permanent=True)
    data = encode_payload(payload)
    if urgency not in URGENCIES:
        raise ValueError(f"Urgency must be one of {', '.join(URGENCIES)}")
    headers = {"Urgency": urgency}
    if topic is not None:
        if not TOPIC.match(topic):
            raise ValueError("Topic must be 1 to 32 characters of the URL-safe base64 alphabet")
        headers["Topic"] = topic
    own_session = session is None
    session = push_session(subscription.endpoint) if own_session else session
    try:
        webpush(
            subscription_info={
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=data,
            vapid_private_key=_vapid(settings.VAPID_PRIVATE_KEY),
            # pywebpush writes aud and exp into the claims it is given: a fresh dict per call.
            vapid_claims=vapid_claims(),
            content_encoding="aes128gcm",
            ttl=ttl,
            headers=headers,
            timeout=TIMEOUT_S,
            requests_session=session,
        )
    except WebPushException as error:
        status = error.status_code
        if status is None:  # refused before sending: the stored keys are unusable
            raise PushError(f"unusable subscription: {error.message}", permanent=True) from error
        raise PushError(
            f"push service answered {status}",
            permanent=status in (404, 410),
            status=status,
            retry_after=parse_retry_after(error.retry_after),
        ) from error
    except (ValueError, http_ece.ECEException) as error:  # a p256dh that is no P-256 point, bad base64
        raise PushError(f"unusable subscription keys: {error}", permanent=True) from error
    except requests.RequestException as error:  # timeouts, refused connections, DNS
        raise PushError(f"push service unreachable: {type(error).__name__}") from error
    except egress.EgressRefused as refused:  # checked at the connection: the name resolves to a private address
        permanent = not isinstance(refused, egress.Unresolved)
        raise PushError(f"The endpoint is not a public push service: {refused}.", permanent=permanent) from refused
    finally:
        if own_session:
            session.close()


def send_notification(
    subscription: PushSubscription, payload: dict, *, session: requests.Session | None = None
) -> None:
    """Send one of the payloads below with the TTL, Urgency and Topic its type calls for."""
    send(subscription, payload, session=session, **delivery_options(payload))


def delivery_options(payload: dict) -> dict:
    """TTL, Urgency and Topic: a newer push for the same request (or goal's stall) replaces one not yet shown."""
    if payload["type"] == "request":
        return {"ttl": REQUEST_TTL_S, "urgency": "high", "topic": f"request-{payload['request_id']}"}
    if payload["type"] == "stall":
        return {"ttl": STALL_TTL_S, "urgency": "high", "topic": f"stall-{payload['goal_id']}"}
    return {"ttl": TEST_TTL_S, "urgency": "normal", "topic": None}


def encode_payload(payload: dict) -> bytes:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"push payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return data


def vapid_claims() -> dict:
    return {"sub": settings.VAPID_SUBJECT}


@lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid:
    return Vapid.from_raw(private_key.encode())


def parse_retry_after(value: str | None) -> int | None:
    """Retry-After in seconds, from either of its forms (seconds, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int((when - timezone.now()).total_seconds()))


def retry_delay(attempt: int, retry_after: int | None = None) -> int:
    """Seconds before try number `attempt` (1, 2, …): doubling from 10 s, never sooner than Retry-After asks."""
    return min(RETRY_DELAY_CAP_S, max(retry_after or 0, 10 * 2 ** (attempt - 1)))


# --- what the notifications say ------------------------------------------------------------------------------


def payload_for_request(request: ApprovalRequest, user) -> dict:
    """The notification for a pending request, with one-tap tokens for `user` where a tap may decide it."""
    goal = request.goal
    if not goal.can_decide(user):
        raise PermissionDenied("Only the goal's owner and approvers are told about its requests.")
    label = REQUEST_LABELS.get(request.kind, "Request")
    if request.kind == RequestKind.STEP and request.step_number:
        label = f"Step {request.step_number} to review"
    payload = {
        "type": "request",
        "request_id": request.pk,
        "goal_id": goal.pk,
        "goal_title": _one_line(goal.title, 100),
        "kind": request.kind,
        "title": _one_line(f"{label} · {goal.title}", 100),
        "body": _one_line(_reason(request), 180),
        "url": f"/approvals/{request.pk}/",
        # The loop's newer request replaces its older one on the lock screen; each agent tool call is its own.
        "tag": f"goal-{goal.pk}-request-{request.pk}" if request.from_gateway else f"goal-{goal.pk}",
        "actions": [],
    }
    one_tap = (
        request.is_pending
        and request.kind in ONE_TAP_KINDS
        and request.required_approvals == 1
        and goal.contract().effective_risk != "high"
    )
    if one_tap:
        payload["actions"] = [
            {"action": verdict.value, "title": title, "token": issue_action_token(request, user, verdict)}
            for verdict, title in ONE_TAP_ACTIONS
        ]
        payload["action_url"] = ACTION_URL
    return payload


def payload_for_stall(goal, reason: str) -> dict:
    """The notification for a stalled goal; it opens the goal's pending request when there is one."""
    request = ApprovalRequest.objects.filter(goal=goal).pending().order_by("-created_at", "-id").first()
    return {
        "type": "stall",
        "request_id": request.pk if request else None,
        "goal_id": goal.pk,
        "goal_title": _one_line(goal.title, 100),
        "kind": "stall",
        "title": _one_line(f"Stalled · {goal.title}", 100),
        "body": _one_line(reason, 180),
        "url": f"/approvals/{request.pk}/" if request else goal.get_absolute_url(),
        "tag": f"goal-{goal.pk}-stall",
        "actions": [],
    }


def payload_for_test() -> dict:
    return {
        "type": "test",
        "title": "Goalpost notifications work",
        "body": "This device will buzz when a goal needs you.",
        "url": "/",
        "tag": "goalpost-test",
        "actions": [],
    }


def _reason(request: ApprovalRequest) -> str:
    reasons = [f.get("reason", "") for f in request.findings if f.get("severity") != "info" and f.get("reason")]
    if reasons:
        more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
        return f"{reasons[0]}{more}"
    return request.summary or "Waiting for your decision."


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- one-tap action tokens -----------------------------------------------------------------------------------


def issue_action_token(request: ApprovalRequest, user, verdict: str) -> str:
    """A signed, single-use token that lets `user` give `verdict` on `request` from a notification button.

    Only the nonce is stored (with the request, the user, the verdict and the expiry); the token is the nonce
    signed with the site's secret, so a guessed or altered token fails before the database is asked.
    """
    nonce = secrets.token_urlsafe(24)
    expires_at = min(timezone.now() + ACTION_TOKEN_LIFETIME, request.expires_at)
    ActionToken.objects.create(request=request, user=user, verdict=verdict, nonce=nonce, expires_at=expires_at)
    return signing.Signer(salt=ACTION_SALT).sign(nonce)


def action_token_nonce(token: str) -> str:
    """The nonce inside a token; raises signing.BadSignature for a token this site did not sign."""
    return signing.Signer(salt=ACTION_SALT).unsign(token)
