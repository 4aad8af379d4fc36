"""`python manage.py demo`: the demo user, a fresh sample repository and goals that walk through the gates."""

import os
import secrets
import shutil
import subprocess
import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from approvals.models import ApprovalRequest
from goals import loop
from goals.models import AgentProfile, Goal, GoalNotReady, GoalStatus, Repository, demo_root

DEMO_USERNAME = "demo"
DEMO_PROFILE = "Scripted (demo)"
PY = sys.executable

INVOICES = """CSV_COLUMNS = ["number", "customer", "total"]


def invoice_total(lines):
    return sum(line["amount"] for line in lines)
"""
INVOICE_TEST = """import unittest

from shop.invoices import invoice_total


class InvoiceTotals(unittest.TestCase):
    def test_invoice_totals(self):
        self.assertEqual(invoice_total([{"amount": 2}, {"amount": 3}]), 5)
"""
ROUNDING = """def round_total(amount):
    return int(amount)
"""
ROUNDING_TEST = """import unittest

from shop.rounding import round_total


class Rounding(unittest.TestCase):
    def test_rounds_half_up(self):
        self.assertEqual(round_total(2.5), 3)
"""
SAMPLE_FILES = {
    "README.md": "# Sample shop\n\nA tiny app that Goalpost's demo goals work on.\n",
    "shop/__init__.py": "",
    "shop/dashboard.py": "def load_rows(orders):\n    return sorted(orders, key=lambda order: order['created'])\n",
    "shop/invoices.py": INVOICES,
    "shop/rounding.py": ROUNDING,
    "tests/__init__.py": "",
    "tests/test_invoices.py": INVOICE_TEST,
    "tests/test_rounding.py": ROUNDING_TEST,
}


def unittest_check(pattern: str) -> dict:
    return {
        "kind": "command",
        "command": f"{PY} -m unittest discover -s tests -t . -p '{pattern}'",
        "expect_exit": 0,
        "description": "",
    }


BASE = {
    "constraints": ["Do not change the invoice CSV columns"],
    "done_criteria": "Every unittest passes and the change is reviewed.",
}
# Each demo goal stops at a different gate within a step or three.
DEMO_GOALS = [
    {
        **BASE,
        "title": "Split the invoice module",
        "objective": "Move invoice formatting from shop/invoices.py to a shop/invoicing/ package",
        "evidence": [unittest_check("test_*.py")],
        "work_type": "other",
        "steps": [
            {
                "summary": "Split invoices into a package of seven modules",
                "tokens": 4200,
                "write": {f"shop/invoicing/part{i}.py": f"PART = {i}\n" for i in range(7)},
            }
        ],
    },
    {
        **BASE,
        "title": "Invoice totals take a discount",
        "objective": "Make invoice_total() accept a discount, tested in tests/test_invoices.py",
        "evidence": [unittest_check("test_invoices.py")],
        "work_type": "other",
        "steps": [
            {
                "summary": "Add a discount argument and relax the totals test",
                "tokens": 3100,
                "write": {
                    "shop/invoices.py": INVOICES.replace("(lines):", "(lines, discount=0):").replace(
                        "for line in lines)", "for line in lines) - discount"
                    ),
                    "tests/test_invoices.py": INVOICE_TEST.replace(
                        'self.assertEqual(invoice_total([{"amount": 2}, {"amount": 3}]), 5)',
                        'self.assertTrue(invoice_total([{"amount": 2}, {"amount": 3}]) >= 0)',
                    ),
                },
            }
        ],
    },
    {
        **BASE,
        "title": "Totals round half up",
        "objective": "Make tests/test_rounding.py pass: round_total(2.5) returns 3",
        "evidence": [unittest_check("test_rounding.py")],
        "work_type": "test_repair",
        "steps": [
            {
                "summary": f"Try rounding fix {n}",
                "tokens": 1500 + 100 * n,
                "write": {
                    "shop/rounding.py": f"def round_total(amount):\n    return int(amount)  # attempt {n}\n"
                },
            }
            for n in (1, 2, 3, 4)
        ],
    },
    {
        **BASE,
        "title": "Document the invoice CSV export",
        "objective": "Add docs/export.md describing the 3 CSV columns of the invoice export",
        "evidence": [unittest_check("test_invoices.py")],
        "work_type": "docs",
        "steps": [
            {
                "summary": "Describe the invoice CSV export",
                "tokens": 900,
                "done": True,
                "write": {"docs/export.md": "# Invoice export\n\nColumns: number, customer, total.\n"},
            }
        ],
    },
]
LINT_EXAMPLES = [
    {
        "title": "Dashboard loads under 1.5 s",
        "objective": (
            "Reduce the dashboard initial load time below 1.5s on the existing seeded dataset, "
            "without changing the visible table behavior or removing any current filters"
        ),
        "constraints": ["Do not change the visible table behavior", "Do not remove any current filters"],
        "evidence": [unittest_check("test_*.py")],
        "done_criteria": "The load time stays under 1.5 s on three runs and every test passes.",
        "work_type": "ui_refactor",
        "protected_paths": ["shop/invoices.py"],
        "ready": True,
    },
    {"title": "Improve the dashboard", "objective": "Improve the dashboard.", "work_type": "other"},
]


class Command(BaseCommand):
    help = (
        "Create the demo user, a fresh sample repository under var/demo/, and goals on the scripted agent that "
        "stop at the gates (a plan, a weakened test, a repeated failure, a done review). Safe to run again."
    )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        user, password = self.demo_user()
        repo = self.sample_repository(user)
        profile, _ = AgentProfile.objects.get_or_create(
            name=DEMO_PROFILE, defaults={"adapter": "scripted", "enabled": True}
        )
        profile.users.add(user)
        ids = []
        for spec in DEMO_GOALS:
            goal = self.demo_goal(user, repo, profile, spec)
            ids.append(goal.pk)
        for spec in LINT_EXAMPLES:
            ids.append(self.lint_example(user, repo, profile, spec).pk)
        if password:
            self.stdout.write(f"Demo user: {DEMO_USERNAME}  password: {password}")
        else:
            self.stdout.write(
                f"Demo user: {DEMO_USERNAME} (password printed when it was created; "
                "set GOALPOST_DEMO_PASSWORD to choose one)"
            )
        pending = ApprovalRequest.objects.pending().filter(goal__owner=user).count()
        self.stdout.write(f"Demo goals: {' '.join(map(str, ids))} ({pending} approvals waiting)")
        self.stderr.write(f"demo ready in {time.monotonic() - started:.1f} s")

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

    def sample_repository(self, user) -> Repository:
        """A new repository every run, so no branch of an earlier database clashes with the new goals.

        They live in var/demo, the one folder of var/ a repository may be in (see goals.models.demo_root)."""
        folder = demo_root()
        repo = folder / f"shop-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
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
        repository = Repository.objects.create(name=f"demo {repo.name}", source=str(repo), default_branch="main")
        repository.users.add(user)
        self.remove_unused_repositories(folder, keep=repository)
        return repository

    def remove_unused_repositories(self, demo_root, keep: Repository) -> None:
        demo_repositories = Repository.objects.filter(source__startswith=str(demo_root)).exclude(pk=keep.pk)
        demo_repositories.filter(goals__isnull=True).delete()
        in_use = set(Repository.objects.filter(source__startswith=str(demo_root)).values_list("source", flat=True))
        for folder in demo_root.iterdir():
            if str(folder) not in in_use:
                shutil.rmtree(folder, ignore_errors=True)

    def demo_goal(self, user, repo: Repository, profile: AgentProfile, spec: dict) -> Goal:
        """Keep a demo goal that still waits for a decision; set up again one whose requests were all decided."""
        existing = Goal.objects.filter(owner=user, title=spec["title"]).first()
        if existing is not None and existing.approval_requests.pending().exists():
            return existing
        if existing is not None:
            existing.delete()
        fields = {k: v for k, v in spec.items() if k != "steps"}
        goal = Goal(
            owner=user,
            repository=repo,
            base_branch="main",
            agent_profile=profile,
            agent_script=spec["steps"],
            **fields,
        )
        goal.risk = goal.minimum_risk
        goal.save()
        goal.record("created", "Goal written by the demo.", user)
        goal.mark_ready(user)
        loop.start(goal, user)
        for _ in range(10):
            outcome = loop.run_step(goal.pk, worker="demo")
            if outcome.status != "continue":
                break
        goal.refresh_from_db()
        if goal.status != GoalStatus.WAITING:
            self.stderr.write(f"Demo goal {goal.pk} ended {goal.status} instead of waiting.")
        return goal

    def lint_example(self, user, repo: Repository, profile: AgentProfile, spec: dict) -> Goal:
        fields = {k: v for k, v in spec.items() if k != "ready"}
        goal = Goal.objects.filter(owner=user, title=spec["title"]).first()
        if goal is None:
            goal = Goal(owner=user, repository=repo, agent_profile=profile, base_branch="main", **fields)
            goal.risk = goal.minimum_risk
            goal.save()
            goal.record("created", "Goal written by the demo.", user)
        elif goal.status in (GoalStatus.DRAFT, GoalStatus.READY):
            Goal.objects.filter(pk=goal.pk).update(repository=repo)
        if spec.get("ready"):
            try:
                goal.mark_ready(user)
            except GoalNotReady as error:
                self.stderr.write(f"Demo goal {goal.pk} is not ready: {error}")
        return goal
