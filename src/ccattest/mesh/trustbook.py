"""What one site currently believes about every peer, shared across threads.

Entries are definitive only when the verdict answered a challenge this site issued (or a
round transcript holding its own contribution); registration's time-bounded evidence is
provisional and never lets a job through.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from ..seal.keys import SealingPublicKey
from .agent import SiteVerdict


@dataclass(frozen=True)
class TrustEntry:
    verdict: SiteVerdict
    definitive: bool
    last_good: datetime | None


@dataclass(frozen=True)
class MatrixCell:
    verifier: str
    peer: str
    status: str
    at: datetime
    last_good: datetime | None


class TrustBook:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._lock = threading.Lock()
        self._entries: dict[str, TrustEntry] = {}
        self._excluded: dict[str, str] = {}
        self._matrix: dict[tuple[str, str], MatrixCell] = {}

    def record(self, verdict: SiteVerdict, *, definitive: bool, verifier: str | None = None
               ) -> None:
        verifier = verifier or self.owner
        with self._lock:
            key = (verifier, verdict.site)
            previous = self._matrix.get(key)
            last_good = verdict.at if verdict.affirming else (
                previous.last_good if previous else None)
            self._matrix[key] = MatrixCell(verifier, verdict.site, verdict.status, verdict.at,
                                           last_good)
            if verifier == self.owner:
                self._entries[verdict.site] = TrustEntry(verdict, definitive, last_good)

    def record_remote(self, verifier: str, peer: str, status: str, at: datetime,
                      affirming: bool) -> None:
        """A cell of the trust matrix reported by another site (display only)."""
        with self._lock:
            previous = self._matrix.get((verifier, peer))
            last_good = at if affirming else (previous.last_good if previous else None)
            self._matrix[(verifier, peer)] = MatrixCell(verifier, peer, status, at, last_good)

    def entry(self, site: str) -> TrustEntry | None:
        with self._lock:
            return self._entries.get(site)

    def is_trusted(self, site: str, at: datetime) -> bool:
        with self._lock:
            entry = self._entries.get(site)
            return (site not in self._excluded and entry is not None and entry.definitive
                    and entry.verdict.is_fresh(at))

    def sealing_key(self, site: str, at: datetime) -> SealingPublicKey | None:
        """The key to seal to `site`: the one its current verdict's evidence bound, and only
        while that verdict is trusted (definitive, affirming, fresh, not excluded)."""
        with self._lock:
            entry = self._entries.get(site)
            if site in self._excluded or entry is None or not entry.definitive \
                    or not entry.verdict.is_fresh(at):
                return None
            return entry.verdict.seal_key

    def exclude(self, site: str, reason: str, *, replace: bool = False) -> bool:
        """True when the site was not excluded before. The first reason stands unless
        `replace` (a site excluded as unreachable that answers with bad evidence is now
        rejected: mesh/actions.py says so)."""
        with self._lock:
            new = site not in self._excluded
            if replace:
                self._excluded[site] = reason
            else:
                self._excluded.setdefault(site, reason)
            return new

    def readmit(self, site: str) -> bool:
        """End an exclusion (mesh/actions.py decides when); True when it was excluded. The
        verdict that re-admitted the site was recorded first, so nothing from before the
        exclusion is what the gate relies on."""
        with self._lock:
            return self._excluded.pop(site, None) is not None

    def excluded(self) -> dict[str, str]:
        with self._lock:
            return dict(self._excluded)

    def matrix(self) -> list[MatrixCell]:
        with self._lock:
            return sorted(self._matrix.values(), key=lambda c: (c.verifier, c.peer))
