from django.urls import path

from goals import api

urlpatterns = [
    path("goals/lint", api.lint_goal, name="api_lint_goal"),
]
