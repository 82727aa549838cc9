"""What happens when a CC-enabled site fails: configured per cause, applied once.

Honest sites keep running unless the configured action is `shutdown`: the default
excludes only the failing site.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

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


class ActionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on_rejected: Action = Action.EXCLUDE_SITE
    on_unreachable: Action = Action.EXCLUDE_SITE
    unreachable_grace_seconds: float = Field(default=60.0, ge=0)


class Effects(Protocol):
    """How the host system carries out decisions (NVFlare adapter, tests, simulator)."""

    def alert(self, site: str, cause: Cause, detail: str) -> None: ...

    def exclude_site(self, site: str, detail: str) -> None: ...

    def stop_jobs(self, site: str, detail: str) -> None: ...

    def shutdown(self, site: str, detail: str) -> None: ...


class FailureHandler:
    """Turns failures into actions; unreachable peers get a grace period before acting."""

    def __init__(self, config: ActionConfig, effects: Effects, *,
                 journal: Journal | None = None) -> None:
        self.config = config
        self.effects = effects
        self.journal = journal  # actions are recorded once, when first applied
        self._lock = threading.Lock()
        self._unreachable_since: dict[str, datetime] = {}
        self._acted: set[tuple[str, Cause]] = set()

    def rejected(self, site: str, detail: str) -> Action:
        self.reachable(site)
        return self._act(site, Cause.REJECTED, self.config.on_rejected, detail)

    def unreachable(self, site: str, detail: str, at: datetime) -> Action | None:
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
        if not first and action is not Action.ALERT:
            return action  # already applied; repeating a shutdown or exclusion helps nobody
        if first and self.journal is not None:
            self.journal.action(site, cause.value, action.value, detail)
            if action is Action.EXCLUDE_SITE:
                self.journal.exclusion(site, f"{cause.value}: {detail}")
        if action is Action.EXCLUDE_SITE:
            self.effects.exclude_site(site, detail)
        elif action is Action.STOP_JOBS:
            self.effects.stop_jobs(site, detail)
        elif action is Action.SHUTDOWN:
            self.effects.shutdown(site, detail)
        return action
