"""Verify, then appraise: the one path from evidence to an AttestationResult.

Verification failures become results (never affirming) rather than exceptions, so that a
caller judging many peers handles one bad peer like any other outcome.
"""

from __future__ import annotations

from datetime import datetime

from .errors import MalformedEvidence, VerificationFailed
from .evidence import Evidence
from .platforms.base import Verifier
from .policy import Policy, appraise, appraise_failure
from .result import AttestationResult
from .timeutil import require_aware


def verify_and_appraise(evidence: Evidence, verifier: Verifier, policy: Policy, *,
                        report_data: bytes, at: datetime) -> AttestationResult:
    at = require_aware(at, "verification time")
    try:
        verified = verifier.verify(evidence, report_data=report_data, at=at)
    except (MalformedEvidence, VerificationFailed) as error:
        return appraise_failure(evidence.platform, error, at, policy=policy,
                                attester=evidence.attester)
    return appraise(policy, verified, at)
