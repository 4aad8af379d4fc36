from approvals.models import ApprovalRequest


def pending_count(request) -> dict:
    """The number in the header: pending requests the signed-in person may answer."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"pending_count": ApprovalRequest.objects.pending().answerable_by(user).count()}
