from django.apps import AppConfig


class GatewayConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "gateway"
    verbose_name = "Agent gateway"

    def ready(self) -> None:
        """A tool call approved on the phone counts its files in the goal's usage, an approved stop request resumes
        its goal, an agent's approved done request makes its goal done, and the agents waiting on a settled request
        wake up: connected after approvals' own receivers (live, then delivery), since this app comes after
        approvals in INSTALLED_APPS."""
        from approvals import signals
        from gateway import calls, changes

        signals.decision_made.connect(calls.count_approved_call, dispatch_uid="gateway.calls.count_approved")
        signals.decision_made.connect(changes.resume_after_accepted_stop, dispatch_uid="gateway.changes.accepted")
        signals.decision_made.connect(calls.finish_done_review, dispatch_uid="gateway.calls.finish_done_review")
        signals.decision_made.connect(calls.announce_settled, dispatch_uid="gateway.calls.decision_made")
        signals.request_expired.connect(calls.announce_settled, dispatch_uid="gateway.calls.request_expired")
        signals.request_superseded.connect(calls.announce_settled, dispatch_uid="gateway.calls.request_superseded")
