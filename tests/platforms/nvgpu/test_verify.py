"""The GPU verifier on synthetic evidence: every check, every claim, every broken case."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ccattest.errors import (
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    VerificationFailed,
)
from ccattest.evidence import Evidence
from ccattest.platforms.nvgpu import CC_STATE_LOG_TYPE, abi
from ccattest.platforms.nvgpu.abi import GpuEvidence, dump_evidence_list
from ccattest.platforms.nvgpu.verify import NvgpuVerifier, local_cc_state
from ccattest.result import Reason
from ccattest.testing.cases import BrokenCase
from ccattest.testing.nvgpu import (
    NvgpuFixture,
    make_certificate,
    multi_evidence,
    nv_name,
    pem,
)

CLAIMS = {"arch", "nonce", "driver_version", "vbios_version", "fwid", "chip_sku",
          "chip_sku_mod", "project", "project_sku", "project_sku_mod", "measurements",
          "nvdec0_enabled", "feature_flag", "ppcie", "opaque_data_version", "revocation",
          "cert_chain", "board_id", "cc_state"}
CC_ON = {"cc_mode": "on", "devtools": "off", "environment": "prod"}


def _verify(fixture: NvgpuFixture, evidence: Evidence, nonce: bytes, **kwargs: Any) -> Any:
    return fixture.verifier(**kwargs).verify(evidence, report_data=nonce, at=fixture.now)


def test_hopper_claims(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    verified = _verify(hopper, evidence, nonce)
    claims = verified.claims
    assert set(claims) == CLAIMS
    assert claims["arch"] == "HOPPER" and claims["nonce"] == nonce.hex()
    assert claims["driver_version"] == "550.90.07"
    assert claims["vbios_version"] == "96.00.9F.00.01"
    assert claims["fwid"] == hopper.fwid.hex()
    assert (claims["project"], claims["project_sku"], claims["chip_sku"]) == ("1010", "0200",
                                                                             "882")
    assert (claims["chip_sku_mod"], claims["project_sku_mod"]) == ("0", "")
    assert claims["measurements"]["count"] == 8
    assert set(claims["measurements"]["blocks"]) == set(range(1, 9))
    assert claims["nvdec0_enabled"] is False and claims["ppcie"] is False
    assert claims["feature_flag"] == "SPT" and claims["opaque_data_version"] == 1
    assert claims["revocation"] == "not_checked"
    subjects = [entry["subject"] for entry in claims["cert_chain"]]
    assert subjects[0].startswith("O=NVIDIA Corporation,CN=GH100 A01 GSP FMC LF")
    assert len(subjects) == 5 and "Test Device Identity CA" in subjects[-1]
    assert [reason.check for reason in verified.checks] == [
        "chain", "arch", "fwid", "signature", "binding", "revocation", "cc_state"]
    assert claims["cc_state"] == "not reported" and "cc_mode" not in claims
    assert verified.checks[-1].message.startswith("CC mode not reported: the evidence carries")
    assert all(reason.passed for reason in verified.checks)
    assert verified.collateral["root"]["source"] == "configured"
    assert "equals the pinned one" in verified.collateral["device_chain"]["supplied_root"]


def test_blackwell_claims(blackwell: NvgpuFixture) -> None:
    evidence, nonce = blackwell.evidence(cc_state=CC_ON)
    verified = _verify(blackwell, evidence, nonce)
    assert verified.claims["arch"] == "BLACKWELL" and verified.claims["chip_info"] == "GB100"
    assert verified.claims["cc_mode"] == "on" and verified.claims["devtools"] is False
    assert verified.claims["cc_environment"] == "prod"
    assert verified.claims["cc_state"] == "attester-declared (NVML), unsigned"
    assert verified.checks[-1] == Reason("cc_state", True, "CC mode on, DevTools off, as the "
                                         "attester declared it from NVML (not signed by the GPU)")
    assert "Blackwell FWID" in verified.checks[2].message


@pytest.fixture(scope="module")
def broken(hopper: NvgpuFixture, blackwell: NvgpuFixture) -> dict[str, list[BrokenCase]]:
    return {"HOPPER": hopper.broken_cases(), "BLACKWELL": blackwell.broken_cases()}


def test_every_broken_case_fails_with_its_kind(hopper: NvgpuFixture, blackwell: NvgpuFixture,
                                               broken: dict[str, list[BrokenCase]]) -> None:
    for fixture in (hopper, blackwell):
        cases = broken[fixture.arch]
        assert len({case.name for case in cases}) == len(cases) >= 25
        for case in cases:
            with pytest.raises(case.error):
                fixture.verifier().verify(case.evidence, report_data=case.report_data,
                                          at=case.at)


def test_pinned_root_rejects_test_chains(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    with pytest.raises(VerificationFailed, match="not issued by NVIDIA Device Identity CA"):
        NvgpuVerifier().verify(evidence, report_data=nonce, at=hopper.now)


def test_root_forms(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    for root in (hopper.root.public_bytes(serialization.Encoding.DER), pem(hopper.root)):
        NvgpuVerifier(root=root).verify(evidence, report_data=nonce, at=hopper.now)


def test_bad_roots(hopper: NvgpuFixture) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    rsa_root = (x509.CertificateBuilder().subject_name(hopper.root.subject)
                .issuer_name(hopper.root.subject).public_key(rsa_key.public_key())
                .serial_number(1).not_valid_before(hopper.now)
                .not_valid_after(hopper.now + timedelta(days=1))
                .sign(rsa_key, hashes.SHA256()))
    for root in (hopper.identity, rsa_root, b"garbage", "text"):
        with pytest.raises(ConfigError):
            NvgpuVerifier(root=root)  # type: ignore[arg-type]


def test_argument_checks(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    verifier = hopper.verifier()
    with pytest.raises(MalformedEvidence, match="another platform"):
        verifier.verify(dataclasses.replace(evidence, platform="snp"), report_data=nonce,
                        at=hopper.now)
    for report_data in (nonce + b"\0", "0" * 32):
        with pytest.raises(ConfigError, match="32 bytes"):
            verifier.verify(evidence, report_data=report_data, at=hopper.now)  # type: ignore
    with pytest.raises(ConfigError, match="naive"):
        verifier.verify(evidence, report_data=nonce, at=datetime(2026, 1, 1))


def test_hex_report_and_padding(hopper: NvgpuFixture) -> None:
    nonce = bytes(range(32))
    raw = hopper.sign(hopper.report(nonce, padding=5))
    for report in (raw, raw.hex().encode()):
        evidence = Evidence("nvgpu", report, {"cert_chain": hopper.chain()})
        assert _verify(hopper, evidence, nonce).claims["nonce"] == nonce.hex()


def test_report_without_fwid(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence(fwid=None)
    verified = _verify(hopper, evidence, nonce)
    assert verified.claims["fwid"] is None
    assert "no FWID" in verified.checks[2].message


def test_chain_roots(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    without = dataclasses.replace(evidence,
                                  endorsements={"cert_chain": hopper.chain(with_root=False)})
    assert "sent no root" in _verify(hopper, without, nonce).collateral["device_chain"][
        "supplied_root"]
    other_root = make_certificate("Some Root", hopper.keys.rogue.public_key(),
                                  nv_name("Some Root"), hopper.keys.rogue, hopper.now, ca=True)
    swapped = dataclasses.replace(evidence, endorsements={
        "cert_chain": hopper.chain(with_root=False) + pem(other_root)})
    assert "replaced by the pinned one" in _verify(hopper, swapped, nonce).collateral[
        "device_chain"]["supplied_root"]


def test_cc_state_from_the_log() -> None:
    entry = {"type": CC_STATE_LOG_TYPE, **CC_ON}
    assert local_cc_state(()) == {"cc_state": "not reported"}
    assert local_cc_state(({"type": "other"},)) == {"cc_state": "not reported"}
    assert local_cc_state(({"type": "other"}, entry)) == {
        "cc_mode": "on", "devtools": False, "cc_environment": "prod",
        "cc_state": "attester-declared (NVML), unsigned"}
    devtools = {"type": CC_STATE_LOG_TYPE, "cc_mode": "on", "devtools": "on"}
    assert local_cc_state((devtools,))["devtools"] is True
    assert local_cc_state((devtools,))["cc_environment"] == "unknown"
    with pytest.raises(MalformedEvidence, match="more than one"):
        local_cc_state((entry, entry))
    with pytest.raises(MalformedEvidence, match="on/off"):
        local_cc_state(({"type": CC_STATE_LOG_TYPE, "cc_mode": "yes", "devtools": "off"},))


# --- revocation ------------------------------------------------------------------------------

class _Status(enum.Enum):
    GOOD = "good"


class _Ocsp:
    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[tuple[str, str]] = []

    def status(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> Any:
        name = cert.subject.rfc4514_string()
        self.asked.append((name, issuer.subject.rfc4514_string()))
        return next((answer for key, answer in self.answers.items() if key in name), "good")


def test_ocsp_good_skips_the_leaf(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    ocsp = _Ocsp()
    verified = _verify(hopper, evidence, nonce, ocsp=ocsp)
    assert verified.claims["revocation"] == "good"
    assert [subject for subject, _ in ocsp.asked] == [
        hopper.brom.subject.rfc4514_string(), hopper.ica.subject.rfc4514_string(),
        hopper.identity.subject.rfc4514_string()]
    assert ocsp.asked[-1][1] == hopper.root.subject.rfc4514_string()
    assert [item["status"] for item in verified.collateral["ocsp"]] == ["good"] * 3
    assert "OCSP" in verified.checks[-2].message


@pytest.mark.parametrize(("answers", "state"), [
    ({"BROM": "on_hold"}, "on_hold"), ({"ICA": "unknown"}, "unknown"),
    ({"BROM": "unknown", "Identity": "on_hold"}, "on_hold"), ({"BROM": _Status.GOOD}, "good"),
])
def test_ocsp_states(hopper: NvgpuFixture, answers: dict[str, Any], state: str) -> None:
    evidence, nonce = hopper.evidence()
    assert _verify(hopper, evidence, nonce, ocsp=_Ocsp(answers)).claims["revocation"] == state


def test_ocsp_revoked_and_nonsense(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    with pytest.raises(VerificationFailed, match="Provisioner ICA 1 is revoked"):
        _verify(hopper, evidence, nonce, ocsp=_Ocsp({"ICA": "revoked"}))
    with pytest.raises(ConfigError, match="unknown status"):
        _verify(hopper, evidence, nonce, ocsp=_Ocsp({"BROM": "fine"}))


def test_ocsp_as_a_callable(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    seen: list[datetime] = []

    def check(cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> str:
        seen.append(at)
        return "good"

    assert _verify(hopper, evidence, nonce, ocsp=check).claims["revocation"] == "good"
    assert seen == [hopper.now] * 3


# --- several GPUs ----------------------------------------------------------------------------

def test_multi_gpu(hopper: NvgpuFixture) -> None:
    nonce = bytes(range(32))
    blackwell = NvgpuFixture.create("BLACKWELL", keys=hopper.keys)  # the same test root key
    evidence = multi_evidence([hopper, blackwell], nonce, cc_state=CC_ON)
    verified = _verify(hopper, evidence, nonce)
    claims = verified.claims
    assert claims["gpu_count"] == 2 and claims["nonce"] == nonce.hex()
    assert [gpu["arch"] for gpu in claims["gpus"]] == ["HOPPER", "BLACKWELL"]
    assert claims["cc_mode"] == "on" and "cc_mode" not in claims["gpus"][0]
    assert verified.checks[0].check == "gpu0:chain" and verified.checks[-2].check == \
        "gpu1:revocation"
    assert verified.checks[-1].check == "cc_state" and "DevTools off" in verified.checks[-1].message
    assert claims["cc_state"] == "attester-declared (NVML), unsigned"
    assert len(verified.collateral["gpus"]) == 2


def _entries_evidence(*entries: GpuEvidence) -> Evidence:
    return Evidence("nvgpu", dump_evidence_list(entries))


def test_multi_gpu_rejections(hopper: NvgpuFixture) -> None:
    nonce = bytes(range(32))
    good = hopper.entry(nonce)
    verifier = hopper.verifier()
    cases = [
        (dataclasses.replace(good, arch="BLACKWELL"), VerificationFailed, "another arch"),
        (dataclasses.replace(good, nonce=bytes(32)), MalformedEvidence, "disagrees"),
        (dataclasses.replace(good, arch="LS10"), MalformedEvidence, "not from a GPU"),
        (dataclasses.replace(good, evidence=b"\x11\xe0"), MalformedEvidence, "GPU 1: "),
    ]
    for entry, error, message in cases:
        with pytest.raises(error, match=message):
            verifier.verify(_entries_evidence(good, entry), report_data=nonce, at=hopper.now)
    other = hopper.entry(bytes(32))
    with pytest.raises(VerificationFailed, match="GPU 0: the report answers another nonce"):
        verifier.verify(_entries_evidence(other), report_data=nonce, at=hopper.now)
    with pytest.raises(MalformedEvidence, match="JSON"):
        verifier.verify(Evidence("nvgpu", b"[not json"), report_data=nonce, at=hopper.now)


def test_repeat_verification_uses_the_caches(hopper: NvgpuFixture) -> None:
    from ccattest.platforms.nvgpu import verify

    evidence, nonce = hopper.evidence()
    verifier = hopper.verifier()
    verifier.verify(evidence, report_data=nonce, at=hopper.now)
    before = verify._issued_by.cache_info().hits
    verifier.verify(evidence, report_data=nonce, at=hopper.now)
    assert verify._issued_by.cache_info().hits == before + 4


def test_opaque_extras_become_claims(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence(protected_pcie_status=b"\xaa", feature_flag=b"\x02\x00",
                                      nvdec0_status=b"\xaa", board_id=None, chip_info=b"GH100\0")
    claims = _verify(hopper, evidence, nonce).claims
    assert claims["ppcie"] is True and claims["feature_flag"] == "PPCIE"
    assert claims["nvdec0_enabled"] is True and claims["chip_info"] == "GH100"
    assert "board_id" not in claims
    bare, nonce = hopper.evidence(protected_pcie_status=None, feature_flag=None,
                                  opaque_data_version=None)
    claims = _verify(hopper, bare, nonce).claims
    assert "ppcie" not in claims and "feature_flag" not in claims
    assert claims["opaque_data_version"] is None


def test_missing_chain_is_collateral(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    with pytest.raises(CollateralUnavailable, match="--certs"):
        _verify(hopper, dataclasses.replace(evidence, endorsements={}), nonce)
    assert abi.NONCE_SIZE == 32


def test_rim_comparison_hook(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    seen: list[Any] = []

    def compare(report: abi.GpuReport, claims: Any, at: Any) -> dict[str, Any]:
        seen.append((report.measurements()[1], claims["driver_version"]))
        return {"matched": True, "mismatched": []}

    verified = _verify(hopper, evidence, nonce, rim=compare)
    assert verified.claims["measurements"]["matched"] is True
    assert verified.claims["measurements"]["count"] == 8
    rim_check = verified.checks[-2]
    assert rim_check.check == "rim" and rim_check.message.endswith("reference values: they match")
    assert seen == [(hopper.report(nonce).measurements()[1], "550.90.07")]
    with pytest.raises(VerificationFailed):
        _verify(hopper, evidence, bytes(32), rim=compare)
    assert len(seen) == 1  # never for evidence that did not verify


@pytest.mark.parametrize(("verdict", "words"), [
    ({"matched": False}, "they differ"), ({}, "no verdict")])
def test_rim_check_in_words(hopper: NvgpuFixture, verdict: dict[str, Any], words: str) -> None:
    evidence, nonce = hopper.evidence()
    verified = _verify(hopper, evidence, nonce, rim=lambda report, claims, at: verdict)
    assert verified.checks[-2].message == (
        f"measurements compared with the reference values: {words}")
