"""What happens when a CC-enabled site fails: configured per cause, applied once; and
how an excluded site comes back (mesh/readmission.py).

Honest sites keep running unless the configured action is `shutdown`: the default
excludes only the failing site. What heals heals the federation: an excluded site is
re-admitted at a fresh affirming verdict when its exclusion allows it (per cause, after
any flapping back-off); attestation is never skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..timeutil import utcnow
from .readmission import Exclusion, Readmissions

if TYPE_CHECKING:
    from .journal import Journal


class Action(StrEnum):
    ALERT = "alert"
    EXCLUDE_SITE = "exclude_site"
    STOP_JOBS = "stop_jobs"
    SHUTDOWN = "shutdown"


class Cause(StrEnum):
    REJECTED = "rejected"  # verification or policy failure
    UNREACHABLE = "unreachable"  # no answer within the round deadline, after the grace period


class Readmit(StrEnum):
    AUTO = "auto"  # the next fresh affirming verdict re-admits the site
    MANUAL = "manual"  # an operator lifts the hold first; then the next one re-admits it


class ReadmitConfig(BaseModel):
    """Per cause. A link that drops heals by itself (auto); evidence that failed the policy
    says something about the site, so a person looks before it comes back (manual)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unreachable: Readmit = Readmit.AUTO
    rejected: Readmit = Readmit.MANUAL


class FlappingConfig(BaseModel):
    """The `exclusions`-th exclusion of a site within `window_seconds` (and each after it)
    holds it out for `backoff_seconds`, doubling each time up to `max_backoff_seconds`.

    Defaults, with rounds every 60 s and a 60 s unreachable grace: one drop-and-return
    costs at least two rounds (~2-3 min) before the site is back, so 3 exclusions in an
    hour are a failing link, not a blip. The first hold-out is 5 rounds (300 s), then 10,
    20, ... capped at the window (3600 s), so that the count can age out while held."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exclusions: int = Field(default=3, ge=1)
    window_seconds: float = Field(default=3600.0, gt=0)
    backoff_seconds: float = Field(default=300.0, ge=0)
    max_backoff_seconds: float = Field(default=3600.0, ge=0)

    @model_validator(mode="after")
    def _cap_above_start(self) -> FlappingConfig:
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("max_backoff_seconds is below backoff_seconds")
        return self


class ActionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on_rejected: Action = Action.EXCLUDE_SITE
    on_unreachable: Action = Action.EXCLUDE_SITE
    unreachable_grace_seconds: float = Field(default=60.0, ge=0)
    readmit: ReadmitConfig = Field(default_factory=ReadmitConfig)
    flapping: FlappingConfig = Field(default_factory=FlappingConfig)


class Effects(Protocol):
    """How the host system carries out decisions (NVFlare adapter, tests, simulator)."""

    def alert(self, site: str, cause: Cause, detail: str) -> None: ...

    def exclude_site(self, site: str, detail: str, cause: Cause = ...) -> None: ...

    def stop_jobs(self, site: str, detail: str) -> None: ...

    def shutdown(self, site: str, detail: str) -> None: ...

    # Optional (called when present): `readmit_site(site, detail)` undoes exclude_site;
    # `allow_rejoin(site)` lets an excluded site register again to be attested afresh.


class FailureHandler:
    """Turns failures into actions; unreachable peers get a grace period before acting.
    Excluded sites come back through `affirmed` only (a fresh affirming verdict)."""

    def __init__(self, config: ActionConfig, effects: Effects, *,
                 journal: Journal | None = None, trust: Any = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.effects = effects
        self.journal = journal  # actions are recorded once, when first applied
        self.trust = trust if trust is not None else getattr(effects, "trust", None)
        self.clock = clock
        self.readmissions = Readmissions(config.readmit, config.flapping)
        self.on_change: Callable[[], None] | None = None  # exclusions changed: keep them
        self._lock = threading.Lock()
        self._unreachable_since: dict[str, datetime] = {}
        self._acted: set[tuple[str, Cause]] = set()

    def rejected(self, site: str, detail: str) -> Action:
        self.reachable(site)
        return self._act(site, Cause.REJECTED, self.config.on_rejected, detail)

    def unreachable(self, site: str, detail: str, at: datetime) -> Action | None:
        if self.readmissions.get(site) is not None:
            return None  # already out: rounds keep trying it quietly until it answers
        with self._lock:
            since = self._unreachable_since.setdefault(site, at)
        grace = timedelta(seconds=self.config.unreachable_grace_seconds)
        if at - since < grace:
            self.effects.alert(site, Cause.UNREACHABLE,
                               f"{detail}; acting after {grace.total_seconds():.0f}s grace")
            return None
        return self._act(site, Cause.UNREACHABLE, self.config.on_unreachable, detail)

    def reachable(self, site: str) -> None:
        with self._lock:
            self._unreachable_since.pop(site, None)

    def _act(self, site: str, cause: Cause, action: Action, detail: str) -> Action:
        with self._lock:
            first = (site, cause) not in self._acted
            self._acted.add((site, cause))
        self.effects.alert(site, cause, detail)
        if action is Action.EXCLUDE_SITE and not first and self.readmissions.get(site):
            # Still excluded: a rejection after an operator lifted the hold holds it again.
            self.readmissions.exclude(site, cause.value, self.clock(), detail)
            self._changed()
        if not first and action is not Action.ALERT:
            return action  # already applied; repeating a shutdown or exclusion helps nobody
        if first and self.journal is not None:
            self.journal.action(site, cause.value, action.value, detail)
            if action is Action.EXCLUDE_SITE:
                self.journal.exclusion(site, f"{cause.value}: {detail}")
        if action is Action.EXCLUDE_SITE:
            self.readmissions.exclude(site, cause.value, self.clock(), detail)
            self._changed()
            self.effects.exclude_site(site, detail, cause)
            if self.trust is not None:  # the latest cause is the one that holds it out
                self.trust.exclude(site, detail, replace=True)
        elif action is Action.STOP_JOBS:
            self.effects.stop_jobs(site, detail)
        elif action is Action.SHUTDOWN:
            self.effects.shutdown(site, detail)
        return action

    # --- coming back -------------------------------------------------------------------
    def blocks(self, site: str) -> str | None:
        """Why an excluded `site` may not be re-admitted now (None: it may, or it is not
        excluded): a manual hold, or the flapping back-off."""
        return self.readmissions.blocks(site, self.clock())

    def probation(self) -> list[str]:
        """Excluded sites whose next fresh affirming verdict re-admits them."""
        return self.readmissions.probation(self.clock())

    def rejoining(self, site: str) -> None:
        """An excluded site re-registers and its first evidence is affirming: let the host
        system register it so that it can be attested definitively. It stays excluded (the
        gate refuses its jobs) until `affirmed`."""
        if self.readmissions.get(site) is not None:
            allow = getattr(self.effects, "allow_rejoin", None)
            if allow is not None:
                allow(site)

    def affirmed(self, site: str, detail: str) -> bool:
        """Call with every fresh, definitive, affirming verdict about `site` (a round's, or
        a registration confirmation's): re-admits it when it is excluded and its exclusion
        allows it. True when it was re-admitted."""
        if self.readmissions.get(site) is None:
            return False  # the common case, every round: nothing to do
        ended = self.readmissions.readmitted(site, self.clock())
        if ended is None:
            return False
        with self._lock:
            self._acted = {key for key in self._acted if key[0] != site}
            self._unreachable_since.pop(site, None)
        if self.trust is not None:
            self.trust.readmit(site)
        if self.journal is not None:
            self.journal.readmission(site, f"{ended.cause}: {detail}")
        readmit = getattr(self.effects, "readmit_site", None)
        if readmit is not None:
            readmit(site, f"excluded ({ended.cause}) since {ended.since.isoformat()}; "
                          f"{detail}")
        self._changed()
        return True

    def lift(self, site: str, by: str) -> Exclusion:
        """An operator lifts a manual hold (and any back-off). It never re-admits: the
        site's next fresh affirming verdict does. Raises ConfigError when not excluded."""
        lifted = self.readmissions.lift(site)
        if self.journal is not None:
            self.journal.action(site, lifted.cause, "lift_hold",
                                f"by {by}: re-admitted at its next fresh affirming verdict")
        self._changed()
        return lifted

    def restore(self, data: Any) -> list[str]:
        """Exclusions kept before a restart: the sites stay excluded until fresh evidence."""
        sites = self.readmissions.restore(data)
        for site, exclusion in self.readmissions.excluded().items():
            with self._lock:
                self._acted.add((site, Cause(exclusion.cause)))
            if self.trust is not None:
                self.trust.exclude(site, f"{exclusion.cause} (kept across a restart): "
                                         f"{exclusion.detail}")
        return sites

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
