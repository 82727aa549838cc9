"""Attestation results: a status tier, an AR4SI trust vector, claims and reasons.

The vector follows IETF RATS AR4SI (draft-ietf-rats-ar4si) and EAR: eight trustworthiness
claims, each a signed 8-bit value whose range gives its tier. The result's status is the
worst tier in its vector, so it can never disagree with the vector it summarises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any


class Tier(StrEnum):
    NONE = "none"
    AFFIRMING = "affirming"
    WARNING = "warning"
    CONTRAINDICATED = "contraindicated"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Tier.NONE: 0, Tier.AFFIRMING: 1, Tier.WARNING: 2, Tier.CONTRAINDICATED: 3}


class TrustClaim(StrEnum):
    INSTANCE_IDENTITY = "instance-identity"
    CONFIGURATION = "configuration"
    EXECUTABLES = "executables"
    FILE_SYSTEM = "file-system"
    HARDWARE = "hardware"
    RUNTIME_OPAQUE = "runtime-opaque"
    STORAGE_OPAQUE = "storage-opaque"
    SOURCED_DATA = "sourced-data"


class Value(int, Enum):
    """Standard AR4SI values that carry the same meaning for every claim."""

    NO_CLAIM = 0
    UNKNOWN_ELEMENTS = 1
    VERIFIER_MALFUNCTION = -1
    CRYPTO_FAILED = 99


# Standard values per claim beyond the common ones (AR4SI "Specific Claims").
STANDARD_VALUES: Mapping[TrustClaim, frozenset[int]] = {
    TrustClaim.INSTANCE_IDENTITY: frozenset({2, 96, 97}),
    TrustClaim.CONFIGURATION: frozenset({2, 3, 32, 36, 96}),
    TrustClaim.EXECUTABLES: frozenset({2, 3, 32, 33, 96}),
    TrustClaim.FILE_SYSTEM: frozenset({2, 32, 96}),
    TrustClaim.HARDWARE: frozenset({2, 32, 96, 97}),
    TrustClaim.RUNTIME_OPAQUE: frozenset({2, 32, 96}),
    TrustClaim.STORAGE_OPAQUE: frozenset({2, 32, 96}),
    TrustClaim.SOURCED_DATA: frozenset({2, 32, 96}),
}
_COMMON_VALUES = frozenset(int(v) for v in Value)


def tier_of(value: int) -> Tier:
    """The tier of one claim value; raises ValueError outside the signed 8-bit range."""
    if not -128 <= value <= 127:
        raise ValueError(f"trustworthiness value {value} is outside -128..127")
    magnitude = value if value >= 0 else -value - 1  # -2..-32 mirrors 2..31, and so on
    if value in (-1, 0, 1):
        return Tier.NONE
    if magnitude < 32:
        return Tier.AFFIRMING
    if magnitude < 96:
        return Tier.WARNING
    return Tier.CONTRAINDICATED


def is_standard(claim: TrustClaim, value: int) -> bool:
    return value in _COMMON_VALUES or value in STANDARD_VALUES[claim]


def _outranks(new: int, old: int) -> bool:
    """AR4SI assignment order: worse tier first, then standard values before private ones."""
    new_tier, old_tier = tier_of(new), tier_of(old)
    if new_tier.severity != old_tier.severity:
        return new_tier.severity > old_tier.severity
    return new >= 0 > old


@dataclass(frozen=True)
class TrustVector:
    """Eight claims; absent claims are 0 ("no claim")."""

    values: Mapping[TrustClaim, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for claim, value in self.values.items():
            if not isinstance(claim, TrustClaim):
                raise ValueError(f"unknown trustworthiness claim {claim!r}")
            if value >= 0 and not is_standard(claim, value):
                raise ValueError(f"{value} is not a standard value for {claim.value}")
            tier_of(value)

    def get(self, claim: TrustClaim) -> int:
        return self.values.get(claim, 0)

    def with_value(self, claim: TrustClaim, value: int) -> TrustVector:
        """A copy where `claim` holds the worse of its current value and `value`."""
        current = self.values.get(claim)
        if current is not None and not _outranks(value, current):
            return self
        return TrustVector({**self.values, claim: value})

    def merged(self, other: TrustVector) -> TrustVector:
        vector = self
        for claim, value in other.values.items():
            vector = vector.with_value(claim, value)
        return vector

    @property
    def status(self) -> Tier:
        worst = Tier.NONE
        for value in self.values.values():
            tier = tier_of(value)
            if tier.severity > worst.severity:
                worst = tier
        return worst

    def to_dict(self) -> dict[str, int]:
        """EAR `ear.trustworthiness-vector`: only the claims that were made."""
        return {claim.value: value for claim, value in self.values.items() if value != 0}

    @classmethod
    def from_dict(cls, data: Mapping[str, int]) -> TrustVector:
        return cls({TrustClaim(name): int(value) for name, value in data.items()})


@dataclass(frozen=True)
class Reason:
    """One check or rule: what it looked at, whether it held, and what it saw."""

    check: str
    passed: bool
    message: str
    expected: str | None = None
    found: str | None = None
    hint: str | None = None  # what to do about it, where we know

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"check": self.check, "passed": self.passed}
        data["message"] = self.message
        if self.expected is not None:
            data["expected"] = self.expected
        if self.found is not None:
            data["found"] = self.found
        if self.hint is not None:
            data["hint"] = self.hint
        return data


@dataclass(frozen=True)
class AttestationResult:
    """The verdict on one platform's evidence from one attester, under one policy.

    `expires_at` is the earlier of the policy's result lifetime and the end of validity of
    the collateral the verdict rested on; `expiry_source` says which of them set it.
    """

    platform: str
    trust_vector: TrustVector
    verified: bool
    issued_at: datetime
    expires_at: datetime
    claims: Mapping[str, Any] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    attester: str | None = None
    policy_id: str | None = None
    collateral: Mapping[str, Any] = field(default_factory=dict)
    expiry_source: str | None = None

    @property
    def status(self) -> Tier:
        return self.trust_vector.status

    @property
    def affirming(self) -> bool:
        return self.verified and self.status is Tier.AFFIRMING

    def failures(self) -> tuple[Reason, ...]:
        return tuple(reason for reason in self.reasons if not reason.passed)

    def is_fresh(self, at: datetime) -> bool:
        return self.issued_at <= at < self.expires_at

    def to_json_dict(self) -> dict[str, Any]:
        """The `ccattest verify --json` shape (DESIGN.md, "The command line")."""
        return {
            "platform": self.platform,
            "status": self.status.value,
            "verified": self.verified,
            "attester": self.attester,
            "trust_vector": self.trust_vector.to_dict(),
            "claims": dict(self.claims),
            "reasons": [reason.to_dict() for reason in self.reasons],
            "collateral": dict(self.collateral),
            "policy_id": self.policy_id,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "expiry_source": self.expiry_source,
        }
