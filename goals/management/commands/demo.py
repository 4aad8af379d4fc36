import os
import secrets
import subprocess

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from goals.models import Goal, GoalNotReady

DEMO_USERNAME = "demo"
SAMPLE_FILES = {
    "README.md": "# Sample shop\n\nA tiny app that Goalpost's demo goals work on.\n",
    "shop/__init__.py": "",
    "shop/dashboard.py": (
        "def load_rows(orders):\n    return sorted(orders, key=lambda order: order['created'])\n"
    ),
    "shop/invoices.py": (
        "CSV_COLUMNS = ['number', 'customer', 'total']\n\n\n"
        "def invoice_total(lines):\n"
        "    return sum(line['amount'] for line in lines)\n"
    ),
    "tests/test_invoices.py": (
        "from shop.invoices import invoice_total\n\n\n"
        "def test_invoice_totals():\n"
        "    assert invoice_total([{'amount': 2}, {'amount': 3}]) == 5\n"
    ),
}

GOOD_GOAL = {
    "title": "Dashboard loads under 1.5 s",
    "objective": (
        "Reduce the dashboard initial load time below 1.5s on the existing seeded dataset, "
        "without changing the visible table behavior or removing any current filters"
    ),
    "constraints": ["Do not change the visible table behavior", "Do not remove any current filters"],
    "evidence": [
        {"kind": "command", "command": "python -m pytest tests", "expect_exit": 0, "description": ""},
        {
            "kind": "manual",
            "command": "",
            "expect_exit": 0,
            "description": "The dashboard feels the same to a user",
        },
    ],
    "done_criteria": "The load time stays under 1.5 s on three runs and every test passes.",
    "work_type": "ui_refactor",
    "protected_paths": ["shop/invoices.py"],
}
DRAFT_GOAL = {
    "title": "Improve the dashboard",
    "objective": "Improve the dashboard.",
    "constraints": [],
    "evidence": [],
    "work_type": "other",
}


class Command(BaseCommand):
    help = "Create the demo user, a sample repository under var/ and sample goals (safe to run again)."

    def handle(self, *args, **options) -> None:
        user, password = self.demo_user()
        repo = self.sample_repository()
        goals = [
            self.sample_goal(user, repo, GOOD_GOAL, ready=True),
            self.sample_goal(user, repo, DRAFT_GOAL),
        ]
        if password:
            self.stdout.write(f"Demo user: {DEMO_USERNAME}  password: {password}")
        else:
            self.stdout.write(
                f"Demo user: {DEMO_USERNAME} (password printed when it was created; "
                "set GOALPOST_DEMO_PASSWORD to choose one)"
            )
        self.stdout.write("Demo goals: " + " ".join(str(goal.pk) for goal in goals))

    def demo_user(self):
        """Return the user and the password to print: a new one only when the user is created."""
        users = get_user_model()
        chosen = os.environ.get("GOALPOST_DEMO_PASSWORD", "")
        user, created = users.objects.get_or_create(username=DEMO_USERNAME, defaults={"is_staff": True})
        if chosen:
            user.set_password(chosen)
            user.save(update_fields=["password"])
            return user, chosen
        if created:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.is_superuser = True
            user.save(update_fields=["password", "is_superuser"])
            return user, password
        return user, None

    def sample_repository(self) -> str:
        repo = settings.VAR_DIR / "demo-repo"
        if (repo / ".git").is_dir():
            return str(repo)
        for relative, text in SAMPLE_FILES.items():
            path = repo / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Goalpost demo",
            "GIT_AUTHOR_EMAIL": "demo@goalpost.invalid",
            "GIT_COMMITTER_NAME": "Goalpost demo",
            "GIT_COMMITTER_EMAIL": "demo@goalpost.invalid",
        }
        for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Sample shop"]):
            subprocess.run(["git", "-C", str(repo), *command], check=True, env=env, capture_output=True)
        return str(repo)

    @transaction.atomic
    def sample_goal(self, user, repo: str, fields: dict, ready: bool = False) -> Goal:
        goal = Goal.objects.filter(owner=user, title=fields["title"]).first()
        if goal is None:
            goal = Goal(owner=user, repo_path=repo, base_branch="main", **fields)
            goal.risk = goal.minimum_risk
            goal.save()
            goal.record("created", "Goal written by the demo.", user)
        elif goal.repo_path != repo:
            goal.repo_path = repo
            goal.save(update_fields=["repo_path", "updated_at"])
        if ready:
            try:
                goal.mark_ready(user)
            except GoalNotReady as error:
                self.stderr.write(f"Demo goal {goal.pk} is not ready: {error}")
        return goal
