import json

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/goals/lint"
GOOD = {
    "objective": (
        "Reduce the dashboard initial load time below 1.5s on the existing seeded dataset, without changing the "
        "visible table behavior or removing any current filters"
    ),
    "constraints": ["Do not change the visible table behavior", "Do not remove any current filters"],
    "evidence": ["pytest tests/test_dashboard.py", "python scripts/measure_dashboard.py --max-seconds 1.5"],
    "done_criteria": "Under 1.5 s three runs in a row",
    "work_type": "ui_refactor",
}


@pytest.fixture
def api(client, owner):
    client.force_login(owner)
    return client


def post(client, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", **extra)


def test_good_goal_is_ready(api):
    response = post(api, GOOD)
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert all(f["severity"] != "blocking" for f in body["findings"])
    assert all(set(f) == {"rule", "severity", "message"} for f in body["findings"])


@pytest.mark.parametrize(
    ("objective", "rule"),
    [
        pytest.param("Improve the dashboard.", "objective_no_target", id="improve the dashboard is a meeting"),
        pytest.param("Make onboarding better", "vague_verb", id="make onboarding better is vague"),
        pytest.param("make tests pass", "objective_too_wide", id="make tests pass is wide and weak"),
    ],
)
def test_seed_bad_objectives_are_blocked(api, objective, rule):
    body = post(api, {**GOOD, "objective": objective}).json()
    assert body["ready"] is False
    assert any(f["rule"] == rule and f["severity"] == "blocking" for f in body["findings"])


def test_absent_budgets_take_bounded_defaults(api):
    body = post(api, {k: v for k, v in GOOD.items()}).json()
    assert not any(f["rule"] == "budget_unbounded" for f in body["findings"])


@pytest.mark.parametrize("value", [None, 0])
def test_unbounded_budget_is_blocking(api, value):
    body = post(api, {**GOOD, "budgets": {"tokens": value, "steps": 10}}).json()
    assert body["ready"] is False
    unbounded = [f for f in body["findings"] if f["rule"] == "budget_unbounded"]
    assert len(unbounded) == 1 and "token" in unbounded[0]["message"].lower()


def test_high_risk_without_rollback_is_blocking(api):
    body = post(api, {**GOOD, "work_type": "migration"}).json()
    assert any(f["rule"] == "rollback_missing" for f in body["findings"])
    body = post(api, {**GOOD, "work_type": "migration", "rollback_note": "Run the down migration"}).json()
    assert not any(f["rule"] == "rollback_missing" for f in body["findings"])


def test_unknown_fields_are_ignored(api):
    assert post(api, {**GOOD, "agent_version": "9.9", "budgets": {"steps": 5, "bananas": 3}}).json()["ready"] is True


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param("{not json", "Malformed JSON", id="malformed json"),
        pytest.param(b"\xff\xfe", "not valid UTF-8", id="not utf-8"),
        pytest.param("", "Malformed JSON", id="empty body"),
        pytest.param("[1, 2]", "must be a JSON object", id="a list, not an object"),
        pytest.param({"objective": 5}, "`objective` must be a string", id="objective not a string"),
        pytest.param({"constraints": "one"}, "`constraints` must be a list of strings", id="constraints not a list"),
        pytest.param({"evidence": [1]}, "`evidence` must be a list of strings", id="evidence not strings"),
        pytest.param({"work_type": "magic"}, "`work_type` must be one of", id="unknown work type"),
        pytest.param({"risk": "extreme"}, "`risk` must be one of", id="unknown risk"),
        pytest.param({"budgets": [1]}, "`budgets` must be an object", id="budgets not an object"),
        pytest.param({"budgets": {"tokens": -1}}, "`budgets.tokens` must be a whole number", id="negative budget"),
        pytest.param({"budgets": {"steps": "ten"}}, "`budgets.steps` must be a whole number", id="budget not a number"),
        pytest.param({"budgets": {"steps": True}}, "`budgets.steps` must be a whole number", id="budget a boolean"),
    ],
)
def test_malformed_input_answers_400_with_a_reason(api, body, reason):
    response = post(api, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_without_a_session_it_answers_401_json(client):
    response = post(client, GOOD)
    assert response.status_code == 401
    assert "Sign in" in response.json()["error"]


def test_session_without_csrf_token_answers_403_json(owner):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    response = post(strict, GOOD)
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    strict.get("/goals/")
    token = strict.cookies["csrftoken"].value
    assert post(strict, GOOD, HTTP_X_CSRFTOKEN=token).status_code == 200


def test_get_is_405_json(api):
    response = api.get(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_no_trailing_slash_and_no_redirect(api):
    assert post(api, GOOD).status_code == 200
    assert api.post(URL + "/", "{}", content_type="application/json").status_code == 404


def test_oversized_body_is_413(api):
    response = post(api, {**GOOD, "objective": "x" * (1024 * 1024)})
    assert response.status_code == 413 and response.json() == {"error": "The body is larger than 1024 KB."}
