"""The shape every platform's broken-evidence factory returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import CCAttestError
from ..evidence import Evidence

# Tests pin the time like real vectors do; this one is inside every fixture's validity.
FIXED_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class BrokenCase:
    """Evidence that must fail verification with `error` when checked at `at`."""

    name: str
    evidence: Evidence
    report_data: bytes
    at: datetime
    error: type[CCAttestError]
