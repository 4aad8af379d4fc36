"""`python manage.py rules_eval [--json]`: precision and recall of the diff gates and the linter against the labels.

Three sets, reported apart: real commits (rebuilt by `rules_corpus rebuild` into var/rules-corpus/; the whole set
and its held-out third), the synthetic diffs in docs/rules/synthetic/, and the goal statements for the linter. The
gates run exactly as the loop runs them (parse_diff, then gates.run_gates); a positive is a gate asking a person
(approval or stop), or the linter's objective rules blocking. Real commits are judged with their files' first
lines as the loop reads them from its worktree, and with the path rules detected from their parent tree's config
files as the loop detects them from the goal's base commit (both saved by the rebuild); synthetic diffs from the
diff alone and the config files their label gives.
Measures only: it never fails on a low figure.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from goals import corpus
from goals.management.commands.rules_corpus import default_cache, default_labels


def _figure(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.2f}"


class Command(BaseCommand):
    help = "Print precision and recall of the diff gates and the goal linter on the labelled rules corpus."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of tables.")
        parser.add_argument("--cache", default=None, help="Where the rebuilt diffs are (default var/rules-corpus).")
        parser.add_argument("--labels", default=None, help="The label directory (default docs/rules).")
        parser.add_argument("--misses", action="store_true", help="Also list each case a rule got wrong.")
        parser.add_argument(
            "--split",
            choices=corpus.SPLITS,
            default=None,
            help="List only the misses of this split (tune on `tune`, never look at `held-out`).",
        )

    def handle(self, *args, **options) -> None:
        labels_dir = Path(options["labels"]) if options["labels"] else default_labels()
        cache = Path(options["cache"]) if options["cache"] else default_cache()
        try:
            commits, goals, synthetic = corpus.load_labels(labels_dir)
        except (OSError, corpus.LabelError) as error:
            raise CommandError(str(error)) from error

        real, absent = [], []
        for label in commits:
            path = cache / label.cache_name
            if path.is_file():
                heads = corpus.load_heads(cache / label.heads_name)
                config = corpus.load_heads(cache / label.config_name)
                real.append(corpus.judge_diff(label, path.read_bytes(), heads, config))
            else:
                absent.append(label.cache_name)
        made = [corpus.judge_diff(label, path.read_bytes()) for label, path in synthetic]
        linted = [corpus.judge_goal(label) for label in goals]
        hint = ""
        if absent:
            hint = (
                f"{len(absent)} of {len(commits)} labelled commits are not rebuilt in {cache}: run "
                "`python manage.py rules_corpus rebuild --mirrors DIR` with the repositories fetched into DIR"
            )
        second_path = labels_dir / "second_review.jsonl"
        try:
            second = corpus.second_review(second_path, commits) if second_path.is_file() else []
        except (OSError, corpus.LabelError) as error:
            raise CommandError(str(error)) from error
        sections = [
            ("real commits, all", real, corpus.DIFF_GATES, False),
            ("real commits, held-out third", real, corpus.DIFF_GATES, True),
            ("synthetic diffs", made, corpus.DIFF_GATES, False),
            ("linter, all", linted, ("linter",), False),
            ("linter, held-out third", linted, ("linter",), True),
        ]
        if second:
            sections.append((f"a second reviewer, blind, on {len(second)} commits", second, corpus.DIFF_GATES, False))
        if options["json"]:
            data = {
                "sections": [
                    {
                        "name": name,
                        "rules": {
                            rule: counts.as_dict()
                            for rule, counts in corpus.table(outcomes, rules, held_out_only).items()
                        },
                    }
                    for name, outcomes, rules, held_out_only in sections
                ],
                "missing": absent,
                "hint": hint,
                "errors": [
                    {"case": outcome.label.key, "error": outcome.error} for outcome in real + made if outcome.error
                ],
                "misses": self.misses(real + made + linted),
            }
            self.stdout.write(json.dumps(data, indent=2))
            return
        if hint:
            self.stdout.write(hint)
        for name, outcomes, rules, held_out_only in sections:
            self.stdout.write(f"\n{name}")
            self.stdout.write(f"  {'rule':<20} {'precision':>9} {'recall':>7} {'positives':>9} {'cases':>6}")
            for rule, counts in corpus.table(outcomes, rules, held_out_only).items():
                self.stdout.write(
                    f"  {rule:<20} {_figure(counts.precision):>9} {_figure(counts.recall):>7} "
                    f"{counts.positives:>9} {counts.tp + counts.fp + counts.fn + counts.tn:>6}"
                )
        for outcome in real + made:
            if outcome.error:
                self.stdout.write(f"error {outcome.label.key}: {outcome.error}")
        if options["misses"]:
            self.stdout.write("")
            for miss in self.misses(real + made + linted, options["split"]):
                self.stdout.write(f"{miss['case']}: {miss['rule']} expected {miss['expected']} ({miss['why']})")

    def misses(self, outcomes, split: str | None = None) -> list[dict]:
        found = []
        for outcome in outcomes:
            if split and outcome.label.split != split:
                continue
            for rule in outcome.disagreements:
                label = outcome.label
                expected = label.expected if isinstance(label, corpus.GoalLabel) else label.expected[rule]
                found.append({"case": label.key, "rule": rule, "expected": expected, "why": label.why})
        return found
