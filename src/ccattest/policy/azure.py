"""The azure section: which MAA-attested Azure confidential VMs and containers a site accepts.

MAA has verified the hardware evidence (SNP report and its AMD chain) before it signed the
token; this section judges what the token says about it.

Trust-vector mapping (AR4SI): hardware 2 when the section accepts MAA tokens and the
attestation type, isolation TEE and SNP TCB are allowed, 96/97 otherwise; executables
2/96 for the launch measurement (33 when the policy names none); configuration 2/96 for
compliance status, debuggability, migration, SMT, secure boot, host data (the CCE policy
hash of a container group), guest SVN, VMPL and ID key digests; runtime-opaque 2 for a
hardware TEE (SEV-SNP or TDX), 96 for anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ..result import TrustClaim
from ..text import human, one_of
from .base import Appraisal, StrictModel, reference_rule
from .refs import Sha384Hex, hex_digest, read_digest_file
from .snp import TcbMinimum, tcb_words

Hex32 = Annotated[str, hex_digest(32)]
_TCB = ("bootloader", "tee", "snp", "microcode")
_HARDWARE_TEES = frozenset({"sevsnpvm", "tdxvm"})


class AzurePolicy(StrictModel):
    allow: bool = Field(default=True, description="a section present means MAA is accepted")
    attestation_types: list[str] = Field(default_factory=lambda: ["sevsnpvm", "azurevm"])
    compliance_statuses: list[str] = Field(
        default_factory=list,
        description="e.g. azure-compliant-cvm, azure-compliant-uvm; empty: any (or none)")
    isolation_tees: list[str] = Field(default_factory=lambda: ["sevsnpvm", "tdxvm"])
    allow_debug: bool = False
    allow_migration: bool = False
    require_smt_disabled: bool = False
    require_secure_boot: bool = False
    measurements: list[Sha384Hex] = Field(default_factory=list)
    measurements_file: str | None = None
    host_data: list[Hex32] = Field(default_factory=list,
                                   description="SHA-256 of allowed CCE policies (containers)")
    id_key_digests: list[Sha384Hex] = Field(default_factory=list)
    min_guest_svn: int = Field(default=0, ge=0, lt=2**32)
    min_tcb: TcbMinimum = Field(default_factory=TcbMinimum)
    vmpl: list[Annotated[int, Field(ge=0, le=3)]] = Field(default_factory=lambda: [0])
    # Native CVM evidence (azure-snp / azure-tdx): the vTPM's PCRs and the VM configuration.
    pcrs: dict[Annotated[int, Field(ge=0, le=23)], list[Hex32]] = Field(default_factory=dict)
    allow_console: bool = True

    def resolve_files(self, base: Path) -> AzurePolicy:
        if self.measurements_file is None:
            return self
        extra = read_digest_file(base / self.measurements_file, 48)
        return self.model_copy(update={"measurements": [*self.measurements, *extra]})


def appraise_maa(section: AzurePolicy | None, claims: Mapping[str, Any]) -> Appraisal:
    appraisal = Appraisal()
    allowed = section is not None and section.allow
    appraisal.rule(
        "platform_allowed", allowed,
        "MAA token from an allow-listed instance, accepted by policy" if allowed
        else "policy does not accept Microsoft Azure Attestation tokens",
        claim=TrustClaim.HARDWARE, ok=2, fail=96, expected="azure section with allow: true",
        found="no azure section" if section is None else f"azure.allow: {section.allow}".lower(),
    )
    section = section or AzurePolicy()
    for rule in (_hardware, _executables, _configuration, _identity):
        rule(appraisal, section, claims)
    tee = claims.get("isolation_tee")
    appraisal.rule("memory_encryption", tee in _HARDWARE_TEES,
                   f"isolation TEE {tee} encrypts guest memory" if tee in _HARDWARE_TEES
                   else f"isolation TEE {tee} is not a hardware TEE",
                   claim=TrustClaim.RUNTIME_OPAQUE, ok=2, fail=96,
                   expected=one_of(sorted(_HARDWARE_TEES)), found=tee)
    return appraisal


def _member(appraisal: Appraisal, check: str, value: Any, allowed: list[Any], what: str, *,
            claim: TrustClaim, fail: int = 96) -> None:
    """'value is one of allowed'; an empty list allows anything, even an absent value."""
    if not allowed:
        appraisal.rule(check, True, f"{what}: any allowed by policy", claim=claim, ok=2,
                       fail=fail, expected="any", found=value)
        return
    passed = value is not None and value in allowed
    appraisal.rule(check, passed, f"{what} {value} is {'' if passed else 'not '}allowed",
                   claim=claim, ok=2, fail=fail, expected=one_of(allowed), found=value)


def _hardware(appraisal: Appraisal, section: AzurePolicy, claims: Mapping[str, Any]) -> None:
    _member(appraisal, "attestation_type", claims.get("attestation_type"),
            list(section.attestation_types), "attestation type", claim=TrustClaim.HARDWARE,
            fail=97)
    _member(appraisal, "isolation_tee", claims.get("isolation_tee"),
            list(section.isolation_tees), "isolation TEE", claim=TrustClaim.HARDWARE, fail=97)
    reported = claims.get("reported_tcb") or {}
    wanted = {name: getattr(section.min_tcb, name) for name in _TCB
              if getattr(section.min_tcb, name)}
    low = {name: reported.get(name) for name, value in wanted.items()
           if reported.get(name) is None or reported[name] < value}
    appraisal.rule("min_tcb", not low,
                   "reported TCB meets the minimum" if not low
                   else "reported TCB below the minimum (or absent) in "
                        + ", ".join(tcb_words(low)),
                   claim=TrustClaim.HARDWARE, ok=2, fail=96,
                   expected=human(tcb_words(wanted), minimum=True) if wanted else "any",
                   found=tcb_words(reported) if reported else "not reported")


def _executables(appraisal: Appraisal, section: AzurePolicy,
                 claims: Mapping[str, Any]) -> None:
    measurement = claims.get("launch_measurement")
    if measurement is None and section.measurements:
        appraisal.rule("measurement", False, "the token carries no launch measurement",
                       claim=TrustClaim.EXECUTABLES, ok=2, fail=96,
                       expected=f"one of {len(section.measurements)} reference values",
                       found="none")
        return
    reference_rule(appraisal, str(measurement), list(section.measurements),
                   what="launch measurement")


def _on_off(flag: Any) -> str:
    return "unstated" if flag is None else "on" if flag else "off"


def _required_flag(appraisal: Appraisal, check: str, value: Any, allowed: bool,
                   what: str) -> None:
    """A flag that must be off unless the policy allows it; an unstated flag is not off."""
    state = _on_off(value)
    appraisal.rule(check, allowed or value is False,
                   f"{what} is {state}" + (" (allowed by policy)" if allowed else ""),
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected="any" if allowed else "off", found=state)


def _configuration(appraisal: Appraisal, section: AzurePolicy,
                   claims: Mapping[str, Any]) -> None:
    _member(appraisal, "compliance_status", claims.get("compliance_status"),
            list(section.compliance_statuses), "compliance status",
            claim=TrustClaim.CONFIGURATION)
    policy = claims.get("policy") or {}
    snp = claims.get("isolation_tee") == "sevsnpvm"
    _required_flag(appraisal, "debug", claims.get("debuggable"), section.allow_debug,
                   "debugging")
    # SEV-SNP guest policy and VMPL: not applicable to other TEEs.
    _required_flag(appraisal, "migrate_ma", policy.get("migrate_ma"),
                   section.allow_migration or not snp, "migration")
    _required_flag(appraisal, "smt", policy.get("smt"), not section.require_smt_disabled
                   or not snp, "SMT")
    secure_boot = claims.get("secure_boot")
    state = _on_off(secure_boot)
    appraisal.rule("secure_boot", secure_boot is True or not section.require_secure_boot,
                   f"secure boot is {state}", claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected="on" if section.require_secure_boot else "any", found=state)
    _member(appraisal, "host_data", claims.get("host_data"), list(section.host_data),
            "host data (CCE policy hash)", claim=TrustClaim.CONFIGURATION)
    vmpl = claims.get("vmpl")
    level = "unstated" if vmpl is None else vmpl
    appraisal.rule("vmpl", vmpl in section.vmpl or not snp, f"report from VMPL {level}",
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected=one_of(section.vmpl), found=level)
    svn = claims.get("guest_svn")
    passed = section.min_guest_svn == 0 or (svn is not None and svn >= section.min_guest_svn)
    shown = "unstated" if svn is None else svn
    appraisal.rule("min_guest_svn", passed, f"guest SVN {shown}, minimum {section.min_guest_svn}",
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected=f">= {section.min_guest_svn}", found=shown)


def _identity(appraisal: Appraisal, section: AzurePolicy, claims: Mapping[str, Any]) -> None:
    _member(appraisal, "id_key_digest", claims.get("id_key_digest"),
            list(section.id_key_digests), "ID key digest", claim=TrustClaim.CONFIGURATION)


__all__ = ["AzurePolicy", "appraise_maa"]


def appraise_vtpm(section: AzurePolicy | None, claims: Mapping[str, Any]) -> Appraisal:
    """A native Azure CVM's vTPM facts, judged next to its hardware report: PCR reference
    values per index, secure boot and the serial console from the VM configuration."""
    appraisal = Appraisal()
    if section is None:
        return appraisal  # no azure section: the hardware report alone is judged
    pcrs = claims.get("pcrs") or {}
    for index, allowed in sorted(section.pcrs.items()):
        value = pcrs.get(str(index))
        passed = value in allowed
        appraisal.rule(f"pcr{index}", passed,
                       f"PCR{index} {'matches' if passed else 'matches no'} reference value",
                       claim=TrustClaim.EXECUTABLES, ok=2, fail=96,
                       expected=f"one of {len(allowed)} values", found=value or "not quoted")
    config = claims.get("vm_configuration") or {}
    if section.require_secure_boot:
        on = config.get("secure-boot") is True
        appraisal.rule("vm_secure_boot", on, f"secure boot is {'on' if on else 'not on'}",
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96, expected="on",
                       found=_on_off(config.get("secure-boot")))
    if not section.allow_console:
        off = config.get("console-enabled") is False
        appraisal.rule("vm_console", off, f"serial console is {'off' if off else 'not off'}",
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96, expected="off",
                       found=_on_off(config.get("console-enabled")))
    return appraisal
