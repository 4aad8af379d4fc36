"""A figure and its target, and the arithmetic the measures share: pure, no services."""

from __future__ import annotations

import gzip
import re
import resource
from dataclasses import dataclass
from pathlib import Path


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
        if self.value != self.value:  # NaN: nothing was measured, which never meets a target
            return False
        return self.value <= limit if op == "<=" else self.value >= limit if op == ">=" else self.value == limit

    def as_dict(self) -> dict:
        value = round(self.value, 3)
        return {"name": self.name, "value": value, "unit": self.unit, "target": self.target, "ok": self.ok}


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


ASSET = re.compile(r"""<(?:link[^>]+rel="stylesheet"[^>]*href|script[^>]*src)="([^"]+)\"""")


def linked_assets(html: str) -> list[str]:
    """The stylesheets and scripts a page loads, by URL, in order, each once."""
    seen: list[str] = []
    for url in ASSET.findall(html):
        if url not in seen:
            seen.append(url)
    return seen


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6))


def select(names: list[str], only: str) -> list[str]:
    """The measures `--only a,b` asks for, in their usual order; an unknown name is an error."""
    if not only:
        return list(names)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise ValueError(f"unknown measure(s): {', '.join(unknown)}; choose from {', '.join(names)}")
    return [name for name in names if name in wanted]


def own_peak_rss_kb() -> int:
    """This process's peak resident memory in kB: Linux's VmHWM, which starts again at an exec. Not getrusage's
    ru_maxrss, which Linux keeps across the exec: a process started from a big one (the bench's) would report the
    big one's size at the fork (131 MB at `python -c`'s first line here, whatever the process did next)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    peak = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(peak.group(1)) if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
