"""`make soak`: an in-process 50-site federation (testing/federation.py, every site keeping
its record in SQLite and the clients witnessing the server's log, as on NVFlare) running a
collective-nonce round every second for SOAK_MINUTES (default 30).

Sampled every few seconds: this process's resident memory, threads and open file
descriptors. The figures that matter are their growth from the end of the warm-up to the end
(goal: under 5 %), and the rounds missed (goal: none): a tick is missed when the previous
round still runs at its time (the schedule is fixed-rate, one tick a second), and a round is
incomplete when any site did not attest, did not cosign, or judged a peer other than
affirming. The records grow on disk by design (every round is an entry): their size is
reported, not counted as a leak.

    SOAK_MINUTES=5 .venv/bin/python -m benchmarks.soak
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ccattest.testing.federation import SimulatedFederation

from .harness import Row, record

SITES = 50
INTERVAL = 1.0  # seconds between round starts
SAMPLE_EVERY = 5.0
GROWTH_GOAL = 0.05


def _status_value(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


def _sqlite_memory() -> Any:
    """SQLite's own heap in this process (its page caches: bounded by each connection's
    cache_size), so that their filling is told apart from a leak; None where the library
    cannot be reached."""
    try:
        library = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        used = library.sqlite3_memory_used
    except (OSError, AttributeError):
        return None
    used.restype = ctypes.c_int64
    return used


_SQLITE_USED = _sqlite_memory()


def sample() -> dict[str, float]:
    """Resident memory (MiB), threads and open file descriptors of this process; SQLite's
    heap (MiB) and the Python objects the collector tracks, to explain memory growth."""
    return {"rss_mib": _status_value("VmRSS") / 1024, "threads": _status_value("Threads"),
            "fds": len(os.listdir("/proc/self/fd")),
            "sqlite_mib": _SQLITE_USED() / 2**20 if _SQLITE_USED else -1.0,
            "python_objects": len(gc.get_objects())}


def _disk(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


@dataclass
class Soak:
    minutes: float
    warmup: float  # seconds
    samples: list[dict[str, float]] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    missed_ticks: int = 0
    incomplete: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self, console: Console) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ccattest-soak-"))
        fed = SimulatedFederation.create(SITES - 1, collect_delay=0.005, record_dir=folder,
                                         fan_out=SITES)
        stop = threading.Event()
        started = time.monotonic()
        sampler = threading.Thread(target=self._sample, args=(stop, started), daemon=True,
                                   name="soak-sampler")
        sampler.start()
        try:
            self._rounds(fed, started, console)
        finally:
            stop.set()
            sampler.join(10)
            fed.flush()
            self.disk_mib = _disk(folder)
            fed.close()
            shutil.rmtree(folder, ignore_errors=True)

    def _sample(self, stop: threading.Event, started: float) -> None:
        while True:
            gc.collect()  # garbage not yet collected is not a leak
            self.samples.append({"at": time.monotonic() - started, **sample()})
            if stop.wait(SAMPLE_EVERY):
                return

    def _rounds(self, fed: SimulatedFederation, started: float, console: Console) -> None:
        end = started + self.minutes * 60
        tick = started
        last_report = started
        while tick < end:
            now = time.monotonic()
            if now < tick:
                time.sleep(tick - now)
            try:
                report = fed.round()
            except Exception as error:  # a soak counts failures and goes on
                self.errors.append(f"{type(error).__name__}: {error}")
                report = None
            finished = time.monotonic()
            if report is not None:
                self.durations.append(report.seconds)
                self._check(report)
            # Fixed rate: ticks that passed while this round ran are missed, not queued.
            tick += INTERVAL
            while tick < finished:
                self.missed_ticks += 1
                tick += INTERVAL
            if finished - last_report >= 60:
                last_report = finished
                console.print(f"{(finished - started) / 60:4.1f} min: {len(self.durations)} "
                              f"rounds, {self.missed_ticks} ticks missed, "
                              f"{len(self.incomplete)} incomplete, rss "
                              f"{self.samples[-1]['rss_mib']:.0f} MiB")

    def _check(self, report: Any) -> None:
        problems = []
        if report.unreachable:
            problems.append(f"unreachable {sorted(report.unreachable)}")
        if len(report.attested) != SITES:
            problems.append(f"{len(report.attested)}/{SITES} attested")
        if len(report.cosigned) != SITES - 1 or report.witness_refused:
            problems.append(f"{len(report.cosigned)}/{SITES - 1} cosigned")
        bad = sum(1 for verdicts in report.verdicts.values() for verdict in verdicts.values()
                  if verdict.get("status") != "affirming")
        if bad or len(report.verdicts) != SITES:
            problems.append(f"{bad} verdicts not affirming, {len(report.verdicts)} verifiers")
        if problems:
            self.incomplete.append(f"{report.round_id}: {'; '.join(problems)}")

    # --- figures ---------------------------------------------------------------------------

    def at(self, seconds: float) -> dict[str, float]:
        """The first sample at or after `seconds` (the last one if none)."""
        return next((s for s in self.samples if s["at"] >= seconds), self.samples[-1])

    def figures(self) -> dict[str, Any]:
        warm, last = self.at(self.warmup), self.samples[-1]
        scheduled = len(self.durations) + self.missed_ticks + len(self.errors)
        out: dict[str, Any] = {
            "minutes": round(last["at"] / 60, 2), "warmup_seconds": self.warmup,
            "rounds": len(self.durations), "scheduled": scheduled,
            "missed_ticks": self.missed_ticks, "incomplete_rounds": len(self.incomplete),
            "errors": len(self.errors),
            "round_seconds_median": round(statistics.median(self.durations), 3),
            "round_seconds_p95": round(_quantile(self.durations, 0.95), 3),
            "round_seconds_max": round(max(self.durations), 3),
            "record_disk_mib": round(self.disk_mib, 1),
        }
        for key in ("rss_mib", "threads", "fds", "sqlite_mib", "python_objects"):
            out[key] = {"warm": round(warm[key], 1), "end": round(last[key], 1),
                        "max": round(max(s[key] for s in self.samples), 1),
                        "growth": round(last[key] / warm[key] - 1, 4) if warm[key] > 0 else 0.0}
        return out


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def show(console: Console, figures: dict[str, Any]) -> None:
    table = Table(title=f"soak: {SITES} sites, a round every {INTERVAL:.0f} s, "
                  f"{figures['minutes']:.1f} min (warm-up {figures['warmup_seconds']:.0f} s)",
                  header_style="bold")
    for column in ("figure", "after warm-up", "end", "max", "growth", "goal"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key, name in (("rss_mib", "resident memory (MiB)"), ("threads", "threads"),
                      ("fds", "open file descriptors"),
                      ("sqlite_mib", "  of memory: SQLite's heap (MiB)"),
                      ("python_objects", "  Python objects tracked")):
        item = figures[key]
        goal = key in ("rss_mib", "threads", "fds")
        table.add_row(name, f"{item['warm']:.0f}", f"{item['end']:.0f}", f"{item['max']:.0f}",
                      f"{item['growth'] * 100:+.1f} %",
                      ("ok" if item["growth"] < GROWTH_GOAL else "OVER 5 %") if goal else "")
    console.print(table)
    console.print(f"rounds: {figures['rounds']} run of {figures['scheduled']} ticks; missed "
                  f"ticks {figures['missed_ticks']}, incomplete rounds "
                  f"{figures['incomplete_rounds']}, errors {figures['errors']}; round seconds "
                  f"median {figures['round_seconds_median']}, p95 "
                  f"{figures['round_seconds_p95']}, max {figures['round_seconds_max']}; "
                  f"records on disk {figures['record_disk_mib']} MiB")


def main() -> None:
    console = Console()
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    warmup = float(os.environ.get("SOAK_WARMUP_SECONDS", str(min(300.0, minutes * 60 / 5))))
    soak = Soak(minutes, warmup)
    console.print(f"soak: {SITES} sites, a round every {INTERVAL:.0f} s for {minutes:g} min "
                  f"(warm-up {warmup:.0f} s); {os.cpu_count()} cores")
    soak.run(console)
    figures = soak.figures()
    show(console, figures)
    for line in (soak.incomplete + soak.errors)[:10]:
        console.print(f"  {line}")
    rows = [Row(f"soak {key} growth after warm-up ({SITES} sites, {figures['minutes']:.0f} min)",
                figures[key]["end"], unit, "after warm-up", figures[key]["warm"],
                round(figures[key]["end"] / figures[key]["warm"], 4))
            for key, unit in (("rss_mib", "MiB"), ("threads", "threads"), ("fds", "fds"))]
    rows.append(Row(f"soak rounds missed ({SITES} sites, 1 s interval)",
                    figures["missed_ticks"] + figures["incomplete_rounds"] + figures["errors"],
                    "rounds", "rounds scheduled", figures["scheduled"],
                    round((figures["missed_ticks"] + figures["incomplete_rounds"]
                           + figures["errors"]) / max(1, figures["scheduled"]), 4)))
    record(rows)
    Path(".bench/soak.json").write_text(json.dumps(
        {"figures": figures, "samples": soak.samples, "incomplete": soak.incomplete[:100],
         "errors": soak.errors[:100], "python": sys.version.split()[0]}, indent=1) + "\n")
    console.print("wrote .bench/results.json and .bench/soak.json")


if __name__ == "__main__":
    main()
