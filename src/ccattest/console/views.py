"""What the console shows, read from a federation's folders: every site's status file and
record (read-only; the console never writes a site's files but its own token).

A workspace is a site's kit, a prod folder or a POC workspace: every kit below it is read,
the same way `ccattest status` finds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import CCAttestError, ConfigError
from ..nvflare.kits import BUNDLE_DIR, Kit
from ..nvflare.status import federation_view, find_kits, read_status
from ..provisioning import JWKS_FILE
from ..record.entry import decode
from ..record.log import RECORD_FILE
from ..record.store import RecordStore

MAX_EVENTS = 500  # one answer's worth; ask again with `after` for more


@dataclass(frozen=True)
class Federation:
    """The kits the console reads, found once at start."""

    root: Path
    kits: tuple[Kit, ...]

    @classmethod
    def find(cls, workspace: Path) -> Federation:
        return cls(workspace, tuple(find_kits([workspace])))  # none found: ConfigError

    @property
    def server(self) -> Kit | None:
        return next((kit for kit in self.kits if kit.role == "server"), None)

    def kit(self, name: str) -> Kit | None:
        return next((kit for kit in self.kits if kit.name == name), None)

    def view(self) -> dict[str, Any]:
        return federation_view([read_status(kit) for kit in self.kits])

    def jwks(self) -> dict[str, Any] | None:
        for kit in self.kits:
            path = kit.local / BUNDLE_DIR / JWKS_FILE
            if path.is_file():
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                return data if isinstance(data, dict) else None
        return None

    @staticmethod
    def has_record(kit: Kit) -> bool:
        return (kit.local / BUNDLE_DIR / RECORD_FILE).is_file()

    @contextmanager
    def record(self, kit: Kit) -> Iterator[RecordStore | None]:
        """The kit's record (SQLite in its local/cc/), None when it has none yet."""
        path = kit.local / BUNDLE_DIR / RECORD_FILE
        if not self.has_record(kit):
            yield None
            return
        store = RecordStore.open(path, origin=None, create=False)
        try:
            yield store
        finally:
            store.close()

    def events(self, site: str | None = None, *, kind: str | None = None,
               since: datetime | None = None, after: int = -1,
               limit: int = MAX_EVENTS) -> list[dict[str, Any]]:
        """Entries of one kit's record (the server's by default), oldest first."""
        kit = self.kit(site) if site else self.server
        if kit is None:
            raise ConfigError(f"no site {site!r} in this federation",
                              expected=", ".join(k.name for k in self.kits))
        with self.record(kit) as store:
            if store is None:
                return []
            start = min(max(after + 1, 0), store.size())
            stored = store.entries(start, kind=kind, since=since)[:limit]
        return [{"index": e.index, "kind": e.kind, "site": e.site, "at": e.at.isoformat(),
                 "data": _data(e.body)} for e in stored]


def _data(body: bytes) -> Any:
    try:
        return decode(body).data
    except CCAttestError:
        return None  # shown as unreadable; `ccattest audit verify` says why
