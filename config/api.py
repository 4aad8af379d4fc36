"""The JSON API under /api/v1/, declared once with django-ninja: its plumbing here, its operations in the apps'
routers (goals/api.py, gateway/api.py), put together in config/urls.py.

django-ninja, because its operations may be async (the agents' long waits are: Django REST framework has no async
views) and its pydantic schemas both check the bodies and generate the OpenAPI document
(`/api/v1/openapi.json`). Every refusal has one shape, `{"error": "<reason for a person>"}`: 400 for a body
or a query the API cannot use (read by config/bodies.py: malformed JSON, nesting deeper than 64 levels, NUL
characters or lone surrogates anywhere; a field of the wrong type or out of range), 401 without a credential, 403
for one that may not do this, 404 for what does not exist or is not the caller's, 405 with `Allow`, 413 for a body
over 1 MB. Unknown fields are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import wraps

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import URLPattern, path
from django.views import defaults
from ninja import NinjaAPI, Router, Schema
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser
from ninja.responses import NinjaJSONEncoder
from ninja.security.base import AuthBase
from pydantic import ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from config.bodies import TOO_LARGE, Unreadable, read_json
from config.middleware import API_PREFIX, is_agent_request

CSRF_REFUSED = "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header."
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Body(Schema):
    """A request body: a JSON object, read strictly (a number is not a string, true is not 1), unknown fields
    ignored."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="wrap")
    @classmethod
    def _an_object(cls, value: object, handler):
        # ninja's Schema reads any value's attributes (for ORM objects): a list would pass as an empty body.
        if not isinstance(value, dict | cls):
            raise PydanticCustomError("model_type", "Input should be an object")
        return handler(value)


class Error(Schema):
    """Every refusal: why, for a person."""

    error: str


def refusals(*codes: int) -> dict[int, type[Error]]:
    """The error responses an operation documents, beside its answer."""
    return dict.fromkeys(codes, Error)


# --- bodies ---------------------------------------------------------------------------------------------------


def json_object(body: bytes) -> object:
    """The body as JSON, or HttpError: too large (413), malformed, too deep or text no database takes (400)."""
    try:
        return read_json(body)
    except Unreadable as error:
        raise HttpError(error.status, error.reason) from error


class JsonBody(Parser):
    def parse_body(self, request: HttpRequest):
        return json_object(request.body)


# --- readable validation errors -------------------------------------------------------------------------------


def readable(error: dict, schema: dict, skip: int = 0) -> str:
    """One pydantic error as a sentence naming the field: "`tokens` must be a whole number from 0 to …".

    `schema` is the JSON schema the error's location walks; the first `skip` parts of the location (the view's
    parameter that holds the whole body) are not named."""
    defs = schema.get("$defs", {})
    node, names = schema, []
    for index, part in enumerate(error["loc"]):
        node = _resolve(node, defs)
        if isinstance(part, int):
            break  # an item of a list: say what the list must be
        properties = node.get("properties", {})
        if part in properties:
            node = properties[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            break
        if index >= skip:
            names.append(str(part))
    name = ".".join(names)
    if error["type"] == "missing":
        return f"`{name}` is required." if name else "Malformed JSON: the body is empty."
    if not name:
        return "The body must be a JSON object."
    return f"`{name}` must be {describe(node, defs)}."


def _resolve(node: dict, defs: dict) -> dict:
    """The schema itself: references followed, an optional one's non-null branch."""
    while True:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node and len(options := [n for n in node["anyOf"] if n.get("type") != "null"]) == 1:
            node = options[0]
        else:
            return node


def describe(node: dict, defs: dict) -> str:
    """What a JSON schema accepts, in words: "a string of at most 200 characters", "one of: a, b", …"""
    if "$ref" in node:
        return describe(_resolve(node, defs), defs)
    if "anyOf" in node:
        options = [describe(option, defs) for option in node["anyOf"] if option.get("type") != "null"]
        nullable = len(options) < len(node["anyOf"])
        return " or ".join(options) + (", or null" if nullable else "")
    if "enum" in node or "const" in node:
        return "one of: " + ", ".join(str(value) for value in node.get("enum", [node.get("const")]))
    kind = node.get("type")
    if kind in ("integer", "number"):
        low, high = node.get("minimum"), node.get("maximum")
        number = "a whole number" if kind == "integer" else "a number"
        if low is not None and high is not None:
            return f"{number} from {low} to {high}"
        return number + (f" ≥ {low}" if low is not None else "") + (f" ≤ {high}" if high is not None else "")
    if kind == "string":
        low, high = node.get("minLength"), node.get("maxLength")
        if high is not None:
            return f"a string of {low} to {high} characters" if low else f"a string of at most {high} characters"
        return "a non-empty string" if low else "a string"
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        items = _resolve(node.get("items", {}), defs).get("type")
        plural = {"string": "strings", "integer": "whole numbers", "object": "objects"}.get(items, "values")
        return f"a list of {plural}" + (f" (at most {node['maxItems']})" if "maxItems" in node else "")
    if kind == "object":
        return "an object"
    return "a valid value"


# --- credentials ----------------------------------------------------------------------------------------------


class SignedIn(AuthBase):
    """A person's login session, with the CSRF token (`X-CSRFToken`) for a change: 401 without a session, 403
    without the token; `tokens_refused`, where an agent token may never act, answers 403 to any bearer request."""

    openapi_type = "apiKey"
    openapi_in = "cookie"
    openapi_name = "sessionid"
    openapi_description = "A signed-in person's session, with `X-CSRFToken` for changes."

    def __init__(self, refused: str, *, tokens_refused: str = ""):
        super().__init__()
        self.refused = refused
        self.tokens_refused = tokens_refused

    def __call__(self, request: HttpRequest):
        if self.tokens_refused and is_agent_request(request):
            raise HttpError(403, self.tokens_refused)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            raise HttpError(401, self.refused)
        # The API's views are CSRF-exempt (a token request has no cookie to forge): a session's check is here.
        unsafe = request.method not in SAFE_METHODS
        if unsafe and CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is not None:
            raise HttpError(403, CSRF_REFUSED)
        return user


# --- the API and its URLs -------------------------------------------------------------------------------------


class GoalpostAPI(NinjaAPI):
    """One NinjaAPI for /api/v1/; its validation errors carry a readable reason (see `readable`)."""

    def document(self) -> dict:
        """The OpenAPI document as /api/v1/openapi.json serves it: plain JSON (its status codes are strings)."""
        return json.loads(json.dumps(self.get_openapi_schema(path_prefix=""), cls=NinjaJSONEncoder))

    def validation_error_from_error_contexts(self, error_contexts) -> ValidationError:
        error = super().validation_error_from_error_contexts(error_contexts)
        first = error_contexts[0]
        skip = 1 if first.model.__ninja_param_source__ == "body" else 0
        error.reason = readable(first.pydantic_validation_error.errors()[0], first.model.model_json_schema(), skip)
        return error


def build_api(routers: Iterable[Router], *, description: str) -> GoalpostAPI:
    api = GoalpostAPI(
        title="Goalpost",
        version="1.0.0",
        description=description,
        docs_url=None,
        openapi_url=None,  # served by the operation below, without a namespace of its own
        servers=[{"url": "/api/v1"}],
        parser=JsonBody(),
    )

    def answer(request: HttpRequest, reason: str, status: int) -> HttpResponse:
        return api.create_response(request, {"error": reason}, status=status)

    def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
        # ninja reports a body its parser refused as "Cannot parse request body", from the parser's own error.
        cause = error.__cause__ if isinstance(error.__cause__, HttpError) else error
        return answer(request, str(cause), cause.status_code)

    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(ValidationError, lambda request, error: answer(request, error.reason, 400))
    api.add_exception_handler(RequestDataTooBig, lambda request, error: answer(request, TOO_LARGE, 413))
    api.add_exception_handler(Http404, lambda request, error: answer(request, str(error) or "Not found.", 404))

    @api.get("/openapi.json", auth=None, url_name="api_openapi", operation_id="getOpenApi", summary="This document")
    def openapi(request: HttpRequest) -> dict:
        return api.document()

    for router in routers:
        api.add_router("", router)
    return api


def api_urlpatterns(api: NinjaAPI) -> list[URLPattern]:
    """The API's routes, named as its operations say (no namespace, no root route), each view marked
    login-not-required (a missing credential is the API's 401, not a redirect to the sign-in page) and answering
    a wrong method with the API's 405."""
    return [
        path(str(pattern.pattern), json_405(pattern.callback), name=pattern.name)
        for pattern in api.urls[0]
        if pattern.name != "api-root"
    ]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 view (handler404), except under /api/v1/: a path no operation takes answers the API's JSON."""
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"error": "Not found: no operation of the API has this path."}, status=404)
    return defaults.page_not_found(request, exception)


def json_405(view: Callable) -> Callable:
    def as_json(response: HttpResponse) -> HttpResponse:
        if not isinstance(response, HttpResponseNotAllowed):
            return response
        allowed = sorted(method.strip() for method in response["Allow"].split(","))
        refused = JsonResponse({"error": f"Use {' or '.join(allowed)}."}, status=405)
        refused["Allow"] = ", ".join(allowed)
        return refused

    if iscoroutinefunction(view):

        @wraps(view)
        async def answered(request, *args, **kwargs):
            return as_json(await view(request, *args, **kwargs))

    else:

        @wraps(view)
        def answered(request, *args, **kwargs):
            return as_json(view(request, *args, **kwargs))

    answered.login_required = False
    return answered
