"""The tdx section: which Intel TDX guests, on which platforms, a site accepts.

Trust-vector mapping (AR4SI): hardware 2 for a TCB status (platform and QE) the policy
accepts on a genuine Intel chain (the verifier proved it), 32 for OutOfDate within the
policy's grace period or expired collateral the policy only warns about, 96 for statuses,
advisories, TEE TCB SVNs or TDX modules it does not accept; executables 2/96 for MRTD and
RTMRs (33 when the policy names no MRTD); configuration 2/96 for TD attributes (debug),
XFAM, MRCONFIGID, MROWNER and MROWNERCONFIG; runtime-opaque 2 (TDX encrypts and
integrity-protects TD memory).

"NoMatchingTcbLevel" and "Revoked" are not statuses a policy can list: no policy accepts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from ..result import TrustClaim
from ..text import human, one_of
from .base import Appraisal, StrictModel, reference_rule
from .refs import Sha384Hex, hex_digest, read_digest_file

TcbStatus = Literal["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                    "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                    "OutOfDateConfigurationNeeded"]
Hex8 = Annotated[str, hex_digest(8)]
Hex16 = Annotated[str, hex_digest(16)]
RtmrIndex = Annotated[int, Field(ge=0, le=3)]
Bits64 = Annotated[int, Field(ge=0, lt=2**64)]


class TdxPolicy(StrictModel):
    allow: bool = Field(default=True, description="a section present means TDX is accepted")
    accepted_tcb_statuses: list[TcbStatus] = Field(default_factory=lambda: ["UpToDate"])
    accepted_qe_tcb_statuses: list[TcbStatus] = Field(default_factory=lambda: ["UpToDate"])
    out_of_date_grace_days: int | None = Field(
        default=None, ge=0, le=3650,
        description="tolerate OutOfDate (with a warning) this long after its tcbDate")
    forbidden_advisory_ids: list[str] = Field(default_factory=list)
    mrtd: list[Sha384Hex] = Field(default_factory=list)
    mrtd_file: str | None = None
    rtmrs: dict[RtmrIndex, list[Sha384Hex]] = Field(default_factory=dict)
    mr_config_id: list[Sha384Hex] = Field(default_factory=list)
    mr_owner: list[Sha384Hex] = Field(default_factory=list)
    mr_owner_config: list[Sha384Hex] = Field(default_factory=list)
    mr_seam: list[Sha384Hex] = Field(default_factory=list)
    allow_debug: bool = False
    td_attributes_allowed_bits: Bits64 | None = Field(
        default=None, description="bits that may be set; None allows any")
    td_attributes_required_bits: Bits64 = 0
    xfam: list[Hex8] = Field(default_factory=list)
    xfam_forbidden_bits: Bits64 | None = None
    min_tee_tcb_svn: Hex16 | None = Field(
        default=None, description="16 bytes (hex); each byte is a minimum for that component")
    expired_collateral: Literal["reject", "warn"] = "reject"

    def resolve_files(self, base: Path) -> TdxPolicy:
        if self.mrtd_file is None:
            return self
        extra = read_digest_file(base / self.mrtd_file, 48)
        return self.model_copy(update={"mrtd": [*self.mrtd, *extra]})


def appraise_tdx(section: TdxPolicy | None, claims: Mapping[str, Any]) -> Appraisal:
    appraisal = Appraisal()
    allowed = section is not None and section.allow
    appraisal.rule(
        "platform_allowed", allowed,
        "Intel TDX evidence with a genuine Intel chain, accepted by policy" if allowed
        else "policy does not accept Intel TDX",
        claim=TrustClaim.HARDWARE, ok=2, fail=96, expected="tdx section with allow: true",
        found="no tdx section" if section is None else f"tdx.allow: {section.allow}".lower(),
    )
    section = section or TdxPolicy()
    for rule in (_hardware, _executables, _configuration):
        rule(appraisal, section, claims)
    appraisal.rule("memory_encryption", True, "TDX encrypts and integrity-protects TD memory",
                   claim=TrustClaim.RUNTIME_OPAQUE, ok=2, fail=96, expected="Intel TDX guest",
                   found=f"TDX on FMSPC {claims['fmspc']}")
    return appraisal


# --- hardware ----------------------------------------------------------------------------------

def _hardware(appraisal: Appraisal, section: TdxPolicy, claims: Mapping[str, Any]) -> None:
    _status_rule(appraisal, section, "tcb_status", "platform TCB", claims["tcb_status"],
                 claims.get("tcb_date"), claims, list(section.accepted_tcb_statuses))
    _status_rule(appraisal, section, "qe_tcb_status", "QE TCB", claims["qe_tcb_status"],
                 claims.get("qe_tcb_date"), claims, list(section.accepted_qe_tcb_statuses))
    advisories = sorted({*claims["advisory_ids"], *claims.get("qe_advisory_ids", [])})
    forbidden = sorted(set(advisories) & set(section.forbidden_advisory_ids))
    appraisal.rule("advisories", not forbidden,
                   "no forbidden advisory applies" if not forbidden
                   else f"forbidden advisories apply: {', '.join(forbidden)}",
                   claim=TrustClaim.HARDWARE, ok=2, fail=96,
                   expected=_none_of(section.forbidden_advisory_ids), found=advisories)
    _tee_tcb_svn_rule(appraisal, section, claims["tee_tcb_svn"])
    _member(appraisal, "mr_seam", claims["mr_seam"], list(section.mr_seam), "TDX module MRSEAM",
            claim=TrustClaim.HARDWARE)
    _expiry_rule(appraisal, section, bool(claims["collateral_expired"]))


def _status_rule(appraisal: Appraisal, section: TdxPolicy, check: str, what: str, status: str,
                 tcb_date: str | None, claims: Mapping[str, Any], accepted: list[str]) -> None:
    if status in accepted:
        appraisal.rule(check, True, f"{what} status {status} is accepted",
                       claim=TrustClaim.HARDWARE, ok=2, fail=96,
                       expected=one_of(accepted), found=status)
        return
    age = _age_days(tcb_date, claims.get("verified_at"))
    grace = section.out_of_date_grace_days
    if status == "OutOfDate" and grace is not None and age is not None and age <= grace:
        appraisal.note(check, f"{what} is OutOfDate since {tcb_date}, within the policy's "
                       f"{grace}-day grace period", claim=TrustClaim.HARDWARE, value=32,
                       expected=f"{one_of(accepted)}, or OutOfDate for at most {grace} days",
                       found=f"OutOfDate, {age} days")
        return
    appraisal.rule(check, False, f"{what} status {status} is not accepted",
                   claim=TrustClaim.HARDWARE, ok=2, fail=96, expected=one_of(accepted),
                   found=status if age is None else f"{status}, tcbDate {age} days ago")


def _none_of(forbidden: list[str]) -> str:
    return f"none of {', '.join(forbidden)}" if forbidden else "no advisory forbidden"


def _age_days(tcb_date: str | None, verified_at: object) -> int | None:
    """Whole days from a level's tcbDate to the verification time (both ISO 8601)."""
    try:
        start = datetime.fromisoformat(str(tcb_date))
        end = datetime.fromisoformat(str(verified_at))
        return max((end - start) // timedelta(days=1), 0)
    except (TypeError, ValueError):
        return None


def _tee_tcb_svn_rule(appraisal: Appraisal, section: TdxPolicy, tee_tcb_svn: str) -> None:
    if section.min_tee_tcb_svn is None:
        appraisal.rule("min_tee_tcb_svn", True, "no minimum TEE TCB SVN in the policy",
                       claim=TrustClaim.HARDWARE, ok=2, fail=96, expected="any",
                       found=tee_tcb_svn)
        return
    have, want = bytes.fromhex(tee_tcb_svn), bytes.fromhex(section.min_tee_tcb_svn)
    low = [index for index, (h, w) in enumerate(zip(have, want, strict=True)) if h < w]
    appraisal.rule("min_tee_tcb_svn", not low,
                   "TEE TCB SVN meets the minimum" if not low
                   else f"TEE TCB SVN below the minimum in components {human(low)}",
                   claim=TrustClaim.HARDWARE, ok=2, fail=96,
                   expected=f">= {section.min_tee_tcb_svn} per byte", found=tee_tcb_svn)


def _expiry_rule(appraisal: Appraisal, section: TdxPolicy, expired: bool) -> None:
    if expired and section.expired_collateral == "warn":
        appraisal.note("collateral_current", "Intel collateral had expired at the verification "
                       "time (the policy warns only)", claim=TrustClaim.HARDWARE, value=32,
                       expected="current collateral", found="expired")
        return
    appraisal.rule("collateral_current", not expired,
                   "Intel collateral was current at the verification time" if not expired
                   else "Intel collateral had expired at the verification time",
                   claim=TrustClaim.HARDWARE, ok=2, fail=96, expected="current collateral",
                   found="expired" if expired else "current")


# --- executables --------------------------------------------------------------------------------

def _executables(appraisal: Appraisal, section: TdxPolicy, claims: Mapping[str, Any]) -> None:
    reference_rule(appraisal, claims["mr_td"], list(section.mrtd), what="MRTD")
    for index, references in sorted(section.rtmrs.items()):
        if not references:
            continue
        value = claims[f"rtmr{index}"]
        known = value in references
        appraisal.rule(f"rtmr{index}", known,
                       f"RTMR{index} matches {'a' if known else 'no'} reference value",
                       claim=TrustClaim.EXECUTABLES, ok=2, fail=96,
                       expected=f"one of {len(references)} reference values", found=value)


# --- configuration --------------------------------------------------------------------------------

def _member(appraisal: Appraisal, check: str, value: Any, allowed: list[Any], what: str, *,
            claim: TrustClaim) -> None:
    """One rule 'value is one of allowed'; an empty list allows anything."""
    if not allowed:
        appraisal.rule(check, True, f"{what}: any allowed by policy", claim=claim, ok=2,
                       fail=96, expected="any", found=value)
        return
    passed = value in allowed
    appraisal.rule(check, passed, f"{what} is {'' if passed else 'not '}allowed", claim=claim,
                   ok=2, fail=96, expected=one_of(allowed), found=value)


def _configuration(appraisal: Appraisal, section: TdxPolicy, claims: Mapping[str, Any]) -> None:
    attributes = claims["td_attributes"]
    debug = bool(attributes["debug"])
    appraisal.rule("debug", section.allow_debug or not debug,
                   f"TD attribute DEBUG is {'on' if debug else 'off'}"
                   + (" (allowed by policy)" if debug and section.allow_debug else ""),
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected="any" if section.allow_debug else "off",
                   found="on" if debug else "off")
    _bits_rule(appraisal, "td_attributes", "TD attributes", int(attributes["value"]),
               allowed=section.td_attributes_allowed_bits,
               required=section.td_attributes_required_bits)
    xfam = claims["xfam"]
    _member(appraisal, "xfam", xfam, list(section.xfam), "XFAM", claim=TrustClaim.CONFIGURATION)
    forbidden = section.xfam_forbidden_bits
    _bits_rule(appraisal, "xfam_bits", "XFAM", int.from_bytes(bytes.fromhex(xfam), "little"),
               allowed=None if forbidden is None else ~forbidden & (2**64 - 1), required=0)
    for check, what in (("mr_config_id", "MRCONFIGID"), ("mr_owner", "MROWNER"),
                        ("mr_owner_config", "MROWNERCONFIG")):
        _member(appraisal, check, claims[check], list(getattr(section, check)), what,
                claim=TrustClaim.CONFIGURATION)


def _bits_rule(appraisal: Appraisal, check: str, what: str, value: int, *,
               allowed: int | None, required: int) -> None:
    extra = 0 if allowed is None else value & ~allowed
    missing = required & ~value
    passed = not extra and not missing
    message = f"{what} {value:#x} " + ("meet the policy's bits" if passed else
                                       f"set {extra:#x} not allowed, lack {missing:#x} required")
    appraisal.rule(check, passed, message, claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected=f"within {'any' if allowed is None else hex(allowed)}, all of "
                            f"{required:#x}", found=f"{value:#x}")
