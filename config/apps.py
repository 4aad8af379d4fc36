from django.apps import AppConfig
from django.core import checks


class GoalpostConfig(AppConfig):
    """The project's own system checks (config/checks.py)."""

    name = "config"
    verbose_name = "Goalpost"

    def ready(self) -> None:
        from config.checks import check_middleware_settings

        checks.register(check_middleware_settings, checks.Tags.security, deploy=True)
