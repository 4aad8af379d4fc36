from django.urls import path

from goals import views

app_name = "goals"

urlpatterns = [
    path("", views.goal_list, name="list"),
    path("new/", views.goal_create, name="create"),
    path("lint-preview/", views.lint_preview, name="lint_preview"),
    path("rows/<str:field>/", views.new_row, name="new_row"),
    path("<int:pk>/", views.goal_detail, name="detail"),
    path("<int:pk>/edit/", views.goal_edit, name="edit"),
    path("<int:pk>/ready/", views.goal_mark_ready, name="mark_ready"),
    path("<int:pk>/check-evidence/", views.goal_check_evidence, name="check_evidence"),
    path("<int:pk>/<str:action>/", views.goal_control, name="control"),
]
