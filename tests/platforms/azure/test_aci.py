"""ACI collection through a real local SKR sidecar on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccattest.errors import ConfigError, MalformedEvidence, PlatformUnavailable
from ccattest.platforms.azure.aci import AciAttester
from ccattest.platforms.azure.maa import snp_report_data_for
from ccattest.platforms.snp.abi import parse_report
from ccattest.testing.azure_servers import SkrSidecarServer
from ccattest.testing.cases import FIXED_NOW
from ccattest.testing.maa import MaaFixture, default_report
from ccattest.testing.snp import SnpFixture

SAMPLE_REPORT = Path("azure/azure-attestation-samples/extracted/get-sevsnp-jwt/snp_report.bin")
REPORT_DATA = bytes(range(64))


@pytest.fixture(scope="module")
def maa() -> MaaFixture:
    return MaaFixture.create()


@pytest.fixture(scope="module")
def snp() -> SnpFixture:
    return SnpFixture.create("Milan")


def _minter(maa: MaaFixture, seen: list[str]):
    def mint(runtime: bytes, endpoint: str) -> str:
        """MAA's part: echo the JSON runtime data; the report binds its SHA-256."""
        seen.append(endpoint)
        nonce = bytes.fromhex(json.loads(runtime)["nonce"])
        report = default_report(nonce, report_data=hashlib.sha256(runtime).digest() + bytes(32))
        return maa.sign(maa.claims(nonce, report=report,
                                   **{"x-ms-runtime": json.loads(runtime)}))
    return mint


@pytest.fixture
def sidecar(maa: MaaFixture, snp: SnpFixture) -> Iterator[tuple[SkrSidecarServer, list[str]]]:
    seen: list[str] = []
    raw = snp.sign(snp.report(snp_report_data_for(REPORT_DATA)))
    with SkrSidecarServer(token=_minter(maa, seen), report=raw) as server:
        yield server, seen


def test_collect_gets_a_token_that_binds_our_report_data(sidecar, maa: MaaFixture) -> None:
    server, seen = sidecar
    with AciAttester(server.url, "https://sharedweu.weu.attest.azure.net/") as attester:
        evidence = attester.collect(REPORT_DATA)
    assert evidence.platform == "maa"
    assert seen == ["sharedweu.weu.attest.azure.net"]
    request = server.requests[0]
    assert request.path == "/attest/maa"
    sent = base64.b64decode(request.json()["runtime_data"])
    assert json.loads(sent) == {"nonce": REPORT_DATA.hex()}
    claims = maa.verifier().verify(evidence, report_data=REPORT_DATA, at=FIXED_NOW).claims
    assert claims["binding"] == "runtime_data"
    assert claims["runtime_digest_match"] is True


def test_collect_raw_verifies_natively(sidecar, snp: SnpFixture) -> None:
    server, _ = sidecar
    with AciAttester(server.url) as attester:
        evidence = attester.collect_raw(REPORT_DATA)
    assert evidence.platform == "snp"
    assert evidence.endorsements == {}
    assert json.loads(evidence.log[0]["runtime_data"]) == {"nonce": REPORT_DATA.hex()}
    assert server.requests[0].path == "/attest/raw"
    full = type(evidence)("snp", evidence.report, snp.endorsements())
    claims = snp.verifier().verify(full, report_data=snp_report_data_for(REPORT_DATA),
                                   at=snp.now).claims
    assert claims["report_data"] == snp_report_data_for(REPORT_DATA).hex()


def test_collect_raw_serves_the_sample_report_and_a_chain(vectors: Path) -> None:
    raw = (vectors / SAMPLE_REPORT).read_bytes()
    chain = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    with SkrSidecarServer(report=raw, extra={"vcek_cert_chain": chain}) as server, \
            AciAttester(server.url) as attester:
        evidence = attester.collect_raw(REPORT_DATA)
    assert parse_report(evidence.report).measurement.hex().startswith("02c3b0d5")
    assert evidence.endorsements == {"cert_chain": chain.encode()}


def test_report_shapes(vectors: Path) -> None:
    raw = (vectors / SAMPLE_REPORT).read_bytes()

    class Base64Sidecar(SkrSidecarServer):
        def route(self, request):  # the report as base64 instead of hex
            from ccattest.testing.azure_servers import json_answer
            return json_answer({"report": base64.b64encode(raw).decode()})

    with Base64Sidecar() as server, AciAttester(server.url) as attester:
        assert attester.collect_raw(REPORT_DATA).report == raw
    for report in (raw[:-1], b"\x00" * 10):
        with SkrSidecarServer(report=report) as server, AciAttester(server.url) as attester, \
                pytest.raises(MalformedEvidence, match="wrong size"):
            attester.collect_raw(REPORT_DATA)


def test_sidecar_absent_is_platform_unavailable() -> None:
    with SkrSidecarServer() as server:
        url = server.url
    with AciAttester(url, timeout=2) as attester, \
            pytest.raises(PlatformUnavailable, match="not reachable"):
        attester.collect(REPORT_DATA)


def test_sidecar_errors(sidecar) -> None:
    server, _ = sidecar
    with AciAttester(server.url) as attester:
        server.fail(500, body=b'{"error": "attestation failed"}')
        with pytest.raises(PlatformUnavailable, match="attestation failed"):
            attester.collect(REPORT_DATA)
        server.fail(403, body=b"plain text")
        with pytest.raises(PlatformUnavailable, match="HTTP 403"):
            attester.collect_raw(REPORT_DATA)
        server.garble()
        with pytest.raises(MalformedEvidence, match="not a JSON object"):
            attester.collect(REPORT_DATA)
        server.fail(200, body=b'{"other": 1}')
        with pytest.raises(MalformedEvidence, match="has no token"):
            attester.collect(REPORT_DATA)
        server.fail(200, body=b'{"token": "not-a-jwt"}')
        with pytest.raises(MalformedEvidence, match="compact JWT"):
            attester.collect(REPORT_DATA)
        server.fail(200, body=b'{"report": "zz!"}')
        with pytest.raises(MalformedEvidence, match="neither hex nor base64"):
            attester.collect_raw(REPORT_DATA)
        server.fail(200, body=b"[" * (1 << 20) + b"]")
        with pytest.raises(MalformedEvidence, match="too large"):
            attester.collect(REPORT_DATA)
        server.drop()
        with pytest.raises(PlatformUnavailable, match="did not answer"):
            attester.collect(REPORT_DATA)
        with pytest.raises(ConfigError):
            attester.collect(b"")


def test_sidecar_rejects_bad_requests(sidecar) -> None:
    import httpx

    server, _ = sidecar
    assert httpx.get(server.url + "/attest/maa").status_code == 405
    assert httpx.post(server.url + "/attest/maa", content=b"{").status_code == 400
    assert httpx.post(server.url + "/attest/maa",
                      json={"runtime_data": "AA=="}).status_code == 400
    assert httpx.post(server.url + "/other", json={"runtime_data": "AA=="}).status_code == 404
    with pytest.raises(RuntimeError):
        server.start()


def test_attester_configuration() -> None:
    for sidecar in ("ftp://localhost:8284", "http://", "http://a:xx"):
        with pytest.raises(ConfigError):
            AciAttester(sidecar)
    with pytest.raises(ConfigError):
        AciAttester(timeout=0)
    with pytest.raises(ConfigError):
        AciAttester(maa_endpoint="http://not-https.example")
    attester = AciAttester()
    assert attester.sidecar == "http://localhost:8284"
    assert attester.maa_endpoint == "sharedeus2.eus2.attest.azure.net"
    attester.close()
