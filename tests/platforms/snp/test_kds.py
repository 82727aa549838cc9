"""The AMD KDS client against a real HTTP server on 127.0.0.1 (ccattest.testing.kds_server)
serving AMD's real certificates from the vectors (virtee/sev, go-sev-guest, trustee;
Apache-2.0): URLs, retries, Retry-After, errors, caching, offline mode, and an end-to-end
verification of a real Milan report with fetched collateral."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ccattest.collateral import CollateralCache
from ccattest.collateral.http import MAX_DELAY, retry_after
from ccattest.errors import CollateralUnavailable, ConfigError
from ccattest.evidence import Evidence
from ccattest.platforms.snp import kds as kds_module
from ccattest.platforms.snp.abi import SnpReport, parse_report
from ccattest.platforms.snp.kds import (
    KdsClient,
    chain_request,
    requests_for,
)
from ccattest.platforms.snp.verify import SnpVerifier
from ccattest.testing.kds_server import KdsServer
from ccattest.testing.snp import amd_name

from .conftest import manifest_facts

pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")

AT = datetime(2025, 6, 1, tzinfo=UTC)  # inside the Milan VCEK (2023-04-03..2030-04-03)
VIRTEE = "sev-snp/virtee-sev/tests/certs_data/"
MILAN_REPORT = VIRTEE + "report_milan.hex"
MILAN_SPLS = {"blSPL": 3, "teeSPL": 0, "snpSPL": 8, "ucodeSPL": 115}
MILAN_TCB = {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
TURIN_HWID = bytes.fromhex("1e550a8ee5cf9f4d")
TURIN_TCB = {"fmc": 0, "bootloader": 0, "tee": 0, "snp": 0, "microcode": 9}
VLEK_REPORT = "sev-snp/trustee/deps/verifier/test_data/snp/test-vlek-report.bin"
VLEK_CHAIN = "sev-snp/go-sev-guest/verify/trust/ask_ark_milan_vlek.pem"



@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """httpx honours proxy variables; the local KDS must be reached directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)

@dataclass(frozen=True)
class Milan:
    """The real Milan sample: its report, VCEK and chain."""

    raw: bytes
    report: SnpReport
    vcek: bytes
    chain: bytes

    @property
    def vcek_target(self) -> str:
        query = "&".join(f"{name}={value}" for name, value in MILAN_SPLS.items())
        return f"/vcek/v1/Milan/{self.report.chip_id.hex()}?{query}"


@pytest.fixture
def milan_sample(vectors: Path) -> Milan:
    raw = bytes.fromhex((vectors / MILAN_REPORT).read_text())
    return Milan(raw, parse_report(raw), (vectors / VIRTEE / "vcek_milan.der").read_bytes(),
                 (vectors / VIRTEE / "cert_chain_milan").read_bytes())


@pytest.fixture
def kds(milan_sample: Milan):
    with KdsServer() as server:
        server.serve_vcek("Milan", milan_sample.report.chip_id, MILAN_SPLS, milan_sample.vcek)
        server.serve_chain("Milan", milan_sample.chain)
        yield server
    assert not server.running


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client_for(server: KdsServer, sleeps: Sleeps, **kwargs) -> KdsClient:
    kwargs.setdefault("cache", CollateralCache())
    return KdsClient(server.url, sleep=sleeps, now=lambda: AT, **kwargs)


def make_crl(product: str = "Milan", *, issuer: str | None = None) -> bytes:
    """A CRL named like AMD's (issuer ARK-<product>); signed by a throwaway EC key, since
    the client checks shape, not signatures (the verifier does)."""
    key = ec.generate_private_key(ec.SECP256R1())
    crl = (x509.CertificateRevocationListBuilder()
           .issuer_name(amd_name(issuer or f"ARK-{product}"))
           .last_update(datetime(2025, 5, 1, tzinfo=UTC))
           .next_update(datetime(2025, 7, 1, tzinfo=UTC))
           .sign(key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.DER)


# --- URLs -------------------------------------------------------------------------------------

def test_vcek_is_fetched_from_the_kds_path_with_the_tcb_query(kds, milan_sample, sleeps):
    with client_for(kds, sleeps) as client:
        der = client.vcek("Milan", milan_sample.report.chip_id, MILAN_TCB)
    assert der == milan_sample.vcek
    assert kds.targets == [milan_sample.vcek_target]
    assert kds.requests[0].method == "GET"
    assert kds.requests[0].header("user-agent") == "ccattest-kds"
    assert sleeps == []


def test_turin_vcek_uses_the_8_byte_hwid_and_fmc_spl(vectors, sleeps):
    vcek = (vectors / VIRTEE / "vcek_turin.der").read_bytes()
    spls = {"fmcSPL": 0, "blSPL": 0, "teeSPL": 0, "snpSPL": 0, "ucodeSPL": 9}
    with KdsServer() as server, client_for(server, sleeps) as client:
        server.serve_vcek("Turin", TURIN_HWID, spls, vcek)
        assert client.vcek("Turin", TURIN_HWID + bytes(56), TURIN_TCB) == vcek
        assert client.vcek("Turin", TURIN_HWID, TURIN_TCB) == vcek  # cached
        assert server.targets == [
            "/vcek/v1/Turin/1e550a8ee5cf9f4d?fmcSPL=0&blSPL=0&teeSPL=0&snpSPL=0&ucodeSPL=9"]


def test_chains_and_crls_come_from_their_paths(vectors, sleeps):
    vlek_chain = (vectors / VLEK_CHAIN).read_bytes()
    milan_chain = (vectors / VIRTEE / "cert_chain_milan").read_bytes()
    crl = make_crl()
    with KdsServer() as server, client_for(server, sleeps) as client:
        server.serve_chain("Milan", milan_chain)
        server.serve_chain("Milan", vlek_chain, key="vlek")
        server.serve_crl("Milan", crl)
        server.serve_crl("Milan", crl, key="vlek")
        assert client.cert_chain("Milan") == milan_chain
        assert client.vlek_chain("Milan") == vlek_chain
        assert client.crl("Milan") == crl
        assert client.crl("Milan", "vlek") == crl
        assert server.targets == ["/vcek/v1/Milan/cert_chain", "/vlek/v1/Milan/cert_chain",
                                  "/vcek/v1/Milan/crl", "/vlek/v1/Milan/crl"]


# --- retries ----------------------------------------------------------------------------------

def test_429_with_retry_after_seconds_then_success(kds, milan_sample, sleeps):
    kds.fail(429, retry_after="7")
    with client_for(kds, sleeps) as client:
        assert client.cert_chain("Milan") == milan_sample.chain
    assert sleeps == [7.0]
    assert len(kds.requests) == 2


def test_429_with_retry_after_http_date(kds, sleeps):
    kds.fail(429, retry_after=format_datetime(AT + timedelta(seconds=12), usegmt=True))
    with client_for(kds, sleeps) as client:
        client.cert_chain("Milan")
    assert sleeps == [12.0]


def test_retry_after_is_capped(kds, sleeps):
    kds.fail(429, times=2, retry_after="3600")
    kds.fail(503, retry_after=format_datetime(AT + timedelta(days=1), usegmt=True))
    with client_for(kds, sleeps) as client:
        client.cert_chain("Milan")
    assert sleeps == [MAX_DELAY] * 3


def test_unreadable_retry_after_falls_back_to_backoff(kds, sleeps):
    kds.fail(429, retry_after="soon")
    kds.fail(429)
    with client_for(kds, sleeps, backoff=0.25) as client:
        client.cert_chain("Milan")
    assert sleeps == [0.25, 0.5]


def test_500_n_times_then_success_backs_off_exponentially(kds, milan_sample, sleeps):
    kds.fail(500, times=3)
    with client_for(kds, sleeps) as client:
        assert client.vcek("Milan", milan_sample.report.chip_id, MILAN_TCB) == milan_sample.vcek
    assert sleeps == [0.5, 1.0, 2.0]
    assert kds.targets == [milan_sample.vcek_target] * 4


def test_backoff_is_capped(kds, sleeps):
    kds.fail(500, times=3)
    with client_for(kds, sleeps, backoff=40.0) as client:
        client.cert_chain("Milan")
    assert sleeps == [40.0, MAX_DELAY, MAX_DELAY]


def test_retries_exhausted(kds, sleeps):
    kds.fail(500, times=3)
    kds.fail(429, times=2)
    cache = CollateralCache()
    with client_for(kds, sleeps, cache=cache, retries=4) as client, \
            pytest.raises(CollateralUnavailable) as caught:
        client.cert_chain("Milan")
    assert len(kds.requests) == 5
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    error = caught.value
    assert "after 5 tries" in error.message
    assert error.expected == "HTTP 200"
    assert error.found == "HTTP 500; HTTP 500; HTTP 500; HTTP 429; HTTP 429"
    assert kds.url + "/vcek/v1/Milan/cert_chain" in str(error)
    assert cache.items() == []


def test_no_retries(kds, sleeps):
    kds.fail(502)
    with client_for(kds, sleeps, retries=0) as client, pytest.raises(CollateralUnavailable):
        client.cert_chain("Milan")
    assert sleeps == []


@pytest.mark.parametrize("status", [404, 403, 400])
def test_client_errors_are_not_retried(kds, sleeps, status):
    kds.fail(status)
    with client_for(kds, sleeps) as client, pytest.raises(CollateralUnavailable) as caught:
        client.cert_chain("Milan")
    assert len(kds.requests) == 1
    assert sleeps == []
    assert caught.value.found == f"HTTP {status}"
    assert caught.value.expected == "HTTP 200"


def test_unknown_vcek_is_a_404(kds, milan_sample, sleeps):
    other_tcb = {**MILAN_TCB, "microcode": 116}
    with client_for(kds, sleeps) as client, pytest.raises(CollateralUnavailable, match="404"):
        client.vcek("Milan", milan_sample.report.chip_id, other_tcb)
    assert kds.targets == [milan_sample.vcek_target.replace("ucodeSPL=115", "ucodeSPL=116")]


def test_dropped_connection_is_retried(kds, sleeps):
    kds.drop()
    with client_for(kds, sleeps) as client:
        client.cert_chain("Milan")
    assert sleeps == [0.5]
    assert len(kds.requests) == 2


def test_connection_refused(sleeps):
    with KdsServer() as server:
        url = server.url
    with KdsClient(url, sleep=sleeps, retries=1) as client, \
            pytest.raises(CollateralUnavailable) as caught:
        client.cert_chain("Milan", at=AT)
    assert "connection error" in str(caught.value.found)
    assert sleeps == [0.5]


def test_timeout_is_retried_then_reported(sleeps):
    # A real listening socket that never answers: the client's read timeout fires.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with KdsClient(f"http://127.0.0.1:{port}", timeout=0.05, retries=1, sleep=sleeps
                       ) as client, pytest.raises(CollateralUnavailable) as caught:
            client.cert_chain("Milan", at=AT)
    assert "timeout" in str(caught.value.found)
    assert sleeps == [0.5]


def test_oversized_answer_is_refused_without_retry(kds, sleeps, monkeypatch):
    monkeypatch.setattr(kds_module, "MAX_RESPONSE_BYTES", 100)
    with client_for(kds, sleeps) as client, pytest.raises(CollateralUnavailable,
                                                          match="larger than 100"):
        client.cert_chain("Milan")
    assert len(kds.requests) == 1


# --- cache and offline --------------------------------------------------------------------------

def test_cache_hit_makes_no_second_request(kds, milan_sample, sleeps):
    cache = CollateralCache()
    with client_for(kds, sleeps, cache=cache) as client:
        first = client.collateral_for(milan_sample.report, product="Milan")
        second = client.collateral_for(milan_sample.report, product="Milan")
    assert first == second == {"vcek": milan_sample.vcek, "cert_chain": milan_sample.chain}
    assert len(kds.requests) == 2
    item = cache.get("snp.vcek", ("Milan", milan_sample.report.chip_id.hex(),
                                  "blSPL=3,teeSPL=0,snpSPL=8,ucodeSPL=115"), AT)
    assert item is not None
    assert item.source == kds.url + milan_sample.vcek_target
    assert item.fetched_at == AT
    assert item.not_after == datetime(2030, 4, 3, 19, 23, 43, tzinfo=UTC)


def test_disk_cache_is_shared_between_clients(kds, milan_sample, sleeps, tmp_path):
    with client_for(kds, sleeps, cache=CollateralCache(tmp_path)) as client:
        client.collateral_for(milan_sample.report, product="Milan")
    with client_for(kds, sleeps, cache=CollateralCache(tmp_path), offline=True) as client:
        assert client.collateral_for(milan_sample.report, product="Milan")["vcek"] == \
            milan_sample.vcek
    assert len(kds.requests) == 2


def test_an_expired_cached_item_is_fetched_again(kds, milan_sample, sleeps):
    cache = CollateralCache()
    later = datetime(2031, 1, 1, tzinfo=UTC)  # after the VCEK's notAfter
    with client_for(kds, sleeps, cache=cache) as client:
        client.vcek("Milan", milan_sample.report.chip_id, MILAN_TCB)
        client.vcek("Milan", milan_sample.report.chip_id, MILAN_TCB, at=later)
    assert len(kds.requests) == 2


def test_without_a_cache_every_call_fetches(kds, sleeps):
    with client_for(kds, sleeps, cache=None) as client:
        client.cert_chain("Milan")
        client.cert_chain("Milan")
    assert len(kds.requests) == 2


def test_offline_with_an_empty_cache_names_the_url(kds, milan_sample, sleeps):
    with client_for(kds, sleeps, offline=True) as client, \
            pytest.raises(CollateralUnavailable) as caught:
        client.collateral_for(milan_sample.report, product="Milan")
    error = caught.value
    assert kds.url + milan_sample.vcek_target in str(error)
    assert "ccattest collateral import" in str(error)
    assert "offline" in error.message
    assert kds.requests == []


def test_offline_without_any_cache(kds, sleeps):
    with client_for(kds, sleeps, offline=True, cache=None) as client, \
            pytest.raises(CollateralUnavailable, match="cert_chain"):
        client.cert_chain("Milan")


def test_concurrent_callers_fetch_each_item_once(kds, milan_sample, sleeps):
    results: list[bytes] = []
    with client_for(kds, sleeps) as client:
        def work() -> None:
            results.append(client.vcek("Milan", milan_sample.report.chip_id, MILAN_TCB))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [milan_sample.vcek] * 8
    assert len(kds.requests) == 1


# --- what KDS answers is checked before caching ---------------------------------------------------

@pytest.mark.parametrize("body", [b"garbage", b"", b"\x30\x82\x05\x00" + bytes(20)])
def test_garbage_is_not_cached(kds, milan_sample, sleeps, body):
    kds.serve_vcek("Milan", milan_sample.report.chip_id, MILAN_SPLS, body)
    cache = CollateralCache()
    with client_for(kds, sleeps, cache=cache) as client:
        for _ in range(2):
            with pytest.raises(CollateralUnavailable) as caught:
                client.vcek("Milan", milan_sample.report.chip_id, MILAN_TCB)
            assert "unusable vcek" in caught.value.message
            assert caught.value.found
    assert cache.items() == []
    assert len(kds.requests) == 2  # nothing cached: asked again


def test_a_vcek_for_another_chip_is_refused(kds, milan_sample, sleeps, vectors):
    kds.serve_vcek("Milan", milan_sample.report.chip_id, MILAN_SPLS,
                   (vectors / "sev-snp/trustee/deps/verifier/test_data/snp/test-vcek.der")
                   .read_bytes())
    with client_for(kds, sleeps) as client, pytest.raises(CollateralUnavailable) as caught:
        client.vcek("Milan", milan_sample.report.chip_id, MILAN_TCB)
    assert "another product, chip or TCB" in str(caught.value)
    assert milan_sample.report.chip_id.hex() in str(caught.value.expected)


def test_a_pem_vcek_or_a_vlek_is_refused(kds, milan_sample, sleeps, vectors):
    pem = x509.load_der_x509_certificate(milan_sample.vcek).public_bytes(
        serialization.Encoding.PEM)
    vlek = (vectors / "sev-snp/trustee/deps/verifier/test_data/snp/test-vlek.der").read_bytes()
    with client_for(kds, sleeps) as client:
        for body, reason in ((pem, "PEM"), (vlek, "not a VCEK")):
            kds.serve_vcek("Milan", milan_sample.report.chip_id, MILAN_SPLS, body)
            with pytest.raises(CollateralUnavailable, match=reason):
                client.vcek("Milan", milan_sample.report.chip_id, MILAN_TCB)


def test_chain_shapes_are_checked(kds, milan_sample, sleeps, vectors):
    three = (vectors / "sev-snp/trustee/deps/verifier/src/snp/milan_ask_ark_asvk.pem")
    der_ask = x509.load_pem_x509_certificates(milan_sample.chain)[0].public_bytes(
        serialization.Encoding.DER)
    cases = ((three.read_bytes(), "wrong certificates"), (der_ask, "not PEM"),
             (milan_sample.chain, "wrong certificates"))
    with client_for(kds, sleeps) as client:
        for index, (body, reason) in enumerate(cases):
            product = "Genoa" if index == 2 else "Milan"  # a Milan chain is no Genoa chain
            kds.serve_chain(product, body)
            with pytest.raises(CollateralUnavailable, match=reason):
                client.cert_chain(product)


def test_vlek_chain_must_hold_the_asvk(kds, milan_sample, sleeps):
    kds.serve_chain("Milan", milan_sample.chain, key="vlek")  # ASK, not ASVK
    with client_for(kds, sleeps) as client, pytest.raises(CollateralUnavailable) as caught:
        client.vlek_chain("Milan")
    assert caught.value.expected == ["SEV-VLEK-Milan", "ARK-Milan"]
    assert caught.value.found == ["SEV-Milan", "ARK-Milan"]


def test_crl_shapes_are_checked(kds, sleeps):
    with client_for(kds, sleeps) as client:
        for body, reason in ((b"not a crl", "does not parse"),
                             (make_crl(issuer="ARK-Genoa"), "wrong issuer")):
            kds.serve_crl("Milan", body)
            with pytest.raises(CollateralUnavailable, match=reason):
                client.crl("Milan")


def test_crl_validity_is_its_update_window(kds, sleeps):
    cache = CollateralCache()
    kds.serve_crl("Milan", make_crl())
    with client_for(kds, sleeps, cache=cache) as client:
        client.crl("Milan")
    (item,) = cache.items()
    assert (item.not_before, item.not_after) == (datetime(2025, 5, 1, tzinfo=UTC),
                                                 datetime(2025, 7, 1, tzinfo=UTC))


# --- reports --------------------------------------------------------------------------------------

def test_collateral_for_a_vlek_report_is_the_asvk_chain(vectors, sleeps):
    report = parse_report((vectors / VLEK_REPORT).read_bytes())
    chain = (vectors / VLEK_CHAIN).read_bytes()
    crl = make_crl()
    with KdsServer() as server, client_for(server, sleeps) as client:
        server.serve_chain("Milan", chain, key="vlek")
        server.serve_crl("Milan", crl, key="vlek")
        assert client.collateral_for(report, crl=True) == {"cert_chain": chain, "crl": crl}
        assert server.targets == ["/vlek/v1/Milan/cert_chain", "/vlek/v1/Milan/crl"]


def test_collateral_for_needs_the_product_of_a_v2_report(milan_sample):
    with pytest.raises(ConfigError, match="product") as caught:
        requests_for(milan_sample.report)
    assert "v2" in str(caught.value)


def test_collateral_for_refuses_unsigned_and_masked_reports(milan_sample):
    unsigned = replace(milan_sample.report, key_info=7 << 2)
    with pytest.raises(ConfigError, match="VCEK or VLEK"):
        requests_for(unsigned, product="Milan")
    masked = replace(milan_sample.report, chip_id=bytes(64))
    with pytest.raises(CollateralUnavailable, match="masked"):
        requests_for(masked, product="Milan")


def test_end_to_end_real_milan_report_verifies_with_fetched_collateral(kds, milan_sample,
                                                                       sleeps, vectors):
    facts = manifest_facts(vectors, MILAN_REPORT)
    with client_for(kds, sleeps) as client:
        endorsements = client.collateral_for(milan_sample.report, product="Milan")
    evidence = Evidence("snp", milan_sample.raw, {**endorsements})
    claims = SnpVerifier().verify(evidence, report_data=bytes.fromhex(str(facts["report_data"])),
                                  at=AT)
    assert claims.claims["chip_id"] == facts["chip_id"]
    assert claims.claims["reported_tcb"] == facts["reported_tcb"]
    assert claims.collateral["vcek"]["source"] == "evidence:vcek"
    assert claims.collateral["ask"]["source"] == "evidence:cert_chain"


# --- settings and input checks --------------------------------------------------------------------

@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.cert_chain("Rome"), "unknown SNP product"),
    (lambda c: c.cert_chain("Milan", "vxek"), "signing key type"),
    (lambda c: c.crl("Milan", "ark"), "signing key type"),
    (lambda c: c.vcek("Milan", bytes(range(1, 9)), MILAN_TCB), "wrong length"),
    (lambda c: c.vcek("Turin", b"\x01" * 64, TURIN_TCB), "wrong length"),
    (lambda c: c.vcek("Milan", "ab" * 64, MILAN_TCB), "must be bytes"),
    (lambda c: c.vcek("Milan", b"\x01" * 64, {"bootloader": 1}), "lacks components"),
    (lambda c: c.vcek("Milan", b"\x01" * 64, {**MILAN_TCB, "snp": 256}), "out of range"),
    (lambda c: c.vcek("Milan", b"\x01" * 64, {**MILAN_TCB, "tee": True}), "out of range"),
    (lambda c: c.cert_chain("Milan", at=datetime(2025, 1, 1)), "naive"),
])
def test_bad_arguments_are_config_errors(call, message):
    with KdsClient("http://127.0.0.1:9", offline=True) as client, \
            pytest.raises(ConfigError, match=message):
        call(client)


@pytest.mark.parametrize("kwargs", [
    {"base_url": "ftp://kds.example"}, {"base_url": "http://"}, {"base_url": "http://[::1"},
    {"retries": -1}, {"retries": 1.5}, {"backoff": -0.1}, {"timeout": 0},
])
def test_bad_client_settings(kwargs):
    with pytest.raises(ConfigError):
        KdsClient(**kwargs)


def test_base_url_trailing_slash_is_dropped():
    with KdsClient("https://kds.example/", offline=True) as client:
        assert client.url(chain_request("Genoa")) == "https://kds.example/vcek/v1/Genoa/cert_chain"


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("soon", None), ("²", None), ("0", 0.0), (" 5 ", 5.0),
    ("9" * 400, MAX_DELAY), (format_datetime(AT - timedelta(hours=1), usegmt=True), 0.0),
    ("Sun, 01 Jun 2025 00:00:30 -0000", 30.0),
])
def test_retry_after_parsing(header, expected):
    assert retry_after(header, AT) == expected


# --- the local KDS itself -------------------------------------------------------------------------

def test_server_lifecycle():
    server = KdsServer()
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.stop()  # stopping a server that never started is harmless
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    assert not server.running
