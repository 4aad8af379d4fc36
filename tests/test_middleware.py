"""config/middleware.py: Django's middleware underneath (config/checks.py finds it), and agent requests that no
session acts for. That waiting requests hold no thread is tested through daphne (tests/gateway/test_api.py)."""

from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.module_loading import import_string

from config.checks import as_django_names_it


def test_the_security_and_csrf_middleware_are_djangos_own_underneath():
    named = [as_django_names_it(path) for path in settings.MIDDLEWARE]
    assert "django.middleware.security.SecurityMiddleware" in named
    assert "django.middleware.csrf.CsrfViewMiddleware" in named
    classes = [import_string(path) for path in settings.MIDDLEWARE]
    assert any(issubclass(cls, SecurityMiddleware) for cls in classes)
    assert any(issubclass(cls, CsrfViewMiddleware) for cls in classes)


def test_a_session_does_not_act_for_a_request_with_a_bearer_token(client, owner):
    client.force_login(owner)
    lint = {"objective": "Improve the dashboard.", "constraints": [], "evidence": []}
    assert client.post("/api/v1/goals/lint", lint, content_type="application/json").status_code == 200
    response = client.post(
        "/api/v1/goals/lint", lint, content_type="application/json", HTTP_AUTHORIZATION="Bearer gp_not-a-session"
    )
    assert response.status_code == 401
