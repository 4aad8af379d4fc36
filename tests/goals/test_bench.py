import pytest

from goals.management.commands.bench import Figure, percentile


@pytest.mark.parametrize(
    ("figure", "ok"),
    [
        pytest.param(Figure("x", 40, "ms", "<= 50"), True, id="under a ceiling"),
        pytest.param(Figure("x", 51, "ms", "<= 50"), False, id="over a ceiling"),
        pytest.param(Figure("x", 0, "steps", "== 0"), True, id="exactly zero"),
        pytest.param(Figure("x", 1, "steps", "== 0"), False, id="one lost step fails"),
        pytest.param(Figure("x", 3, "x", ">= 2"), True, id="over a floor"),
        pytest.param(Figure("x", 123, "steps/s"), True, id="no target is ok"),
    ],
)
def test_a_figure_is_ok_against_its_target(figure, ok):
    assert figure.ok is ok
    assert figure.as_dict() == {"name": "x", "value": figure.value, "unit": figure.unit, "target": figure.target, "ok": ok}


def test_percentiles():
    values = list(range(1, 101))
    assert percentile(values, 50) == 51
    assert percentile(values, 99) == 99
    assert percentile([7], 99) == 7
