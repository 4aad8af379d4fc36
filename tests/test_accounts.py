import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_login_page_is_served(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert 'autocomplete="current-password"' in response.text
    assert "csrfmiddlewaretoken" in response.text


def test_login_then_the_goal_list(client, owner):
    response = login(client, "owner", "owner-pass-123")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_wrong_password_rerenders_with_an_error_and_keeps_the_username(client, owner):
    response = login(client, "owner", "nope")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text
    assert 'value="owner"' in response.text


def test_failed_logins_are_rate_limited(client, owner):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "owner", "wrong")
    locked = login(client, "owner", "owner-pass-123")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text


def test_session_lasts_a_month_and_is_renewed(client, owner):
    login(client, "owner", "owner-pass-123")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == 60 * 60 * 24 * 30
    assert settings.SESSION_SAVE_EVERY_REQUEST


def test_logout_is_a_post(client, owner):
    client.force_login(owner)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/goals/").status_code == 302


def test_forms_refuse_a_post_without_csrf_token(owner, git_repo):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post("/goals/new/", {"title": "x"}).status_code == 403
    assert strict.post("/goals/lint-preview/", {"objective": "x"}).status_code == 403


def test_admin_lists_every_model(admin_client):
    for url in ("/admin/goals/goal/", "/admin/goals/goalevent/", "/admin/goals/workerheartbeat/"):
        assert admin_client.get(url).status_code == 200
