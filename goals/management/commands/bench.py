"""`python manage.py bench`: Goalpost's speed figures, measured on the real services and compared with targets.

Runs on a throwaway database (created and dropped here), the Redis that `make run` would use (or a private one it
starts), real celery worker processes and a real daphne on loopback. Prints a table, or with --json one object per
figure: {"name", "value", "unit", "target", "ok"}. Exits 1 when a figure misses its target.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import override_settings
from django.test.utils import setup_databases, teardown_databases

from goals.bench.figures import Figure, percentile, select  # noqa: F401  (Figure, percentile: the command's API)
from goals.bench.measures import MEASURES, Run

PRIVATE_REDIS_FLAG = "GOALPOST_BENCH_PRIVATE_REDIS"


class Command(BaseCommand):
    help = "Measure Goalpost's speed figures against the real services and compare them with the targets."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON object per figure.")
        parser.add_argument("--quick", action="store_true", help="A smaller run (under a minute), same targets.")
        parser.add_argument("--only", default="", help=f"Comma-separated measures: {', '.join(MEASURES)}.")

    def handle(self, *args, json: bool = False, quick: bool = False, only: str = "", **options) -> None:
        try:
            names = select(list(MEASURES), only)
        except ValueError as error:
            raise CommandError(str(error)) from error
        from config.launcher import redis_answers

        if not redis_answers(settings.REDIS_URL):
            sys.exit(self.rerun_with_private_redis())
        # The measures sign people in (force_login) by the hundred: axes' INFO line for each would bury the table.
        logging.getLogger("axes").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
        figures = self.measure(names, quick)
        self.report(figures, as_json=json)
        if not all(f.ok for f in figures):
            self.stderr.write("Some figures miss their targets: " + ", ".join(f.name for f in figures if not f.ok))
            sys.exit(1)

    def rerun_with_private_redis(self) -> int:
        """As `make run` does: no Redis answers, so start one of our own and run the bench again against it."""
        from config.launcher import start_private_redis

        if os.environ.get(PRIVATE_REDIS_FLAG):
            raise CommandError("the private Redis the bench started does not answer")
        with tempfile.TemporaryDirectory(prefix="gp-redis-") as scratch:
            server, url = start_private_redis(Path(scratch))
            try:
                env = {**os.environ, "REDIS_URL": url, PRIVATE_REDIS_FLAG: "1"}
                return subprocess.run([sys.executable, *sys.argv], env=env).returncode
            finally:
                server.terminate()
                server.wait(timeout=10)

    def measure(self, names: list[str], quick: bool) -> list[Figure]:
        if connection.vendor != "sqlite":  # SQLite's test database is already a file per process
            connection.settings_dict.setdefault("TEST", {})["NAME"] = f"goalpost_bench_{os.getpid()}"
        old = setup_databases(verbosity=0, interactive=False, keepdb=False)
        prefix = f"goalpost-bench-{uuid.uuid4().hex[:8]}"
        layer = settings.CHANNEL_LAYERS["default"]
        layers = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": prefix}}}
        figures: list[Figure] = []
        try:
            with tempfile.TemporaryDirectory(prefix="goalpost-bench-") as scratch, override_settings(
                CHANNEL_LAYERS=layers, GOALPOST_WORKTREE_ROOT=Path(scratch) / "worktrees", STORAGES=self.storages()
            ):
                env = {**os.environ, "DATABASE_URL": self.database_url(), "REDIS_URL": settings.REDIS_URL,
                       "GOALPOST_CHANNEL_PREFIX": prefix, "GOALPOST_WORKTREE_ROOT": str(Path(scratch) / "worktrees"),
                       # this process's broker keys: its workers run on the bench database, whose own name differs
                       "GOALPOST_INSTANCE": settings.GOALPOST_INSTANCE}
                run = Run(scratch=Path(scratch), quick=quick, env=env)
                try:
                    for name in names:
                        try:
                            figures += MEASURES[name](run)
                        except Exception as error:  # one broken measure must not hide the others' figures
                            self.stderr.write(f"measure {name} failed: {error!r}")
                            figures.append(Figure(f"{name}_failed", 1, "error", "== 0"))
                finally:
                    run.close()
        finally:
            teardown_databases(old, verbosity=0)
        return figures

    def storages(self) -> dict:
        """Static URLs without collectstatic's manifest: the page weights read the same files by their names."""
        plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
        return {**settings.STORAGES, "staticfiles": plain}

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
