"""What `/metrics` counts in a site's record, kept between scrapes: a record only grows, so
each scrape reads only the entries appended since the last one (reading all of a 30-day
record on every scrape takes seconds). The tally starts over when the record is not the
one it counted: another origin, fewer entries than counted, or another entry where the
last counted one was (a record restored or replaced).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import CCAttestError
from ..record.entry import canonical, decode
from ..record.store import RecordStore, StoredEntry

BATCH = 1000  # entries read a query: bounds memory when a whole record is counted


MAX_CHECKED = 200_000  # bodies whose check is remembered (~40 MB at most), then forgotten

# SHA-256 of a body -> where its data's JSON lies in it, or None when it does not decode.
# decode() re-encodes every entry to prove it canonical (four fifths of an events page's
# time); a body is immutable, so the proof is kept by its digest and not made again.
_checked: dict[bytes, tuple[int, int] | None] = {}


def _span(body: bytes) -> tuple[int, int] | None:
    """Check a body once: the [start, end) of its data's canonical JSON, None if it does
    not decode. A canonical body is {"at":"...","data":...,"kind":...,"site":...,"v":1}."""
    digest = hashlib.sha256(body).digest()
    if digest in _checked:
        return _checked[digest]
    try:
        entry = decode(body)
    except CCAttestError:
        span = None
    else:
        # Keys sorted: "at" (a timestamp: no quote in it), "data", then the tail below.
        start = body.index(b'","data":') + len(b'","data":')
        tail = b"," + canonical({"kind": entry.kind, "site": entry.site, "v": 1})[1:]
        if not body.endswith(tail):  # cannot be, as decode() re-encoded it to these bytes
            raise AssertionError("a canonical entry does not end as canonical entries do")
        span = (start, len(body) - len(tail))
    if len(_checked) >= MAX_CHECKED:
        _checked.clear()
    _checked[digest] = span
    return span


def entry_data(body: bytes) -> Any:
    """An entry's data; None when it does not decode (`ccattest audit verify` says why)."""
    span = _span(body)
    return None if span is None else json.loads(body[span[0]:span[1]])


def data_json(body: bytes) -> bytes:
    """An entry's data as JSON (`null` when it does not decode): the body's own bytes, as
    canonical JSON is what the API's serializer writes for it too."""
    span = _span(body)
    return b"null" if span is None else body[span[0]:span[1]]


@dataclass(frozen=True)
class Counts:
    """One record's figures at one scrape."""

    entries: int
    kinds: dict[str, int]
    verdicts: dict[tuple[str, str], int]  # (platform, status) -> verdicts recorded
    missing: int  # sites missing from the rounds the site recorded


@dataclass
class RecordTally:
    """One kit's running counts; safe to update from several request threads."""

    origin: str | None = None
    read: int = 0  # entries [0, read) are counted
    last_leaf: bytes | None = None  # entry read - 1's leaf hash: is it still the same log?
    kinds: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[tuple[str, str]] = field(default_factory=Counter)
    missing: int = 0
    restarts: int = 0  # how often it started over (for tests and the curious)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, store: RecordStore) -> Counts:
        """Count what was appended since the last update; returns the totals."""
        with self._lock:
            size = store.size()
            if not self._same_log(store, size):
                self._reset(store.origin)
            while self.read < size:
                batch = store.entries(self.read, size, limit=BATCH)
                if not batch:  # a hole at the end of a damaged log: count what is there
                    break
                for entry in batch:
                    self._count(entry)
                self.read = batch[-1].index + 1
                self.last_leaf = batch[-1].leaf_hash
            return Counts(sum(self.kinds.values()), dict(self.kinds), dict(self.verdicts),
                          self.missing)

    def _same_log(self, store: RecordStore, size: int) -> bool:
        if self.origin != store.origin or size < self.read:
            return False
        return self.read == 0 or store.leaf_hashes(self.read - 1, self.read) == [
            self.last_leaf]

    def _reset(self, origin: str) -> None:
        self.restarts += self.origin is not None
        self.origin, self.read, self.last_leaf, self.missing = origin, 0, None, 0
        self.kinds, self.verdicts = Counter(), Counter()

    def _count(self, entry: StoredEntry) -> None:
        self.kinds[entry.kind] += 1
        if entry.kind not in ("verdict", "round"):
            return  # only these two are looked into: the others are not decoded at all
        data = entry_data(entry.body) or {}
        if entry.kind == "verdict":
            for result in data.get("results") or [{"platform": "none"}]:
                self.verdicts[(str(result.get("platform")), str(data.get("status")))] += 1
        else:
            self.missing += len(data.get("missing") or {})
