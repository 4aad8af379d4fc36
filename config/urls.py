from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from approvals import views as approval_views
from goals import views as goal_views

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
    path("api/v1/", include("goals.api_urls")),
    path("api/v1/", include("gateway.api_urls")),
    path("admin/", admin.site.urls),
]
