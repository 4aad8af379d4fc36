"""`python manage.py bench`: Goalpost's speed figures, measured on the real services and compared with targets.

Runs on a throwaway database (created and dropped here), the Redis that `make run` would use, and real celery
worker processes. Prints a table, or with --json one object per figure: {"name", "value", "unit", "target", "ok"}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import setup_databases, teardown_databases

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""  # e.g. "<= 50"; empty: no target
    note: str = ""

    @property
    def ok(self) -> bool:
        if not self.target:
            return True
        op, _, bound = self.target.partition(" ")
        limit = float(bound)
        return self.value <= limit if op == "<=" else self.value >= limit if op == ">=" else self.value == limit

    def as_dict(self) -> dict:
        value = round(self.value, 3)
        return {"name": self.name, "value": value, "unit": self.unit, "target": self.target, "ok": self.ok}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@goalpost.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@goalpost.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


class Workers:
    """Real celery worker processes on a private queue, pointed at the bench database."""

    def __init__(self, database_url: str, worktrees: Path, concurrency: int = 2):
        self.queue = f"goalpost-bench-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": settings.REDIS_URL,
            "GOALPOST_CELERY_QUEUE": self.queue,
            "GOALPOST_WORKTREE_ROOT": str(worktrees),
        }
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Workers:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queue, "-c", str(self.concurrency),
             "-n", f"{self.queue}@%h", "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        from config.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = app.control.ping(destination=[f"{self.queue}@{os.uname().nodename}"], timeout=0.5)
            if replies:
                return self
        raise CommandError("the bench's celery worker did not start within 60 s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)


class Command(BaseCommand):
    help = "Measure Goalpost's speed figures against the real services and compare them with the targets."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON object per figure.")
        parser.add_argument("--quick", action="store_true", help="A smaller run (under a minute), same targets.")

    def handle(self, *args, json: bool = False, quick: bool = False, **options) -> None:
        self.quick = quick
        old = setup_databases(verbosity=0, interactive=False, keepdb=False)
        figures: list[Figure] = []
        try:
            with tempfile.TemporaryDirectory(prefix="goalpost-bench-") as scratch:
                self.scratch = Path(scratch)
                for measure in (self.measure_goal_throughput, self.measure_decision_resume):
                    figures += measure()
        finally:
            teardown_databases(old, verbosity=0)
        self.report(figures, as_json=json)
        if not all(f.ok for f in figures):
            self.stderr.write("Some figures miss their targets.")

    # -- figures -------------------------------------------------------------------------------------------

    def measure_goal_throughput(self) -> list[Figure]:
        """goals_concurrent_steps_per_s with 50 goals on the scripted agent over 2 worker processes."""
        from goals.models import Goal, GoalStatus, Step
        from goals.receivers import enqueue_step  # noqa: F401
        from goals.tasks import run_goal_step

        goals_n, steps_n = (20, 3) if self.quick else (50, 6)
        owner = self.bench_user()
        repo = self.sample_repo("throughput")
        script = [{"summary": f"Add module {n}", "write": {f"pkg/mod{n}.py": f"VALUE = {n}\n"}} for n in range(steps_n)]
        script.append({"summary": "Seven files", "write": {f"wide/m{i}.py": "X = 1\n" for i in range(7)}})
        goals = [
            Goal.objects.create(
                owner=owner, title=f"Bench goal {i}", objective="Add modules pkg/mod*.py", repo_path=str(repo),
                constraints=["Keep it small"], agent="scripted", agent_settings={"steps": script},
                status=GoalStatus.RUNNING, budget_steps=steps_n + 5,
            )
            for i in range(goals_n)
        ]
        with Workers(self.database_url(), self.scratch / "worktrees-throughput") as workers:
            started = time.monotonic()
            for goal in goals:
                run_goal_step.apply_async((goal.pk,), queue=workers.queue)
            deadline = started + (120 if self.quick else 600)
            while time.monotonic() < deadline:
                if not Goal.objects.filter(pk__in=[g.pk for g in goals], status=GoalStatus.RUNNING).exists():
                    break
                time.sleep(0.05)
            elapsed = time.monotonic() - started
        expected = goals_n * (steps_n + 1)
        steps = Step.objects.filter(goal__in=goals)
        done = steps.count()
        commits = sum(
            len(run_git(repo, "rev-list", f"goalpost/{g.pk}", "^main").split()) for g in goals if g.steps.exists()
        )
        return [
            Figure("goals_concurrent_steps_per_s", done / elapsed, "steps/s", note=f"{goals_n} goals, 2 processes"),
            Figure("lost_steps", max(0, expected - done), "steps", "== 0"),
            Figure("duplicated_steps", max(0, commits - done), "steps", "== 0"),
        ]

    def measure_decision_resume(self) -> list[Figure]:
        """decision_resume_p50_ms / _p99_ms: from the approve call to the worker claiming the goal's next step."""
        from datetime import timedelta

        from approvals.models import ApprovalRequest
        from goals import loop
        from goals.models import Goal, GoalStatus

        samples_n = 15 if self.quick else 60
        owner = self.bench_user()
        repo = self.sample_repo("resume")
        wide = {"summary": "Seven files", "write": {f"wide/m{i}.py": "X = 1\n" for i in range(7)}}
        script = [wide, {**wide, "summary": "Again"}]
        goals = [
            Goal.objects.create(
                owner=owner, title=f"Resume goal {i}", objective="Split pkg into wide/*.py", repo_path=str(repo),
                constraints=["Keep it small"], agent="scripted", agent_settings={"steps": script},
                status=GoalStatus.RUNNING,
            )
            for i in range(samples_n)
        ]
        with self.settings_override(GOALPOST_WORKTREE_ROOT=self.scratch / "worktrees-resume"):
            for goal in goals:
                loop.run_step(goal.pk, worker="bench")
        latencies = []
        with Workers(self.database_url(), self.scratch / "worktrees-resume") as workers:
            for goal in goals:
                request = ApprovalRequest.objects.get(goal=goal, status="pending")
                before = time.time()
                with self.settings_override(CELERY_TASK_DEFAULT_QUEUE=workers.queue):
                    request.decide(owner, "approve")
                deadline = time.monotonic() + 10
                claimed = None
                while time.monotonic() < deadline:
                    row = Goal.objects.filter(pk=goal.pk).values("lease_expires_at").first()
                    if row and row["lease_expires_at"]:
                        claimed = row["lease_expires_at"] - timedelta(seconds=loop.lease_seconds())
                        break
                    time.sleep(0.001)
                if claimed is not None:
                    latencies.append((claimed.timestamp() - before) * 1000)
                Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.PAUSED)
        return [
            Figure("decision_resume_p50_ms", percentile(latencies, 50), "ms", "<= 50"),
            Figure("decision_resume_p99_ms", percentile(latencies, 99), "ms", "<= 50",
                   note=f"{len(latencies)} of {samples_n} resumed"),
        ]

    # -- helpers -------------------------------------------------------------------------------------------

    def settings_override(self, **values):
        from django.test import override_settings

        return override_settings(**values)

    def bench_user(self):
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get_or_create(username="bench")[0]

    def sample_repo(self, name: str) -> Path:
        repo = self.scratch / name
        (repo / "pkg").mkdir(parents=True)
        (repo / "pkg" / "__init__.py").write_text("")
        run_git(repo, "init", "-q", "-b", "main")
        run_git(repo, "add", "-A")
        run_git(repo, "commit", "-q", "-m", "bench")
        return repo

    def database_url(self) -> str:
        db = connection.settings_dict
        if connection.vendor == "sqlite":
            return f"sqlite:///{db['NAME']}"
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"

    def report(self, figures: list[Figure], as_json: bool) -> None:
        if as_json:
            for figure in figures:
                self.stdout.write(json.dumps(figure.as_dict()))
            return
        width = max(len(f.name) for f in figures)
        self.stdout.write(f"{'figure':<{width}}  {'value':>12}  {'unit':<8}  {'target':<8}  ok")
        for f in figures:
            mark = "yes" if f.ok else "NO"
            self.stdout.write(f"{f.name:<{width}}  {f.value:>12.2f}  {f.unit:<8}  {f.target:<8}  {mark}  {f.note}")
