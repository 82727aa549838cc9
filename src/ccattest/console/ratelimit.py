"""A token bucket per client, for the console's POST routes.

Each client (an IP address from the ASGI scope, never a header the client writes) holds a
bucket of `burst` tokens that refills at `rate` tokens a second; a request takes one. The
buckets are kept in LRU order and bounded by `max_clients`: forgetting the least recently
seen client only gives it a full bucket again, so memory stays bounded whatever the number
of addresses, and a client that keeps asking stays tracked.

Defaults: an attestation is two requests (challenge, then evidence), and a site attests at
its round interval (60 s by default) or at registration, so 1 request a second sustained
(30 attestations a minute) is far more than an honest attester needs while bounding what
one client can make this site verify. A burst of 10 lets a few workloads behind one address
(a NAT, a restart) attest at once. 4096 clients cover any federation with room to spare.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError

DEFAULT_RATE = 1.0  # tokens a second, per client
DEFAULT_BURST = 10  # the bucket's size
DEFAULT_MAX_CLIENTS = 4096  # buckets kept; the least recently seen go first


@dataclass
class _Bucket:
    tokens: float
    at: float  # when `tokens` was last brought up to date


class RateLimiter:
    """`take(client)` is 0.0 when the request may go on, else the seconds to wait."""

    def __init__(self, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST,
                 max_clients: int = DEFAULT_MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ConfigError("rate limit: rate must be a positive number",
                              expected="tokens a second > 0", found=rate)
        for name, value in (("burst", burst), ("max_clients", max_clients)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"rate limit: {name} must be a positive int",
                                  expected=">= 1", found=value)
        self.rate, self.burst, self.max_clients = float(rate), burst, max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> float:
        with self._lock:
            now = self._clock()
            bucket = self._buckets.pop(client, None)
            if bucket is None:
                bucket = _Bucket(float(self.burst), now)
                while len(self._buckets) >= self.max_clients:
                    self._buckets.popitem(last=False)
            # max(): a clock that steps back must not drain a bucket.
            elapsed = max(now - bucket.at, 0.0)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.at = now
            self._buckets[client] = bucket  # most recently seen last
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)


def retry_after(wait: float) -> str:
    """The Retry-After header: whole seconds, never 0 for a refused request."""
    return str(max(1, math.ceil(wait)))
