from django.db import migrations

REPORTED_CHECKS = 5
MAX_OUTPUT = 4_000


def fill(apps, schema_editor):
    """Each gateway request keeps the checks its agent had reported when it was opened (the approval page used
    to look them up at every view)."""
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    AgentReport = apps.get_model("gateway", "AgentReport")
    for request in ApprovalRequest.objects.filter(origin="gateway", evidence=[]).iterator():
        reports = AgentReport.objects.filter(
            goal_id=request.goal_id, passed__isnull=False, created_at__lte=request.created_at
        ).order_by("-created_at", "-id")[:REPORTED_CHECKS]
        request.evidence = [
            {
                "name": report.name or report.command or "check",
                "command": report.command,
                "passed": bool(report.passed),
                "timed_out": report.timed_out,
                "exit_code": report.exit_code,
                "expected_exit": report.expected_exit,
                "failing_tests": list(report.failing_tests or []),
                "output_tail": report.output_tail[-MAX_OUTPUT:],
                "output_cut": len(report.output_tail) > MAX_OUTPUT,
            }
            for report in reversed(list(reports))
        ]
        if request.evidence:
            request.save(update_fields=["evidence"])


def empty(apps, schema_editor):
    apps.get_model("approvals", "ApprovalRequest").objects.exclude(evidence=[]).update(evidence=[])


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0008_request_evidence"),
        ("gateway", "0001_initial"),
    ]

    operations = [migrations.RunPython(fill, empty)]
