"""Server-rendered SVG charts: numbers in, polyline points out (pure)."""

from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 300, 120, 8


@dataclass(frozen=True)
class Series:
    name: str
    label: str
    points: str  # SVG polyline points
    last_percent: int


def burn_down(rows: list[dict], budgets: dict[str, int | None]) -> list[Series]:
    """Cumulative use per step as a share of each budget (tokens, minutes, files), for a small line chart.

    `rows` are per step, oldest first: {"tokens": n, "minutes": m (elapsed at the step's end), "files": n (distinct
    files touched so far)}. A budget that is unbounded draws no line.
    """
    series = []
    for name, label in (("tokens", "Tokens"), ("minutes", "Time"), ("files_total", "Files")):
        allowed = budgets.get(name)
        if not allowed or not rows:
            continue
        key = {"files_total": "files"}.get(name, name)
        used = 0.0
        percents = []
        for row in rows:
            used = used + row.get(key, 0) if key == "tokens" else row.get(key, 0)
            percents.append(min(150.0, 100.0 * used / allowed))
        series.append(Series(name, label, _points(percents), round(percents[-1])))
    return series


def budget_line_y() -> float:
    """Where 100 % of a budget sits on the chart."""
    return _y(100.0)


def _y(percent: float) -> float:
    return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * percent / 150.0, 1)


def _points(percents: list[float]) -> str:
    if len(percents) == 1:
        percents = [0.0, *percents]
    step = (WIDTH - 2 * PAD) / (len(percents) - 1)
    return " ".join(f"{round(PAD + i * step, 1)},{_y(p)}" for i, p in enumerate(percents))
