"""The federation console (`ccattest serve`) against a 200-site federation with 30 days of
record: every API route should answer within 100 ms at p95 and `/metrics` scrape within
50 ms at p95.

The federation is a prod folder as `ccattest serve` reads it: a server kit and 199 client
kits (startup/fed_server.json or fed_client.json, local/cc/), each with a status file shaped
as CCManager writes it (the server's matrix has a cell per client, a client's a cell for the
server; the server's 10 recent rounds; up to 200 events), the server's record and site-1's
(bench_record's 30 days of 5-minute rounds, the real store and log), and the federation's
key set. It is built once (~2 min on 2 cores: the record is written through the real log) under
.bench/console-<key>/, the key naming its shape, and reused by later runs.

The real app (console.app.create_app) runs on a real uvicorn server on 127.0.0.1 in a
thread; one httpx client (keep-alive) times each route after a warm-up, up to REQUESTS
requests (fewer when a route is slow: TIME_BOX seconds a route at most), and reports
p50/p95/max beside the goal and `/healthz`, the same run's floor (the framework, the
middleware, the client). The first `/metrics` scrape after start is reported on its own.

`python -m benchmarks.bench_console [ROUNDS]` (make bench-console) runs it alone; with fewer
rounds the record is that many rounds (a different cache).
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from ccattest.console.app import create_app
from ccattest.console.views import Federation
from ccattest.record.keys import SiteKeys, merge_jwks

from . import bench_record
from .harness import Row, record, show

BUILD_VERSION = 1  # bump when the folder's shape changes: the cache key names it
CACHE = Path(".bench")
REQUESTS = 200
WARMUP = 5
TIME_BOX = 20.0  # seconds a route at most: a slow route gets fewer requests
MIN_REQUESTS = 5
API_GOAL_MS = 100.0
METRICS_GOAL_MS = 50.0
TOKEN = "bench-console-token-" + "x" * 24
EVENTS = 200  # a status file keeps the last 200 events (CCManager._note)
_EVENT_KINDS = ("round_done", "verdict_changed", "job_admitted", "receipt_recorded")


def _key(rounds: int, sites: int) -> str:
    return f"console-v{BUILD_VERSION}-{rounds}r-{sites}s-seed{bench_record.SEED}"


def _cell(verifier: str, peer: str, status: str, at: datetime) -> dict[str, Any]:
    return {"verifier": verifier, "peer": peer, "status": status, "at": at.isoformat(),
            "last_good": at.isoformat() if status == "affirming" else
            (at - timedelta(hours=3)).isoformat()}


def _status(site: str, role: str, cells: list[dict[str, Any]], rounds: int, end: datetime,
            names: list[str], rng: random.Random, record_info: dict[str, Any] | None,
            ) -> dict[str, Any]:
    recent = []
    for back in range(10 if role == "server" else 0, 0, -1):
        at = end - back * bench_record.ROUND_EVERY
        recent.append({"round_id": rng.randbytes(8).hex(), "at": at.isoformat(),
                       "seconds": round(rng.uniform(1, 3), 3), "sites": len(names),
                       "attested": names[1:], "unreachable": []})
    events = [{"at": (end - timedelta(minutes=5 * (EVENTS - i))).isoformat(),
               "event": rng.choice(_EVENT_KINDS), "site": rng.choice(names),
               "detail": f"round {rng.randbytes(8).hex()}: {len(names) - 1} sites attested"}
              for i in range(EVENTS if role == "server" else 20)]
    return {"site": site, "role": role, "updated": end.isoformat(), "matrix": cells,
            "excluded": {"site-7": "measurement matches no reference value"}
            if role == "server" else {}, "rounds": rounds,
            "last_round": recent[-1] if recent else None, "recent_rounds": recent,
            "events": events, "record": record_info}


def build(rounds: int = bench_record.ROUNDS, sites: int = bench_record.SITES, *,
          progress: Callable[[str], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """The prod folder (built once, then reused) and what it holds."""
    folder = CACHE / _key(rounds, sites)
    done = folder / "built.json"  # written last: a half-built folder is built again
    if done.is_file():
        return folder / "prod", json.loads(done.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    generated = folder / "generated"
    generated.mkdir(parents=True)
    began = time.perf_counter()
    result = bench_record.bytes_per_round(rounds, sites, directory=generated,
                                          progress=progress)
    prod = folder / "prod"
    names = [bench_record.SERVER, *(f"site-{i}" for i in range(1, sites))]
    end = bench_record.START + (rounds + 1) * bench_record.ROUND_EVERY
    rng = random.Random(bench_record.SEED)
    keys = []
    for name in names:
        kit = prod / name
        (kit / "startup").mkdir(parents=True)
        (kit / "local" / "cc").mkdir(parents=True)
        server = name == bench_record.SERVER
        if server:
            (kit / "startup" / "fed_server.json").write_text(
                json.dumps({"servers": [{"identity": name}]}))
            cells = [_cell(name, peer, rng.choice(("affirming",) * 9 + ("warning",)), end)
                     for peer in names[1:]]
        else:
            (kit / "startup" / "fed_client.json").write_text("{}")
            cells = [_cell(name, bench_record.SERVER, "affirming", end)]
        info = None
        key = "server" if server else "client" if name == bench_record.CLIENT else None
        if key is not None:
            source = Path(result[key]["path"])
            for suffix in ("", "-wal", "-shm"):  # the store closed: normally only the file
                if Path(f"{source}{suffix}").exists():
                    shutil.move(f"{source}{suffix}",
                                f"{kit / 'local' / 'cc' / 'record.sqlite3'}{suffix}")
            info = {"location": str(kit / "local" / "cc" / "record.sqlite3"),
                    "size": result[key]["entries"], "healthy": True, "failure": None}
        status = _status(name, "server" if server else "client", cells, rounds, end, names,
                         rng, info)
        (kit / "local" / "cc" / "status.json").write_text(json.dumps(status, indent=1))
        keys.append(SiteKeys.generate(bench_record.FEDERATION, name).public_jwks())
    (prod / names[0] / "local" / "cc" / "federation.jwks.json").write_text(
        json.dumps(merge_jwks(keys)))
    shutil.rmtree(generated)
    summary = {"rounds": rounds, "sites": sites, "end": end.isoformat(),
               "server_entries": result["server"]["entries"],
               "client_entries": result["client"]["entries"],
               "bytes": sum(p.stat().st_size for p in prod.rglob("*") if p.is_file()),
               "record_bytes": result["server"]["bytes"] + result["client"]["bytes"],
               "seconds": time.perf_counter() - began}
    done.write_text(json.dumps(summary, indent=1))
    return prod, summary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(prod: Path) -> Iterator[str]:
    """The real app on a real uvicorn server in a thread; yields its base URL."""
    app = create_app(Federation.find(prod), TOKEN)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(),
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _get(client: httpx.Client, route: str) -> float:
    started = time.perf_counter()
    answer = client.get(route)
    took = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"{route}: {answer.status_code} {answer.text[:200]}")
    return took


def _time(client: httpx.Client, route: str) -> list[float]:
    warming = time.monotonic()
    for _ in range(WARMUP):  # a slow route (seconds a request) warms up with fewer
        _get(client, route)
        if time.monotonic() - warming > 2:
            break
    times: list[float] = []
    started = time.monotonic()
    while len(times) < REQUESTS and (len(times) < MIN_REQUESTS
                                     or time.monotonic() - started < TIME_BOX):
        times.append(_get(client, route))
    return times


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def routes(summary: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(label, path, goal in ms): every API route, the event filters a dashboard uses."""
    end = datetime.fromisoformat(summary["end"])
    since = (end - timedelta(hours=6)).isoformat().replace("+00:00", "Z")
    late = summary["server_entries"] - 300
    api = [("status", "/api/v1/status"), ("matrix", "/api/v1/matrix"),
           ("sites", "/api/v1/sites"), ("events", "/api/v1/events"),
           ("events ?site=site-1", f"/api/v1/events?site={bench_record.CLIENT}"),
           ("events ?kind=verdict", "/api/v1/events?kind=verdict"),
           ("events ?since=6h ago", f"/api/v1/events?since={since}"),
           (f"events ?after={late}", f"/api/v1/events?after={late}"),
           ("events ?order=desc&limit=50", "/api/v1/events?order=desc&limit=50"),
           ("events ?order=desc&kind=verdict&limit=50",
            "/api/v1/events?order=desc&kind=verdict&limit=50"),
           ("receipts", "/api/v1/receipts"), ("jwks", "/api/v1/jwks"),
           # what the dashboard's pages ask for: the shell, its script, a site's page, the
           # timeline (newest 200, then those about one site)
           ("page /", "/"), ("page /static/app.js", "/static/app.js"),
           ("sites/site-1 (site page)", f"/api/v1/sites/{bench_record.CLIENT}"),
           ("timeline: newest 200", "/api/v1/events?order=desc&limit=200"),
           ("timeline: about site-1", "/api/v1/events?order=desc&limit=200&about="
                                       f"{bench_record.CLIENT}")]
    return [(label, path, API_GOAL_MS) for label, path in api] + [
        ("/metrics", "/metrics", METRICS_GOAL_MS)]


def measure(prod: Path, summary: dict[str, Any], *,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """{label: {path, goal, times}} for every route, '/healthz' and the cold scrape."""
    found: dict[str, Any] = {}
    with serving(prod) as base, httpx.Client(
            base_url=base, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        _get(client, "/healthz")  # the connection, before the cold scrape
        found["cold metrics"] = {"path": "/metrics", "goal": METRICS_GOAL_MS,
                                 "times": [_get(client, "/metrics")]}
        found["/healthz"] = {"path": "/healthz", "goal": None,
                            "times": _time(client, "/healthz")}
        schema = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/events"]
        ordered = any(p["name"] == "order" for p in schema["get"]["parameters"])
        for label, path, goal in routes(summary):
            if "order=" in path and not ordered:
                continue  # a console before `order` would answer the oldest page instead
            if progress is not None:
                progress(f"console: timing {path}...")
            times = _time(client, path)
            found[label] = {"path": path, "goal": goal, "times": times}
    return found


def rows(console: Console, progress: Callable[[str], None] | None = None, *,
         rounds: int = bench_record.ROUNDS, sites: int = bench_record.SITES) -> list[Row]:
    prod, summary = build(rounds, sites, progress=progress)
    console.print(
        f"Console data: {sites} sites' kits and status files, the server's record "
        f"({summary['server_entries']:,} entries) and site-1's "
        f"({summary['client_entries']:,}) after {rounds} rounds: "
        f"{summary['record_bytes'] / 1e6:,.0f} MB of record, {summary['bytes'] / 1e6:,.0f} MB "
        f"in all (built once in {summary['seconds']:.0f} s, cached in {prod.parent}).")
    found = measure(prod, summary, progress=progress)
    floor = _p95(found["/healthz"]["times"])
    table = Table(title=f"console routes, {sites} sites, {rounds} rounds of record "
                  "(ms, one keep-alive client)", header_style="bold",
                  caption=f"/healthz p95 (the framework's floor, same run): {floor:.2f} ms")
    for column in ("route", "n", "p50", "p95", "max", "goal p95", "met"):
        table.add_column(column, justify="left" if column == "route" else "right")
    out: list[Row] = []
    for label, item in found.items():
        times, goal = item["times"], item["goal"]
        p95 = _p95(times)
        met = "" if goal is None or label == "cold metrics" else (
            "yes" if p95 <= goal else "NO")
        table.add_row("/metrics (first scrape)" if label == "cold metrics" else label,
                      str(len(times)),
                      f"{statistics.median(times):.2f}", f"{p95:.2f}", f"{max(times):.2f}",
                      "" if goal is None else f"{goal:.0f}", met)
        if label == "/healthz":
            out.append(Row("console /healthz p95 (the floor)", round(p95, 3), "ms",
                           "API goal p95", API_GOAL_MS, round(p95 / API_GOAL_MS, 4)))
        elif label == "cold metrics":
            out.append(Row("console /metrics first scrape", round(times[0], 3), "ms",
                           "/metrics goal p95 (warm)", goal, round(times[0] / goal, 4)))
        else:
            out.append(Row(f"console {label.removeprefix('/')} p95", round(p95, 3), "ms",
                           f"goal p95 (floor {floor:.1f} ms)", goal, round(p95 / goal, 4)))
    console.print(table)
    return out


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else bench_record.ROUNDS
    console = Console()
    with console.status("console: building the 200-site federation's folder (once, "
                        "~2 min)...") as status:
        found = rows(console, status.update, rounds=rounds)
    show(console, found)
    record(found)


if __name__ == "__main__":
    main()

