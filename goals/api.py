"""JSON API for people signed in to the web app (the agent-token API arrives with the gateway issue)."""

import json

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from goals import lint

MAX_BODY_BYTES = 256 * 1024
MAX_TEXT = 20_000


class BadRequest(ValueError):
    """A request body the API cannot use; the message goes back as the JSON reason."""


def json_error(reason: str, status: int) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


def _session_user_or_error(request: HttpRequest) -> JsonResponse | None:
    """401 for no session, 403 for a session request without its CSRF token: JSON either way."""
    if not request.user.is_authenticated:
        return json_error("Sign in first: this endpoint needs a login session.", 401)
    rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    if rejected is not None:
        return json_error(
            "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.", 403
        )
    return None


def _text(body: dict, key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"`{key}` must be a string.")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"`{key}` is longer than {MAX_TEXT} characters.")
    return value.strip()


def _strings(body: dict, key: str) -> list[str]:
    value = body.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"`{key}` must be a list of strings.")
    return [item.strip() for item in value if item.strip()]


def _budgets(body: dict) -> dict[str, int | None]:
    value = body.get("budgets", {})
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise BadRequest('`budgets` must be an object, e.g. {"tokens": 2000000}.')
    budgets = dict(lint.DEFAULT_BUDGETS)
    for name in lint.BUDGET_NAMES:
        if name not in value:
            continue
        amount = value[name]
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount < 0):
            raise BadRequest(f"`budgets.{name}` must be a whole number ≥ 0, or null.")
        budgets[name] = amount
    return budgets


def contract_from_json(body) -> lint.Contract:
    """The lint API's request body as a contract; unknown fields are ignored."""
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    work_type = body.get("work_type") or "other"
    if not isinstance(work_type, str) or work_type not in lint.WORK_TYPE_RISK:
        raise BadRequest(f"`work_type` must be one of: {', '.join(lint.WORK_TYPE_RISK)}.")
    risk = body.get("risk") or ""
    if risk and (not isinstance(risk, str) or risk not in lint.RISK_ORDER):
        raise BadRequest(f"`risk` must be one of: {', '.join(lint.RISK_ORDER)}.")
    return lint.Contract(
        objective=_text(body, "objective"),
        constraints=tuple(_strings(body, "constraints")),
        evidence=tuple(lint.EvidenceCheck.from_text(item) for item in _strings(body, "evidence")),
        done_criteria=_text(body, "done_criteria"),
        work_type=work_type,
        risk=risk,
        rollback_note=_text(body, "rollback_note"),
        budgets=_budgets(body),
    )


@csrf_exempt  # checked below, after the session, so a request without one gets 401 rather than 403
@login_not_required
def lint_goal(request: HttpRequest) -> JsonResponse:
    """POST /api/v1/goals/lint: {"ready": bool, "findings": [{"rule", "severity", "message"}]}."""
    if request.method != "POST":
        response = json_error("Use POST with a JSON body.", 405)
        response["Allow"] = "POST"
        return response
    rejected = _session_user_or_error(request)
    if rejected is not None:
        return rejected
    if len(request.body) > MAX_BODY_BYTES:
        return json_error(f"The body is larger than {MAX_BODY_BYTES // 1024} KB.", 413)
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        return json_error(f"Malformed JSON: {error}", 400)
    try:
        contract = contract_from_json(body)
    except BadRequest as error:
        return json_error(str(error), 400)
    findings = lint.lint(contract)
    return JsonResponse({"ready": lint.is_ready(findings), "findings": [f.as_dict() for f in findings]})
