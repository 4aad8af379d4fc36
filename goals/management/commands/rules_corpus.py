"""`python manage.py rules_corpus rebuild --mirrors DIR`: rebuild the labelled commits' diffs from fetched copies.

The labels (docs/rules/corpus.jsonl) are committed; the diffs are not, because they are other projects' code. This
writes each one into a gitignored cache (var/rules-corpus/ by default) from bare copies laid out as the `fetch` tool
leaves them (DIR/<owner>+<name>/repo), and lists the ones it could not rebuild. `check` only validates the labels.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from goals import corpus


def default_cache() -> Path:
    return Path(settings.VAR_DIR) / "rules-corpus"


def default_labels() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "rules"


class Command(BaseCommand):
    help = "Rebuild the rules corpus' diffs from fetched repositories (rebuild), or validate its labels (check)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=("rebuild", "check"))
        parser.add_argument("--mirrors", type=Path, help="Where fetched bare copies are: DIR/<owner>+<name>/repo.")
        parser.add_argument("--cache", type=Path, default=None, help="Where diffs go (default var/rules-corpus).")
        parser.add_argument("--labels", type=Path, default=None, help="The label directory (default docs/rules).")
        parser.add_argument("--force", action="store_true", help="Rewrite diffs already in the cache.")

    def handle(self, *args, **options) -> None:
        labels_dir = options["labels"] or default_labels()
        try:
            commits, goals, synthetic = corpus.load_labels(labels_dir)
        except (OSError, corpus.LabelError) as error:
            raise CommandError(str(error)) from error
        if options["action"] == "check":
            self.stdout.write(
                f"labels ok: {len(commits)} commits, {len(synthetic)} synthetic diffs, {len(goals)} goal statements"
            )
            return
        if options["mirrors"] is None:
            raise CommandError("rebuild needs --mirrors DIR (where the fetched repositories are)")
        cache = options["cache"] or default_cache()
        result = corpus.rebuild(commits, options["mirrors"], cache, force=options["force"])
        for name, why in result.missing:
            self.stdout.write(f"missing {name}: {why}")
        self.stdout.write(
            f"{len(result.written)} written, {len(result.kept)} already there, {len(result.missing)} missing "
            f"({len(commits)} labelled) in {cache}"
        )
