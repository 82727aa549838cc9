"""`ccattest demo`: a three-site NVFlare federation on software TEEs, watched live.

Provisions a POC (server, site-1, site-2) on 127.0.0.1 with ccattest in every kit, starts
it, shows mutual attestation and each round as a trust matrix, runs a NumPy job, tampers
site-2's workload and shows the configured action, then stops everything it started.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..console.server import ConsoleServer, free_port, port_free
from ..render import CONTRAINDICATED_NOTE
from .poc import PocFederation, write_numpy_job
from .status import matrix_table

SITES = ("server", "site-1", "site-2")
DASHBOARD_PORT = 8765


def trust_matrix(federation: PocFederation) -> Table:
    status = federation.status("server")
    last = status.get("last_round") or {}
    return matrix_table(SITES, status.get("matrix", []), excluded=status.get("excluded", {}),
                        now=datetime.now(UTC), mark=" (excluded)",
                        title=f"trust matrix (round {status.get('rounds', 0)}, "
                        f"{len(last.get('attested', []))} sites attested in "
                        f"{last.get('seconds', 0):.2f}s)")


def event_log(federation: PocFederation, limit: int = 8) -> Table:
    table = Table(title="what the sites did", header_style="bold", show_lines=False)
    for column in ("time", "site", "event", "subject", "detail"):
        table.add_column(column, overflow="fold")
    events = []
    for site in SITES:
        events += [(e["at"], site, e) for e in federation.status(site).get("events", [])
                   if e.get("event") != "alert" or "acting after" not in e.get("detail", "")]
    for at, site, event in sorted(events, key=lambda item: item[0])[-limit:]:
        detail = textwrap.shorten(event["detail"], 90, placeholder=" …")  # whole words only
        table.add_row(at[11:19], site, event["event"], event["site"], detail)
    return table


def _view(federation: PocFederation, stage: str) -> Group:
    return Group(Text(stage, style="bold cyan"), trust_matrix(federation),
                 event_log(federation))


def _until(live: Live, federation: PocFederation, stage: str, done: Callable[[], bool],
           timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stage}: no progress within {timeout:.0f}s")
        live.update(_view(federation, stage))
        time.sleep(0.25)
    live.update(_view(federation, stage))


def _start_console(federation: PocFederation, port: int, console: Console) -> ConsoleServer:
    """The dashboard over the POC folder, on 127.0.0.1 (another port if `port` is taken)."""
    chosen = port if port_free("127.0.0.1", port) else free_port()
    server = ConsoleServer(federation.prod, port=chosen).start()
    console.print("dashboard (sign in with the token in the file below):", soft_wrap=True)
    console.print(f"  {server.url}", soft_wrap=True)
    console.print(f"  {server.token_file}", soft_wrap=True)
    return server


def _serve_until_interrupted(server: ConsoleServer, console: Console) -> None:
    console.print(f"the federation keeps running; the dashboard is at {server.url}",
                  soft_wrap=True)
    console.print("press Ctrl-C to stop everything", soft_wrap=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print()


def run_federation_demo(work_dir: Path, console: Console, *, serve: bool = False,
                        port: int = DASHBOARD_PORT) -> bool:
    federation = PocFederation(work_dir.resolve())
    console.rule("[bold]ccattest on NVIDIA FLARE: three sites, software TEEs")
    with console.status("provisioning a POC federation on 127.0.0.1..."):
        federation.prepare()
        references = federation.configure()
    for site, measurement in references.items():
        console.print(f"  {site}: reference measurement {measurement[:24]}...")
    ok = False
    dashboard = _start_console(federation, port, console)
    try:
        federation.start()
        with Live(_view(federation, "starting"), console=console, refresh_per_second=4) as live:
            _until(live, federation, "registration: mutual attestation", lambda: len(
                federation.events("server", "registration_confirmed")) >= 2, 90)
            _until(live, federation, "cross-site rounds (collective nonce)",
                   lambda: federation.status("server").get("rounds", 0) >= 2, 60)
            session = federation.session()
            try:
                job = session.submit_job(str(write_numpy_job(federation.workspace / "jobs")))
                _until(live, federation, f"job {job[:8]} running on attested sites",
                       lambda: "FINISHED" in session.get_job_meta(job)["status"], 120)
                job_status = session.get_job_meta(job)["status"]
            finally:
                session.close()
            workload = federation.prod / "site-2" / "local" / "cc" / "workload.txt"
            workload.write_text(workload.read_text() + "exfiltrate=model-weights\n")
            _until(live, federation, "site-2's workload was tampered: next round...",
                   lambda: "site-2" in federation.status("server").get("excluded", {}), 60)
        console.print()
        console.print(f"job on the attested federation: {job_status}")
        reason = federation.status("server")["excluded"]["site-2"]
        running = federation.alive("server") and federation.alive("site-1")
        console.print(f"[bold]action exclude_site[/bold]: site-2 excluded ({reason}); "
                      + ("the server and site-1 keep running" if running
                         else "the server or site-1 stopped"))
        console.print(CONTRAINDICATED_NOTE)
        ok = job_status == "FINISHED:COMPLETED"
        if serve:
            _serve_until_interrupted(dashboard, console)
    finally:
        with console.status("stopping every process the demo started..."):
            federation.stop()
            dashboard.stop()
        # Paths on lines of their own, never broken, so they can be copied.
        console.print("logs:", soft_wrap=True)
        console.print(f"  {federation.workspace / 'logs'}", soft_wrap=True)
        console.print("each site's status (or: ccattest status --poc "
                      f"{federation.prod}):", soft_wrap=True)
        console.print(f"  {federation.prod}/<site>/local/cc/status.json", soft_wrap=True)
    if ok:
        ok = show_records(federation, job, console)
    return ok


def show_records(federation: PocFederation, job: str, console: Console) -> bool:
    """Where each site's record is; the server's audited and the job's receipt checked
    offline, by the same commands an operator or a data owner runs."""
    import subprocess
    import sys

    console.rule("[bold]the record: what each site saw, tamper-evident")
    for site in ("server", *federation.clients):
        console.print(f"{site}:", soft_wrap=True)
        console.print(f"  {federation.prod / site / 'local' / 'cc' / 'record.sqlite3'}",
                      soft_wrap=True)
    keys = federation.prod / "server" / "local" / "cc" / "federation.jwks.json"
    receipts = federation.workspace / "receipts"
    commands = [
        ["audit", "verify", str(federation.prod / "server"), "--jwks", str(keys)],
        ["audit", "receipt", job, str(federation.prod / "server"), "-o", str(receipts)],
        ["audit", "receipt", "verify", str(receipts / f"{job}.admission.jwt"),
         "--jwks", str(keys)],
    ]
    for args in commands:
        console.print(f"[bold]$ ccattest {' '.join(args)}[/bold]", soft_wrap=True,
                      highlight=False)
        # The real commands, as the reader will type them (fixed argv, no shell).
        proc = subprocess.run([sys.executable, "-m", "ccattest", *args],  # noqa: S603
                              capture_output=True, text=True, timeout=120, check=False)
        console.print(proc.stdout.rstrip() + proc.stderr.rstrip(), soft_wrap=True,
                      highlight=False, markup=False)
        if proc.returncode != 0:
            return False
    return True
