"""The sealing benchmark (benchmarks/bench_seal.py), small: two tiny payloads, the larger
one file to file with its peak memory in a fresh process, so its code cannot rot between
`make bench` runs. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import bench_seal
from rich.console import Console

pytestmark = pytest.mark.slow  # one real subprocess: the opening process

SMALL, STREAMED = 50_000, 300_000


def test_rows_measure_both_suites_in_memory_and_streamed(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    messages: list[str] = []

    rows = bench_seal.rows(console, messages.append, sizes=(SMALL, STREAMED),
                           stream_from=STREAMED, rounds=2, run_seconds=0.001,
                           directory=tmp_path)

    names = [row.name for row in rows]
    assert len(names) == 2 * 2 * 2 + 2  # 2 sizes x seal/open x 2 suites, 2 peak memories
    for op in ("seal", "open"):
        for suite in bench_seal.SUITES:
            assert f"{op} 50 kB ({suite}, in memory)" in names
            assert f"{op} 300 kB ({suite}, file to file)" in names
    for row in rows:
        assert row.value > 0 and row.baseline_value > 0 and row.ratio > 0
    peaks = {row.name: row for row in rows if row.unit == "MiB"}
    assert set(peaks) == {"open 300 kB: peak memory, streaming",
                          "open 300 kB: peak memory, in memory"}
    assert all(row.baseline_value == round(STREAMED / 2**20, 1) for row in peaks.values())
    assert len(messages) == 2
    text = console.export_text()
    assert "peak memory opening a 300 kB payload" in text and "bare" in text
    assert list(tmp_path.iterdir()) == []  # the files under the folder were deleted
