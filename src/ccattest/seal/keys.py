"""A site's attested sealing key: an HPKE (RFC 9180) key pair made in the process at start,
never written anywhere, its public half bound into every evidence the site produces.

Two suites (both HKDF-SHA256 and AES-256-GCM; they differ in the KEM):

- `mlkem768-x25519` (the default): the post-quantum hybrid KEM. Model weights stay valuable
  for years, so a recording of today's traffic must not open once a quantum computer
  exists ("harvest now, decrypt later"); the hybrid stays as strong as X25519 should
  ML-KEM fall. It costs 1,216 bytes of public key and 1,120 of encapsulation per payload,
  and well under a millisecond: nothing beside a model.
- `x25519`: classical only, for peers that cannot do the hybrid.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ..errors import MalformedEvidence

MLKEM768_PUBLIC_BYTES = 1184
X25519_PUBLIC_BYTES = 32


class SuiteName(StrEnum):
    MLKEM768_X25519 = "mlkem768-x25519"
    X25519 = "x25519"


DEFAULT_SUITE = SuiteName.MLKEM768_X25519
_KEMS = {SuiteName.MLKEM768_X25519: hpke.KEM.MLKEM768_X25519, SuiteName.X25519: hpke.KEM.X25519}
SUITE_IDS = {SuiteName.MLKEM768_X25519: 1, SuiteName.X25519: 2}  # on the wire (envelope.py)


def hpke_suite(name: SuiteName) -> hpke.Suite:
    return hpke.Suite(_KEMS[name], hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@dataclass(frozen=True)
class SealingPublicKey:
    """A peer's public key as it travels: the suite and the raw bytes (for the hybrid, the
    ML-KEM-768 key followed by the X25519 key)."""

    suite: SuiteName
    raw: bytes

    def __post_init__(self) -> None:
        size = {SuiteName.MLKEM768_X25519: MLKEM768_PUBLIC_BYTES + X25519_PUBLIC_BYTES,
                SuiteName.X25519: X25519_PUBLIC_BYTES}[self.suite]
        if len(self.raw) != size:
            raise MalformedEvidence(f"a {self.suite} sealing key has the wrong length",
                                    expected=f"{size} bytes", found=f"{len(self.raw)} bytes")

    @property
    def key_id(self) -> str:
        """What evidence binds and a sealed payload names: SHA-256 over suite and key."""
        return hashlib.sha256(self.suite.encode() + b"\0" + self.raw).hexdigest()

    def binding(self) -> str:
        """The text added to the binding context of `bind()`, so a hardware report's
        report_data commits to this key."""
        return f"seal:{self.suite}:{self.key_id}"

    def to_wire(self) -> dict[str, str]:
        return {"suite": self.suite.value, "key": self.raw.hex()}

    @classmethod
    def from_wire(cls, data: Any) -> SealingPublicKey:
        if not isinstance(data, dict) or set(data) != {"suite", "key"} or not all(
                isinstance(v, str) for v in data.values()):
            raise MalformedEvidence("a sealing key is malformed",
                                    expected='{"suite": NAME, "key": HEX}')
        if len(data["key"]) > 2 * (MLKEM768_PUBLIC_BYTES + X25519_PUBLIC_BYTES):
            raise MalformedEvidence("a sealing key is too long")
        try:
            raw = bytes.fromhex(data["key"])
        except ValueError:
            raise MalformedEvidence("a sealing key is not hex") from None
        try:
            suite = SuiteName(data["suite"])
        except ValueError:
            raise MalformedEvidence("a sealing key names an unknown suite",
                                    found=data["suite"][:40]) from None
        return cls(suite, raw)

    def hpke_key(self) -> Any:
        try:
            if self.suite is SuiteName.X25519:
                return X25519PublicKey.from_public_bytes(self.raw)
            return hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(self.raw[:MLKEM768_PUBLIC_BYTES]),
                X25519PublicKey.from_public_bytes(self.raw[MLKEM768_PUBLIC_BYTES:]))
        except ValueError as exc:
            raise MalformedEvidence("a sealing key does not decode", found=str(exc)) from None


@dataclass(frozen=True)
class SealingKeyPair:
    """Lives in memory only (no serialisation on purpose): a restart makes a new one."""

    public: SealingPublicKey
    created_at: datetime
    _private: Any = field(repr=False, compare=False)

    @classmethod
    def generate(cls, suite: SuiteName, at: datetime) -> SealingKeyPair:
        x25519 = X25519PrivateKey.generate()
        x_raw = x25519.public_key().public_bytes_raw()
        if suite is SuiteName.X25519:
            return cls(SealingPublicKey(suite, x_raw), at, x25519)
        kem = mlkem.MLKEM768PrivateKey.generate()
        raw = kem.public_key().public_bytes_raw() + x_raw
        return cls(SealingPublicKey(suite, raw), at, hpke.MLKEM768X25519PrivateKey(kem, x25519))

    def hpke_private(self) -> Any:
        return self._private


class SealingKeys:
    """A site's current key pair, and the one before it for a grace period after a
    rotation (payloads sealed to it may still be in flight). Thread-safe."""

    def __init__(self, suite: SuiteName, at: datetime, *, rotate: timedelta | None = None,
                 grace: timedelta = timedelta(minutes=5)) -> None:
        self.suite = suite
        self.rotate_every = rotate
        self.grace = grace
        self._lock = threading.Lock()
        self._current = SealingKeyPair.generate(suite, at)
        self._previous: SealingKeyPair | None = None
        self._rotated_at: datetime | None = None

    def current(self, at: datetime) -> SealingKeyPair:
        """The key to bind now; rotated first when its interval has passed."""
        with self._lock:
            if self.rotate_every is not None and at - self._current.created_at >= \
                    self.rotate_every:
                self._previous, self._rotated_at = self._current, at
                self._current = SealingKeyPair.generate(self.suite, at)
            return self._current

    def openers(self, at: datetime) -> dict[str, SealingKeyPair]:
        """The pairs that may open a payload now, by key id."""
        with self._lock:
            pairs = {self._current.public.key_id: self._current}
            if self._previous is not None and self._rotated_at is not None:
                if at - self._rotated_at < self.grace:
                    pairs[self._previous.public.key_id] = self._previous
                else:
                    self._previous = None  # dropped: its payloads no longer open
            return pairs
