import json
import socket

from django.core.management.base import BaseCommand, CommandError

from goals import loop
from goals.models import Goal, GoalStatus


class Command(BaseCommand):
    help = (
        "Run a goal's loop in the foreground, without celery, until it waits for a human, ends or fails. "
        "Prints one JSON object last: goal, status, approval (id, kind, gates) or null."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("goal_id", type=int)
        parser.add_argument(
            "--max-steps", type=int, default=1000, help="Stop after this many steps (safety net)."
        )

    def handle(self, *args, goal_id: int, max_steps: int, **options) -> None:
        goal = Goal.objects.filter(pk=goal_id).first()
        if goal is None:
            raise CommandError(f"No goal {goal_id}.")
        if goal.status == GoalStatus.READY:
            try:
                loop.start(goal, None)
            except loop.ControlRefused as error:
                raise CommandError(str(error)) from error
        elif goal.status not in (GoalStatus.RUNNING,):
            raise CommandError(
                f"Goal {goal_id} is {goal.get_status_display().lower()}: it runs from ready or running."
            )
        outcome = loop.StepOutcome(goal_id, "continue")
        for _ in range(max_steps):
            outcome = loop.run_step(goal_id, worker=f"run_goal@{socket.gethostname()}")
            if outcome.step_number is not None:
                self.stderr.write(f"step {outcome.step_number}: {outcome.status}")
            if outcome.status != "continue":
                break
        goal.refresh_from_db()
        self.stdout.write(json.dumps(outcome.as_dict(goal)))
