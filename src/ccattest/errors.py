"""The error taxonomy: every failure a user can meet is one of these.

Callers act on the kind, humans read the message. Messages say what was expected, what was
found and, where we know it, how to fix it.
"""

from __future__ import annotations

import re


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


# The check a verifier's failure speaks to, for people reading a verdict: the first pattern
# that matches the message names it. Kinds decide first (a stale nonce is freshness).
_CHECKS = (
    ("binding", re.compile(r"nonce|report_data|binding|answers another|replayed", re.I)),
    ("revocation", re.compile(r"revoked", re.I)),
    ("collateral", re.compile(r"\bCRL\b|TCB Info|QE Identity|OCSP|collateral|\bRIM", re.I)),
    ("certificate chain", re.compile(r"certificate|chain|\bVCEK|\bVLEK|\bASK\b|\bASVK|"
                                     r"\bARK\b|\bPCK\b|\broot\b|issuer|hwID|\bJWKS?\b",
                                     re.I)),
    ("signature", re.compile(r"signature|signed|sign\b", re.I)),
    ("validity", re.compile(r"expired|not valid|not yet valid|\bexp\b|\bnbf\b|\biat\b",
                            re.I)),
)
_EXPIRED = re.compile(r"expired|not current|not valid at|stale|nextUpdate", re.I)
EXPIRED_COLLATERAL_HINT = ("fetch fresh collateral (`ccattest collateral fetch`) or verify as "
                           "of an earlier time with `--at`")


def failed_check(error: CCAttestError) -> str:
    """What failed, in a word a reader knows ("collateral", "signature"), never a class name."""
    if isinstance(error, MalformedEvidence):
        return "format"
    if isinstance(error, StaleEvidence):
        return "freshness"
    if isinstance(error, CollateralUnavailable):
        return "collateral"
    if isinstance(error, ConfigError | PlatformUnavailable):
        return "input"
    for check, pattern in _CHECKS:
        if pattern.search(error.message):
            return check
    return "verification"


def hint_for(error: CCAttestError) -> str | None:
    """What to do: for expired collateral always the same two ways out (the error's own hint
    tends to list service URLs); otherwise the error's own hint, if any."""
    if failed_check(error) in ("collateral", "certificate chain", "validity") and (
            _EXPIRED.search(error.message) or _EXPIRED.search(str(error.found or ""))):
        return EXPIRED_COLLATERAL_HINT
    return error.hint or None


__all__ = [
    "CCAttestError",
    "CollateralUnavailable",
    "ConfigError",
    "MalformedEvidence",
    "PlatformUnavailable",
    "PolicyRejected",
    "StaleEvidence",
    "VerificationFailed",
    "failed_check",
    "hint_for",
]
