"""Real NVIDIA GPU evidence (vectors/MANIFEST.md): every sample MANIFEST says verifies does,
at a pinned time, with the nonce MANIFEST gives; the negative samples fail with the right
kind. The device certificates are valid until 9999, so the time matters only for the
not-before dates (2020-2023).

Sources: NVIDIA/nvtrust (BSD-3-Clause), NVIDIA/attestation-sdk, confidential-containers/
trustee, confidentsecurity/go-nvtrust (Apache-2.0).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccattest.errors import MalformedEvidence, VerificationFailed
from ccattest.evidence import Evidence
from ccattest.pipeline import verify_and_appraise
from ccattest.platforms.nvgpu.collect import declared_evidence
from ccattest.platforms.nvgpu.rimcheck import RimCheck
from ccattest.platforms.nvgpu.verify import NvgpuVerifier
from ccattest.policy.load import parse_policy
from ccattest.policy.nvgpu import NvgpuPolicy, appraise_nvgpu
from ccattest.policy.templates import starter_policy
from ccattest.result import AttestationResult, Tier

from .conftest import SAMPLES, SDK, SERIALIZED, TRUSTEE, manifest_facts, read

AT = datetime(2025, 6, 1, tzinfo=UTC)
VERIFIER = NvgpuVerifier()
LGV = "nvtrust-lgv/samples/"
GO = "go-nvtrust/pkg/gonvtrust/mocks/"
LGV_2023 = "nvtrust-lgv-2023/samples/"

PAIRS = [  # (report, chain): each verifies (MANIFEST: sig=OK chain=OK)
    (LGV + "hopperAttestationReport.txt", LGV + "hopperCertChain.txt"),
    (LGV_2023 + "attestationReport.txt", LGV_2023 + "gpuAkCertChain.txt"),
    (SDK + "hopperAttestationReport.txt", SDK + "hopperCertChain.txt"),
    (SAMPLES + "hopperAttestationReport.txt", SAMPLES + "hopperCertChain.txt"),
    (SAMPLES + "hopperAttestationReportExpired.txt", SAMPLES + "hopperCertChainExpired.txt"),
    (SAMPLES + "blackwellAttestationReport.txt", SAMPLES + "blackwellCertChain.txt"),
    (TRUSTEE + "hopperAttestationReport.txt", TRUSTEE + "hopper_cert_chain_case1.txt"),
    (TRUSTEE + "hopper_coco_report1.txt", TRUSTEE + "hopper_coco_certs1.txt"),
    (GO + "attestationReport.txt", GO + "gpuAkCertChain.txt"),
]
LISTS = [SERIALIZED + "hopper_evidence.json", SERIALIZED + "hopper_evidence_cert_hold.json",
         SDK + "evidence_hopper_590_12.json"]
ARCH = {"Hopper H100 (GH100)": "HOPPER", "Blackwell (GB100)": "BLACKWELL"}


def _evidence(vectors: Path, report: str, chain: str) -> Evidence:
    return Evidence("nvgpu", read(vectors, report), {"cert_chain": read(vectors, chain)})


@pytest.mark.parametrize(("report", "chain"), PAIRS)
def test_samples_verify(vectors: Path, report: str, chain: str) -> None:
    facts = manifest_facts(vectors, report)
    assert facts.outcome.startswith("sig=OK chain=OK root=NVIDIA Device Identity CA:yes")
    verified = VERIFIER.verify(_evidence(vectors, report, chain),
                               report_data=bytes.fromhex(facts.nonce), at=AT)
    claims = verified.claims
    assert claims["arch"] == ARCH[facts.arch]
    assert (claims["driver_version"], claims["vbios_version"]) == (facts.driver, facts.vbios)
    assert "_".join((claims["project"], claims["project_sku"], claims["chip_sku"])) == \
        facts.project
    assert claims["measurements"]["count"] == 64
    assert claims["revocation"] == "not_checked" and "cc_mode" not in claims
    assert claims["cert_chain"][-1]["subject"] == "O=NVIDIA,CN=NVIDIA Device Identity CA"
    fwid_check = verified.checks[2].message
    assert ("no FWID" in fwid_check) == ("fwid=n/a" in facts.outcome)
    assert verified.collateral["root"]["source"] == "pinned"


@pytest.mark.parametrize("relative", LISTS)
def test_sdk_serialized_evidence_verifies(vectors: Path, relative: str) -> None:
    facts = manifest_facts(vectors, relative)
    evidence = Evidence("nvgpu", read(vectors, relative))
    claims = VERIFIER.verify(evidence, report_data=bytes.fromhex(facts.nonce), at=AT).claims
    (gpu,) = claims["gpus"]
    assert claims["gpu_count"] == 1
    assert (gpu["arch"], gpu["driver_version"], gpu["vbios_version"]) == (
        "HOPPER", facts.driver, facts.vbios)
    assert gpu["ppcie"] is ("PPCIe=aa" in facts.what)


def test_sample_claims_in_detail(vectors: Path) -> None:
    facts = manifest_facts(vectors, SERIALIZED + "hopper_evidence.json")
    claims = VERIFIER.verify(Evidence("nvgpu", read(vectors, SERIALIZED + "hopper_evidence.json")),
                             report_data=bytes.fromhex(facts.nonce), at=AT).claims["gpus"][0]
    assert claims["feature_flag"] == "PPCIE" and claims["ppcie"] is True
    assert claims["opaque_data_version"] == 1 and claims["nvdec0_enabled"] is False
    assert claims["project"] == "G520" and claims["chip_sku"] == "885"
    assert len(claims["fwid"]) == 96


def test_samples_appraise_under_a_policy(vectors: Path) -> None:
    report, chain = PAIRS[0]
    verified = VERIFIER.verify(_evidence(vectors, report, chain),
                               report_data=bytes.fromhex(manifest_facts(vectors, report).nonce),
                               at=AT)
    section = NvgpuPolicy(architectures=["HOPPER"], min_driver_version="550",
                          min_vbios_version="96.00.9F.00.00", require_rim_match=False,
                          require_cc_mode=False)
    appraisal = appraise_nvgpu(section, verified.claims)
    assert all(reason.passed for reason in appraisal.reasons)
    assert appraisal.vector.status.value == "affirming"


NEGATIVES = [  # (report, chain, error, message)
    (SAMPLES + "hopperAttestationReportInvalidSignature.txt",
     SAMPLES + "hopperCertChainExpired.txt", VerificationFailed, "FWID differs"),
    (GO + "attestationReport.txt", GO + "invalidCertChain.txt", VerificationFailed,
     "not issued by"),
    (LGV + "hopperAttestationReport.txt", TRUSTEE + "hopper_cert_chain_case2.txt",
     VerificationFailed, "no device certificate"),
    (LGV + "hopperAttestationReport.txt", TRUSTEE + "hopper_cert_chain_case3.txt",
     VerificationFailed, "BROM is not issued by NVIDIA GH100 Identity"),
    (LGV + "hopperAttestationReport.txt", TRUSTEE + "hopper_cert_chain_case4.txt",
     VerificationFailed, "leaf is missing"),
    (LGV + "hopperAttestationReport.txt", TRUSTEE + "hopper_signing_cert.pem",
     VerificationFailed, "not issued by NVIDIA Device Identity CA"),
    (LGV + "hopperAttestationReport.txt", SDK + "hopperCertChain.txt", VerificationFailed,
     "FWID differs"),  # another GPU's chain
    (SDK + "switchAttestationReport.txt", SDK + "switchCertChain.txt", MalformedEvidence,
     "vbios"),
]


@pytest.mark.parametrize(("report", "chain", "error", "message"), NEGATIVES)
def test_negative_samples(vectors: Path, report: str, chain: str, error: type,
                          message: str) -> None:
    nonce = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
    if report.startswith(GO):
        nonce = bytes.fromhex(manifest_facts(vectors, report).nonce)
    with pytest.raises(error, match=message):
        VERIFIER.verify(_evidence(vectors, report, chain), report_data=nonce, at=AT)


def test_wrong_nonce(vectors: Path) -> None:
    report, chain = PAIRS[0]
    nonce = bytes.fromhex(manifest_facts(vectors, LGV_2023 + "attestationReport.txt")
                          .nonce)  # NVIDIA's test_no_gpu default nonce: not this report's
    with pytest.raises(VerificationFailed, match="another nonce"):
        VERIFIER.verify(_evidence(vectors, report, chain), report_data=nonce, at=AT)


@pytest.mark.parametrize("offset", [4, 100, 2000, -200, -1])
def test_mutated_report(vectors: Path, offset: int) -> None:
    report, chain = PAIRS[0]
    raw = bytearray(bytes.fromhex(read(vectors, report).decode()))
    raw[offset] ^= 0x40
    nonce = bytes.fromhex(manifest_facts(vectors, report).nonce)
    evidence = Evidence("nvgpu", bytes(raw), {"cert_chain": read(vectors, chain)})
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        VERIFIER.verify(evidence, report_data=nonce, at=AT)


def test_before_the_chain_existed(vectors: Path) -> None:
    report, chain = PAIRS[5]  # Blackwell certificates start 2023-06-20
    nonce = bytes.fromhex(manifest_facts(vectors, report).nonce)
    with pytest.raises(VerificationFailed, match="not valid at the verification time"):
        VERIFIER.verify(_evidence(vectors, report, chain), report_data=nonce,
                        at=datetime(2023, 1, 1, tzinfo=UTC))


def test_switch_evidence_list_is_not_gpu_evidence(vectors: Path) -> None:
    evidence = Evidence("nvgpu", read(vectors, SERIALIZED + "multi_switch_ls10.json"))
    with pytest.raises(MalformedEvidence, match="not from a GPU"):
        VERIFIER.verify(evidence, report_data=bytes(32), at=AT)


def test_invalid_signature_sample_fails_its_signature_too(vectors: Path) -> None:
    """MANIFEST: sig=FAIL as well as FWID mismatch; the verifier stops at the FWID, so check
    the signature on its own here."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from ccattest.platforms.nvgpu.abi import parse_report, report_bytes
    from ccattest.platforms.nvgpu.certs import load_chain

    raw = report_bytes(read(vectors, SAMPLES + "hopperAttestationReportInvalidSignature.txt"))
    report = parse_report(raw)
    leaf = load_chain(read(vectors, SAMPLES + "hopperCertChainExpired.txt"))[0]
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    with pytest.raises(InvalidSignature):
        key.verify(encode_dss_signature(*report.signature_rs), report.signed_bytes(),
                   ec.ECDSA(hashes.SHA384()))


def test_full_positive_with_nvidias_test_rims(vectors: Path) -> None:
    """MANIFEST: the 2023 sample pairs with Driver_RIM_test_no_gpu and the VBIOS test RIM:
    signature, chain, nonce and every active measurement, at the RIMs' pinned time."""
    from ccattest.platforms.nvgpu import rim

    at = datetime(2023, 7, 15, tzinfo=UTC)
    driver = rim.verify_rim(read(vectors, LGV + "Driver_RIM_test_no_gpu.swidtag"), at=at)
    vbios = rim.verify_rim(read(vectors, LGV + "1010_0200_882_96005E0001_test_no_gpu.swidtag"),
                           at=at)

    def compare(report, claims, at):  # type: ignore[no-untyped-def]
        return rim.compare(driver, vbios, report.measurements(),
                           nvdec0_enabled=bool(claims["nvdec0_enabled"]),
                           driver_version=claims["driver_version"],
                           vbios_version=claims["vbios_version"])

    report = LGV_2023 + "attestationReport.txt"
    verified = NvgpuVerifier(rim=compare).verify(
        _evidence(vectors, report, LGV_2023 + "gpuAkCertChain.txt"),
        report_data=bytes.fromhex(manifest_facts(vectors, report).nonce), at=at)
    measurements = verified.claims["measurements"]
    assert measurements["matched"] is True and measurements["skipped"] == [35]
    appraisal = appraise_nvgpu(NvgpuPolicy(require_cc_mode=False), verified.claims)
    assert appraisal.vector.status.value == "affirming"


# --- a real GPU under the starter policy: the declared CC state decides ---------------------------

def _pinned(vectors: Path, relative: str) -> datetime:
    """The time MANIFEST pins a RIM's verification at ("at pinned 2023-07-12 06:10:12")."""
    row = next(line for line in (vectors / "MANIFEST.md").read_text(encoding="utf-8")
               .splitlines() if line.startswith(f"| {relative} |"))
    stamp = re.search(r"pinned (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", row)
    assert stamp is not None, row
    return datetime.fromisoformat(stamp.group(1)).replace(tzinfo=UTC)


def _starter_verdict(vectors: Path, cc_state: dict[str, str] | None) -> AttestationResult:
    """NVIDIA's 2023 sample (report, chain, its two test RIMs) in an envelope, as `ccattest
    verify` reads it, judged by the policy `ccattest policy init nvgpu` writes."""
    driver = LGV + "Driver_RIM_test_no_gpu.swidtag"
    rims = [read(vectors, driver), read(vectors, LGV + "1010_0200_882_96005E0001_test_no_gpu"
                                                        ".swidtag")]
    report = LGV_2023 + "attestationReport.txt"
    evidence = declared_evidence(read(vectors, report),
                                 read(vectors, LGV_2023 + "gpuAkCertChain.txt"),
                                 cc_state=cc_state)
    envelope = Evidence.from_json(evidence.to_json())
    policy = parse_policy(starter_policy(["nvgpu"], []))
    return verify_and_appraise(envelope, NvgpuVerifier(rim=RimCheck(rims)), policy,
                               report_data=bytes.fromhex(manifest_facts(vectors, report).nonce),
                               at=_pinned(vectors, driver))


def test_real_gpu_with_declared_cc_state_is_affirming_under_the_starter_policy(
        vectors: Path) -> None:
    result = _starter_verdict(vectors, {"cc_mode": "on", "devtools": "off",
                                        "environment": "prod"})
    assert result.status is Tier.AFFIRMING, [r for r in result.reasons if not r.passed]
    cc = next(reason for reason in result.reasons if reason.check == "cc_mode")
    assert cc.passed and "as the attester declared it" in cc.message
    assert cc.found == "CC mode on, DevTools off"


def test_real_gpu_without_cc_state_only_warns_and_says_why(vectors: Path) -> None:
    result = _starter_verdict(vectors, None)
    assert result.status is Tier.WARNING
    (cc,) = [reason for reason in result.reasons if not reason.passed]
    assert cc.check == "cc_mode" and cc.found == "CC mode not reported"
    assert cc.message.startswith("CC mode not reported: the evidence carries no CC state")


def test_real_gpu_declared_in_devtools_mode_is_refused(vectors: Path) -> None:
    result = _starter_verdict(vectors, {"cc_mode": "on", "devtools": "on"})
    assert result.status is Tier.CONTRAINDICATED
    (cc,) = [reason for reason in result.reasons if not reason.passed]
    assert cc.found == "CC mode on, DevTools on" and cc.message.startswith("DevTools mode")
