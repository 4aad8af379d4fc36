"""Run the review gates on any unified diff: `python manage.py gates --diff step.patch [--repo .] [--goal 3]`.

With `--goal`, the gates judge with that goal's path rules (what was detected from its base commit, or set by
staff); otherwise with `--repo`, with the rules detected from that repository's config files (goals/repopaths.py).

Prints one JSON object per finding, one per line. Exits 0 whatever the gates find, 1 with `--fail-on` when a
finding reaches that severity, and 2 when the diff cannot be read or parsed or the goal does not exist.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from goals import gates, lint, repopaths
from goals.diffs import HEAD_LINES, DiffError, ParsedDiff, parse_diff
from goals.models import Goal

OUTPUT_KEYS = ("gate", "severity", "reason", "path", "lines")
FAIL_ON = {"approval": (gates.APPROVAL, gates.STOP), "stop": (gates.STOP,)}
HEAD_BYTES = 8_192
USAGE_ERROR = 2


class RepositoryHeads:
    """Reads the first lines of files in one repository's working tree, never outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.refused: list[str] = []

    def __call__(self, path: str) -> str:
        target = (self.root / path).resolve()
        # resolve() follows symlinks, so a link pointing out of the repository is refused too.
        if not target.is_relative_to(self.root):
            self.refused.append(path)
            return ""
        if not target.is_file():
            return ""
        with target.open("rb") as file:
            head = file.read(HEAD_BYTES).decode("utf-8", errors="replace")
        return "\n".join(head.splitlines()[:HEAD_LINES])

    def config(self, name: str) -> bytes | None:
        """A config file of the working tree for detection (goals/repopaths.py), bounded; None outside it."""
        target = (self.root / name).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        with target.open("rb") as file:
            return file.read(repopaths.MAX_CONFIG_BYTES)


class Command(BaseCommand):
    help = "Run the review gates on a unified diff and print one JSON finding per line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--diff", required=True, help='The diff file to judge; "-" reads stdin.')
        parser.add_argument(
            "--repo", help="A repository whose working tree shows each file's header (generated markers)."
        )
        parser.add_argument(
            "--goal", type=int, help="Judge with this goal's contract instead of a default one."
        )
        parser.add_argument(
            "--fail-on",
            choices=tuple(FAIL_ON),
            help="Exit 1 when a finding is at least this severe.",
        )

    def handle(self, *args, **options) -> None:
        diff = self.read_diff(options["diff"])
        goal = self.goal_for(options["goal"])
        contract = goal.contract() if goal is not None else lint.Contract()
        paths = goal.path_rules() if goal is not None else None
        file_head = None
        if options["repo"]:
            repo = Path(options["repo"])
            if not repo.is_dir():
                raise CommandError(f"--repo {repo} is not a directory", returncode=USAGE_ERROR)
            file_head = RepositoryHeads(repo)
            paths = paths if paths is not None else repopaths.detect(file_head.config)

        findings = gates.run_gates(contract, gates.Step(diff=diff), file_head=file_head, paths=paths)

        for finding in findings:
            data = finding.as_dict()
            self.stdout.write(json.dumps({key: data[key] for key in OUTPUT_KEYS}, ensure_ascii=False))
        if file_head is not None:
            for path in file_head.refused:
                self.stderr.write(f"gates: not reading {path!r}: it is outside the repository")
        fail_on = options["fail_on"]
        if fail_on and any(finding.severity in FAIL_ON[fail_on] for finding in findings):
            self.stdout.flush()
            sys.exit(1)

    def read_diff(self, name: str) -> ParsedDiff:
        try:
            if name == "-":
                text = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
            else:
                text = Path(name).read_bytes()
        except OSError as error:
            raise CommandError(
                f"cannot read diff {name}: {error.strerror or error}", returncode=USAGE_ERROR
            ) from error
        try:
            return parse_diff(text)
        except DiffError as error:
            raise CommandError(f"cannot parse diff {name}: {error}", returncode=USAGE_ERROR) from error

    def goal_for(self, goal_id: int | None) -> Goal | None:
        if goal_id is None:
            return None
        goal = Goal.objects.filter(pk=goal_id).first()
        if goal is None:
            raise CommandError(f"goal {goal_id} does not exist", returncode=USAGE_ERROR)
        return goal
