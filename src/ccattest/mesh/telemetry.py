"""Figures only a running CC manager knows: how long verification takes per platform, the
verdicts it reached, its rounds, its collateral cache's hits and misses and when the
collateral it holds expires. NVFlare-free and thread-safe; `snapshot()` is what the manager
writes into status.json for the console (another process) to serve on /metrics.

Recording is a lock and a few integer updates, so it can sit on the verification path.
Every map is bounded: label values beyond MAX_SERIES fold into "other", and the expiry list
keeps the MAX_EXPIRY items that expire first (those are the ones an operator must act on).
"""

from __future__ import annotations

import string
import threading
from bisect import bisect_left
from collections.abc import Iterable
from datetime import datetime
from typing import Any

# Upper bounds in seconds (Prometheus style, `le`); +Inf is implied by the count.
BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                              2.5, 5.0, 10.0)
MAX_SERIES = 32  # label values per map
MAX_EXPIRY = 64  # collateral items listed
MAX_LABEL = 64  # characters of one label value
MAX_HEX_PART = 32  # a longer hex key part (a 64-byte chip id) is shortened in names
OTHER = "other"
SNAPSHOT_VERSION = 1


class Histogram:
    """Fixed-bucket histogram; the owner's lock guards it."""

    __slots__ = ("count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)  # per bucket, not cumulative (+Inf is `count`)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        index = bisect_left(BUCKETS, seconds)  # le is inclusive: 0.001 falls in "0.001"
        if index < len(BUCKETS):
            self.counts[index] += 1
        self.sum += seconds
        self.count += 1

    def snapshot(self) -> dict[str, Any]:
        cumulative, running = [], 0
        for bound, count in zip(BUCKETS, self.counts, strict=True):
            running += count
            cumulative.append([bound, running])
        return {"buckets": cumulative, "sum": round(self.sum, 6), "count": self.count}


def label(value: object) -> str:
    return str(value)[:MAX_LABEL]


def short_name(key: Iterable[str]) -> str:
    """A collateral key as a short, readable label: long hex parts (chip ids) cut to a
    prefix, any part to MAX_LABEL characters."""
    parts = [part[:16] + "..." if len(part) > MAX_HEX_PART and _is_hex(part)
             else part[:MAX_LABEL] for part in key]
    return "/".join(parts)[:MAX_LABEL * 2] or "-"


def _is_hex(text: str) -> bool:
    return all(char in string.hexdigits for char in text)


class Telemetry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verification: dict[str, Histogram] = {}
        self._verdicts: dict[tuple[str, str], int] = {}
        self._rounds = Histogram()
        self._hits: dict[str, int] = {}
        self._misses: dict[str, int] = {}
        self._expiry: dict[tuple[str, str], datetime] = {}

    # --- recording (the hot path) ----------------------------------------------------------
    def verified(self, platform: str, status: str, seconds: float) -> None:
        """One evidence verified and appraised (whatever the outcome) in `seconds`."""
        with self._lock:
            platform = _bounded(self._verification, label(platform))
            self._verification.setdefault(platform, Histogram()).observe(seconds)
            key = (platform, label(status))
            if key not in self._verdicts and len(self._verdicts) >= MAX_SERIES:
                key = (OTHER, OTHER)
            self._verdicts[key] = self._verdicts.get(key, 0) + 1

    def round_done(self, seconds: float) -> None:
        with self._lock:
            self._rounds.observe(seconds)

    def collateral_lookup(self, kind: str, *, hit: bool) -> None:
        with self._lock:
            counts = self._hits if hit else self._misses
            kind = _bounded(counts, label(kind))
            counts[kind] = counts.get(kind, 0) + 1

    def collateral_held(self, kind: str, key: Iterable[str], not_after: datetime) -> None:
        """The site holds this item (cached or pinned) until `not_after`; a newer item under
        the same name replaces it."""
        entry = (label(kind), short_name(key))
        with self._lock:
            self._expiry[entry] = not_after
            if len(self._expiry) > MAX_EXPIRY:  # drop the one that expires last
                del self._expiry[max(self._expiry, key=self._expiry.__getitem__)]

    # --- reading ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-ready and bounded (see the module's docstring)."""
        with self._lock:
            verdicts: dict[str, dict[str, int]] = {}
            for (platform, status), count in sorted(self._verdicts.items()):
                verdicts.setdefault(platform, {})[status] = count
            return {
                "version": SNAPSHOT_VERSION,
                "verification": {platform: histogram.snapshot() for platform, histogram
                                 in sorted(self._verification.items())},
                "verdicts": verdicts,
                "rounds": self._rounds.snapshot(),
                "collateral": {"hits": dict(sorted(self._hits.items())),
                               "misses": dict(sorted(self._misses.items()))},
                "collateral_expiry": [
                    {"kind": kind, "name": name, "not_after": not_after.isoformat()}
                    for (kind, name), not_after in sorted(self._expiry.items(),
                                                          key=lambda item: item[1])],
            }


def _bounded(series: dict[str, Any], value: str) -> str:
    """`value`, or OTHER once the map holds MAX_SERIES others (callers hold the lock)."""
    return value if value in series or len(series) < MAX_SERIES else OTHER
