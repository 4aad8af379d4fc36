from django.core.management.base import BaseCommand, CommandError

from gateway.models import AGENT_TOKEN_DEFAULT_DAYS, AgentToken
from goals.models import Goal


class Command(BaseCommand):
    help = (
        "Create an agent token for a goal: it proposes steps and reads decisions for that goal, never decides. "
        "The token is printed once, as the last word of the last line."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("goal_id", type=int)
        parser.add_argument("--name", default="agent", help="What the token is for, e.g. 'claude on my laptop'.")
        parser.add_argument(
            "--days",
            type=int,
            default=AGENT_TOKEN_DEFAULT_DAYS,
            help=f"Days until it expires (default {AGENT_TOKEN_DEFAULT_DAYS}; 0: never).",
        )

    def handle(self, *args, goal_id: int, name: str, days: int, **options) -> None:
        goal = Goal.objects.filter(pk=goal_id).first()
        if goal is None:
            raise CommandError(f"No goal {goal_id}.")
        if days < 0:
            raise CommandError("--days must be 0 (never expires) or more.")
        token, secret = AgentToken.issue(goal, None, name=name, days=days or None)
        expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never expires"
        self.stdout.write(
            f"Agent token “{token.name}” for goal {goal.pk} ({goal.title}), {expiry}.\n"
            "It proposes steps and reads decisions for this goal only. It is shown once: keep it secret.\n"
            f"export GOALPOST_GOAL={goal.pk}\n"
            f"export GOALPOST_TOKEN={secret}"
        )
