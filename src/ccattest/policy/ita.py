"""Intel Trust Authority tokens are appraised with the tdx section: Intel verified the quote
and its collateral; the token carries the TD's measurements and one TCB status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..result import TrustClaim
from .base import Appraisal
from .tdx import TdxPolicy, appraise_tdx

_TDX_CLAIMS = ("tcb_status", "advisory_ids", "tee_tcb_svn", "mr_seam", "mr_td", "mr_config_id",
               "mr_owner", "mr_owner_config", "rtmr0", "rtmr1", "rtmr2", "rtmr3",
               "td_attributes", "xfam")


def appraise_ita(section: TdxPolicy | None, claims: Mapping[str, Any]) -> Appraisal:
    if claims.get("attester_type") != "TDX":
        appraisal = Appraisal()
        appraisal.rule("attester_type", False, "only TDX tokens from Intel Trust Authority are "
                       "appraised", claim=TrustClaim.HARDWARE, ok=2, fail=97,
                       expected="TDX", found=claims.get("attester_type"))
        return appraisal
    missing = [name for name in _TDX_CLAIMS if claims.get(name) is None]
    if missing:
        appraisal = Appraisal()
        appraisal.rule("tdx_claims", False, "the token lacks TDX claims the policy judges",
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                       expected=", ".join(_TDX_CLAIMS), found=f"missing {', '.join(missing)}")
        return appraisal
    # ITA reports one status that already covers the QE, and evaluates with current
    # collateral when it issues the token.
    tdx_claims = {**claims, "qe_tcb_status": claims["tcb_status"], "collateral_expired": False,
                  "fmspc": claims.get("fmspc") or "not reported by ITA"}
    return appraise_tdx(section, tdx_claims)
