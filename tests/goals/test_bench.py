"""The bench's figure logic, table-driven; and two small figures run for real (no timing is asserted)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from goals.bench.figures import linked_assets, select
from goals.management.commands.bench import Figure, percentile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("figure", "ok"),
    [
        pytest.param(Figure("x", 40, "ms", "<= 50"), True, id="under a ceiling"),
        pytest.param(Figure("x", 51, "ms", "<= 50"), False, id="over a ceiling"),
        pytest.param(Figure("x", 0, "steps", "== 0"), True, id="exactly zero"),
        pytest.param(Figure("x", 1, "steps", "== 0"), False, id="one lost step fails"),
        pytest.param(Figure("x", 3, "x", ">= 2"), True, id="over a floor"),
        pytest.param(Figure("x", 123, "steps/s"), True, id="no target is ok"),
        pytest.param(Figure("x", math.nan, "ms", "<= 50"), False, id="nothing measured misses its target"),
    ],
)
def test_a_figure_is_ok_against_its_target(figure, ok):
    assert figure.ok is ok
    if not math.isnan(figure.value):
        assert figure.as_dict() == {
            "name": "x", "value": figure.value, "unit": figure.unit, "target": figure.target, "ok": ok
        }


def test_percentiles():
    values = list(range(1, 101))
    assert percentile(values, 50) == 51
    assert percentile(values, 99) == 99
    assert percentile([7], 99) == 7
    assert math.isnan(percentile([], 50))


def test_the_page_weight_counts_each_stylesheet_and_script_once():
    html = (
        '<link rel="icon" href="/static/i.png"><link rel="stylesheet" href="/static/a.css">'
        '<script src="/static/h.js" defer></script><script src="/static/h.js"></script>'
    )
    assert linked_assets(html) == ["/static/a.css", "/static/h.js"]


@pytest.mark.parametrize(
    ("only", "chosen"),
    [
        pytest.param("", ["a", "b", "c"], id="everything by default"),
        pytest.param("c,a", ["a", "c"], id="in the usual order"),
        pytest.param(" b ", ["b"], id="spaces are ignored"),
    ],
)
def test_only_picks_measures(only, chosen):
    assert select(["a", "b", "c"], only) == chosen


def test_only_refuses_an_unknown_measure():
    with pytest.raises(ValueError, match="unknown measure"):
        select(["a"], "b")


@pytest.mark.django_db
def test_the_diff_page_measure_runs_in_process(tmp_path, settings):
    """The cheap measure, on the test database: the command's own path is the soak test below."""
    from goals.bench.measures import Run, diff_page
    from goals.management.commands.bench import Command

    settings.STORAGES = Command().storages()
    run = Run(scratch=tmp_path, quick=True, env={})
    figures = diff_page(run)
    assert [f.name for f in figures] == ["diff_first_screen_ms", "diff_page_kb"]
    assert all(f.value > 0 for f in figures)


@pytest.mark.soak
def test_a_small_figure_runs_for_real_and_prints_one_json_object_each():
    """The diff page figures, through --only, against a throwaway database (~50 s on a busy machine)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", "--quick", "--json", "--only", "diff"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: a figure missed its target on this machine
    figures = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [f["name"] for f in figures] == ["diff_first_screen_ms", "diff_page_kb"]
    for figure in figures:
        assert set(figure) == {"name", "value", "unit", "target", "ok"}
        assert figure["value"] > 0
    assert (result.returncode == 0) == all(f["ok"] for f in figures)
