"""Run a task every interval (with jitter) on a daemon thread; every wait is bounded."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicRunner:
    def __init__(self, task: Callable[[], object], *, interval: float, jitter: float = 0.1,
                 first_delay: float | None = None, name: str = "ccattest-rounds") -> None:
        if interval <= 0 or not 0 <= jitter < 1:
            raise ValueError("interval must be > 0 and jitter in [0, 1)")
        self.task = task
        self.interval = interval
        self.jitter = jitter
        self.first_delay = interval if first_delay is None else first_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _next_wait(self) -> float:
        # Jitter keeps many federations (or restarted servers) from attesting in lockstep.
        spread = self.interval * self.jitter
        return self.interval + random.uniform(-spread, spread)  # noqa: S311 - not security

    def _run(self) -> None:
        wait = self.first_delay
        while not self._stop.wait(wait):
            try:
                self.task()
            except Exception:  # a failed round must never end the schedule
                log.exception("periodic attestation task failed")
            wait = self._next_wait()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
