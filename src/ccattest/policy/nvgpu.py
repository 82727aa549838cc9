"""The nvgpu section: which NVIDIA GPUs, drivers and VBIOSes a site accepts.

Trust-vector mapping (AR4SI): hardware 2 for a genuine NVIDIA device chain (the verifier
proved it), 96 for an architecture the policy does not accept; executables 2/96 for the
RIM comparison of the measurements (and 96 when the policy requires one and none was
made); configuration 2/96 for driver and VBIOS versions, protected PCIe and revocation;
runtime-opaque 2 in CC mode, 96 in DevTools mode or with CC off when the policy requires
CC, 32 (warning) when the evidence does not say. The CC state is declared by the attester
(read from NVML, claim `cc_state`), not signed by the GPU: the reasons say so.

Multi-GPU claims (`gpus`) are appraised GPU by GPU; each rule's check is then prefixed
`gpu<n>:` and the system-wide CC state applies to every GPU.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from ..result import TrustClaim
from ..text import human, one_of
from .base import Appraisal, StrictModel

Architecture = Literal["HOPPER", "BLACKWELL"]
_DRIVER = re.compile(r"\A\d{1,4}(\.\d{1,4}){0,3}\Z")
_VBIOS = re.compile(r"\A[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}\Z")
_SYSTEM_CLAIMS = ("cc_mode", "devtools", "cc_environment", "cc_state")


def _driver(value: str) -> str:
    if not _DRIVER.match(value.strip()):
        raise ValueError(f"expected a driver version such as '550.90.07', found {value!r}")
    return value.strip()


def _vbios(value: str) -> str:
    if not _VBIOS.match(value.strip()):
        raise ValueError(f"expected a VBIOS version such as '96.00.9F.00.01', found {value!r}")
    return value.strip().upper()


DriverVersion = Annotated[str, AfterValidator(_driver)]
VbiosVersion = Annotated[str, AfterValidator(_vbios)]


def driver_key(version: str) -> tuple[int, ...]:
    """Dotted decimal, compared numerically: 550.100 > 550.90.07."""
    return tuple(int(part) for part in version.split("."))


def vbios_key(version: str) -> tuple[int, ...]:
    """VBIOS parts are hexadecimal bytes: 96.00.9F.00.01 > 96.00.74.00.20."""
    return tuple(int(part, 16) for part in version.split("."))


class NvgpuPolicy(StrictModel):
    allow: bool = Field(default=True, description="a section present means GPUs are accepted")
    architectures: list[Architecture] = Field(default_factory=list)
    min_driver_version: DriverVersion | None = None
    driver_versions: list[DriverVersion] = Field(default_factory=list)
    min_vbios_version: VbiosVersion | None = None
    vbios_versions: list[VbiosVersion] = Field(default_factory=list)
    require_rim_match: bool = True
    allow_cert_hold: bool = False
    require_cc_mode: bool = True
    require_ppcie: bool = False
    require_revocation_check: bool = False

    def resolve_files(self, base: Path) -> NvgpuPolicy:
        return self  # no reference-value files: RIMs carry the reference measurements


def appraise_nvgpu(section: NvgpuPolicy | None, claims: Mapping[str, Any]) -> Appraisal:
    appraisal = Appraisal()
    allowed = section is not None and section.allow
    appraisal.rule(
        "platform_allowed", allowed,
        "NVIDIA GPU evidence with a genuine device chain, accepted by policy" if allowed
        else "policy does not accept NVIDIA GPUs",
        claim=TrustClaim.HARDWARE, ok=2, fail=96, expected="nvgpu section with allow: true",
        found="no nvgpu section" if section is None else f"nvgpu.allow: {section.allow}".lower(),
    )
    section = section or NvgpuPolicy()
    gpus = claims.get("gpus")
    if gpus is None:
        _appraise_gpu(appraisal, section, claims, "")
        return appraisal
    system = {name: claims[name] for name in _SYSTEM_CLAIMS if name in claims}
    for number, gpu in enumerate(gpus):
        _appraise_gpu(appraisal, section, {**gpu, **system}, f"gpu{number}:")
    return appraisal


def _appraise_gpu(appraisal: Appraisal, section: NvgpuPolicy, claims: Mapping[str, Any],
                  prefix: str) -> None:
    for rule in (_arch, _driver_rules, _vbios_rules, _rim, _revocation, _ppcie, _cc_mode):
        rule(appraisal, section, claims, prefix)


def _arch(appraisal: Appraisal, section: NvgpuPolicy, claims: Mapping[str, Any],
          prefix: str) -> None:
    arch = claims.get("arch")
    passed = not section.architectures or arch in section.architectures
    appraisal.rule(prefix + "arch", passed,
                   f"{arch} GPU {'is' if passed else 'is not'} accepted",
                   claim=TrustClaim.HARDWARE, ok=2, fail=96,
                   expected=one_of(section.architectures) if section.architectures
                   else "any", found=arch)


def _version_rules(appraisal: Appraisal, check: str, what: str, found: Any,
                   minimum: str | None, allowed: list[str],
                   key: Callable[[str], tuple[int, ...]]) -> None:
    """'version >= minimum' and 'version in allowed'; each passes when the policy is silent."""
    version = found if isinstance(found, str) else None
    parsed = _parsed(version, key)
    if minimum is not None:
        passed = parsed is not None and parsed >= key(minimum)
        appraisal.rule(f"min_{check}", passed,
                       f"{what} {version or 'not reported'}, minimum {minimum}",
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                       expected=f"≥ {minimum}", found=version)
    if allowed:
        passed = parsed is not None and parsed in {key(item) for item in allowed}
        appraisal.rule(check, passed,
                       f"{what} {version or 'not reported'} is "
                       f"{'' if passed else 'not '}allowed",
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                       expected=one_of(allowed), found=version)
    if minimum is None and not allowed:
        appraisal.rule(check, True, f"{what} {version}: any allowed by policy",
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96, expected="any",
                       found=version)


def _parsed(version: str | None, key: Callable[[str], tuple[int, ...]]) -> tuple[int, ...] | None:
    if version is None:
        return None
    try:
        return key(version.strip())
    except ValueError:
        return None


def _driver_rules(appraisal: Appraisal, section: NvgpuPolicy, claims: Mapping[str, Any],
                  prefix: str) -> None:
    _version_rules(appraisal, prefix + "driver_version", "driver",
                   claims.get("driver_version"), section.min_driver_version,
                   section.driver_versions, driver_key)


def _vbios_rules(appraisal: Appraisal, section: NvgpuPolicy, claims: Mapping[str, Any],
                 prefix: str) -> None:
    _version_rules(appraisal, prefix + "vbios_version", "VBIOS", claims.get("vbios_version"),
                   section.min_vbios_version, section.vbios_versions, vbios_key)


def _rim(appraisal: Appraisal, section: NvgpuPolicy, claims: Mapping[str, Any],
         prefix: str) -> None:
    measurements = claims.get("measurements") or {}
    matched = measurements.get("matched")
    if not section.require_rim_match:
        appraisal.rule(prefix + "rim", True, "RIM match not required by policy" + (
            "" if matched is None else " (compared: the measurements "
            + ("match)" if matched is True else "differ)")),
            claim=TrustClaim.EXECUTABLES, ok=2, fail=96, expected="any",
            found={True: "measurements match", False: "measurements differ"}.get(
                matched, "not compared"))
        return
    if matched is None:
        appraisal.rule(prefix + "rim", False, "no RIM comparison: the measurements were not "
                       "compared with NVIDIA's reference values", claim=TrustClaim.EXECUTABLES,
                       ok=2, fail=96, expected="measurements compared with NVIDIA's RIMs",
                       found="not compared")
        return
    stale = _rim_version_mismatch(measurements)
    passed = matched is True and not stale
    message = ("measurements match the driver and VBIOS RIMs" if passed
               else f"RIMs for other versions: {', '.join(stale)}" if stale
               else "measurements differ from the RIMs at indices "
                    + human(measurements.get("mismatched") or [])
                    + (", missing " + human(measurements["missing"])
                       if measurements.get("missing") else ""))
    appraisal.rule(prefix + "rim", passed, message, claim=TrustClaim.EXECUTABLES, ok=2, fail=96,
                   expected="measurements match the RIMs",
                   found="measurements match the RIMs" if matched is True
                   else "measurements differ from the RIMs")


def _rim_version_mismatch(measurements: Mapping[str, Any]) -> list[str]:
    rims = measurements.get("rim") or {}
    return [kind for kind, rim in sorted(rims.items())
            if isinstance(rim, Mapping) and rim.get("version_match") is False]


def _revocation(appraisal: Appraisal, section: NvgpuPolicy, claims: Mapping[str, Any],
                prefix: str) -> None:
    state = claims.get("revocation", "not_checked")
    if state == "on_hold":
        appraisal.rule(prefix + "revocation", section.allow_cert_hold,
                       "a device certificate is on hold" + (" (tolerated by policy)"
                                                            if section.allow_cert_hold else ""),
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                       expected="good" + (" or on_hold" if section.allow_cert_hold else ""),
                       found=state)
        return
    checked = state == "good"
    passed = checked or not section.require_revocation_check
    appraisal.rule(prefix + "revocation", passed,
                   "device certificates are not revoked (OCSP)" if checked
                   else f"revocation {state.replace('_', ' ')}" + (
                       "" if section.require_revocation_check else " (not required by policy)"),
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected="good" if section.require_revocation_check else "any", found=state)


def _ppcie(appraisal: Appraisal, section: NvgpuPolicy, claims: Mapping[str, Any],
           prefix: str) -> None:
    enabled = claims.get("ppcie")
    if not section.require_ppcie:
        appraisal.rule(prefix + "ppcie", True, "protected PCIe not required by policy",
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96, expected="any",
                       found=_on_off(enabled))
        return
    appraisal.rule(prefix + "ppcie", enabled is True,
                   "protected PCIe is " + ("on" if enabled else "off" if enabled is False
                                           else "not reported"),
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96, expected="on",
                   found=_on_off(enabled))


def _on_off(value: Any) -> str:
    return {True: "on", False: "off"}.get(value, "not reported")


def _cc_words(mode: Any, devtools: Any) -> str:
    if mode is None:
        return "CC mode not reported"
    state = {True: "on", False: "off"}.get(devtools, "not reported")
    return f"CC mode {mode}, DevTools {state}"


def _cc_mode(appraisal: Appraisal, section: NvgpuPolicy, claims: Mapping[str, Any],
             prefix: str) -> None:
    mode, devtools = claims.get("cc_mode"), claims.get("devtools")
    check, claim = prefix + "cc_mode", TrustClaim.RUNTIME_OPAQUE
    found, expected = _cc_words(mode, devtools), "CC mode on, DevTools off"
    if mode == "on" and devtools is False:
        appraisal.rule(check, True, "CC mode on, DevTools off, as the attester declared it "
                       "(read from NVML; the GPU does not sign it)", claim=claim, ok=2,
                       fail=96, expected=expected, found=found)
    elif not section.require_cc_mode:
        appraisal.rule(check, True, f"CC mode not required by policy ({found})", claim=claim,
                       ok=2, fail=96, expected="any", found=found)
    elif mode is None:
        appraisal.note(check, "CC mode not reported: the evidence carries no CC state from "
                       "the attester, and a signed report shows CC or DevTools mode, not which",
                       claim=claim, value=32, expected=expected, found=found)
    elif devtools is True:
        appraisal.rule(check, False, "DevTools mode: the GPU can be debugged, its memory is "
                       "not confidential", claim=claim, ok=2, fail=96, expected=expected,
                       found=found)
    else:
        appraisal.rule(check, False, f"{found}: not the confidential mode the policy requires",
                       claim=claim, ok=2, fail=96, expected=expected, found=found)


def appraise_nras(section: NvgpuPolicy | None, claims: Mapping[str, Any]) -> Appraisal:
    """NRAS results: NVIDIA's own verdict must be true, then the nvgpu rules apply to the
    claims NRAS reports (those it does not report leave their rules unmet)."""
    appraisal = appraise_nvgpu(section, claims)
    overall = bool(claims.get("overall_result"))
    failed = "; ".join(f"{gpu}: {', '.join(checks)}" for gpu, checks in
                       (claims.get("errors") or {}).items()) or "none reported"
    appraisal.rule("nras_result", overall,
                   "NRAS attested every GPU" if overall else "NRAS reports a failed attestation",
                   claim=TrustClaim.HARDWARE, ok=2, fail=96, expected="true",
                   found="true" if overall else f"false ({failed})")
    return appraisal
