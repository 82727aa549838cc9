"""`ccattest status`: the trust matrix and recent rounds of a running or stopped federation,
read from its sites' status files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import CCAttestError
from .app import app
from .common import fail, out

if TYPE_CHECKING:
    from rich.table import Table


@app.command()
def status(
    paths: Annotated[list[Path] | None, typer.Argument(
        metavar="[KIT_OR_WORKSPACE]...", help="Startup kits, a prod folder or a POC workspace "
        "(default: the current folder); every server and client kit below is read.")] = None,
    poc: Annotated[Path | None, typer.Option(
        metavar="DIR", help="A POC or prod folder (the same as naming it).")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object: sites, matrix, rounds, excluded.")] = False,
) -> None:
    """Show what every site believes about its peers, and the last rounds.

    Reads each site's local/cc/status.json, which ccattest's CC manager rewrites after
    every decision. The server counts the rounds it ran; a client counts the rounds it
    judged its peers in (a round that left it out is not counted).
    """
    from ..nvflare.status import federation_view, find_kits, read_status

    try:
        kits = find_kits([*(paths or []), *([poc] if poc else [])] or [Path(".")])
    except CCAttestError as error:
        fail(error)
    view = federation_view([read_status(kit) for kit in kits])
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    _print_view(view, datetime.now(UTC))


def _site_line(name: str, site: dict[str, Any], now: datetime) -> str:
    from ..nvflare.status import age

    head = f"[bold]{name}[/bold] ({site['role']}): "
    if site["problem"]:
        return head + f"[yellow]{site['problem']}[/yellow]"
    counted = "ran" if site["role"] == "server" else "judged peers in"
    line = head + f"updated {age(site['updated'], now)}, {counted} {site['rounds'] or 0} rounds"
    record = site.get("record")
    if record:
        if record.get("failure"):
            line += f"; [bold red]record failing[/bold red]: {record['failure']}"
        else:
            line += f"; record: {record.get('size') or 0} entries"
    return line


def _matrix(view: dict[str, Any], now: datetime) -> Table:
    from ..nvflare.status import matrix_table

    names = list(view["sites"])
    names += sorted({c[k] for c in view["matrix"] for k in ("verifier", "peer")} - set(names))
    return matrix_table(names, view["matrix"], excluded=view["excluded"], now=now,
                        title="trust matrix (each row judges each column)")


def _rounds(view: dict[str, Any], now: datetime, limit: int = 5) -> Table:
    from rich.table import Table

    from ..nvflare.status import age

    table = Table(title="last rounds (newest first)", header_style="bold", title_justify="left")
    for column in ("round", "when", "took", "attested", "unreachable"):
        table.add_column(column, overflow="fold")
    for report in view["rounds"][:limit]:
        unreachable = report.get("unreachable") or {}
        table.add_row(str(report.get("round_id", "?"))[:8], age(report.get("at"), now),
                      f"{float(report.get('seconds') or 0):.2f}s",
                      ", ".join(report.get("attested") or []) or "none",
                      ", ".join(sorted(unreachable)) or "none")
    return table


def _print_view(view: dict[str, Any], now: datetime) -> None:
    console = out()
    for name, site in view["sites"].items():
        console.print(_site_line(name, site, now), soft_wrap=True)
        if site["problem"]:
            console.print(f"  {site['kit']}/local/cc/status.json", soft_wrap=True)
    if not any(site["state"] == "reporting" for site in view["sites"].values()):
        return
    console.print()
    console.print(_matrix(view, now))
    for peer, by in view["excluded"].items():
        for verifier, reason in by.items():
            console.print(f"* {peer} excluded by {verifier}: {reason}", soft_wrap=True)
    console.print()
    if view["rounds"]:
        console.print(_rounds(view, now))
    else:
        console.print("no rounds yet (the server runs them; is its status file here?)")
