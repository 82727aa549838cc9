"""Timing and recording. Throughput is the median of several timed runs, each long enough
(>= 0.2 s) for the clock's resolution not to matter; our figure and its baseline are timed
back to back, so machine noise hits both alike."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(".bench/results.json")


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    ratio: float  # value / baseline_value


def ops_per_second(fn: Callable[[], object], *, run_seconds: float = 0.2, runs: int = 5) -> float:
    count = 1
    while True:  # calibrate: how many calls fill one run
        start = time.perf_counter()
        for _ in range(count):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= run_seconds:
            break
        count = max(count * 2, int(count * run_seconds / max(elapsed, 1e-9)))
    rates = [count / elapsed]
    for _ in range(runs - 1):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def compare(name: str, ours: Callable[[], object], baseline: str,
            base: Callable[[], object]) -> Row:
    ours_rate = ops_per_second(ours)
    base_rate = ops_per_second(base)
    return Row(name, round(ours_rate, 1), "ops/s", baseline, round(base_rate, 1),
               round(ours_rate / base_rate, 3))


def record(rows: Iterable[Row], path: Path = RESULTS) -> None:
    """Merge by name into the results file, so later benchmarks add their rows."""
    existing = json.loads(path.read_text()) if path.exists() else []
    by_name = {row["name"]: row for row in existing}
    by_name.update({row.name: asdict(row) for row in rows})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(by_name.values()), indent=2) + "\n")


def show(console: Console, rows: Iterable[Row]) -> None:
    table = Table(title="ccattest benchmarks (ratio = ours / baseline)", header_style="bold")
    for column in ("figure", "ours", "baseline", "baseline figure", "ratio"):
        table.add_column(column, justify="right" if column in ("ours", "baseline figure",
                                                               "ratio") else "left")
    for row in rows:
        table.add_row(row.name, f"{row.value:,.0f} {row.unit}", row.baseline,
                      f"{row.baseline_value:,.0f} {row.unit}", f"{row.ratio:.3f}")
    console.print(table)
