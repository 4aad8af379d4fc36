"""config/bodies.py: JSON read in one place, whatever arrives; and a body over the limit is a 413 with a JSON
reason wherever Django reads it, a form's included."""

import pytest
from django.test import Client

from config.bodies import MAX_BODY_BYTES, TOO_LARGE, Unreadable, read_json


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "value"),
    [
        pytest.param(b'{"a": [1, "\xc3\xa9"]}', {"a": [1, "é"]}, id="utf-8-bytes"),
        pytest.param('{"a": "é"}', {"a": "é"}, id="text"),
        pytest.param("[" * 64 + "]" * 64, nested(64), id="nested-to-the-limit"),
        pytest.param("1e999", float("inf"), id="a-huge-exponent-is-a-float"),
    ],
)
def test_it_reads_json(data, value):
    assert read_json(data) == value


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        pytest.param(b"x" * (MAX_BODY_BYTES + 1), 413, TOO_LARGE, id="too-large"),
        pytest.param("[" * 65 + "]" * 65, 400, "nested deeper than 64 levels", id="one-level-too-deep"),
        pytest.param("[" * 100_000 + "]" * 100_000, 400, "nested deeper than 64 levels", id="past-the-recursion-limit"),
        pytest.param('{"a": ' * 100_000, 400, "", id="unclosed-nesting"),
        pytest.param(b'{"a": "\xff"}', 400, "not valid UTF-8", id="invalid-utf-8"),
        pytest.param(b"\xff\xfe{\x00}\x00", 400, "not valid UTF-8", id="utf-16-is-not-guessed"),
        pytest.param("[NaN]", 400, "NaN is not a JSON number", id="nan"),
        pytest.param("[-Infinity]", 400, "-Infinity is not a JSON number", id="infinity"),
        pytest.param("[" + "9" * 5000 + "]", 400, "Malformed JSON", id="a-5000-digit-integer"),
        pytest.param('["\\u0000"]', 400, "NUL characters", id="nul"),
        pytest.param('{"\\udc00": 1}', 400, "lone surrogates", id="a-surrogate-key"),
        pytest.param("", 400, "Malformed JSON", id="empty"),
    ],
)
def test_it_refuses_what_it_cannot_use_with_a_reason(data, status, reason):
    with pytest.raises(Unreadable) as refused:
        read_json(data)
    assert refused.value.status == status
    assert reason in refused.value.reason


OVERSIZED = {"title": "x" * (MAX_BODY_BYTES + 1)}


@pytest.mark.django_db
@pytest.mark.parametrize("csrf_checks", [False, True], ids=["read-by-the-view", "read-by-the-csrf-check"])
@pytest.mark.parametrize("url", ["/goals/new/", "/settings/", "/accounts/login/"])
def test_an_oversized_form_is_a_413_with_a_json_reason(owner, url, csrf_checks):
    client = Client(enforce_csrf_checks=csrf_checks)
    client.force_login(owner)
    client.cookies["csrftoken"] = secret = "a" * 32  # a token to compare: the check reads the form for it
    response = client.post(url, {**OVERSIZED, "csrfmiddlewaretoken": secret})
    assert response.status_code == 413
    assert response.json() == {"error": TOO_LARGE}


@pytest.mark.django_db
def test_an_oversized_api_body_with_a_session_is_a_413_too(client, owner):
    client.force_login(owner)
    response = client.post("/api/v1/goals/lint", OVERSIZED, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"error": TOO_LARGE}


@pytest.mark.django_db
def test_other_bad_requests_keep_djangos_400(client, owner, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client.force_login(owner)
    response = client.post("/settings/", {f"f{n}": "x" for n in range(20)})
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_body_the_csrf_check_cannot_read_is_a_json_400_on_the_api(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    client.cookies["csrftoken"] = secret = "b" * 32
    response = client.post(
        "/api/v1/goals/lint", b"x", content_type="multipart/form-data", headers={"X-CSRFToken": secret}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "The request cannot be read: a malformed body or header."}


@pytest.mark.django_db
def test_a_path_under_the_api_that_no_operation_takes_is_a_json_404(client):
    response = client.get("/api/v1/goals/-1")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found: no operation of the API has this path."}
    page = client.get("/nowhere/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")  # a page's 404, as before
