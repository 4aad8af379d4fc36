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
# The seed's ticket, "Move the invoice export from views.py to billing/export.py", on the sample shop.
VIEWS = """from shop.invoices import CSV_COLUMNS


def invoice_export(invoices):
    \"\"\"GET /invoices/export/: the invoices as CSV, a header row then one row each.\"\"\"
    rows = [",".join(CSV_COLUMNS)]
    rows += [",".join(str(invoice[column]) for column in CSV_COLUMNS) for invoice in invoices]
    return "\\n".join(rows) + "\\n"
"""
INVOICE_EXPORT_TEST = """import unittest

from views import invoice_export

ADA = {{"number": "INV-7", "customer": "Ada Shop", "total": 120}}


class InvoiceExport(unittest.TestCase):
    def test_the_csv_keeps_its_three_columns(self):
        self.assertEqual(invoice_export([ADA]).splitlines(), ["number,customer,total", "INV-7,Ada Shop,120"])

    def test_the_export_lives_in_billing(self):
        from billing.export import export_invoices

        self.assertEqual(export_invoices([ADA]), invoice_export([ADA]))
{more}"""
BILLING_EXPORT = VIEWS.replace("def invoice_export(", "def export_invoices(").replace(
    "GET /invoices/export/: the invoices", "The invoices"
)
VIEWS_MOVED = """from billing.export import export_invoices


def invoice_export(invoices):
    \"\"\"GET /invoices/export/: the invoices as CSV (billing/export.py writes them).\"\"\"
    return export_invoices(invoices)
"""
VIEW_ONLY_CALLS_TEST = """
    def test_the_view_only_calls_the_export(self):
        import inspect

        import views

        self.assertNotIn("CSV_COLUMNS", inspect.getsource(views))
"""
# What the demo's agent profile replays for a goal the person writes themselves (the demo goals bring their own
# scripts): the seed's ticket, as the form's examples write it, done in one small real step, then the done
# review. A rejection gets a reworked step instead; an approval of the done step leads to the done review; past
# the end of the script it asks for the done review again. So a newcomer's own goal reaches Done, whatever they
# decide on the way.
NEWCOMER_SCRIPT = [
    {
        "summary": "Move the invoice export from views.py to billing/export.py; the view only calls it",
        "tokens": 1600,
        "done": True,
        "write": {"billing/__init__.py": "", "billing/export.py": BILLING_EXPORT, "views.py": VIEWS_MOVED},
        "on_reject": {
            "summary": "Rework after your feedback: the move, and a test that the view only calls the export",
            "tokens": 1400,
            "done": True,
            "write": {
                "billing/__init__.py": "",
                "billing/export.py": BILLING_EXPORT,
                "views.py": VIEWS_MOVED,
                "tests/test_invoice_export.py": INVOICE_EXPORT_TEST.format(more=VIEW_ONLY_CALLS_TEST),
            },
        },
    }
]
SAMPLE_FILES = {
    "README.md": "# Sample shop\n\nA tiny app that Goalpost's demo goals work on.\n",
    "shop/__init__.py": "",
    "shop/dashboard.py": "def load_rows(orders):\n    return sorted(orders, key=lambda order: order['created'])\n",
    "shop/invoices.py": INVOICES,
    "shop/rounding.py": ROUNDING,
    "tests/__init__.py": "",
    "tests/test_invoices.py": INVOICE_TEST,
    "tests/test_rounding.py": ROUNDING_TEST,
    "views.py": VIEWS,
    "tests/test_invoice_export.py": INVOICE_EXPORT_TEST.format(more=""),
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
DISCOUNTED = INVOICES.replace("(lines):", "(lines, discount=0):").replace(
    "for line in lines)", "for line in lines) - discount"
)
DISCOUNT_TEST = (
    INVOICE_TEST
    + """
    def test_a_discount_comes_off_the_total(self):
        self.assertEqual(invoice_total([{"amount": 2}, {"amount": 3}], discount=1), 4)
"""
)
ROUNDED = """from decimal import ROUND_HALF_UP, Decimal


def round_total(amount):
    return int(Decimal(str(amount)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
"""
INVOICING_INIT = """from shop.invoices import CSV_COLUMNS, invoice_total

__all__ = ["CSV_COLUMNS", "invoice_total"]
"""
# Each demo goal stops at a different gate within a step or three, and says which (`shows`). Whatever the
# person decides there, its script goes on to the next gate or to the done review, never to a failure: an
# approval plays the next entry, a rejection the rejected entry's reply (`on_reject`, scripted.py).
DEMO_GOALS = [
    {
        **BASE,
        "title": "Split the invoice module",
        "shows": "the blast-radius gate: a step of seven files asks for a plan, with the agent's plan",
        "objective": "Move invoice formatting from shop/invoices.py to a shop/invoicing/ package",
        # Not test_*.py: the rounding test fails until the rounding goal is done.
        "evidence": [unittest_check("test_invoices.py")],
        "work_type": "other",
        "steps": [
            {
                "summary": "Split invoices into a package of seven modules",
                "plan": "1. One module per concern under shop/invoicing/ (seven files).\n"
                "2. Re-export the public names from shop/invoicing/__init__.py.\n"
                "3. Keep shop/invoices.py and its CSV columns as they are.",
                "tokens": 4200,
                "write": {f"shop/invoicing/part{i}.py": f"PART = {i}\n" for i in range(7)},
                "on_reject": {
                    "summary": "Start smaller: one package that re-exports the invoice functions",
                    "tokens": 1800,
                    "done": True,
                    "write": {"shop/invoicing/__init__.py": INVOICING_INIT},
                },
            },
            {
                "summary": "Re-export the invoice functions from shop/invoicing",
                "tokens": 1200,
                "done": True,
                "write": {"shop/invoicing/__init__.py": INVOICING_INIT},
            },
        ],
    },
    {
        **BASE,
        "title": "Invoice totals take a discount",
        "shows": "the tests-weakened gate: an exact assertion loosened to >= 0 is flagged in the diff",
        "objective": "Make invoice_total() accept a discount, tested in tests/test_invoices.py",
        "evidence": [unittest_check("test_invoices.py")],
        "work_type": "other",
        "steps": [
            {
                "summary": "Add a discount argument and relax the totals test",
                "tokens": 3100,
                "write": {
                    "shop/invoices.py": DISCOUNTED,
                    "tests/test_invoices.py": INVOICE_TEST.replace(
                        'self.assertEqual(invoice_total([{"amount": 2}, {"amount": 3}]), 5)',
                        'self.assertTrue(invoice_total([{"amount": 2}, {"amount": 3}]) >= 0)',
                    ),
                },
                "on_reject": {
                    "summary": "Keep the exact totals test and test the discount too",
                    "tokens": 2100,
                    "done": True,
                    "write": {"shop/invoices.py": DISCOUNTED, "tests/test_invoices.py": DISCOUNT_TEST},
                },
            },
            {
                "summary": "Test the discount with an exact total as well",
                "tokens": 1400,
                "done": True,
                "write": {"tests/test_invoices.py": DISCOUNT_TEST},
            },
        ],
    },
    {
        **BASE,
        "title": "Totals round half up",
        "shows": "the repeated-failure gate: the same failing test three times asks a person before a fourth try",
        "objective": "Make tests/test_rounding.py pass: round_total(2.5) returns 3",
        "evidence": [unittest_check("test_rounding.py")],
        "work_type": "test_repair",
        "steps": [
            *(
                {
                    "summary": f"Try rounding fix {n}",
                    "tokens": 1500 + 100 * n,
                    "write": {"shop/rounding.py": f"def round_total(amount):\n    return int(amount)  # attempt {n}\n"},
                }
                for n in (1, 2)
            ),
            {
                "summary": "Try rounding fix 3",
                "tokens": 1800,
                "write": {"shop/rounding.py": "def round_total(amount):\n    return int(amount)  # attempt 3\n"},
                "on_reject": {
                    "summary": "Round half up with Decimal instead of int()",
                    "tokens": 1900,
                    "done": True,
                    "write": {"shop/rounding.py": ROUNDED},
                },
            },
            {
                "summary": "Round half up with Decimal: int() cuts 2.5 down to 2",
                "tokens": 1900,
                "done": True,
                "write": {"shop/rounding.py": ROUNDED},
            },
        ],
    },
    {
        **BASE,
        "title": "Document the invoice CSV export",
        "shows": "the done review: the agent says it is done, every check passed, and a person has the final word",
        "objective": "Add docs/export.md describing the 3 CSV columns of the invoice export",
        "evidence": [unittest_check("test_invoices.py")],
        "work_type": "docs",
        "steps": [
            {
                "summary": "Describe the invoice CSV export",
                "tokens": 900,
                "done": True,
                "write": {"docs/export.md": "# Invoice export\n\nColumns: number, customer, total.\n"},
                "on_reject": {
                    "summary": "Describe each column with an example row",
                    "tokens": 700,
                    "done": True,
                    "write": {
                        "docs/export.md": "# Invoice export\n\n| Column | What it holds |\n| --- | --- |\n"
                        "| number | the invoice number |\n| customer | who pays |\n| total | the sum of its lines |\n\n"
                        "Example: `INV-7,Ada Shop,120`\n"
                    },
                },
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
        profile = self.demo_profile()
        profile.users.add(user)
        ids = []
        for spec in DEMO_GOALS:
            goal = self.demo_goal(user, repo, profile, spec)
            ids.append(goal.pk)
            self.stdout.write(f"  {goal.pk} {goal.title}: shows {spec['shows']}")
        for spec in LINT_EXAMPLES:
            ids.append(self.lint_example(user, repo, profile, spec).pk)
        if password:
            self.stdout.write(f"Demo user: {DEMO_USERNAME}  password: {password}")
        else:
            self.stdout.write(
                f"Demo user: {DEMO_USERNAME} (its password is the one printed when it was created, kept so that "
                f"sign-ins survive restarts; `python manage.py changepassword {DEMO_USERNAME}` sets another)"
            )
        pending = ApprovalRequest.objects.pending().filter(goal__owner=user).count()
        self.stdout.write(f"Demo goals: {' '.join(map(str, ids))} ({pending} approvals waiting)")
        self.stderr.write(f"demo ready in {time.monotonic() - started:.1f} s")

    def demo_user(self):
        """The demo user, and its password when it was created just now (GOALPOST_DEMO_PASSWORD, or a random
        one). An existing user keeps its password: setting it again would sign every session out."""
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if not created:
            return user, None
        password = os.environ.get("GOALPOST_DEMO_PASSWORD", "") or secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        return user, password

    def demo_profile(self) -> AgentProfile:
        """The scripted agent a demo user's own goals run on: it replays NEWCOMER_SCRIPT, so it can run here (a
        scripted profile with nothing to replay is refused). A profile staff gave a script or folder keeps it."""
        profile, _ = AgentProfile.objects.get_or_create(
            name=DEMO_PROFILE, defaults={"adapter": "scripted", "enabled": True}
        )
        options = profile.options if isinstance(profile.options, dict) else {}
        if profile.adapter == "scripted" and not options.get("steps") and "folder" not in options:
            profile.options = {**options, "steps": NEWCOMER_SCRIPT}
            profile.save(update_fields=["options"])
        return profile

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
        fields = {k: v for k, v in spec.items() if k not in ("steps", "shows")}
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
        goal.record("created", f"Goal written by the demo to show {spec['shows']}."[:500], user)
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
