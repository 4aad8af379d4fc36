"""config/middleware.py: Django's middleware underneath (config/checks.py finds it), agent requests that no
session acts for, and a sync stack no deeper than Django's own. That waiting requests hold no thread is tested
through daphne (tests/gateway/test_api.py)."""

import sys

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware
from django.test import Client, override_settings
from django.urls import path
from django.utils.module_loading import import_string

from config import middleware
from config.checks import as_django_names_it


@login_not_required
def depth(request):
    frame, frames = sys._getframe(), 0
    while frame is not None:
        frame, frames = frame.f_back, frames + 1
    return JsonResponse({"frames": frames})


urlpatterns = [path("depth", depth)]


def djangos_own(path: str) -> str:
    """The dotted path of the Django class a config.middleware class changes; any other path as it is."""
    cls = import_string(path)
    for mixin in (middleware.OnTheLoop, middleware.NotForAgents):
        if isinstance(cls, type) and issubclass(cls, mixin):
            django_class = middleware.django_class(cls, mixin)
            return f"{django_class.__module__}.{django_class.__qualname__}"
    return path


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


@override_settings(ROOT_URLCONF=__name__)
def test_a_sync_stack_is_no_deeper_than_djangos_own_middleware():
    """CPython 3.11 allocates and frees a chunk of its frame stack each time a deep call crosses a chunk's edge, so
    frames under a page slow its rendering by where they put it: eight more took the bench's 20,000-line approval
    page from 60 to 78 ms."""
    ours = Client().get("/depth").json()["frames"]
    django_names = [djangos_own(path) for path in settings.MIDDLEWARE]
    assert django_names != settings.MIDDLEWARE
    with override_settings(MIDDLEWARE=django_names):
        assert Client().get("/depth").json()["frames"] == ours
