"""Real SEV-SNP evidence (vectors/MANIFEST.md): every sample that verifies there verifies here,
at a pinned time inside its certificates' windows, with the claims MANIFEST states.

Sources: google/go-sev-guest, confidential-containers/trustee, virtee/sev, veraison/services
(Apache-2.0); Azure-Samples/microsoft-azure-attestation (MIT).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccattest.errors import CCAttestError, MalformedEvidence, VerificationFailed
from ccattest.evidence import Evidence
from ccattest.platforms.snp.abi import SnpReport, encode_tcb, parse_report
from ccattest.platforms.snp.certs import amd_extensions, der_bytes, load_certificates
from ccattest.platforms.snp.verify import SnpVerifier, _cert, _pss_signed

from .conftest import b64url, manifest_facts, read_json

# AMD issues VCEKs with serial number 0; cryptography warns (certs.py filters it outside tests).
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")

AT = datetime(2025, 6, 1, tzinfo=UTC)  # inside every sample's windows (the VLEK ends 2025-12-10)
VERIFIER = SnpVerifier()
HCL_REPORT = slice(0x20, 0x20 + 0x4A0)  # Azure HCL report: 32-byte header, then the SNP report

GSG = "sev-snp/go-sev-guest/verify/"
TRUSTEE = "sev-snp/trustee/deps/verifier/"
VIRTEE = "sev-snp/virtee-sev/"
AZ = "azure/trustee/deps/verifier/test_data/az-snp-vtpm/"
TSM = "sev-snp/veraison-services/scheme/sevsnp/test/evidence/sevsnp-tsm-report.json"
E2E = "sev-snp/trustee/attestation-service/tests/e2e/evidence.json"

Loader = Callable[[Path], tuple[bytes, dict[str, bytes]]]


def _files(report: str, **endorsements: str) -> Loader:
    def load(vectors: Path) -> tuple[bytes, dict[str, bytes]]:
        data = (vectors / report).read_bytes()
        if report.endswith(".hex"):
            data = bytes.fromhex(data.decode())
        if report.endswith("hcl-report.bin"):
            data = data[HCL_REPORT]
        return data, {key: (vectors / path).read_bytes() for key, path in endorsements.items()}

    return load


def _azure_json(name: str) -> Loader:
    def load(vectors: Path) -> tuple[bytes, dict[str, bytes]]:
        data = read_json(vectors / AZ / name)
        hcl = bytes(data["report"]) if "report" in data else b64url(data["hcl_report"])
        vcek = data["vcek"]
        vcek_bytes = vcek.encode() if vcek.startswith("-----") else b64url(vcek)
        return hcl[HCL_REPORT], {"vcek": vcek_bytes}

    return load


def _tsm(vectors: Path) -> tuple[bytes, dict[str, bytes]]:
    data = read_json(vectors / TSM)
    return b64url(data["outblob"]), {"auxblob": b64url(data["auxblob"])}


def _e2e(vectors: Path) -> tuple[bytes, dict[str, bytes]]:
    """The sev crate's serde JSON, re-serialised with our own abi (a test of to_bytes)."""
    data = read_json(vectors / E2E)
    fields = data["attestation_report"]
    product = "Genoa"

    def tcb(name: str) -> int:
        return encode_tcb({k: v for k, v in fields[name].items() if v is not None}, product)

    report = SnpReport(
        version=fields["version"], guest_svn=fields["guest_svn"], policy=fields["policy"],
        family_id=bytes(fields["family_id"]), image_id=bytes(fields["image_id"]),
        vmpl=fields["vmpl"], signature_algo=fields["sig_algo"], current_tcb=tcb("current_tcb"),
        platform_info=fields["plat_info"], key_info=fields["key_info"],
        report_data=bytes(fields["report_data"]), measurement=bytes(fields["measurement"]),
        host_data=bytes(fields["host_data"]), id_key_digest=bytes(fields["id_key_digest"]),
        author_key_digest=bytes(fields["author_key_digest"]),
        report_id=bytes(fields["report_id"]), report_id_ma=bytes(fields["report_id_ma"]),
        reported_tcb=tcb("reported_tcb"), cpuid_family=fields["cpuid_fam_id"],
        cpuid_model=fields["cpuid_mod_id"], cpuid_stepping=fields["cpuid_step"],
        chip_id=bytes(fields["chip_id"]), committed_tcb=tcb("committed_tcb"),
        current_major=fields["current"]["major"], current_minor=fields["current"]["minor"],
        current_build=fields["current"]["build"],
        committed_major=fields["committed"]["major"],
        committed_minor=fields["committed"]["minor"],
        committed_build=fields["committed"]["build"], launch_tcb=tcb("launch_tcb"),
        signature_r=int.from_bytes(bytes(fields["signature"]["r"]), "little"),
        signature_s=int.from_bytes(bytes(fields["signature"]["s"]), "little"),
    )
    vcek = next(bytes(c["data"]) for c in data["cert_chain"] if c["cert_type"] == "VCEK")
    return report.to_bytes(), {"vcek": vcek}


SAMPLES: dict[str, tuple[str, Loader]] = {
    "go-sev-guest": (GSG + "testdata/attestation.bin", _files(
        GSG + "testdata/attestation.bin", vcek=GSG + "testdata/vcek.testcer",
        cert_chain=GSG + "testdata/milan.testcer")),
    "trustee-vcek": (TRUSTEE + "test_data/snp/test-report.bin", _files(
        TRUSTEE + "test_data/snp/test-report.bin", vcek=TRUSTEE + "test_data/snp/test-vcek.der")),
    "trustee-vlek": (TRUSTEE + "test_data/snp/test-vlek-report.bin", _files(
        TRUSTEE + "test_data/snp/test-vlek-report.bin",
        vlek=TRUSTEE + "test_data/snp/test-vlek.der",
        cert_chain=TRUSTEE + "src/snp/milan_ask_ark_asvk.pem")),
    "trustee-vlek-gsg-chain": (TRUSTEE + "test_data/snp/test-vlek-report.bin", _files(
        TRUSTEE + "test_data/snp/test-vlek-report.bin",
        vlek=TRUSTEE + "test_data/snp/test-vlek.der",
        cert_chain=GSG + "testdata/milanvlek.testcer")),
    "virtee": (VIRTEE + "tests/certs_data/report_milan.hex", _files(
        VIRTEE + "tests/certs_data/report_milan.hex",
        vcek=VIRTEE + "tests/certs_data/vcek_milan.der",
        cert_chain=VIRTEE + "tests/certs_data/cert_chain_milan")),
    "azure-maa-sample": ("azure/azure-attestation-samples/extracted/get-sevsnp-jwt/snp_report.bin",
                         _files("azure/azure-attestation-samples/extracted/get-sevsnp-jwt/"
                                "snp_report.bin",
                                cert_chain="azure/azure-attestation-samples/extracted/"
                                           "get-sevsnp-jwt/vcek_cert_chain.pem")),
    "azure-hcl": (AZ + "hcl-report.bin", _files(AZ + "hcl-report.bin", vcek=AZ + "vcek.pem")),
    "azure-v0": (AZ + "evidence-v0.json", _azure_json("evidence-v0.json")),
    "azure-v1": (AZ + "evidence-v1.json", _azure_json("evidence-v1.json")),
    "azure-v2": (AZ + "evidence-v2.json", _azure_json("evidence-v2.json")),
    "azure-genoa": (AZ + "evidence-genoa.json", _azure_json("evidence-genoa.json")),
    "veraison-tsm": (TSM, _tsm),
    "trustee-e2e-json": (E2E, _e2e),
}


@pytest.mark.vectors
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_verifies_with_manifest_facts(vectors, name):
    row, load = SAMPLES[name]
    report, endorsements = load(vectors)
    facts = manifest_facts(vectors, row)
    verified = VERIFIER.verify(Evidence("snp", report, endorsements),
                               report_data=bytes.fromhex(str(facts["report_data"])), at=AT)
    claims = verified.claims
    for key in ("measurement", "host_data", "chip_id", "vmpl", "guest_svn", "product",
                "signing_key", "version"):
        assert claims[key] == facts[key], key
    reported = {k: v for k, v in claims["reported_tcb"].items() if k != "fmc"}
    assert reported == facts["reported_tcb"]
    assert claims["policy"]["raw"] == facts["policy"]
    assert claims["policy"]["debug"] is facts["debug"]
    assert claims["revocation"] == "not_checked"
    assert verified.attester is None
    assert verified.collateral["ark"]["source"] == "pinned"


@pytest.mark.vectors
def test_bare_vcek_uses_the_bundled_ask(vectors):
    report, endorsements = SAMPLES["trustee-vcek"][1](vectors)
    verified = VERIFIER.verify(Evidence("snp", report, endorsements),
                               report_data=report[0x50:0x90], at=AT)
    assert verified.collateral["ask"]["source"] == "bundled"
    assert verified.collateral["vcek"]["source"] == "evidence:vcek"


@pytest.mark.vectors
def test_auxblob_certificates_come_from_the_table(vectors):
    report, endorsements = _tsm(vectors)
    verified = VERIFIER.verify(Evidence("snp", report, endorsements),
                               report_data=report[0x50:0x90], at=AT)
    assert verified.collateral["vcek"]["source"] == "evidence:auxblob/vcek"
    assert verified.claims["cpuid"] == {"family": 0x19, "model": 0x11, "stepping": 1}
    assert verified.claims["firmware"]["current"] == "1.55.40"


@pytest.mark.vectors
def test_vlek_expired_after_its_one_year(vectors):
    report, endorsements = SAMPLES["trustee-vlek"][1](vectors)
    late = datetime(2025, 12, 11, tzinfo=UTC)
    with pytest.raises(VerificationFailed, match=r"VLEK .* not valid"):
        VERIFIER.verify(Evidence("snp", report, endorsements),
                        report_data=report[0x50:0x90], at=late)


@pytest.mark.vectors
def test_vlek_claims_name_the_cloud_provider(vectors):
    report, endorsements = SAMPLES["trustee-vlek"][1](vectors)
    verified = VERIFIER.verify(Evidence("snp", report, endorsements),
                               report_data=report[0x50:0x90], at=AT)
    assert verified.claims["csp_id"] == "CN=cc-us-east-2.amazonaws.com"
    assert verified.claims["product_name"] == "Milan"
    assert verified.collateral["asvk"]["subject"] == "SEV-VLEK-Milan"


@pytest.mark.vectors
@pytest.mark.parametrize("variant", ["legacy", "new"])
def test_hand_modified_vceks_parse_but_do_not_verify(vectors, variant):
    """trustee's test-vcek-invalid-*: hwID raw (legacy) or OCTET STRING-wrapped (new), both
    000102..3f; their signatures do not verify under ASK-Milan."""
    der = (vectors / TRUSTEE / f"test_data/snp/test-vcek-invalid-{variant}.der").read_bytes()
    extensions = amd_extensions(load_certificates(der)[0])
    assert extensions.hwid == bytes(range(64))
    assert extensions.product_name == "Milan-B0"
    report, _ = SAMPLES["trustee-vcek"][1](vectors)
    with pytest.raises(VerificationFailed, match="not signed by SEV-Milan"):
        VERIFIER.verify(Evidence("snp", report, {"vcek": der}),
                        report_data=report[0x50:0x90], at=AT)


@pytest.mark.vectors
def test_vcek_of_another_chip_is_rejected(vectors):
    report, _ = SAMPLES["trustee-vcek"][1](vectors)
    other = (vectors / GSG / "testdata/vcek.testcer").read_bytes()
    with pytest.raises(VerificationFailed):
        VERIFIER.verify(Evidence("snp", report, {"vcek": other}),
                        report_data=report[0x50:0x90], at=AT)


@pytest.mark.vectors
def test_turin_vcek_extensions_and_chain(vectors):
    der = (vectors / VIRTEE / "tests/certs_data/vcek_turin.der").read_bytes()
    extensions = amd_extensions(load_certificates(der)[0])
    assert extensions.product == "Turin" and extensions.struct_version == 1
    assert extensions.hwid == bytes.fromhex("1e550a8ee5cf9f4d")
    assert extensions.spls == {"fmc": 0, "bootloader": 0, "tee": 0, "snp": 0, "microcode": 9}
    chain = (vectors / VIRTEE / "tests/certs_data/cert_chain_turin").read_bytes()
    ask_der, ark_der = (der_bytes(cert) for cert in load_certificates(chain))
    assert _pss_signed(_cert(der).der, ask_der)
    assert _pss_signed(ask_der, ark_der)
    assert ark_der == VERIFIER.roots["Turin"].der


@pytest.mark.vectors
def test_wrong_report_data_is_rejected(vectors):
    report, endorsements = SAMPLES["virtee"][1](vectors)
    with pytest.raises(VerificationFailed, match="report_data"):
        VERIFIER.verify(Evidence("snp", report, endorsements), report_data=bytes(64), at=AT)


@pytest.mark.vectors
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(0, 0x49F), xor=st.integers(1, 255))
def test_any_mutation_of_a_real_report_is_rejected(vectors, offset, xor):
    report, endorsements = SAMPLES["virtee"][1](vectors)
    mutated = bytearray(report)
    mutated[offset] ^= xor
    with pytest.raises((MalformedEvidence, VerificationFailed)):
        VERIFIER.verify(Evidence("snp", bytes(mutated), endorsements),
                        report_data=report[0x50:0x90], at=AT)


@pytest.mark.vectors
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_real_certificates_give_only_ccattest_errors(vectors, data):
    report, endorsements = SAMPLES["virtee"][1](vectors)
    vcek = bytearray(endorsements["vcek"])
    for _ in range(data.draw(st.integers(1, 4))):
        vcek[data.draw(st.integers(0, len(vcek) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(1, len(vcek)))
    evidence = Evidence("snp", report, {**endorsements, "vcek": bytes(vcek[:cut])})
    with contextlib.suppress(CCAttestError):
        VERIFIER.verify(evidence, report_data=report[0x50:0x90], at=AT)


@pytest.mark.vectors
def test_every_real_report_round_trips(vectors):
    for _, load in SAMPLES.values():
        report, _ = load(vectors)
        assert parse_report(report).to_bytes() == report


@pytest.mark.vectors
def test_reports_replace_only_what_changed(vectors):
    report = parse_report(SAMPLES["go-sev-guest"][1](vectors)[0])
    assert dataclasses.replace(report, vmpl=2).to_bytes()[0x30] == 2


@pytest.mark.vectors
def test_report_cut_from_an_hcl_report_with_what_follows_it(vectors):
    """The SNP report in Azure's HCL report, cut with the 1384 bytes after it (the runtime-data
    header and runtime data), as go-sev-guest accepts it: the first 1184 bytes are verified,
    the rest is noted as unsigned and never read."""
    hcl = (vectors / AZ / "hcl-report.bin").read_bytes()
    _, endorsements = SAMPLES["azure-hcl"][1](vectors)
    exact, longer = hcl[HCL_REPORT], hcl[HCL_REPORT.start:]
    report_data = exact[0x50:0x90]
    plain = VERIFIER.verify(Evidence("snp", exact, endorsements), report_data=report_data, at=AT)
    verified = VERIFIER.verify(Evidence("snp", longer, endorsements), report_data=report_data,
                               at=AT)
    assert verified.claims == plain.claims
    note = next(r for r in verified.checks if r.check == "trailing_bytes")
    assert note.message == f"{len(longer) - 0x4A0} unsigned bytes after the report were ignored"
    assert len(longer) - 0x4A0 == 1384
    # Nothing signs the trailing bytes: changing them changes nothing ...
    garbled = longer[:0x4A0] + bytes(b ^ 0x5A for b in longer[0x4A0:])
    again = VERIFIER.verify(Evidence("snp", garbled, endorsements), report_data=report_data,
                            at=AT)
    assert again.claims == plain.claims
    # ... while the 1184 report bytes stay signed over, trailing bytes or not.
    for offset in (0x90, 0x29F, 0x4A0 - 1):  # measurement, last signed byte, signature
        mutated = bytearray(longer)
        mutated[offset] ^= 0x01
        with pytest.raises((MalformedEvidence, VerificationFailed)):
            VERIFIER.verify(Evidence("snp", bytes(mutated), endorsements),
                            report_data=report_data, at=AT)


@pytest.mark.vectors
def test_vlek_sample_result_expires_with_the_vlek(vectors):
    from ccattest.policy import CommonPolicy, Policy, appraise

    report, endorsements = SAMPLES["trustee-vlek"][1](vectors)
    at = datetime(2025, 12, 10, 12, tzinfo=UTC)  # ten hours before the VLEK's notAfter
    verified = VERIFIER.verify(Evidence("snp", report, endorsements),
                               report_data=report[0x50:0x90], at=at)
    assert verified.valid_until_source == "VLEK notAfter"
    policy = Policy(common=CommonPolicy(result_lifetime_seconds=24 * 3600))
    result = appraise(policy, verified, at)
    assert result.expires_at == verified.valid_until == load_certificates(
        endorsements["vlek"])[0].not_valid_after_utc
    assert result.expires_at < at + timedelta(days=1)
