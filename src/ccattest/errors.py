"""The error taxonomy: every failure a user can meet is one of these.

Callers act on the kind, humans read the message. Messages say what was expected, what was
found and, where we know it, how to fix it.
"""

from __future__ import annotations


class CCAttestError(Exception):
    """Base of every error ccattest raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        expected: object | None = None,
        found: object | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.expected is not None:
            parts.append(f"expected {self.expected}")
        if self.found is not None:
            parts.append(f"found {self.found}")
        text = "; ".join(parts)
        if self.hint:
            text += f" ({self.hint})"
        return text


class MalformedEvidence(CCAttestError):
    """Bytes that do not parse: truncated, oversized, wrong version, bad lengths."""


class VerificationFailed(CCAttestError):
    """Integrity or authenticity did not hold: signature, chain, revocation, nonce."""


class StaleEvidence(VerificationFailed):
    """Freshness did not hold: unknown, expired or replayed challenge."""


class PolicyRejected(CCAttestError):
    """Verified claims did not satisfy the appraisal policy."""


class CollateralUnavailable(CCAttestError):
    """Collateral is needed but offline and not cached, or the network failed."""


class PlatformUnavailable(CCAttestError):
    """No such device, CC mode off, or a missing optional dependency."""


class ConfigError(CCAttestError):
    """A configuration, policy or key file is missing or invalid."""


__all__ = [
    "CCAttestError",
    "CollateralUnavailable",
    "ConfigError",
    "MalformedEvidence",
    "PlatformUnavailable",
    "PolicyRejected",
    "StaleEvidence",
    "VerificationFailed",
]
