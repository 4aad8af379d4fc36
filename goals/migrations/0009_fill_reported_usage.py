from django.db import migrations
from django.db.models import Q, Sum


def fill(apps, schema_editor):
    """What agents reported through the gateway joins the goal's own usage: their tokens, and the files their
    allowed or approved calls wrote (the gateway used to add these up apart, for its own budget checks only)."""
    Goal = apps.get_model("goals", "Goal")
    AgentReport = apps.get_model("gateway", "AgentReport")
    GatewayCall = apps.get_model("gateway", "GatewayCall")
    tokens = dict(AgentReport.objects.values("goal_id").annotate(t=Sum("tokens")).values_list("goal_id", "t"))
    paths: dict[int, set[str]] = {}
    kept = GatewayCall.objects.filter(Q(verdict="allow") | Q(request__status="approved"))
    for goal_id, written in kept.values_list("goal_id", "paths"):
        paths.setdefault(goal_id, set()).update(str(path) for path in written or () if path)
    for goal in Goal.objects.filter(pk__in=set(tokens) | set(paths)):
        goal.reported_tokens = tokens.get(goal.pk) or 0
        goal.reported_paths = sorted(paths.get(goal.pk, ()))
        goal.save(update_fields=["reported_tokens", "reported_paths"])


def empty(apps, schema_editor):
    apps.get_model("goals", "Goal").objects.update(reported_tokens=0, reported_paths=[])


class Migration(migrations.Migration):
    dependencies = [
        ("goals", "0008_reported_usage"),
        ("gateway", "0002_tables"),
    ]

    operations = [migrations.RunPython(fill, empty)]
