from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from approvals import views as approval_views
from config.api import api_urlpatterns, build_api, not_found
from gateway.api import refused_before_the_hook
from gateway.api import router as gateway_api
from goals import views as goal_views
from goals.api import router as goals_api

# The JSON API under /api/v1/: one django-ninja API, its OpenAPI document generated at /api/v1/openapi.json.
api = build_api(
    [goals_api, gateway_api],
    description=(
        "Attach an agent running elsewhere (Claude Code, Codex, a script) to a Goalpost goal: it proposes each "
        "risky tool call, the goal's review gates answer allow, deny or ask, and a person decides from their "
        "phone. Agents authenticate with the goal's token (`Authorization: Bearer <token>`), created on the goal "
        "page or with `python manage.py agent_token GOAL_ID`. A token proposes and reads for its one goal; it "
        "never decides. The goal linter and the always-allow rules' changes take a person's login session and "
        'CSRF token instead. Errors are `{"error": reason}` (Claude Code\'s hook answers 200 with a deny '
        "instead); unknown fields in bodies are ignored."
    ),
)

urlpatterns = [
    path("", approval_views.inbox, name="home"),
    path("healthz", goal_views.healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("goals/", include("goals.urls")),
    path("", include("approvals.notify_urls")),
    path("", include("approvals.urls")),
    path("", include("gateway.urls")),
    path("api/v1/", include(api_urlpatterns(api))),
    path("admin/", admin.site.urls),
]

# A body over DATA_UPLOAD_MAX_MEMORY_SIZE, wherever Django reads it (a view, the CSRF check), is a 413, not a 400;
# the API answers in JSON, and Claude Code's hook with a 200 deny (config.bodies.bad_request, via the gateway's).
handler400 = refused_before_the_hook
handler404 = not_found
