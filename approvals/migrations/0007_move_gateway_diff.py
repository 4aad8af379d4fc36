"""A gateway request's diff from `details["diff"]` (and `details["diff_truncated"]`) to its own fields, and back."""

from django.db import migrations

BATCH = 200  # a diff may be 50 kB


def move_diff_out(apps, schema_editor):
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    changed = []
    for request in ApprovalRequest.objects.filter(origin="gateway").iterator(chunk_size=BATCH):
        details = request.details if isinstance(request.details, dict) else {}
        request.diff = str(details.get("diff") or "")
        request.diff_truncated = bool(details.get("diff_truncated"))
        request.details = {key: value for key, value in details.items() if key not in ("diff", "diff_truncated")}
        changed.append(request)
        if len(changed) >= BATCH:
            ApprovalRequest.objects.bulk_update(changed, ["diff", "diff_truncated", "details"])
            changed = []
    ApprovalRequest.objects.bulk_update(changed, ["diff", "diff_truncated", "details"])


def move_diff_back(apps, schema_editor):
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    changed = []
    for request in ApprovalRequest.objects.filter(origin="gateway").iterator(chunk_size=BATCH):
        details = request.details if isinstance(request.details, dict) else {}
        request.details = {**details, "diff": request.diff, "diff_truncated": request.diff_truncated}
        changed.append(request)
        if len(changed) >= BATCH:
            ApprovalRequest.objects.bulk_update(changed, ["details"])
            changed = []
    ApprovalRequest.objects.bulk_update(changed, ["details"])


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0006_request_diff'),
    ]

    operations = [
        migrations.RunPython(move_diff_out, move_diff_back),
    ]
