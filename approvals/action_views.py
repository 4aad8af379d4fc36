"""The endpoint behind a notification's Approve and Reject buttons: the service worker posts the button's token."""

from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from approvals import push
from approvals.models import ActionToken, DecisionRefused, RequestStatus
from config.bodies import Unreadable, request_json

REFUSAL_STATUS = {"not_allowed": 403, "invalid": 400}


@csrf_exempt  # the token is the credential; a service worker's fetch carries no CSRF token
@login_not_required
@require_POST
def push_action(request: HttpRequest) -> JsonResponse:
    """Decide a request from a notification button, exactly once per token.

    200 {"ok": true, "status": …}; 400 malformed; 413 too large; 403 a token this site did not sign (or a person
    no longer allowed to decide); 410 a token unknown, someone else's (the same answer), used or expired; 409 the
    request was settled already (the message says by whom).
    """
    try:
        body = request_json(request)
    except Unreadable as error:
        if error.status == 413:
            return _refuse(413, "too_large", error.reason)
        return _refuse(400, "malformed", f'Send JSON: {{"token": "…"}}. {error.reason}')
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        return _refuse(400, "malformed", 'Send JSON: {"token": "…"}.')
    try:
        nonce = push.action_token_nonce(token)
    except signing.BadSignature:
        return _refuse(403, "bad_signature", "This button's token is not valid.")
    action = ActionToken.objects.select_related("request__goal", "user").filter(nonce=nonce).first()
    someone_elses = action is not None and (
        not action.user.is_active or (request.user.is_authenticated and request.user.pk != action.user_id)
    )
    if action is None or someone_elses:  # someone else's answers as an unknown one: no hint it exists
        return _refuse(410, "unknown", "This button's token is no longer valid: open the request instead.")

    now = timezone.now()
    claimed = ActionToken.objects.filter(pk=action.pk, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
    if not claimed:
        action.refresh_from_db(fields=["used_at", "expires_at"])
        if action.used_at is not None:
            return _refuse(410, "used", "This button was already used.")
        approval = action.request
        approval.refresh_from_db(fields=["status"])
        if approval.status != RequestStatus.PENDING:
            # Settling a request revokes its tokens: say what happened to it rather than "expired".
            refusal = approval._why_not_pending(now)
            return _refuse(409, refusal.code, str(refusal))
        return _refuse(410, "expired", "This button expired: open the request to decide.")

    try:
        result = action.request.decide(action.user, action.verdict, device="notification")
    except DecisionRefused as refusal:
        return _refuse(REFUSAL_STATUS.get(refusal.code, 409), refusal.code, str(refusal))
    return JsonResponse(
        {"ok": True, "status": result.request.status, "settled": result.settled, "verdict": action.verdict}
    )


def _refuse(status: int, reason: str, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "reason": reason, "message": message}, status=status)
