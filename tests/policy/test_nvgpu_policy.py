"""The nvgpu policy section: architectures, driver/VBIOS versions, RIM match, revocation and
certificate hold, CC/DevTools mode, protected PCIe; one GPU or several."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ccattest.policy.nvgpu import NvgpuPolicy, appraise_nvgpu, driver_key, vbios_key
from ccattest.result import Tier, TrustClaim
from ccattest.testing.nvgpu import NvgpuFixture

RIM_OK = {"matched": True, "mismatched": [], "missing": [],
          "rim": {"driver": {"version_match": True}, "vbios": {"version_match": True}}}


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "arch": "HOPPER", "driver_version": "550.90.07", "vbios_version": "96.00.9F.00.01",
        "measurements": {"count": 64, "blocks": {}, **RIM_OK}, "revocation": "good",
        "ppcie": False, "cc_mode": "on", "devtools": False,
    }
    claims.update(changes)
    return claims


STRICT = NvgpuPolicy(architectures=["HOPPER"], min_driver_version="550.54",
                     driver_versions=["550.90.07", "570.86.10"],
                     min_vbios_version="96.00.74.00.01", vbios_versions=["96.00.9f.00.01"],
                     require_revocation_check=True)


def _failed(section: NvgpuPolicy | None, **changes: Any) -> set[str]:
    appraisal = appraise_nvgpu(section, _claims(**changes))
    return {reason.check for reason in appraisal.reasons if not reason.passed}


def test_strict_policy_affirms_matching_claims() -> None:
    appraisal = appraise_nvgpu(STRICT, _claims())
    assert {reason.check for reason in appraisal.reasons if not reason.passed} == set()
    assert appraisal.vector.status is Tier.AFFIRMING
    assert appraisal.vector.to_dict() == {"hardware": 2, "configuration": 2, "executables": 2,
                                          "runtime-opaque": 2}
    assert STRICT.vbios_versions == ["96.00.9F.00.01"]  # normalised to NVIDIA's notation


def test_no_section_or_disallowed() -> None:
    assert "platform_allowed" in _failed(None)
    assert "platform_allowed" in _failed(NvgpuPolicy(allow=False))
    appraisal = appraise_nvgpu(None, _claims())
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 96


@pytest.mark.parametrize(("changes", "failed"), [
    ({"arch": "BLACKWELL"}, {"arch"}),
    ({"driver_version": "550.54.14"}, {"driver_version"}),  # above the minimum, not listed
    ({"driver_version": "535.86.09"}, {"min_driver_version", "driver_version"}),
    ({"driver_version": None}, {"min_driver_version", "driver_version"}),
    ({"driver_version": "abc"}, {"min_driver_version", "driver_version"}),
    ({"vbios_version": "96.00.5E.00.01"}, {"min_vbios_version", "vbios_version"}),
    ({"revocation": "not_checked"}, {"revocation"}),
    ({"revocation": "unknown"}, {"revocation"}),
    ({"revocation": "on_hold"}, {"revocation"}),
    ({"devtools": True}, {"cc_mode"}),
    ({"cc_mode": "off"}, {"cc_mode"}),
])
def test_strict_rejections(changes: dict[str, Any], failed: set[str]) -> None:
    assert _failed(STRICT, **changes) == failed


def test_versions_compare_numerically() -> None:
    assert driver_key("550.100") > driver_key("550.90.07")
    assert vbios_key("96.00.9F.00.01") > vbios_key("96.00.74.00.20")
    section = NvgpuPolicy(min_driver_version="550.90", min_vbios_version="96.00.74.00.20",
                          require_rim_match=False)
    assert _failed(section, driver_version="550.100", vbios_version="96.00.9F.00.01") == set()
    assert _failed(section, driver_version="550.9") == {"min_driver_version"}


def test_versions_allowed_by_default() -> None:
    appraisal = appraise_nvgpu(NvgpuPolicy(), _claims())
    messages = {reason.check: reason.message for reason in appraisal.reasons}
    assert messages["driver_version"] == "driver 550.90.07: any allowed by policy"
    assert messages["arch"] == "HOPPER GPU is accepted"


def test_rim_rules() -> None:
    default = NvgpuPolicy()
    assert default.require_rim_match
    no_rim = _claims(measurements={"count": 64, "blocks": {}})
    appraisal = appraise_nvgpu(default, no_rim)
    (rim,) = [reason for reason in appraisal.reasons if reason.check == "rim"]
    assert not rim.passed and "no RIM comparison" in rim.message
    assert appraisal.vector.get(TrustClaim.EXECUTABLES) == 96
    mismatch = {"matched": False, "mismatched": [9], "missing": [35]}
    reasons = appraise_nvgpu(default, _claims(measurements=mismatch)).reasons
    assert "indices 9, missing 35" in next(r.message for r in reasons if r.check == "rim")
    stale = {**RIM_OK, "rim": {"driver": {"version_match": False}, "vbios": None}}
    reasons = appraise_nvgpu(default, _claims(measurements=stale)).reasons
    assert next(r.message for r in reasons if r.check == "rim") == "RIMs for other versions: " \
        "driver"
    relaxed = NvgpuPolicy(require_rim_match=False)
    assert _failed(relaxed, measurements=mismatch) == set()
    assert _failed(relaxed, measurements={"count": 1}) == set()
    assert _failed(default, measurements=None) == {"rim"}


def test_certificate_hold() -> None:
    assert _failed(NvgpuPolicy(allow_cert_hold=True), revocation="on_hold") == set()
    assert _failed(NvgpuPolicy(), revocation="on_hold") == {"revocation"}
    assert _failed(NvgpuPolicy(), revocation="not_checked") == set()
    assert _failed(NvgpuPolicy(), revocation="unknown") == set()
    assert _failed(NvgpuPolicy(allow_cert_hold=True, require_revocation_check=True),
                   revocation="on_hold") == set()


def test_protected_pcie() -> None:
    section = NvgpuPolicy(require_ppcie=True)
    assert _failed(section, ppcie=True) == set()
    assert _failed(section) == {"ppcie"}
    assert _failed(section, ppcie=None) == {"ppcie"}


def test_cc_mode_rules() -> None:
    required = NvgpuPolicy()
    remote = _claims()
    del remote["cc_mode"], remote["devtools"]
    appraisal = appraise_nvgpu(required, remote)
    assert appraisal.vector.get(TrustClaim.RUNTIME_OPAQUE) == 32
    assert appraisal.vector.status is Tier.WARNING
    relaxed = NvgpuPolicy(require_cc_mode=False)
    assert appraise_nvgpu(relaxed, remote).vector.get(TrustClaim.RUNTIME_OPAQUE) == 2
    assert _failed(relaxed, devtools=True) == set()
    reasons = appraise_nvgpu(required, _claims(devtools=True)).reasons
    assert "DevTools mode" in next(r.message for r in reasons if r.check == "cc_mode")


def _cc_reason(section: NvgpuPolicy, **changes: Any) -> Any:
    appraisal = appraise_nvgpu(section, _claims(**changes))
    (reason,) = [reason for reason in appraisal.reasons if reason.check == "cc_mode"]
    return reason


@pytest.mark.parametrize(("changes", "passed", "found", "message"), [
    ({}, True, "CC mode on, DevTools off",
     "CC mode on, DevTools off, as the attester declared it (read from NVML; the GPU does not "
     "sign it)"),
    ({"cc_mode": None, "devtools": None}, False, "CC mode not reported",
     "CC mode not reported: the evidence carries no CC state from the attester, and a signed "
     "report shows CC or DevTools mode, not which"),
    ({"devtools": True}, False, "CC mode on, DevTools on",
     "DevTools mode: the GPU can be debugged, its memory is not confidential"),
    ({"cc_mode": "off"}, False, "CC mode off, DevTools off",
     "CC mode off, DevTools off: not the confidential mode the policy requires"),
    ({"devtools": None}, False, "CC mode on, DevTools not reported",
     "CC mode on, DevTools not reported: not the confidential mode the policy requires"),
])
def test_cc_mode_reasons_in_words(changes: dict[str, Any], passed: bool, found: str,
                                  message: str) -> None:
    reason = _cc_reason(NvgpuPolicy(), **changes)
    assert (reason.passed, reason.found, reason.message) == (passed, found, message)
    assert reason.expected == "CC mode on, DevTools off"
    for word in ("None", "True", "False"):
        assert word not in reason.message and word not in (reason.found or "")


def test_cc_mode_not_required_still_says_what_was_declared() -> None:
    reason = _cc_reason(NvgpuPolicy(require_cc_mode=False), devtools=True)
    assert reason.passed and reason.message == ("CC mode not required by policy "
                                                "(CC mode on, DevTools on)")


def test_rim_reasons_in_words() -> None:
    reason = next(r for r in appraise_nvgpu(NvgpuPolicy(), _claims()).reasons
                  if r.check == "rim")
    assert (reason.expected, reason.found) == ("measurements match the RIMs",
                                               "measurements match the RIMs")
    mismatch = {"matched": False, "mismatched": [9], "missing": []}
    reason = next(r for r in appraise_nvgpu(NvgpuPolicy(), _claims(measurements=mismatch))
                  .reasons if r.check == "rim")
    assert reason.found == "measurements differ from the RIMs"
    relaxed = NvgpuPolicy(require_rim_match=False)
    messages = [next(r.message for r in appraise_nvgpu(relaxed, _claims(measurements=m)).reasons
                     if r.check == "rim") for m in (RIM_OK, mismatch)]
    assert messages == ["RIM match not required by policy (compared: the measurements match)",
                        "RIM match not required by policy (compared: the measurements differ)"]


def test_several_gpus() -> None:
    first = {k: v for k, v in _claims().items() if k not in ("cc_mode", "devtools")}
    second = {**first, "arch": "BLACKWELL", "driver_version": "570.86.10"}
    claims = {"gpu_count": 2, "gpus": [first, second], "cc_mode": "on", "devtools": False}
    appraisal = appraise_nvgpu(STRICT, claims)
    failed = {reason.check for reason in appraisal.reasons if not reason.passed}
    assert failed == {"gpu1:arch"}
    assert {"gpu0:cc_mode", "gpu1:cc_mode", "gpu1:driver_version"} <= {
        reason.check for reason in appraisal.reasons if reason.passed}


def test_verified_fixture_claims(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence(cc_state={"cc_mode": "on", "devtools": "off"})
    claims = hopper.verifier().verify(evidence, report_data=nonce, at=hopper.now).claims
    appraisal = appraise_nvgpu(NvgpuPolicy(require_rim_match=False), claims)
    assert appraisal.vector.status is Tier.AFFIRMING


@pytest.fixture(scope="module")
def hopper() -> NvgpuFixture:
    return NvgpuFixture.create("HOPPER")


@pytest.mark.parametrize("field", [
    {"min_driver_version": "v550"}, {"driver_versions": ["550.x"]},
    {"min_vbios_version": "96.00.9F"}, {"vbios_versions": ["96.00.9G.00.01"]},
    {"architectures": ["AMPERE"]}, {"require_rim": True},
])
def test_policy_validation(field: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NvgpuPolicy(**field)


def test_resolve_files_is_identity() -> None:
    assert STRICT.resolve_files(Path("/nowhere")) is STRICT
