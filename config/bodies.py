"""Reading JSON a client sends, in one place: the API's bodies (config/api.py), the plain views that take JSON (a
notification's button, a browser's push subscription) and JSON typed into a form (goals/forms.py `JsonInput`).

Whatever arrives, the answer is a value or `Unreadable` with a reason for a person and the HTTP status it calls
for (413 too large, 400 otherwise), never an exception the server did not expect: nesting deep enough to exhaust
Python's recursion, bytes that are not UTF-8, NaN (which PostgreSQL's jsonb refuses), NUL characters and lone
surrogates (no database or file system takes them).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from config.middleware import API_PREFIX

# Every body, forms included, has Django's one limit; goalpost_client trims to the same number.
MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
MAX_DEPTH = 64
TOO_LARGE = f"The body is larger than {MAX_BODY_BYTES // 1024} KB."
TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels is not accepted."


class Unreadable(ValueError):
    """JSON that cannot be used: `reason` says why, `status` is 413 for a body too large, else 400."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def request_json(request: HttpRequest) -> object:
    """The request's body as JSON, or Unreadable."""
    try:
        body = request.body
    except RequestDataTooBig as error:
        raise Unreadable(TOO_LARGE, 413) from error
    return read_json(body)


def read_json(data: bytes | str) -> object:
    """`data` as JSON (bytes must be UTF-8), or Unreadable."""
    if len(data) > MAX_BODY_BYTES:
        raise Unreadable(TOO_LARGE, 413)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data  # JSON is UTF-8 (json.loads guesses)
    except UnicodeDecodeError as error:
        raise Unreadable("The body is not valid UTF-8.") from error
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as error:
        raise Unreadable(TOO_DEEP) from error
    except ValueError as error:  # JSONDecodeError, a number of more than 4,300 digits, NaN and Infinity
        raise Unreadable(f"Malformed JSON: {error}"[:300]) from error
    refuse_unstorable(value)
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def refuse_unstorable(value: object) -> None:
    """Refuse nesting deeper than MAX_DEPTH, and text no database or file system takes: NUL characters and lone
    surrogates, keys included."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise Unreadable(TOO_DEEP)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack += [(child, depth + 1) for child in children]
        elif isinstance(item, str):
            if "\x00" in item:
                raise Unreadable("Text with NUL characters (\\u0000) is not accepted.")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as error:
                raise Unreadable("Text with lone surrogates is not valid UTF-8.") from error


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 view (handler400), except that a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 that says so,
    and the JSON API answers in JSON (a multipart body without a boundary, read by the CSRF check, ends here)."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"error": TOO_LARGE}, status=413)
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"error": "The request cannot be read: a malformed body or header."}, status=400)
    return defaults.bad_request(request, exception)
