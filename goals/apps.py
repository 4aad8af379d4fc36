from django.apps import AppConfig


class GoalsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "goals"
    verbose_name = "Goals"

    def ready(self) -> None:
        """Connect the loop to the approvals signals, explicitly and in order (goals is ready before approvals,
        so a decision or an expiry moves the goal on before the human side announces it)."""
        from approvals import signals
        from goals import receivers

        signals.decision_made.connect(receivers.on_decision, dispatch_uid="goals.on_decision")
        signals.request_expired.connect(receivers.on_expiry, dispatch_uid="goals.on_expiry")
