"""Which excluded sites may come back, and when: the memory of exclusions.

An exclusion never ends by itself. It ends when the judging site holds a *fresh* affirming
verdict about the excluded site (a round's evidence bound to a transcript holding its own
contribution, or a registration confirmation answering its own challenge) AND the
exclusion allows it:

- per cause (`actions.readmit`): `auto` re-admits at the first such verdict; `manual`
  holds the site out until an operator lifts the hold (`lift`), and then the next fresh
  affirming verdict re-admits it. Lifting never re-admits by itself.
- flapping (`actions.flapping`): the `exclusions`-th exclusion of a site within
  `window_seconds`, and every one after it, holds the site out for a back-off that doubles
  each time (from `backoff_seconds` up to `max_backoff_seconds`).

The state is plain data (`to_wire`/`restore`) so that a site keeps it across restarts:
what a site distrusted before a restart it still distrusts after, until fresh evidence.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..timeutil import parse_instant

if TYPE_CHECKING:
    from .actions import FlappingConfig, ReadmitConfig

MANUAL, REJECTED = "manual", "rejected"
MAX_HISTORY = 64  # exclusion times kept per site (only those inside the window count)


def _cause(value: Any) -> str:
    if value not in ("rejected", "unreachable"):
        raise ValueError(f"unknown cause {value!r}")
    return str(value)


@dataclass(frozen=True)
class Exclusion:
    cause: str  # rejected | unreachable
    since: datetime
    held: bool  # a manual hold: only an operator lifts it
    not_before: datetime  # the flapping back-off: no re-admission before this time
    detail: str

    def blocks(self, at: datetime) -> str | None:
        """Why a fresh affirming verdict would not re-admit the site now, or None."""
        if self.held:
            return (f"excluded ({self.cause}) and held until an operator lifts the hold "
                    "(ccattest nvflare readmit SITE)")
        if at < self.not_before:
            return (f"held out by the flapping back-off until {self.not_before.isoformat()}"
                    f" ({(self.not_before - at).total_seconds():.0f}s)")
        return None

    def to_wire(self) -> dict[str, Any]:
        return {"cause": self.cause, "since": self.since.isoformat(), "held": self.held,
                "not_before": self.not_before.isoformat(), "detail": self.detail}


class Readmissions:
    def __init__(self, readmit: ReadmitConfig, flapping: FlappingConfig) -> None:
        self.readmit = readmit
        self.flapping = flapping
        self._lock = threading.Lock()
        self._excluded: dict[str, Exclusion] = {}
        self._history: dict[str, list[datetime]] = {}  # when each exclusion began

    def backoff(self, count: int) -> timedelta:
        """The hold-out after the `count`-th exclusion inside the window."""
        over = count - self.flapping.exclusions
        if over < 0:
            return timedelta(0)
        seconds = self.flapping.backoff_seconds * 2 ** min(over, 32)
        return timedelta(seconds=min(seconds, self.flapping.max_backoff_seconds))

    def _manual(self, cause: str) -> bool:
        return str(getattr(self.readmit, cause, MANUAL)) == MANUAL

    def exclude(self, site: str, cause: str, at: datetime, detail: str) -> Exclusion:
        """Record an exclusion; a stricter cause (a rejection) replaces a milder one within
        the same exclusion, which counts once for flapping."""
        held = self._manual(cause)
        with self._lock:
            current = self._excluded.get(site)
            if current is not None:
                if held and not current.held:
                    current = replace(current, cause=cause, held=True, detail=detail[:300])
                    self._excluded[site] = current
                return current
            window = timedelta(seconds=self.flapping.window_seconds)
            history = [t for t in self._history.get(site, []) if at - t < window]
            history = [*history, at][-MAX_HISTORY:]
            self._history[site] = history
            exclusion = Exclusion(cause, at, held, at + self.backoff(len(history)), detail[:300])
            self._excluded[site] = exclusion
            return exclusion

    def get(self, site: str) -> Exclusion | None:
        with self._lock:
            return self._excluded.get(site)

    def blocks(self, site: str, at: datetime) -> str | None:
        """Why `site` may not be re-admitted now (None: not excluded, or it may)."""
        exclusion = self.get(site)
        return None if exclusion is None else exclusion.blocks(at)

    def probation(self, at: datetime) -> list[str]:
        """Excluded sites that a fresh affirming verdict would re-admit now: rounds try them."""
        with self._lock:
            return sorted(site for site, exclusion in self._excluded.items()
                          if exclusion.blocks(at) is None)

    def readmitted(self, site: str, at: datetime) -> Exclusion | None:
        """End the exclusion when it allows it; the ended exclusion, or None."""
        with self._lock:
            exclusion = self._excluded.get(site)
            if exclusion is None or exclusion.blocks(at) is not None:
                return None
            return self._excluded.pop(site)

    def lift(self, site: str) -> Exclusion:
        """An operator lifts the manual hold and the back-off; attestation still decides."""
        with self._lock:
            exclusion = self._excluded.get(site)
            if exclusion is None:
                raise ConfigError(f"{site} is not excluded here", expected="an excluded site",
                                  found=", ".join(sorted(self._excluded)) or "none excluded")
            lifted = replace(exclusion, held=False, not_before=exclusion.since)
            self._excluded[site] = lifted
            return lifted

    def excluded(self) -> dict[str, Exclusion]:
        with self._lock:
            return dict(self._excluded)

    def to_wire(self) -> dict[str, Any]:
        with self._lock:
            return {"excluded": {site: e.to_wire() for site, e in self._excluded.items()},
                    "history": {site: [t.isoformat() for t in times]
                                for site, times in self._history.items() if times}}

    def restore(self, data: Any) -> list[str]:
        """Load what `to_wire` kept (before a restart); returns the excluded sites. Anything
        unreadable raises ConfigError: a site never forgets an exclusion silently."""
        try:
            excluded = {str(site): Exclusion(_cause(e["cause"]), parse_instant(e["since"]),
                                             bool(e["held"]), parse_instant(e["not_before"]),
                                             str(e.get("detail", ""))[:300])
                        for site, e in dict(data.get("excluded", {})).items()}
            history = {str(site): [parse_instant(t) for t in times][-MAX_HISTORY:]
                       for site, times in dict(data.get("history", {})).items()}
        except (AttributeError, KeyError, TypeError, ValueError, ConfigError) as error:
            raise ConfigError("the kept exclusions are unreadable",
                              expected="the JSON ccattest wrote", found=str(error)[:200],
                              hint="delete the file only after checking every site") from None
        with self._lock:
            self._excluded.update(excluded)
            self._history.update(history)
        return sorted(excluded)
