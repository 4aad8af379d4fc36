from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from goals import views as goal_views

urlpatterns = [
    path("", goal_views.home, name="home"),
    path("healthz", goal_views.healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("goals/", include("goals.urls")),
    path("api/v1/", include("goals.api_urls")),
    path("admin/", admin.site.urls),
]
