from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        """Connect the receivers, explicitly and in the order they run (not the order their modules import in).

        live first: its commit hooks only hand work to its thread, so they run before the ones that publish
        tasks; then delivery (revokes a settled request's buttons in the transaction, pushes to phones after it);
        then the gateway (wakes the agents waiting on a settled request).
        """
        from django.db.models.signals import post_save

        from approvals import delivery, live, receivers, signals
        from goals import signals as goal_signals
        from goals.models import GoalEvent, Step

        # live: open pages update
        signals.request_opened.connect(live.on_request_opened, dispatch_uid="approvals.live.request_opened")
        signals.decision_made.connect(live.on_decision_made, dispatch_uid="approvals.live.decision_made")
        signals.request_expired.connect(live.on_request_expired, dispatch_uid="approvals.live.request_expired")
        signals.request_superseded.connect(live.on_request_superseded, dispatch_uid="approvals.live.request_superseded")
        post_save.connect(live.on_goal_status, sender=GoalEvent, dispatch_uid="approvals.live.goal_status")
        post_save.connect(live.on_step_saved, sender=Step, dispatch_uid="approvals.live.step_progress")

        # delivery: phones buzz; a settled request's buttons stop working
        signals.request_opened.connect(
            receivers.push_on_request_opened, dispatch_uid="approvals.delivery.request_opened"
        )
        goal_signals.goal_stalled.connect(
            receivers.push_on_goal_stalled, dispatch_uid="approvals.delivery.goal_stalled"
        )
        signals.decision_made.connect(
            delivery.revoke_action_tokens, dispatch_uid="approvals.delivery.revoke_on_decision"
        )
        signals.request_expired.connect(
            delivery.revoke_action_tokens, dispatch_uid="approvals.delivery.revoke_on_expiry"
        )
        signals.request_superseded.connect(
            delivery.revoke_action_tokens, dispatch_uid="approvals.delivery.revoke_on_supersede"
        )

