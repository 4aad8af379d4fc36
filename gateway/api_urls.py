# The agent gateway's JSON API under /api/v1/ (tokens, steps, decisions, hooks, the OpenAPI schema).
from django.urls import path

from gateway import api

urlpatterns: list = [
    path("openapi.json", api.openapi, name="api_openapi"),
    path("goals/<int:goal_id>", api.goal_detail, name="api_goal"),
    path("goals/<int:goal_id>/steps", api.propose_step, name="api_propose_step"),
    path("goals/<int:goal_id>/evidence", api.report_evidence, name="api_report_evidence"),
    path("goals/<int:goal_id>/usage", api.report_usage, name="api_report_usage"),
    path("goals/<int:goal_id>/heartbeat", api.heartbeat, name="api_heartbeat"),
    path("goals/<int:goal_id>/rules", api.rules, name="api_rules"),
    path("goals/<int:goal_id>/rules/<int:rule_id>", api.rule_detail, name="api_rule"),
    path("requests/<int:request_id>/decision", api.request_decision, name="api_request_decision"),
    path("hooks/claude", api.claude_hook, name="api_claude_hook"),
]
