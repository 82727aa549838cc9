"""Freshness: single-use challenges, replay caches and timestamp windows.

A verifier proves evidence is fresh in one of two ways: it issued the nonce the evidence binds
(``ChallengeIssuer``: each nonce is accepted once, for the context it was issued for, before it
expires), or the evidence carries its own timestamp (``check_window``) and a ``ReplayCache``
remembers what was already accepted for as long as that timestamp would still pass.

Time is always a parameter. Nothing here reads the clock except the ``clock`` callable injected
at construction, and every method that depends on time takes ``at=`` to override it, so tests
and callers that already hold a verification time get exactly that time. Datetimes must be
timezone-aware; they are normalised to UTC.

Both classes keep their entries in insertion order. Every entry of one structure has the same
ttl, so with a clock that does not go backwards insertion order is expiry order and expired
entries are purged from the front in O(1) amortised time. If the time passed in does go
backwards, expiry is still checked per entry on every lookup: out-of-order times can only delay
purging (and so fill a structure sooner), never accept something stale.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from ccattest.errors import ConfigError, StaleEvidence
from ccattest.evidence import Challenge
from ccattest.timeutil import require_aware, utcnow

Clock = Callable[[], datetime]

_UNKNOWN_CHALLENGE = "unknown or already used challenge"


def _positive_ttl(ttl: object, name: str = "ttl") -> timedelta:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise ConfigError(f"{name} must be a positive timedelta", expected="> 0", found=ttl)
    return ttl


def _int_in_range(value: object, name: str, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"an int in {low}..{high}" if high is not None else f"an int >= {low}"
        raise ConfigError(f"{name} out of range", expected=bounds, found=value)
    return value


def _resolve_clock(clock: Clock) -> Clock:
    if not callable(clock):
        raise ConfigError("clock must be callable", expected="() -> datetime", found=clock)
    return clock


class ChallengeIssuer:
    """Issues random nonces and accepts each one once, for its context, before it expires.

    Outstanding challenges are bounded by ``max_outstanding``: when full, expired challenges are
    purged and then the oldest outstanding one is dropped. Dropping only makes that challenge
    unredeemable (the attester must ask again), so a flood of requests can cost liveness but
    never lets anything through; ``dropped`` counts how often it happened.
    """

    def __init__(
        self,
        ttl: timedelta = timedelta(minutes=2),
        max_outstanding: int = 10_000,
        nonce_size: int = 32,
        clock: Clock = utcnow,
        verifier_id: str = "",
    ) -> None:
        self.verifier_id = verifier_id
        self.ttl = _positive_ttl(ttl)
        self.max_outstanding = _int_in_range(max_outstanding, "max_outstanding", 1)
        self.nonce_size = _int_in_range(nonce_size, "nonce_size", 16, 64)
        self._clock = _resolve_clock(clock)
        self._lock = threading.Lock()
        # (context, nonce) -> challenge, in issue order (= expiry order for a forward clock).
        self._outstanding: OrderedDict[tuple[str, bytes], Challenge] = OrderedDict()
        self.dropped = 0

    def _now(self, at: datetime | None) -> datetime:
        return require_aware(self._clock() if at is None else at, "clock()" if at is None else "at")

    def _purge_locked(self, now: datetime) -> int:
        removed = 0
        entries = self._outstanding
        while entries:
            first = next(iter(entries.values()))
            if first.expires_at > now:
                break
            entries.popitem(last=False)
            removed += 1
        return removed

    def issue(self, context: str = "", at: datetime | None = None) -> Challenge:
        """Create a fresh challenge for ``context`` (e.g. ``"register:site-1"``)."""
        if not isinstance(context, str):
            raise ConfigError("context must be a str", found=type(context).__name__)
        with self._lock:
            now = self._now(at)
            nonce = secrets.token_bytes(self.nonce_size)
            # A repeat is astronomically unlikely, but uniqueness is what makes redeem-once
            # hold, so it is enforced rather than assumed.
            while (context, nonce) in self._outstanding:
                nonce = secrets.token_bytes(self.nonce_size)
            self._purge_locked(now)
            if len(self._outstanding) >= self.max_outstanding:
                self._outstanding.popitem(last=False)
                self.dropped += 1
            challenge = Challenge(
                nonce=nonce, issued_at=now, expires_at=now + self.ttl, context=context,
                verifier_id=self.verifier_id,
            )
            self._outstanding[(context, nonce)] = challenge
            return challenge

    def redeem(
        self, nonce: bytes, context: str = "", at: datetime | None = None
    ) -> Challenge:
        """Consume the challenge ``nonce`` for ``context``; raise ``StaleEvidence`` otherwise.

        A nonce issued for another context is reported exactly like an unknown one, so a caller
        cannot probe which contexts exist. An expired challenge is consumed too.
        """
        if not isinstance(nonce, bytes | bytearray | memoryview):
            raise TypeError(f"nonce must be bytes, not {type(nonce).__name__}")
        if not isinstance(context, str):
            raise TypeError(f"context must be str, not {type(context).__name__}")
        key = (context, bytes(nonce))
        with self._lock:
            now = self._now(at)
            # Look up before purging so an expired challenge gets the more useful message.
            challenge = self._outstanding.pop(key, None)
            self._purge_locked(now)
        if challenge is None:
            raise StaleEvidence(
                _UNKNOWN_CHALLENGE,
                hint="challenges are single-use and expire; request a new one",
            )
        if now >= challenge.expires_at:
            raise StaleEvidence(
                f"challenge expired at {challenge.expires_at.isoformat()}, "
                f"evidence checked at {now.isoformat()}",
                hint="request a new challenge and attest again",
            )
        return challenge

    def outstanding(self, at: datetime | None = None) -> int:
        """Number of challenges that could still be redeemed (expired ones are purged first)."""
        with self._lock:
            self._purge_locked(self._now(at))
            return len(self._outstanding)

    def purge(self, at: datetime | None = None) -> int:
        """Forget expired challenges now; returns how many were removed."""
        with self._lock:
            return self._purge_locked(self._now(at))


def _digest(key: object) -> bytes:
    if isinstance(key, str):
        data = key.encode("utf-8")
    elif isinstance(key, bytes | bytearray | memoryview):
        data = bytes(key)
    else:
        raise TypeError(f"replay cache keys must be bytes or str, not {type(key).__name__}")
    return hashlib.sha256(data).digest()


class ReplayCache:
    """Remembers accepted keys (evidence digests, token ids, transcripts) for ``ttl``.

    ``ttl`` should be at least as long as the accepted item would itself still pass its
    freshness check, so a replay cannot outlive the cache's memory of it. Keys are stored as
    SHA-256 digests, so each entry costs the same whatever the caller passes. When the cache
    is full of unexpired entries it refuses new keys instead of evicting: forgetting an
    accepted key would reopen its replay window.
    """

    def __init__(
        self,
        ttl: timedelta,
        max_entries: int = 100_000,
        clock: Clock = utcnow,
        *,
        what: str = "evidence",
    ) -> None:
        self.ttl = _positive_ttl(ttl)
        self.max_entries = _int_in_range(max_entries, "max_entries", 1)
        self._clock = _resolve_clock(clock)
        self.what = what
        self._lock = threading.Lock()
        # digest -> accepted_at, in acceptance order (= expiry order for a forward clock).
        self._entries: OrderedDict[bytes, datetime] = OrderedDict()

    def _now(self, at: datetime | None) -> datetime:
        return require_aware(self._clock() if at is None else at, "clock()" if at is None else "at")

    def _purge_locked(self, now: datetime) -> int:
        removed = 0
        entries = self._entries
        cutoff = now - self.ttl  # accepted at or before cutoff means expired
        while entries:
            accepted_at = next(iter(entries.values()))
            if accepted_at > cutoff:
                break
            entries.popitem(last=False)
            removed += 1
        return removed

    def check_and_add(self, key: bytes | str, at: datetime | None = None) -> None:
        """Record ``key`` as accepted; raise ``StaleEvidence`` if it is a replay or no room."""
        digest = _digest(key)
        with self._lock:
            now = self._now(at)
            accepted_at = self._entries.get(digest)
            if accepted_at is not None:
                if now < accepted_at + self.ttl:
                    raise StaleEvidence(
                        f"replayed: this {self.what} was already accepted at "
                        f"{accepted_at.isoformat()}",
                        hint="each item is accepted once; produce fresh evidence",
                    )
                del self._entries[digest]
            self._purge_locked(now)
            if len(self._entries) >= self.max_entries:
                oldest = next(iter(self._entries.values()))
                raise StaleEvidence(
                    f"replay cache is full ({len(self._entries)} unexpired entries); refusing "
                    f"this {self.what} rather than forgetting an accepted one (fail closed)",
                    hint=(
                        "raise max_entries or shorten ttl; the oldest entry expires at "
                        f"{(oldest + self.ttl).isoformat()}"
                    ),
                )
            self._entries[digest] = now

    def purge(self, at: datetime | None = None) -> int:
        """Forget expired keys now; returns how many were removed."""
        with self._lock:
            return self._purge_locked(self._now(at))

    def __len__(self) -> int:
        """Entries held, which may include expired ones not yet purged; never > max_entries."""
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is remembered and unexpired at the clock's current time."""
        digest = _digest(key)
        with self._lock:
            now = self._now(None)
            accepted_at = self._entries.get(digest)
            return accepted_at is not None and now < accepted_at + self.ttl


def check_window(
    issued_at: datetime,
    *,
    at: datetime,
    max_age: timedelta,
    max_skew: timedelta = timedelta(seconds=30),
) -> None:
    """Check a self-timestamped item: not from the future (beyond ``max_skew``), not too old.

    Pair it with a ``ReplayCache`` whose ttl is at least ``max_age + max_skew`` so that
    anything this window still accepts is also still remembered.
    """
    issued = require_aware(issued_at, "issued_at")
    now = require_aware(at, "at")
    _positive_ttl(max_age, "max_age")
    if not isinstance(max_skew, timedelta) or max_skew < timedelta(0):
        raise ConfigError(
            "max_skew must be a non-negative timedelta", expected=">= 0", found=max_skew
        )
    if issued > now + max_skew:
        raise StaleEvidence(
            f"evidence is from the future: issued at {issued.isoformat()}, "
            f"checked at {now.isoformat()}",
            expected=f"at most {max_skew} of clock skew",
            hint="check the attester's and verifier's clocks",
        )
    if now - issued > max_age:
        raise StaleEvidence(
            f"evidence is too old: issued at {issued.isoformat()}, checked at {now.isoformat()}",
            expected=f"age at most {max_age}",
            found=f"age {now - issued}",
            hint="request fresh evidence",
        )


__all__ = ["ChallengeIssuer", "ReplayCache", "check_window"]
