from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Connect the receivers: delivery pushes to phones, live updates open pages, the gateway wakes waiting agents.
        # live first: its commit hooks only hand work to its thread, so they run before the ones that publish tasks.
        from approvals import live  # noqa: F401, I001
        from approvals import delivery, gateway  # noqa: F401
