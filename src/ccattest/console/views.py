"""What the console shows, read from a federation's folders: every site's status file and
record (read-only; the console never writes a site's files but its own token).

A workspace is a site's kit, a prod folder or a POC workspace: every kit below it is read,
the same way `ccattest status` finds them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import CCAttestError, ConfigError
from ..nvflare.kits import BUNDLE_DIR, Kit
from ..nvflare.status import STATUS_FILE, SiteStatus, federation_view, find_kits, read_status
from ..provisioning import JWKS_FILE
from ..record.log import RECORD_FILE
from ..record.store import RecordStore, StoredEntry
from .tally import Counts, RecordTally, data_json, entry_data

log = logging.getLogger(__name__)

MAX_EVENTS = 500  # one answer's worth; ask again with `after` (or `before`) for more
MAX_SCAN = 20_000  # entries one `about` query reads at most; its cursor goes on from there
SCAN_PAGE = 1000


class _Cache:
    """What the console keeps between requests: each status file parsed as long as it is
    unchanged (201 files parsed on every request cost more than the request), the merged
    view of them, and each record's metrics tally."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[Path, tuple[tuple[int, int, int], SiteStatus]] = {}
        self.view: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.tallies: dict[Path, RecordTally] = {}


@dataclass(frozen=True)
class Federation:
    """The kits the console reads, found once at start."""

    root: Path
    kits: tuple[Kit, ...]
    _cache: _Cache = field(default_factory=_Cache, compare=False, repr=False)

    @classmethod
    def find(cls, workspace: Path) -> Federation:
        return cls(workspace, tuple(find_kits([workspace])))  # none found: ConfigError

    @property
    def server(self) -> Kit | None:
        return next((kit for kit in self.kits if kit.role == "server"), None)

    def kit(self, name: str) -> Kit | None:
        return next((kit for kit in self.kits if kit.name == name), None)

    def view(self) -> dict[str, Any]:
        """The merged status files; the same (shared, not to be changed) dict while no file
        changed."""
        keyed = [self._status(kit) for kit in self.kits]
        key = tuple(stamp for stamp, _ in keyed)
        cached = self._cache.view
        if cached is not None and cached[0] == key:
            return cached[1]
        view = federation_view([status for _, status in keyed])
        self._cache.view = (key, view)
        return view

    def status(self, kit: Kit) -> SiteStatus:
        """One kit's status file, parsed once while it does not change."""
        return self._status(kit)[1]

    def _status(self, kit: Kit) -> tuple[Any, SiteStatus]:
        """A kit's status, parsed again only when its file's (inode, mtime, size) changed
        (CCManager replaces the file whole: a new inode at every write)."""
        path = kit.local / BUNDLE_DIR / STATUS_FILE
        try:
            info = os.stat(path)
        except OSError:
            return None, read_status(kit)  # missing or unreadable: read_status says which
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        cached = self._cache.statuses.get(path)
        if cached is not None and cached[0] == stamp:
            return stamp, cached[1]
        status = read_status(kit)
        self._cache.statuses[path] = (stamp, status)
        return stamp, status

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

    def tally(self, kit: Kit) -> Counts | None:
        """The metrics' counts of a kit's record (None without one), read incrementally."""
        with self._cache.lock:
            tally = self._cache.tallies.setdefault(kit.path, RecordTally())
        with self.record(kit) as store:
            return None if store is None else tally.update(store)

    def warm(self) -> None:
        """Tally every record once (seconds for weeks of record), so that the first
        scrape is not the one that reads it all; a record that fails is left to it."""
        for kit in self.kits:
            try:
                self.tally(kit)
            except CCAttestError as error:
                log.warning("ccattest console: cannot tally %s's record: %s", kit.name, error)

    def events(self, site: str | None = None, *, kind: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               after: int = -1, before: int | None = None, limit: int = MAX_EVENTS,
               newest_first: bool = False) -> list[dict[str, Any]]:
        """Entries of one kit's record (the server's by default) with index > `after` and
        < `before`, at or after `since` and before `until`: the oldest `limit` of them, or
        with `newest_first` the newest, newest first. Only the page is read."""
        return [{"index": e.index, "kind": e.kind, "site": e.site, "at": e.at.isoformat(),
                 "data": entry_data(e.body)} for e in self._stored(
                     site, kind=kind, since=since, until=until, after=after, before=before,
                     limit=limit, newest_first=newest_first)]

    def events_json(self, site: str | None = None, **query: Any) -> list[tuple[int, bytes]]:
        """events(), each as (index, its JSON object): the same JSON the API's serializer
        writes for events(), without parsing the entries' data and writing it again (an
        events page is megabytes of round entries)."""
        return [(e.index, b'{"index":%d,"kind":%s,"site":%s,"at":%s,"data":%s}' % (
            e.index, _json(e.kind), _json(e.site), _json(e.at.isoformat()),
            data_json(e.body))) for e in self._stored(site, **query)]

    def events_about_json(self, about: str, site: str | None = None, *, limit: int,
                          newest_first: bool, after: int = -1, before: int | None = None,
                          **query: Any) -> tuple[list[bytes], int | None]:
        """events_json() of the entries that name `about` (a site) anywhere in their data,
        as a JSON string: a verdict's peer, a round's participants, an exclusion's site.
        At most MAX_SCAN entries are read per call; the cursor says where to go on (None
        at the end of the record)."""
        needle = _json(about)
        found: list[bytes] = []
        scanned = 0
        while len(found) < limit and scanned < MAX_SCAN:
            page = self._stored(site, after=after, before=before, limit=SCAN_PAGE,
                                newest_first=newest_first, **query)
            for entry in page:
                scanned += 1
                if newest_first:
                    before = entry.index
                else:
                    after = entry.index
                data = data_json(entry.body)
                if needle in data:
                    found.append(b'{"index":%d,"kind":%s,"site":%s,"at":%s,"data":%s}' % (
                        entry.index, _json(entry.kind), _json(entry.site),
                        _json(entry.at.isoformat()), data))
                    if len(found) == limit:
                        break
            if len(page) < SCAN_PAGE:
                return found, None if len(found) < limit else (before if newest_first
                                                                else after)
        return found, before if newest_first else after

    def _stored(self, site: str | None = None, *, kind: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                after: int = -1, before: int | None = None, limit: int = MAX_EVENTS,
                newest_first: bool = False) -> list[StoredEntry]:
        kit = self.kit(site) if site else self.server
        if kit is None:
            raise ConfigError(f"no site {site!r} in this federation",
                              expected=", ".join(k.name for k in self.kits))
        with self.record(kit) as store:
            if store is None:
                return []
            size = store.size()
            start = min(max(after + 1, 0), size)
            end = size if before is None else min(max(before, start), size)
            return store.entries(start, end, kind=kind, since=since, until=until,
                                 limit=limit, newest_first=newest_first)


def _json(text: str) -> bytes:
    # as the API's serializer writes a string: UTF-8, not \u-escaped
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def json_object(fields: dict[str, Any], raw: dict[str, list[bytes]]) -> bytes:
    """A compact JSON object of `fields` and of arrays already written as JSON (`raw`)."""
    parts = [b"%s:[%s]" % (_json(key), b",".join(items)) for key, items in raw.items()]
    parts += [_json(key) + b":" + json.dumps(value, ensure_ascii=False,
                                             separators=(",", ":")).encode("utf-8")
              for key, value in fields.items()]
    return b"{" + b",".join(parts) + b"}"
