"""Every form and JSON view outside the API, fuzzed with hypothesis: huge numbers, nested JSON, control characters,
bytes that are not UTF-8, very long text, in any field. Never a 5xx; a form that refuses its input shows it again
with what was typed elsewhere kept. (The API has its own fuzz: tests/gateway/test_api_fuzz.py.)

Derandomized and a few examples a view, so it adds seconds to the suite; GOALPOST_FUZZ_EXAMPLES=500 digs deeper."""

import html
import json
import os
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import form_data, make_user

EXAMPLES = int(os.environ.get("GOALPOST_FUZZ_EXAMPLES", "15"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="GOALPOST_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=list(HealthCheck),
)
pytestmark = pytest.mark.django_db

KEPT = "Kept as typed ✓"

# What a hostile or broken client types, as the bytes it sends.
NASTY = st.one_of(
    st.text(max_size=40).map(str.encode),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp", "Co"]), max_size=20).map(str.encode),
    st.integers().map(lambda n: str(n).encode()),
    st.integers(1, 6000).map(lambda n: b"9" * n),
    st.integers(1, 6000).map(lambda n: b"-" + b"9" * n),
    st.sampled_from([b"NaN", b"-Infinity", b"1e999", b"0x10", b"\xc2\xb2", b"\xd9\xa3", b" 7 ", b"", b"\x00"]),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.sampled_from([b'[{"summary": "\\u0000"}]', b'["\\ud800"]', b'{"steps": [NaN]}', b"[1, 2"]),
    st.binary(max_size=40),  # bytes that are not UTF-8, surrogates encoded as they are
    st.integers(1, 200).map(lambda n: "é\ud800".encode("utf-8", "surrogatepass") * n),
    st.just(b"x" * 200_000),
)


def form_body(data: dict, field: str, values: list[bytes]) -> bytes:
    """`data` url-encoded as a browser posts it, with `field` holding `values` (bytes, sent as they are)."""
    pairs = [(key, value) for key, items in data.items() if key != field for value in as_list(items)]
    return urlencode([*pairs, *((field, value) for value in values)]).encode()


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def post_form(client: Client, url: str, body: bytes, **extra):
    return client.post(url, body, content_type="application/x-www-form-urlencoded", **extra)


def refused_and_kept(response, marker: str) -> None:
    """No 5xx; a re-rendered form (an error beside a field) still shows `marker`, typed in another field."""
    assert response.status_code < 500, response.status_code
    page = html.unescape(response.content.decode(errors="replace"))
    if response.status_code in (200, 422) and ("field-error" in page or "errorlist" in page):
        assert marker in page


@pytest.fixture
def signed_in(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


# --- the goal form and its live checklist ---------------------------------------------------------------------

GOAL_FIELDS = [
    "objective", "constraints", "evidence_kind", "evidence_text", "evidence_exit", "done_criteria", "work_type",
    "risk", "budget_minutes", "budget_steps", "budget_tokens", "budget_files_per_step", "budget_files_total",
    "budget_approvals", "budget_retries", "repeated_failure_threshold", "protected_paths", "scope_paths",
    "approval_timeout_minutes", "on_timeout", "repository", "base_branch", "agent_profile", "agent_model",
    "agent_script", "network_hosts", "approvers", "viewers", "rollback_note",
]  # fmt: skip


@given(field=st.sampled_from(GOAL_FIELDS), values=st.lists(NASTY, min_size=1, max_size=3))
@fuzz
def test_the_goal_form_never_fails_and_keeps_what_was_typed(signed_in, repository, field, values):
    body = form_body({**form_data(repository), "title": KEPT}, field, values)
    refused_and_kept(post_form(signed_in, "/goals/new/", body), KEPT)
    assert post_form(signed_in, "/goals/lint-preview/", body).status_code < 500


@given(field=st.sampled_from(GOAL_FIELDS), values=st.lists(NASTY, min_size=1, max_size=3))
@fuzz
def test_editing_a_goal_never_fails(signed_in, goal, field, values):
    body = form_body({**form_data(goal.repository), "title": KEPT}, field, values)
    refused_and_kept(post_form(signed_in, f"/goals/{goal.pk}/edit/", body), KEPT)


# --- notification settings, the agents section -----------------------------------------------------------------

SETTINGS = {"mode": "high_risk", "quiet_start": "22:00", "quiet_end": "07:30", "time_zone": "Europe/Berlin"}


@given(field=st.sampled_from(sorted(SETTINGS)), values=st.lists(NASTY, min_size=1, max_size=2))
@fuzz
def test_the_notification_settings_never_fail(signed_in, field, values):
    marker_field = "time_zone" if field != "time_zone" else "quiet_start"
    body = form_body(SETTINGS, field, values)
    response = post_form(signed_in, "/settings/", body)
    refused_and_kept(response, SETTINGS[marker_field])


AGENT_FORMS = {
    "tokens": {"name": "ci agent", "days": "30"},
    "rules": {"kind": "path", "value": "docs/**"},
    "settings": {"when_unanswered": "deny"},
}


@given(
    form=st.sampled_from(sorted(AGENT_FORMS)),
    field=st.sampled_from(["name", "days", "kind", "value", "when_unanswered"]),
    values=st.lists(NASTY, min_size=1, max_size=2),
    htmx=st.booleans(),
)
@fuzz
def test_the_agents_section_never_fails(signed_in, goal, form, field, values, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    body = form_body(AGENT_FORMS[form], field, values)
    assert post_form(signed_in, f"/agents/{goal.pk}/{form}", body, **headers).status_code < 500


# --- the JSON views: a browser's push subscription, a notification's button -------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
SUBSCRIPTION_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "endpoint": JSON_VALUES | st.sampled_from(["https://10.0.0.1/x", "https://localhost/x", "javascript:x"]),
        "keys": JSON_VALUES | st.fixed_dictionaries({}, optional={"p256dh": JSON_VALUES, "auth": JSON_VALUES}),
        "device_name": JSON_VALUES,
        "token": JSON_VALUES,
    },
)
JSON_BODIES = st.one_of(
    SUBSCRIPTION_FIELDS.map(lambda value: json.dumps(value).encode()),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    NASTY,
)


@given(
    url=st.sampled_from(
        ["/settings/push/subscribe", "/settings/push/unsubscribe", "/settings/push/test", "/push/action"]
    ),
    body=JSON_BODIES,
)
@fuzz
def test_the_json_views_never_fail_and_answer_in_json(signed_in, url, body):
    response = signed_in.post(url, body, content_type="application/json")
    assert response.status_code < 500
    if body:  # the test client sends no Content-Type with an empty body: a form post, answered as one
        assert response["Content-Type"].startswith("application/json"), (response.status_code, response.content[:200])


# --- staff's forms: repositories and agent profiles in the admin ------------------------------------------------

ADMIN_FORMS = {
    "repository": (
        {"name": KEPT, "source": "/nonexistent/repo", "default_branch": "main", "enabled": "on", "forge": ""},
        ["source", "default_branch", "forge", "forge_url", "forge_project", "forge_token", "test_paths",
         "generated_paths", "vendored_paths", "users"],
    ),
    "agentprofile": (
        {"name": KEPT, "adapter": "scripted", "enabled": "on", "extra_args": "[]", "models": "[]",
         "options": "{}", "egress_hosts": "[]"},
        ["adapter", "preset", "executable", "extra_args", "base_url", "api_key", "api_key_env", "models", "options",
         "egress_hosts", "users", "groups"],
    ),
}  # fmt: skip


@pytest.fixture
def superuser() -> Client:
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@given(data=st.data(), model=st.sampled_from(sorted(ADMIN_FORMS)), values=st.lists(NASTY, min_size=1, max_size=2))
@fuzz
def test_the_repository_and_profile_forms_never_fail(superuser, data, model, values):
    fields, fuzzed = ADMIN_FORMS[model]
    field = data.draw(st.sampled_from(fuzzed))
    response = post_form(superuser, f"/admin/goals/{model}/add/", form_body(fields, field, values))
    refused_and_kept(response, KEPT)
