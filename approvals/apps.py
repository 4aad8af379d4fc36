from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Connect the receivers: delivery pushes to phones, live updates open pages, the gateway wakes waiting agents.
        from approvals import delivery, gateway, live  # noqa: F401
