"""Each request's origin from the `details["source"]` key (the gateway's) and its kind; the key is then dropped."""

from django.db import migrations

BATCH = 500


def origin_of(kind, details) -> str:
    if isinstance(details, dict) and details.get("source") == "gateway":
        return "gateway"
    if kind in ("stall", "budget"):
        return kind
    return "loop"


def fill_origin(apps, schema_editor):
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    changed = []
    for request in ApprovalRequest.objects.only("pk", "kind", "details").iterator(chunk_size=BATCH):
        request.origin = origin_of(request.kind, request.details)
        if isinstance(request.details, dict):
            request.details = {key: value for key, value in request.details.items() if key != "source"}
        changed.append(request)
        if len(changed) >= BATCH:
            ApprovalRequest.objects.bulk_update(changed, ["origin", "details"])
            changed = []
    ApprovalRequest.objects.bulk_update(changed, ["origin", "details"])


def put_source_back(apps, schema_editor):
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    changed = []
    for request in ApprovalRequest.objects.filter(origin="gateway").only("pk", "details").iterator(chunk_size=BATCH):
        request.details = {**(request.details if isinstance(request.details, dict) else {}), "source": "gateway"}
        changed.append(request)
        if len(changed) >= BATCH:
            ApprovalRequest.objects.bulk_update(changed, ["details"])
            changed = []
    ApprovalRequest.objects.bulk_update(changed, ["details"])


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0004_request_origin'),
    ]

    operations = [
        migrations.RunPython(fill_origin, put_source_back),
    ]
