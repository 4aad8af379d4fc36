from django.urls import path

from gateway import views

app_name = "gateway"

# The goal page's "agents elsewhere" section (included at the site root by config/urls.py).
urlpatterns = [
    path("agents/<int:goal_id>/", views.agents_page, name="page"),
    path("agents/<int:goal_id>/tokens", views.create_token, name="create_token"),
    path("agents/<int:goal_id>/tokens/<int:token_id>/revoke", views.revoke_token, name="revoke_token"),
    path("agents/<int:goal_id>/rules", views.add_rule, name="add_rule"),
    path("agents/<int:goal_id>/rules/<int:rule_id>/revoke", views.revoke_rule, name="revoke_rule"),
    path("agents/<int:goal_id>/settings", views.save_settings, name="settings"),
]
