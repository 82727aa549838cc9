"""Azure CVM verification: trustee samples at pinned times, every broken layer, the trustee
JSON loader, and the attester against a fake TPM that answers canned responses."""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccattest.errors import (
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    PlatformUnavailable,
)
from ccattest.evidence import Evidence
from ccattest.platforms.azure import tpm
from ccattest.platforms.azure.vtpm import (
    AzureCvmAttester,
    AzureCvmVerifier,
    AzureSnpVerifier,
    AzureTdxVerifier,
    evidence_from_trustee_json,
)
from ccattest.testing.azure import AzureFixture, trustee_json

pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")

AT = datetime(2025, 10, 1, tzinfo=UTC)  # inside every sample's certificates and the PCK chain
TRUSTEE = "azure/trustee/deps/verifier/test_data/"
V2_NONCE = bytes.fromhex("982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9a"
                         "a398f647caa2338748cd0fd9f5f819ef")
SNP = AzureFixture.create("azure-snp")
TDX = AzureFixture.create("azure-tdx")


@pytest.mark.parametrize(("name", "nonce", "pcr0"), [
    ("az-snp-vtpm/evidence-v0.json", b"challenge", "e15c4479"),
    ("az-snp-vtpm/evidence-v1.json", b"challenge", "e15c4479"),
    ("az-snp-vtpm/evidence-v2.json", V2_NONCE, "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34"
                                               "fca160c8cca7a6a7"),
])
def test_trustee_snp_samples(vectors: Path, name: str, nonce: bytes, pcr0: str) -> None:
    evidence = evidence_from_trustee_json((vectors / TRUSTEE / name).read_bytes())
    result = AzureSnpVerifier().verify(evidence, report_data=nonce, at=AT)
    claims = result.claims
    assert result.platform == "azure-snp" and claims["pcrs"]["0"].startswith(pcr0)
    assert claims["snp"]["product"] == "Milan" and claims["snp"]["report_data"].startswith(
        claims["hcl"]["runtime_digest"])
    assert claims["vm_configuration"]["secure-boot"] is True
    assert claims["ak_pub"]["bits"] == 2048 and claims["tpm"]["firmware"] == "2020031200120003"
    assert all(check.passed for check in result.checks)


def test_trustee_genoa_sample(vectors: Path) -> None:
    evidence = evidence_from_trustee_json(
        (vectors / TRUSTEE / "az-snp-vtpm/evidence-genoa.json").read_text())
    nonce = tpm.parse_attest(evidence.endorsements["tpm_quote"]).extra_data  # none stated
    result = AzureCvmVerifier("azure-snp").verify(evidence, report_data=nonce, at=AT)
    assert result.claims["snp"]["product"] == "Genoa"
    assert result.claims["vm_configuration"]["tpm-persisted"] is True


def test_trustee_hcl_report_with_quote_file(vectors: Path) -> None:
    folder = vectors / TRUSTEE / "az-snp-vtpm"
    quote = json.loads((folder / "tpm-quote-v1.json").read_text())
    evidence = Evidence("azure-snp", (folder / "hcl-report.bin").read_bytes(), {
        "cert_chain": (folder / "vcek.pem").read_bytes(),
        "tpm_quote": bytes.fromhex(quote["message"]),
        "tpm_signature": bytes.fromhex(quote["signature"]),
        "pcrs": json.dumps(quote["pcrs"]).encode()})
    claims = AzureSnpVerifier().verify(evidence, report_data=b"challenge", at=AT).claims
    assert claims["snp"]["chip_id"].startswith("19752a44")
    assert claims["snp"]["measurement"].startswith("9ac48fca")


@pytest.mark.parametrize("name", ["az-tdx-vtpm/evidence-v0.json", "az-tdx-vtpm/evidence-v1.json"])
def test_trustee_tdx_samples(vectors: Path, name: str) -> None:
    evidence = evidence_from_trustee_json((vectors / TRUSTEE / name).read_bytes())
    assert evidence.platform == "azure-tdx"
    # The vectors hold no TCB Info for FMSPC 00806f050000: full verification refuses ...
    with pytest.raises(CollateralUnavailable):
        AzureTdxVerifier().verify(evidence, report_data=b"challenge", at=AT)
    # ... and the explicit chain-only mode checks everything but the TCB status.
    result = AzureTdxVerifier(tdx_chain_only=True).verify(evidence, report_data=b"challenge",
                                                          at=AT)
    tdx = result.claims["tdx"]
    assert tdx["mr_td"].startswith("024a32b0") and tdx["fmspc"] == "00806f050000"
    assert tdx["tcb_status"] is None and tdx["report_data"].startswith("9734504f")
    assert [c.check for c in result.checks if not c.passed] == ["tdx_tcb"]
    assert result.claims["pcrs"]["0"].startswith("782b20b1")


@pytest.mark.parametrize("fixture", [SNP, TDX], ids=["snp", "tdx"])
def test_synthetic_verifies(fixture: AzureFixture) -> None:
    evidence, nonce = fixture.evidence()
    result = fixture.verifier().verify(evidence, report_data=nonce, at=fixture.now)
    name = "snp" if fixture.snp else "tdx"
    assert result.claims[name] and len(result.claims["pcrs"]) == 24
    assert result.claims["nonce"] == nonce.hex() and "HCLAkPub" in result.claims["runtime_data"][
        "keys"]
    assert all(check.passed for check in result.checks)
    # the CVM's verdict lasts no longer than its hardware report's collateral
    assert result.valid_until is not None and result.valid_until > fixture.now
    assert result.valid_until_source is not None
    assert result.valid_until_source.startswith(f"{name.upper()} ")


def test_tdx_collateral_given_to_the_verifier() -> None:
    evidence, nonce = TDX.evidence()
    assert TDX.tdx is not None
    endorsements = {k: v for k, v in evidence.endorsements.items() if k != "tdx_collateral"}
    verifier = AzureCvmVerifier("azure-tdx", tdx_verifier=TDX.tdx.verifier(TDX.tdx.collateral()))
    result = verifier.verify(dataclasses.replace(evidence, endorsements=endorsements),
                             report_data=nonce, at=TDX.now)
    assert result.claims["tdx"]["tcb_status"]
    chain_only = TDX.verifier(tdx_chain_only=True).verify(
        dataclasses.replace(evidence, endorsements=endorsements), report_data=nonce, at=TDX.now)
    assert chain_only.claims["tdx"]["tcb_status"] is None


CASES = [(f"{p}-{c.name}", c, f) for p, f in (("snp", SNP), ("tdx", TDX))
         for c in f.broken_cases()]


@pytest.mark.parametrize(("name", "case", "fixture"), CASES, ids=[c[0] for c in CASES])
def test_broken(name: str, case: object, fixture: AzureFixture) -> None:
    verifier = fixture.verifier()
    with pytest.raises(case.error):  # type: ignore[attr-defined]
        verifier.verify(case.evidence, report_data=case.report_data,  # type: ignore[attr-defined]
                        at=case.at)  # type: ignore[attr-defined]


def test_tdx_padding_and_types() -> None:
    evidence, nonce = TDX.evidence()
    padded = bytearray(evidence.report)
    padded[0x20 + 0x400] = 1
    verifier = TDX.verifier()
    with pytest.raises(MalformedEvidence, match="TDREPORT"):
        verifier.verify(dataclasses.replace(evidence, report=bytes(padded)), report_data=nonce,
                        at=TDX.now)
    snp_evidence, _ = SNP.evidence()
    with pytest.raises(MalformedEvidence, match="another hardware report"):
        verifier.verify(dataclasses.replace(snp_evidence, platform="azure-tdx"),
                        report_data=nonce, at=TDX.now)
    with pytest.raises(MalformedEvidence, match="another platform"):
        verifier.verify(snp_evidence, report_data=nonce, at=TDX.now)


@pytest.mark.parametrize("nonce", [b"", bytes(65), "text"])
def test_nonce_sizes(nonce: object) -> None:
    evidence, _ = SNP.evidence()
    with pytest.raises(ConfigError):
        SNP.verifier().verify(evidence, report_data=nonce, at=SNP.now)  # type: ignore[arg-type]


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError):
        AzureCvmVerifier("azure-sgx")
    evidence, nonce = SNP.evidence()
    bad = dataclasses.replace(evidence, endorsements={**evidence.endorsements,
                                                      "tpm_signature": "x"})  # type: ignore
    with pytest.raises(MalformedEvidence, match="must be bytes"):
        SNP.verifier().verify(bad, report_data=nonce, at=SNP.now)


# --- the trustee loader ------------------------------------------------------------------------

@pytest.mark.parametrize("version", [0, 1, 2])
@pytest.mark.parametrize("fixture", [SNP, TDX], ids=["snp", "tdx"])
def test_trustee_loader_round_trip(fixture: AzureFixture, version: int) -> None:
    evidence, _nonce = fixture.evidence()
    loaded = evidence_from_trustee_json(json.dumps(trustee_json(evidence, version=version)))
    assert loaded.platform == fixture.platform and loaded.report == evidence.report
    for key in ("tpm_quote", "tpm_signature", "pcrs", "td_quote"):
        assert loaded.endorsements.get(key) == evidence.endorsements.get(key)


def test_trustee_loader_vcek_forms() -> None:
    document = dict(trustee_json(SNP.evidence()[0]))
    document["vcek"] = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
    assert evidence_from_trustee_json(document).endorsements["vcek"].startswith(b"-----BEGIN")
    document["vcek"] = "AAEC"
    assert evidence_from_trustee_json(document).endorsements["vcek"] == b"\0\1\2"


def _mutated(**changes: object) -> dict[str, object]:
    document = dict(trustee_json(SNP.evidence()[0]))
    quote = dict(document["tpm_quote"])  # type: ignore[call-overload]
    for key, value in changes.items():
        if key in quote:
            quote[key] = value
        else:
            document[key] = value
    document["tpm_quote"] = changes.get("tpm_quote", quote)
    return {k: v for k, v in document.items() if v is not None}


@pytest.mark.parametrize("document", [
    "[]", "{", _mutated(hcl_report=None), _mutated(tpm_quote=[1]), _mutated(pcrs="x"),
    _mutated(message="zz"), _mutated(hcl_report=[300]), _mutated(hcl_report="A"),
    _mutated(hcl_report=5), _mutated(signature=3.5),
], ids=range(10))
def test_trustee_loader_rejects(document: object) -> None:
    with pytest.raises(MalformedEvidence):
        evidence_from_trustee_json(document if isinstance(document, str) else
                                   json.dumps(document).encode())


# --- collection --------------------------------------------------------------------------------

def _response(body: bytes, *, auth: bool) -> bytes:
    parameters = (struct.pack(">I", len(body)) + body + b"\0\0\x01\0\0") if auth else body
    tag = 0x8002 if auth else 0x8001
    return struct.pack(">HII", tag, 10 + len(parameters), 0) + parameters


class FakeTpm:
    """Answers NV_ReadPublic, NV_Read, Quote and PCR_Read from a fixture's evidence."""

    def __init__(self, fixture: AzureFixture, *, pcr_batch: int = 8, fail: int | None = None):
        self.evidence, self.nonce = fixture.evidence()
        self.pcrs = fixture.pcrs
        self.pcr_batch, self.fail, self.commands = pcr_batch, fail, []  # type: ignore[var-annotated]

    def __call__(self, command: bytes) -> bytes:
        code = struct.unpack(">I", command[6:10])[0]
        self.commands.append(code)
        if code == self.fail:
            return struct.pack(">HII", 0x8001, 10, 0x18B)
        handler: dict[int, Callable[[bytes], bytes]] = {
            0x169: self._nv_public, 0x14E: self._nv_read, 0x158: self._quote,
            0x17E: self._pcr_read}
        return handler[code](command)

    def _nv_public(self, command: bytes) -> bytes:
        public = struct.pack(">IHI", 0x01400001, 0x000B, 0x42) + b"\0\0" + struct.pack(
            ">H", len(self.evidence.report))
        return _response(struct.pack(">H", len(public)) + public + b"\0\0", auth=False)

    def _nv_read(self, command: bytes) -> bytes:
        size, offset = struct.unpack(">HH", command[-4:])
        chunk = self.evidence.report[offset:offset + size]
        return _response(struct.pack(">H", len(chunk)) + chunk, auth=True)

    def _quote(self, command: bytes) -> bytes:
        message = self.evidence.endorsements["tpm_quote"]
        signature = self.evidence.endorsements["tpm_signature"]
        body = (struct.pack(">H", len(message)) + message + struct.pack(">HHH", 0x14, 0x0B,
                                                                        len(signature))
                + signature)
        return _response(body, auth=True)

    def _pcr_read(self, command: bytes) -> bytes:
        bits = command[-3:]
        wanted = [i for i in range(24) if bits[i // 8] >> (i % 8) & 1][:self.pcr_batch]
        selection = tpm.pcr_selections_bytes([tpm.PcrSelection(0x0B, tuple(wanted))])
        digests = b"".join(struct.pack(">H", 32) + self.pcrs[i] for i in wanted)
        return _response(struct.pack(">I", 7) + selection + struct.pack(">I", len(wanted))
                         + digests, auth=False)


@pytest.mark.parametrize("fixture", [SNP, TDX], ids=["snp", "tdx"])
def test_collect_with_a_fake_tpm(fixture: AzureFixture) -> None:
    fake = FakeTpm(fixture)
    evidence = AzureCvmAttester(transport=fake).collect(fake.nonce)
    assert evidence.platform == fixture.platform
    assert evidence.report == fake.evidence.report
    assert json.loads(evidence.endorsements["pcrs"]) == [p.hex() for p in fixture.pcrs]
    signature = tpm.parse_signature(evidence.endorsements["tpm_signature"], 256)
    assert signature.signature == fake.evidence.endorsements["tpm_signature"]
    full = dataclasses.replace(evidence, endorsements={**fake.evidence.endorsements,
                                                       **evidence.endorsements})
    fixture.verifier().verify(full, report_data=fake.nonce, at=fixture.now)
    assert fake.commands.count(0x17E) == 3 and fake.commands.count(0x14E) == 3


@pytest.mark.parametrize(("fail", "batch"), [(0x158, 8), (0x169, 8), (None, 0)])
def test_collect_tpm_errors(fail: int | None, batch: int) -> None:
    fake = FakeTpm(SNP, fail=fail, pcr_batch=batch)
    with pytest.raises(PlatformUnavailable):
        AzureCvmAttester(transport=fake).collect(fake.nonce)


def test_collect_short_and_truncated_responses() -> None:
    with pytest.raises(PlatformUnavailable, match="short"):
        AzureCvmAttester(transport=lambda command: b"\0").read_hcl_report()
    with pytest.raises(PlatformUnavailable, match="truncated"):
        AzureCvmAttester(transport=lambda c: _response(b"\0", auth=False)).read_hcl_report()


def test_collect_without_a_device(tmp_path: Path) -> None:
    missing = tmp_path / "tpmrm0"
    with pytest.raises(PlatformUnavailable, match="tpmrm0"):
        AzureCvmAttester(tpm_device=missing).collect(b"n" * 16)
    with pytest.raises(ConfigError):
        AzureCvmAttester(tpm_device=missing).collect(bytes(65))
    missing.mkdir()  # present but not a device: opening it fails
    with pytest.raises(PlatformUnavailable, match="cannot open"):
        AzureCvmAttester(tpm_device=missing).collect(b"n" * 16)


def test_device_transport_reads_what_it_wrote(tmp_path: Path) -> None:
    device = tmp_path / "tpm"
    device.write_bytes(b"")
    attester = AzureCvmAttester(tpm_device=device)
    with pytest.raises(PlatformUnavailable, match="short"):  # a plain file answers nothing
        attester.read_hcl_report()
