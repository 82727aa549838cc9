"""Turn verified claims, or a verification failure, into an AttestationResult."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..errors import CCAttestError, MalformedEvidence, failed_check, hint_for
from ..platforms.base import VerifiedClaims
from ..result import AttestationResult, Reason, TrustClaim, TrustVector, Value
from ..text import human, one_of
from ..timeutil import require_aware
from .azure import appraise_maa, appraise_vtpm
from .base import Appraisal
from .ita import appraise_ita
from .model import Policy
from .nvgpu import appraise_nras, appraise_nvgpu
from .snp import appraise_snp
from .software import appraise_software
from .tdx import appraise_tdx

Appraiser = Callable[[Any, Mapping[str, Any]], Appraisal]
APPRAISERS: dict[str, Appraiser] = {
    "software": appraise_software, "snp": appraise_snp, "tdx": appraise_tdx, "ita": appraise_ita,
    "nvgpu": appraise_nvgpu, "nvgpu-nras": appraise_nras, "maa": appraise_maa,
    # An Azure CVM's hardware report is judged by its TEE's own section.
    "azure-snp": lambda section, claims: appraise_snp(section, claims["snp"]),
    "azure-tdx": lambda section, claims: _azure_tdx(section, claims["tdx"]),
}

def _azure_tdx(section: Any, tdx: Mapping[str, Any]) -> Appraisal:
    if tdx.get("tcb_status") is None:  # verified with --tdx-chain-only: no TCB evaluated
        appraisal = Appraisal()
        appraisal.rule("tdx_tcb", False, "the TD's TCB status was not evaluated (no collateral)",
                       claim=TrustClaim.HARDWARE, ok=2, fail=96,
                       expected="a TCB status from Intel's collateral", found="none")
        return appraisal
    return appraise_tdx(section, tdx)


# Claims a verifier's failure speaks to: the evidence says nothing trustworthy about them.
_EVIDENCE_CLAIMS = (TrustClaim.INSTANCE_IDENTITY, TrustClaim.CONFIGURATION,
                    TrustClaim.EXECUTABLES, TrustClaim.HARDWARE)


def appraise(policy: Policy, verified: VerifiedClaims, at: datetime) -> AttestationResult:
    at = require_aware(at, "appraisal time")
    appraiser = APPRAISERS.get(verified.platform)
    if appraiser is None:
        appraisal = Appraisal()
        appraisal.rule("platform_known", False, "no appraisal rules for this platform",
                       claim=TrustClaim.HARDWARE, ok=2, fail=97,
                       expected=one_of(sorted(APPRAISERS)), found=verified.platform)
    else:
        appraisal = appraiser(policy.section(verified.platform), verified.claims)
    if verified.platform in ("azure-snp", "azure-tdx"):  # and the vTPM, by the azure section
        appraisal = appraisal.extend(appraise_vtpm(policy.azure, verified.claims))
    expires_at, expiry_source = _expiry(policy, verified, at)
    return AttestationResult(
        platform=verified.platform,
        trust_vector=appraisal.vector,
        verified=True,
        issued_at=at,
        expires_at=expires_at,
        claims=dict(verified.claims),
        reasons=(*verified.checks, *appraisal.reasons),
        attester=verified.attester,
        policy_id=policy.id,
        collateral=dict(verified.collateral),
        expiry_source=expiry_source,
    )


def _expiry(policy: Policy, verified: VerifiedClaims, at: datetime) -> tuple[datetime, str]:
    """The result lives for the policy's lifetime, but no longer than what it rested on: a
    verdict must not outlive its CRL, TCB Info, certificates or token.

    Collateral already past its end at `at` was accepted only because the verifier was told
    to (e.g. TDX expired_collateral: warn), and the verdict carries that as a failed check and
    a warning; a bound before `at` would give a result born expired, which no one can hand
    on, so the lifetime applies and the source says the collateral had expired."""
    lifetime = policy.common.result_lifetime_seconds
    expires_at = at + timedelta(seconds=lifetime)
    source = f"the policy's {lifetime} s result lifetime"
    bound, what = verified.valid_until, verified.valid_until_source or "collateral"
    if bound is None:
        return expires_at, source
    bound = require_aware(bound, "collateral validity")
    if bound <= at:
        return expires_at, f"{source}; {what} had already expired at {bound.isoformat()}"
    if bound < expires_at:
        return bound, what
    return expires_at, source


def appraise_failure(platform: str, error: CCAttestError, at: datetime, *,
                     policy: Policy | None = None, attester: str | None = None,
                     ) -> AttestationResult:
    """The result for evidence that did not verify: never affirming, already expired."""
    at = require_aware(at, "appraisal time")
    # Unparseable evidence is "unknown elements" (tier none); a failed check is 99.
    value = Value.UNKNOWN_ELEMENTS if isinstance(error, MalformedEvidence) else Value.CRYPTO_FAILED
    vector = TrustVector({claim: int(value) for claim in _EVIDENCE_CLAIMS})
    # Named after what failed ("collateral", "signature"), never the exception class.
    reason = Reason(failed_check(error), False, error.message,
                    expected=None if error.expected is None else human(error.expected),
                    found=None if error.found is None else human(error.found),
                    hint=hint_for(error))
    return AttestationResult(
        platform=platform, trust_vector=vector, verified=False, issued_at=at, expires_at=at,
        reasons=(reason,), attester=attester, policy_id=policy.id if policy else None,
    )


def check_required_platforms(policy: Policy, results: Iterable[AttestationResult]) -> list[Reason]:
    """One reason per platform the policy requires a site to present."""
    by_platform = {result.platform: result for result in results}
    reasons = []
    for platform in policy.common.required_platforms:
        result = by_platform.get(platform)
        passed = result is not None and result.affirming
        found = "absent" if result is None else result.status.value
        reasons.append(Reason(f"required:{platform}", passed,
                              f"required platform {platform}: {found}",
                              expected="affirming", found=found))
    return reasons
