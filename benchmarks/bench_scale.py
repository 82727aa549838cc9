"""`make scale`: one real NVFlare POC federation of N clients on this machine, stock and with
ccattest, in the same run: time until every client has registered, the attestation rounds,
and one NumPy job on all clients; each figure beside its stock counterpart.

Stock is the same PocFederation without configure() (no CC manager, no CC kits): the POC
exactly as `nvflare poc prepare` makes it, with the same ports and loopback settings.

A third federation, registration only, is stock with every process importing the two
libraries DESIGN.md names for config and the record (pydantic, sqlalchemy) at start-up (a
sitecustomize on PYTHONPATH) and doing nothing with them: the least any design that keeps
them pays, beside the 1.2x registration goal. With 31 processes on 2 cores registration is
CPU-bound: every CPU-second added per process costs about 31/2 s.

Registration is timed from the moment the server's port is open and the clients are spawned
(every client at once, as after a restart): stock until the server has logged every client
as joined; with ccattest until the server has every client's registration confirmed (mutual
attestation, both directions, definitive). Not in CI: it starts 2N+1 Python processes.

    SCALE_CLIENTS=30 (default) SCALE_ROUNDS=5 .venv/bin/python -m benchmarks.bench_scale
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from ccattest.mesh.config import RoundsConfig
from ccattest.nvflare.poc import PocFederation, write_numpy_job

from .harness import Row, record

JOINED = re.compile(r"New client (\S+?)@\S* joined")
REGISTRATION_TIMEOUT = 600.0
ROUND_INTERVAL = 10  # seconds between attestation rounds (configure()'s default is 3)


def _joined(poc: PocFederation) -> set[str]:
    return set(JOINED.findall(poc.log("server")))


def _confirmed(poc: PocFederation) -> set[str]:
    return {event["site"] for event in poc.events("server", "registration_confirmed")}


def _memory(poc: PocFederation) -> float:
    """MiB resident in every process of the federation (server, clients, their jobs)."""
    total = 0
    for process in poc.processes.values():
        try:
            parent = psutil.Process(process.pid)
            for each in (parent, *parent.children(recursive=True)):
                total += each.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def _cpu(poc: PocFederation, sites: tuple[str, ...]) -> list[float]:
    """CPU seconds (user + system) each of `sites` has used so far."""
    out = []
    for site in sites:
        try:
            times = psutil.Process(poc.processes[site].pid).cpu_times()
        except (KeyError, psutil.Error):
            continue
        out.append(times.user + times.system)
    return out


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.25) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def _run_job(poc: PocFederation, folder: Path, clients: int) -> tuple[float, str]:
    session = poc.session(timeout=120)
    try:
        started = time.monotonic()
        job = session.submit_job(str(write_numpy_job(folder, rounds=2, min_clients=clients)))
        status = session.wait_for_job(job, timeout=900, poll_interval=1.0)["status"]
        return time.monotonic() - started, status
    finally:
        session.close()


@contextmanager
def _importing_libraries(folder: Path) -> Iterator[None]:
    """Processes started meanwhile import pydantic and sqlalchemy first (mode "libraries")."""
    (folder / "sitecustomize.py").write_text("import pydantic  # noqa: F401\n"
                                             "import sqlalchemy  # noqa: F401\n")
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(folder), before)))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def run(mode: str, clients: int, workspace: Path, rounds: int, console: Console
        ) -> dict[str, Any]:
    """One federation, `mode` "stock", "libraries" (registration only) or "ccattest"."""
    if mode == "libraries":
        (workspace / "site").mkdir(parents=True)
        with _importing_libraries(workspace / "site"):
            return _run(mode, clients, workspace / "poc", rounds, console)
    return _run(mode, clients, workspace, rounds, console)


def _run(mode: str, clients: int, workspace: Path, rounds: int, console: Console
         ) -> dict[str, Any]:
    names = tuple(f"site-{index}" for index in range(1, clients + 1))
    poc = PocFederation(workspace, clients=names)
    poc.prepare()
    cc = mode == "ccattest"
    if cc:
        poc.configure(rounds=RoundsConfig(interval_seconds=ROUND_INTERVAL,
                                          deadline_seconds=60, request_timeout_seconds=30))
    figures: dict[str, Any] = {"mode": mode, "clients": clients}
    try:
        poc.start_server(timeout=120)
        started = time.monotonic()
        for name in names:
            poc.start_client(name)
        joined_at = confirmed_at = None
        deadline = started + REGISTRATION_TIMEOUT
        while time.monotonic() < deadline and (joined_at is None or (cc and confirmed_at is None)):
            now = time.monotonic() - started
            if joined_at is None and _joined(poc) >= set(names):
                joined_at = now
            if cc and confirmed_at is None and _confirmed(poc) >= set(names):
                confirmed_at = now
            dead = [site for site in ("server", *names) if not poc.alive(site)]
            if dead:
                raise RuntimeError(f"{mode}: {dead} exited; see {workspace / 'logs'}")
            time.sleep(0.25)
        figures["joined_seconds"] = joined_at
        figures["registered_seconds"] = confirmed_at if cc else joined_at
        if figures["registered_seconds"] is None:
            got = _confirmed(poc) if cc else _joined(poc)
            raise TimeoutError(f"{mode}: {len(got)}/{clients} registered after "
                               f"{REGISTRATION_TIMEOUT:.0f} s")
        console.print(f"{mode}: {clients} clients registered in "
                      f"{figures['registered_seconds']:.1f} s")
        figures["memory_mib"] = round(_memory(poc))
        # On a shared machine, registration waits for every process's start-up CPU: what
        # each client and the server spent by now says where the time went.
        clients_cpu = _cpu(poc, names)
        figures["client_cpu_seconds"] = round(statistics.median(clients_cpu), 2)
        figures["server_cpu_seconds"] = round(sum(_cpu(poc, ("server",))), 2)
        if mode == "libraries":
            return figures
        if cc:
            figures.update(_rounds(poc, rounds, clients))
        figures["job_seconds"], figures["job_status"] = _run_job(poc, workspace / "jobs",
                                                                 clients)
        console.print(f"{mode}: job {figures['job_status']} in {figures['job_seconds']:.1f} s")
    finally:
        poc.stop()
    return figures


def _rounds(poc: PocFederation, count: int, clients: int) -> dict[str, Any]:
    """Wait for `count` rounds with every site attested; their durations (the coordinator's
    own measure, in status.json) and the gap between their starts."""
    seen: dict[str, dict[str, Any]] = {}

    def full_rounds() -> bool:
        for item in poc.status("server").get("recent_rounds", []):
            if len(item.get("attested", [])) == clients + 1:
                seen.setdefault(item["round_id"], item)
        return len(seen) >= count

    _wait(full_rounds, count * (ROUND_INTERVAL + 60) + 60, f"{count} full rounds")
    durations = [item["seconds"] for item in seen.values()]
    unreachable = sum(len(item.get("unreachable", {})) for item in seen.values())
    return {"round_seconds_median": statistics.median(durations),
            "round_seconds_max": max(durations), "rounds": len(durations),
            "round_unreachable": unreachable}


def rows(console: Console, clients: int, rounds: int) -> tuple[list[Row], list[dict]]:
    results = {}
    for mode in ("stock", "libraries", "ccattest"):
        workspace = Path(tempfile.mkdtemp(prefix=f"ccattest-scale-{mode}-"))
        try:
            results[mode] = run(mode, clients, workspace, rounds, console)
        finally:
            if os.environ.get("SCALE_KEEP"):
                console.print(f"kept {workspace}")
            else:
                shutil.rmtree(workspace, ignore_errors=True)
    stock, ours, libraries = results["stock"], results["ccattest"], results["libraries"]
    ours["libraries_registered_seconds"] = libraries["registered_seconds"]
    label = f"{clients} clients"
    out = [
        Row(f"POC registration, stock importing pydantic+sqlalchemy, {label}",
            round(libraries["registered_seconds"], 2), "s", "stock POC, all joined",
            round(stock["registered_seconds"], 2),
            round(libraries["registered_seconds"] / stock["registered_seconds"], 3)),
        Row(f"POC registration, all joined+attested, {label}", round(ours["registered_seconds"], 2),
            "s", "stock POC, all joined", round(stock["registered_seconds"], 2),
            round(ours["registered_seconds"] / stock["registered_seconds"], 3)),
        Row(f"POC NVFlare join only (ccattest kits), {label}", round(ours["joined_seconds"], 2),
            "s", "stock POC, all joined", round(stock["joined_seconds"], 2),
            round(ours["joined_seconds"] / stock["joined_seconds"], 3)),
        Row(f"POC NumPy job (2 FL rounds), {label}", round(ours["job_seconds"], 2), "s",
            "stock POC job", round(stock["job_seconds"], 2),
            round(ours["job_seconds"] / stock["job_seconds"], 3)),
        Row(f"POC resident memory after registration, {label}", ours["memory_mib"], "MiB",
            "stock POC", stock["memory_mib"], round(ours["memory_mib"] / stock["memory_mib"], 3)),
    ]
    return out, [stock, ours]


def show(console: Console, stock: dict[str, Any], ours: dict[str, Any]) -> None:
    table = Table(title=f"NVFlare POC, {ours['clients']} clients on {os.cpu_count()} cores: "
                  "stock vs ccattest", header_style="bold")
    for column in ("figure", "stock", "ccattest", "ratio"):
        table.add_column(column, justify="left" if column == "figure" else "right")

    def line(name: str, key: str, unit: str = "s") -> None:
        base, value = stock.get(key), ours.get(key)
        ratio = f"{value / base:.2f}" if base and value is not None else ""
        table.add_row(name, "" if base is None else f"{base:.1f} {unit}",
                      "" if value is None else f"{value:.1f} {unit}", ratio)

    line("all registered (stock: joined; ccattest: mutual attestation confirmed)",
         "registered_seconds")
    base, floor = stock["registered_seconds"], ours["libraries_registered_seconds"]
    table.add_row("all joined, stock importing pydantic + sqlalchemy (DESIGN's libraries)",
                  f"{base:.1f} s", f"{floor:.1f} s", f"{floor / base:.2f}")
    line("all joined NVFlare", "joined_seconds")
    line("NumPy job, 2 FL rounds on every client", "job_seconds")
    line("resident memory, whole federation", "memory_mib", "MiB")
    line("CPU per client until all registered (median)", "client_cpu_seconds")
    line("server CPU until all registered", "server_cpu_seconds")
    table.add_row("attestation round (median / max of "
                  f"{ours.get('rounds', 0)}), every site", "",
                  f"{ours['round_seconds_median']:.2f} / {ours['round_seconds_max']:.2f} s", "")
    table.add_row("job status", stock["job_status"], ours["job_status"], "")
    console.print(table)


def main() -> None:
    console = Console()
    clients = int(os.environ.get("SCALE_CLIENTS", "30"))
    rounds = int(os.environ.get("SCALE_ROUNDS", "5"))
    out, (stock, ours) = rows(console, clients, rounds)
    show(console, stock, ours)
    record(out)
    raw = Path(".bench/scale.json")
    raw.write_text(json.dumps({"stock": stock, "ccattest": ours, "cpus": os.cpu_count(),
                               "python": sys.version.split()[0]}, indent=2) + "\n")
    console.print(f"wrote {len(out)} figures to .bench/results.json (raw: {raw})")


if __name__ == "__main__":
    main()
