"""How mesh messages move: a request/response call to a named site, with a timeout.

The NVFlare adapter implements it over cell channels; `LocalTransport` calls handlers
in-process (tests, the simulated federation in benchmarks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import CCAttestError

Handler = Callable[[str, str, dict[str, Any]], dict[str, Any]]  # (sender, topic, body)


class PeerUnreachable(CCAttestError):
    """The peer did not answer: dead, never registered, or slower than the deadline."""


class Transport(Protocol):
    def request(self, target: str, topic: str, body: dict[str, Any], *, timeout: float
                ) -> dict[str, Any]: ...


class LocalTransport:
    """In-process transport for one sender; `delay` simulates per-call latency."""

    def __init__(self, sender: str, handlers: dict[str, Handler], *, delay: float = 0.0,
                 counter: MessageCounter | None = None) -> None:
        self.sender = sender
        self.handlers = handlers
        self.delay = delay
        self.counter = counter
        self.down: set[str] = set()

    def request(self, target: str, topic: str, body: dict[str, Any], *, timeout: float
                ) -> dict[str, Any]:
        handler = self.handlers.get(target)
        if handler is None or target in self.down:
            raise PeerUnreachable(f"{target} is unreachable", found=topic)
        if self.counter is not None:
            self.counter.add()
        if self.delay:
            time.sleep(self.delay)
        return handler(self.sender, topic, body)


class MessageCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.count += n
