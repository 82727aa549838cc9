"""Read what the sites of a federation wrote to `local/cc/status.json` (CCManager writes it
after every decision) and merge it into one view: the sites, the trust matrix, the recent
rounds. NVFlare-free; the files are read, never written. Used by `ccattest status`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .kits import BUNDLE_DIR, Kit, find_kit

if TYPE_CHECKING:
    from rich.table import Table

STATUS_FILE = "status.json"
NOT_STARTED = "no status yet: site not started with ccattest"
MAX_DEPTH = 5  # a POC workspace root holds its kits at poc/example_project/prod_00/<site>


@dataclass(frozen=True)
class SiteStatus:
    kit: Kit
    data: dict[str, Any] | None
    problem: str | None = None  # why there is no data

    @property
    def path(self) -> Path:
        return self.kit.local / BUNDLE_DIR / STATUS_FILE


def find_kits(paths: Iterable[Path]) -> list[Kit]:
    """Every server and client kit at or below these folders, servers first."""
    found: dict[Path, Kit] = {}
    for path in paths:
        if not path.is_dir():
            raise ConfigError(f"not a folder: {path}",
                              expected="a startup kit, a prod folder or a POC workspace")
        for kit in _kits_below(path):
            found.setdefault(kit.path.resolve(), kit)
    if not found:
        raise ConfigError("no server or client startup kit found",
                          found=", ".join(str(p) for p in paths),
                          hint="pass a kit (a folder with startup/), a prod folder or a POC "
                               "workspace")
    return sorted(found.values(), key=lambda k: (k.role != "server", k.name))


def _kits_below(root: Path) -> list[Kit]:
    kits = []
    for folder, subfolders, _ in os.walk(root):
        here = Path(folder)
        try:
            kits.append(find_kit(here))
        except ConfigError:
            pass
        else:
            subfolders.clear()  # a kit holds no other kit
            continue
        if len(here.relative_to(root).parts) >= MAX_DEPTH:
            subfolders.clear()
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
    return kits


def read_status(kit: Kit) -> SiteStatus:
    path = kit.local / BUNDLE_DIR / STATUS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return SiteStatus(kit, None, NOT_STARTED)
    except (OSError, UnicodeDecodeError) as exc:
        return SiteStatus(kit, None, f"status file unreadable: {exc}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        return SiteStatus(kit, None, f"status file is not JSON: {exc}")
    if not isinstance(data, dict):
        return SiteStatus(kit, None, "status file is not a JSON object")
    return SiteStatus(kit, data)


def _cells(statuses: Sequence[SiteStatus]) -> list[dict[str, Any]]:
    """Every site's matrix cells; where two files hold the same cell, the newer wins."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for status in statuses:
        matrix = (status.data or {}).get("matrix")
        for cell in matrix if isinstance(matrix, list) else []:
            if not isinstance(cell, dict) or not {"verifier", "peer", "status"} <= set(cell):
                continue
            key = (str(cell["verifier"]), str(cell["peer"]))
            if key not in cells or str(cell.get("at") or "") > str(cells[key].get("at") or ""):
                cells[key] = {"verifier": key[0], "peer": key[1], "status": str(cell["status"]),
                              "at": cell.get("at"), "last_good": cell.get("last_good")}
    return [cells[key] for key in sorted(cells)]


def _rounds(statuses: Sequence[SiteStatus]) -> list[dict[str, Any]]:
    """The coordinator's recent rounds, newest first (only the server runs rounds)."""
    for status in statuses:
        data = status.data or {}
        if status.kit.role != "server":
            continue
        recent = data.get("recent_rounds")
        if not isinstance(recent, list):  # written before recent_rounds existed
            recent = [data["last_round"]] if isinstance(data.get("last_round"), dict) else []
        return [r for r in reversed(recent) if isinstance(r, dict)]
    return []


def _site(status: SiteStatus) -> dict[str, Any]:
    data = status.data or {}
    excluded = data.get("excluded")
    return {
        "role": status.kit.role,
        "kit": str(status.kit.path),
        "state": "reporting" if status.data is not None else "no status",
        "problem": status.problem,
        "updated": data.get("updated"),
        "rounds": data.get("rounds"),
        "last_round": data.get("last_round"),
        "excluded": excluded if isinstance(excluded, dict) else {},
        "record": data.get("record") if isinstance(data.get("record"), dict) else None,
    }


def federation_view(statuses: Sequence[SiteStatus]) -> dict[str, Any]:
    """{sites, matrix, rounds, excluded}: JSON-ready."""
    sites = {status.kit.name: _site(status) for status in statuses}
    excluded: dict[str, dict[str, str]] = {}
    for name, site in sites.items():
        for peer, reason in site["excluded"].items():
            excluded.setdefault(str(peer), {})[name] = str(reason)
    return {"sites": sites, "matrix": _cells(statuses), "rounds": _rounds(statuses),
            "excluded": excluded}


STYLE = {"affirming": "green", "warning": "yellow", "contraindicated": "bold red",
         "none": "magenta", "not-cc": "dim"}


def age(stamp: Any, now: datetime) -> str:
    """'12s ago', '3m ago', '2h ago', '1d ago'; 'never' for no time."""
    try:
        seconds = (now - datetime.fromisoformat(str(stamp))).total_seconds()
    except (TypeError, ValueError):
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{max(seconds, 0):.0f}s ago"


def matrix_table(names: Sequence[str], cells: Iterable[dict[str, Any]], *,
                 excluded: Iterable[str], title: str, now: datetime,
                 mark: str = " *") -> Table:
    """Who trusts whom: each row judges each column; a cell says the status and when it
    was last affirming. Shared by `ccattest status` and the demo."""
    from rich.table import Table
    from rich.text import Text

    by_pair = {(cell["verifier"], cell["peer"]): cell for cell in cells}
    out_of_it = set(excluded)
    table = Table(title=title, header_style="bold")
    table.add_column("verifier \\ peer")
    for peer in names:
        table.add_column(peer + (mark if peer in out_of_it else ""))
    for verifier in names:
        row: list[Any] = [verifier]
        for peer in names:
            cell = by_pair.get((verifier, peer))
            if verifier == peer:
                row.append(Text("-", style="dim"))
            elif cell is None:
                row.append(Text("pending", style="dim"))
            else:
                good = (f"good {age(cell['last_good'], now)}" if cell.get("last_good")
                        else "never good")
                row.append(Text(f"{cell['status']}\n{good}", style=STYLE.get(cell["status"], "")))
        table.add_row(*row)
    return table
