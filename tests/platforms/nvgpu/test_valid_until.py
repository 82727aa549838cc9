"""A GPU verdict lasts no longer than what it rested on: VerifiedClaims.valid_until is the
earliest of the device chain's notAfter dates, the OCSP answers' nextUpdate, the RIM signing
certificates' notAfter (native verifier) and the tokens' exp (NRAS); through the pipeline a
result's expires_at follows it when the policy's lifetime is longer."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from lxml import etree

from ccattest.errors import ConfigError
from ccattest.evidence import Evidence
from ccattest.pipeline import verify_and_appraise
from ccattest.platforms.nvgpu.ocsp import OcspClient, OcspResult
from ccattest.platforms.nvgpu.rimcheck import RimCheck
from ccattest.platforms.nvgpu.verify import RIM_VALIDITY, NvgpuVerifier
from ccattest.policy.load import parse_policy
from ccattest.policy.templates import starter_policy
from ccattest.testing.nras import NrasFixture
from ccattest.testing.nvgpu import NvgpuFixture, multi_evidence
from ccattest.testing.nvidia_server import NvidiaServer

from .conftest import manifest_facts, read

LGV = "nvtrust-lgv/samples/"
DRIVER_RIM = LGV + "Driver_RIM_test_no_gpu.swidtag"
VBIOS_RIM = LGV + "1010_0200_882_96005E0001_test_no_gpu.swidtag"
REPORT = "nvtrust-lgv-2023/samples/attestationReport.txt"
CHAIN = "nvtrust-lgv-2023/samples/gpuAkCertChain.txt"
RIM_PINNED = datetime(2023, 7, 12, 6, 10, 12, tzinfo=UTC)  # MANIFEST: the driver RIM's pin
WEEK = 7 * 24 * 3600  # the longest result lifetime a policy may set
THIS_UPDATE = datetime(2024, 1, 1, tzinfo=UTC)


# --- synthetic GPUs: the device chain and OCSP ---------------------------------------------------

def test_without_ocsp_or_rims_the_device_chain_bounds_the_verdict(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    verified = hopper.verifier().verify(evidence, report_data=nonce, at=hopper.now)
    # the fixture issues every device certificate for ten years, the root for thirty: a tie
    # among them goes to the leaf, the first listed
    assert verified.valid_until == hopper.leaf.not_valid_after_utc
    assert verified.valid_until_source == "GH100 A01 GSP FMC LF notAfter"

    short = hopper.issue_leaf(days=40)  # same key and FWID: the report still verifies
    shorter = dataclasses.replace(evidence, endorsements={"cert_chain": hopper.chain(short)})
    verified = hopper.verifier().verify(shorter, report_data=nonce, at=hopper.now)
    assert verified.valid_until == short.not_valid_after_utc == hopper.now + timedelta(days=40)


@pytest.fixture
def nvidia(hopper: NvgpuFixture) -> Iterator[NvidiaServer]:
    with NvidiaServer(now=hopper.now) as server:
        yield server


def _client(server: NvidiaServer, now: datetime) -> OcspClient:
    return OcspClient(server.ocsp_url, now=lambda: now, sleep=lambda seconds: None)


def test_the_soonest_ocsp_next_update_bounds_the_verdict(hopper: NvgpuFixture,
                                                         nvidia: NvidiaServer) -> None:
    brom, ica, identity = hopper.ocsp_responders()
    brom.validity = None  # an answer without nextUpdate bounds nothing
    ica.next_update = hopper.now + timedelta(hours=2)  # identity: the default, now + 23 h
    for responder in (brom, ica, identity):
        nvidia.add_responder(responder)
    evidence, nonce = hopper.evidence()
    with _client(nvidia, hopper.now) as client:
        verified = hopper.verifier(ocsp=client).verify(evidence, report_data=nonce,
                                                       at=hopper.now)
    assert verified.claims["revocation"] == "good"
    assert verified.valid_until == hopper.now + timedelta(hours=2)
    assert verified.valid_until_source == "OCSP NVIDIA GH100 Provisioner ICA 1 nextUpdate"
    assert [item["next_update"] for item in verified.collateral["ocsp"]] == [
        None, (hopper.now + timedelta(hours=2)).isoformat(),
        (hopper.now + timedelta(hours=23)).isoformat()]


def test_ocsp_answers_without_next_update_leave_the_device_chain(hopper: NvgpuFixture,
                                                                  nvidia: NvidiaServer) -> None:
    for responder in hopper.ocsp_responders(validity=None):
        nvidia.add_responder(responder)
    evidence, nonce = hopper.evidence()
    with _client(nvidia, hopper.now) as client:
        verified = hopper.verifier(ocsp=client).verify(evidence, report_data=nonce,
                                                       at=hopper.now)
    assert verified.claims["revocation"] == "good"
    assert verified.valid_until == hopper.leaf.not_valid_after_utc
    assert [item["next_update"] for item in verified.collateral["ocsp"]] == [None] * 3


def _result(status: str, next_update: Any) -> OcspResult:
    """What OcspClient.check answers (the verifier prefers it to a bare status)."""
    return OcspResult(status, THIS_UPDATE, next_update, None, None, "test")  # type: ignore[arg-type]


def test_ocsp_answers_from_callables_and_status_methods(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    soon = hopper.now + timedelta(hours=5)

    def answer(cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> OcspResult:
        return _result("good", soon if "Identity" in cert.subject.rfc4514_string() else None)

    verified = hopper.verifier(ocsp=answer).verify(evidence, report_data=nonce, at=hopper.now)
    assert (verified.valid_until, verified.valid_until_source) == (
        soon, "OCSP NVIDIA GH100 Identity nextUpdate")

    class StatusOnly:  # the older checker protocol: a bare status, so no bound
        def status(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> str:
            return "good"

    verified = hopper.verifier(ocsp=StatusOnly()).verify(evidence, report_data=nonce,
                                                         at=hopper.now)
    assert verified.valid_until == hopper.leaf.not_valid_after_utc


def test_an_ocsp_next_update_must_be_an_aware_datetime(hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    for bad in (datetime(2030, 1, 1), "2030-01-01"):  # naive on purpose
        with pytest.raises(ConfigError, match="OCSP nextUpdate"):
            hopper.verifier(ocsp=lambda cert, issuer, at, bad=bad: _result("good", bad)).verify(
                evidence, report_data=nonce, at=hopper.now)
    with pytest.raises(ConfigError, match="unknown status"):
        hopper.verifier(ocsp=lambda cert, issuer, at: _result("fine", None)).verify(
            evidence, report_data=nonce, at=hopper.now)


def test_several_gpus_take_the_earliest_and_name_the_gpu(hopper: NvgpuFixture) -> None:
    nonce = bytes(range(32))
    blackwell = NvgpuFixture.create("BLACKWELL", keys=hopper.keys)
    soon = hopper.now + timedelta(hours=3)

    def answer(cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> OcspResult:
        name = cert.subject.rfc4514_string()
        return _result("good", soon if "GB100 A01 GSP BROM" in name
                       else hopper.now + timedelta(hours=9))

    verified = hopper.verifier(ocsp=answer).verify(
        multi_evidence([hopper, blackwell], nonce), report_data=nonce, at=hopper.now)
    assert verified.valid_until == soon
    assert verified.valid_until_source == "GPU 1: OCSP GB100 A01 GSP BROM nextUpdate"
    unbounded = hopper.verifier().verify(multi_evidence([hopper, blackwell], nonce),
                                         report_data=nonce, at=hopper.now)
    assert unbounded.valid_until_source == "GPU 0: GH100 A01 GSP FMC LF notAfter"


# --- the RIM hook ---------------------------------------------------------------------------------

def test_the_rim_hook_bounds_the_verdict_and_its_bounds_are_no_claims(
        hopper: NvgpuFixture) -> None:
    evidence, nonce = hopper.evidence()
    signer_end = hopper.now + timedelta(days=30)
    bounds = [("VBIOS RIM signing certificate notAfter", signer_end),
              ("driver RIM signing certificate notAfter", signer_end + timedelta(days=1))]

    def compare(report: Any, claims: Any, at: datetime) -> dict[str, Any]:
        return {"matched": True, RIM_VALIDITY: bounds}

    verified = hopper.verifier(rim=compare).verify(evidence, report_data=nonce, at=hopper.now)
    assert (verified.valid_until, verified.valid_until_source) == (
        signer_end, "VBIOS RIM signing certificate notAfter")
    assert RIM_VALIDITY not in verified.claims["measurements"]
    assert verified.claims["measurements"]["matched"] is True

    # an OCSP answer sooner than the RIMs wins over them
    soon = hopper.now + timedelta(hours=1)
    verified = hopper.verifier(rim=compare, ocsp=lambda cert, issuer, at: _result(
        "good", soon)).verify(evidence, report_data=nonce, at=hopper.now)
    assert (verified.valid_until, verified.valid_until_source) == (
        soon, "OCSP GH100 A01 GSP BROM nextUpdate")


@pytest.mark.parametrize("bad", [
    "2030-01-01", 5, [("name",)], [(7, datetime(2030, 1, 1, tzinfo=UTC))],
    [("name", datetime(2030, 1, 1))],  # naive on purpose
    [("name", "2030-01-01")], ["ab"],
])
def test_a_rim_hook_with_malformed_bounds_is_a_config_error(hopper: NvgpuFixture,
                                                            bad: Any) -> None:
    evidence, nonce = hopper.evidence()
    verifier = hopper.verifier(rim=lambda report, claims, at: {RIM_VALIDITY: bad})
    with pytest.raises(ConfigError):
        verifier.verify(evidence, report_data=nonce, at=hopper.now)


# --- NVIDIA's 2023 sample with its two test RIMs -------------------------------------------------

def _rim_certificate_ends(xml: bytes) -> list[datetime]:
    """Every certificate in a RIM's KeyInfo, read straight from the XML (not via rim.py)."""
    ns = {"ds": "http://www.w3.org/2000/09/xmldsig#"}
    texts = etree.fromstring(xml).findall(".//ds:X509Certificate", ns)
    assert texts, "a RIM signature carries its chain"
    return [x509.load_der_x509_certificate(base64.b64decode("".join(text.text.split())))
            .not_valid_after_utc for text in texts]


def _sample(vectors: Path) -> tuple[Evidence, bytes, list[bytes]]:
    evidence = Evidence("nvgpu", read(vectors, REPORT), {"cert_chain": read(vectors, CHAIN)})
    rims = [read(vectors, DRIVER_RIM), read(vectors, VBIOS_RIM)]
    return evidence, bytes.fromhex(manifest_facts(vectors, REPORT).nonce), rims


def test_real_rims_bound_the_verdict_by_their_earliest_certificate(vectors: Path) -> None:
    evidence, nonce, rims = _sample(vectors)
    expected = min(end for xml in rims for end in _rim_certificate_ends(xml))
    assert expected == datetime(2025, 6, 22, 9, 38, 54, tzinfo=UTC)  # MANIFEST: VBIOS window
    verified = NvgpuVerifier(rim=RimCheck(rims)).verify(evidence, report_data=nonce,
                                                        at=RIM_PINNED)
    assert verified.claims["measurements"]["matched"] is True
    assert verified.valid_until == expected
    assert verified.valid_until_source == "VBIOS RIM signing certificate notAfter"
    assert RIM_VALIDITY not in verified.claims["measurements"]

    # without RIMs only the device certificates (valid to 9999) bound it
    bare = NvgpuVerifier().verify(evidence, report_data=nonce, at=RIM_PINNED)
    assert bare.valid_until is not None and bare.valid_until.year == 9999


def test_a_sooner_ocsp_answer_bounds_the_real_sample(vectors: Path) -> None:
    evidence, nonce, rims = _sample(vectors)
    soon = RIM_PINNED + timedelta(hours=12)

    def answer(cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> OcspResult:
        return _result("good", soon if "Provisioner ICA" in cert.subject.rfc4514_string()
                       else soon + timedelta(days=1))

    verified = NvgpuVerifier(rim=RimCheck(rims), ocsp=answer).verify(
        evidence, report_data=nonce, at=RIM_PINNED)
    assert verified.valid_until == soon
    assert verified.valid_until_source.startswith("OCSP NVIDIA GH100 Provisioner ICA")


def _lifetime(seconds: int) -> Any:
    policy = parse_policy(starter_policy(["nvgpu"], []))
    return policy.model_copy(update={"common": policy.common.model_copy(
        update={"result_lifetime_seconds": seconds})})


def test_the_pipeline_result_expires_with_the_rim_certificates(vectors: Path) -> None:
    evidence, nonce, rims = _sample(vectors)
    bound = min(end for xml in rims for end in _rim_certificate_ends(xml))
    at = bound - timedelta(days=1)  # the RIMs still hold; a week's lifetime would outlive them
    verifier = NvgpuVerifier(rim=RimCheck(rims))
    result = verify_and_appraise(evidence, verifier, _lifetime(WEEK), report_data=nonce, at=at)
    assert result.verified and result.issued_at == at
    assert result.expires_at == bound
    assert result.expiry_source == "VBIOS RIM signing certificate notAfter"

    short = verify_and_appraise(evidence, verifier, _lifetime(3600), report_data=nonce, at=at)
    assert short.expires_at == at + timedelta(hours=1)
    assert short.expiry_source == "the policy's 3600 s result lifetime"


# --- NRAS -----------------------------------------------------------------------------------------

NRAS = NrasFixture.create()


def _nras_verdict(**changes: Any) -> Any:
    eat = NRAS.eat(gpus=2, **changes)
    return NRAS.verifier().verify(NRAS.evidence(eat), report_data=NRAS.nonce, at=NRAS.now)


def test_nras_verdicts_end_with_their_earliest_token() -> None:
    issued = int(NRAS.now.timestamp()) - 60
    default_exp = datetime.fromtimestamp(issued + 3600, UTC)
    verified = _nras_verdict()  # every token expires at once: the overall one is named
    assert (verified.valid_until, verified.valid_until_source) == (
        default_exp, "NRAS overall token exp")

    sooner = issued + 600
    verified = _nras_verdict(gpu_changes={"exp": sooner})
    assert (verified.valid_until, verified.valid_until_source) == (
        datetime.fromtimestamp(sooner, UTC), "NRAS GPU-0 token exp")

    verified = _nras_verdict(overall_changes={"exp": sooner},
                             gpu_changes={"exp": sooner + 60})
    assert (verified.valid_until, verified.valid_until_source) == (
        datetime.fromtimestamp(sooner, UTC), "NRAS overall token exp")


def test_nras_result_expires_with_its_token_through_the_pipeline() -> None:
    from ccattest.policy.model import Policy

    sooner = int(NRAS.now.timestamp()) + 300
    eat = NRAS.eat(gpus=1, gpu_changes={"exp": sooner})
    policy = Policy.model_validate({"common": {"result_lifetime_seconds": 3600}})
    result = verify_and_appraise(NRAS.evidence(eat), NRAS.verifier(), policy,
                                 report_data=NRAS.nonce, at=NRAS.now)
    assert result.expires_at == datetime.fromtimestamp(sooner, UTC)
    assert result.expiry_source == "NRAS GPU-0 token exp"
