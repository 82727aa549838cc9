"""The per-client token bucket, on an injected clock."""

from __future__ import annotations

import pytest

from ccattest.console.ratelimit import RateLimiter, retry_after
from ccattest.errors import ConfigError


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Ticker()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token comes every half second
    assert limiter.take("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    clock.now += 3600  # a long pause refills to the burst, never beyond
    assert [limiter.take("a") for _ in range(4)][-1] > 0


def test_a_clock_stepping_back_drains_nothing() -> None:
    clock = Ticker()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.take("a") == 0.0
    clock.now -= 100
    assert limiter.take("a") == pytest.approx(1.0)
    clock.now += 1
    assert limiter.take("a") == 0.0


def test_the_clients_tracked_are_bounded_least_recent_first() -> None:
    clock = Ticker()
    limiter = RateLimiter(rate=0.001, burst=1, max_clients=2, clock=clock)
    assert limiter.take("a") == 0.0 and limiter.take("b") == 0.0
    assert limiter.take("a") > 0  # seen again: now the most recent
    assert limiter.take("c") == 0.0  # evicts b, the least recently seen
    assert len(limiter) == 2
    assert limiter.take("a") > 0  # a was kept, still empty
    assert limiter.take("b") == 0.0  # b was forgotten: a full bucket again


@pytest.mark.parametrize("options", [{"rate": 0}, {"rate": float("inf")}, {"rate": "1"},
                                     {"burst": 0}, {"burst": True}, {"max_clients": 1.5}])
def test_settings_are_checked(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="rate limit"):
        RateLimiter(**options)  # type: ignore[arg-type]


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after(0.01) == "1" and retry_after(1.0) == "1" and retry_after(2.2) == "3"
