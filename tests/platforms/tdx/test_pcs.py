"""The Intel PCS/PCCS client against a real HTTP server on 127.0.0.1
(ccattest.testing.pcs_server) serving Intel's real TDX collateral from the vectors
(go-tdx-guest, Apache-2.0; dcap-qvl, MIT): paths and queries, issuer-chain headers, retries,
Retry-After, errors, caching, offline mode, exact bytes, bundles and collateral folders."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from ccattest.collateral import CollateralCache
from ccattest.collateral.bundle import export_bundle, import_bundle, load_bundle
from ccattest.collateral.cache import check_item
from ccattest.collateral.http import MAX_DELAY
from ccattest.errors import CCAttestError, CollateralUnavailable, ConfigError, MalformedEvidence
from ccattest.platforms.tdx import pcs as pcs_module
from ccattest.platforms.tdx.collateral import TdxCollateral
from ccattest.platforms.tdx.pcs import (
    FOLDER_FILES,
    KINDS,
    PCS_URL,
    ROOT_CA_CRL_URL,
    PcsClient,
    check_issuer_chain,
    collateral_from_path,
    crl_bytes,
    crl_window,
    decode_issuer_chain,
    default_root_ca_crl_url,
    pack_item,
    parse_fmspc,
    qe_identity_window,
    tcb_info_window,
    unpack_item,
    write_collateral_folder,
)
from ccattest.testing.pcs_server import PcsServer, encode_chain

TESTDATA = "tdx/go-tdx-guest/testing/testdata/"
EXTRACTED = "tdx/go-tdx-guest/extracted/"
DCAP_QVL = "tdx/dcap-qvl/sample/tdx_quote_collateral.json"
FMSPC = bytes.fromhex("50806f000000")
AT = datetime(2023, 7, 1, 1, tzinfo=UTC)  # inside every go-tdx-guest item's window
TCB_TARGET = "/tdx/certification/v4/tcb?fmspc=50806f000000"
QE_TARGET = "/tdx/certification/v4/qe/identity"
PCK_TARGET = "/sgx/certification/v4/pckcrl?ca=platform&encoding=der"
ROOT_TARGET = "/sgx/certification/v4/rootcacrl"
ALL_TARGETS = [TCB_TARGET, QE_TARGET, PCK_TARGET, ROOT_TARGET]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """httpx honours proxy variables; the local PCS must be reached directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sample(vectors: Path) -> TdxCollateral:
    """go-tdx-guest's real PCS answers (FMSPC 50806f000000, June/July 2023)."""
    return TdxCollateral(
        tcb_info=(vectors / TESTDATA / "sample_tcbInfo_response").read_bytes(),
        tcb_info_issuer_chain=(vectors / EXTRACTED / "tcbInfoIssuerChain.pem").read_bytes(),
        qe_identity=(vectors / TESTDATA / "sample_qeIdentity_response").read_bytes(),
        qe_identity_issuer_chain=(vectors / EXTRACTED / "qeIdentityIssuerChain.pem").read_bytes(),
        pck_crl=(vectors / TESTDATA / "pckcrl").read_bytes(),
        pck_crl_issuer_chain=(vectors / EXTRACTED / "pckCrlIssuerChain.pem").read_bytes(),
        root_ca_crl=(vectors / TESTDATA / "rootcrl.der").read_bytes(),
    )


def serve_sample(server: PcsServer, sample: TdxCollateral, fmspc: bytes = FMSPC) -> None:
    server.serve_tcb_info(fmspc, sample.tcb_info, sample.tcb_info_issuer_chain)
    server.serve_qe_identity(sample.qe_identity, sample.qe_identity_issuer_chain)
    server.serve_pck_crl("platform", sample.pck_crl, sample.pck_crl_issuer_chain)
    server.serve_root_ca_crl(sample.root_ca_crl)


@pytest.fixture
def pcs(sample: TdxCollateral):
    with PcsServer() as server:
        serve_sample(server, sample)
        yield server
    assert not server.running


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client_for(server: PcsServer, sleeps: Sleeps, **kwargs) -> PcsClient:
    kwargs.setdefault("cache", CollateralCache())
    return PcsClient(server.url, sleep=sleeps, now=lambda: AT, **kwargs)


def fields_of(collateral: TdxCollateral) -> TdxCollateral:
    return replace(collateral, source="given")


# --- throwaway Intel-named PKI (the client checks shape, not signatures) -------------------------

def intel_name(common_name: str, organization: str = "Intel Corporation") -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, organization)])


def make_chain(signer: x509.Name, root: str = "Intel SGX Root CA") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    pems = []
    for name in (signer, intel_name(root)):
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(intel_name(root))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
                .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
                .sign(key, hashes.SHA256()))
        pems.append(cert.public_bytes(serialization.Encoding.PEM))
    return b"".join(pems)


def make_crl(issuer: x509.Name, *, pem: bool = False) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    crl = (x509.CertificateRevocationListBuilder().issuer_name(issuer)
           .last_update(datetime(2023, 6, 1, tzinfo=UTC))
           .next_update(datetime(2023, 8, 1, tzinfo=UTC)).sign(key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER)


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 0x80 else bytes([0x81, size]) if size < 0x100 else \
        bytes([0x82]) + size.to_bytes(2, "big")
    return bytes([tag]) + length + content


def crl_without_next_update(issuer: x509.Name) -> bytes:
    """A DER CRL with no nextUpdate (optional in X.509; cryptography will not build one)."""
    algorithm = _der(0x30, _der(0x06, bytes.fromhex("2a8648ce3d040302")))
    tbs = _der(0x30, _der(0x02, b"\x01") + algorithm + issuer.public_bytes()
               + _der(0x17, b"230601000000Z"))
    signature = _der(0x03, b"\x00" + _der(0x30, _der(0x02, b"\x01") * 2))
    return _der(0x30, tbs + algorithm + signature)


def signed(name: str, inner: dict, signature: str = "ab" * 64) -> bytes:
    return json.dumps({name: inner, "signature": signature}).encode()


TCB_INNER = {"id": "TDX", "version": 3, "issueDate": "2023-06-18T08:42:58Z",
             "nextUpdate": "2023-07-18T08:42:58Z", "fmspc": "50806f000000"}
QE_INNER = {"id": "TD_QE", "version": 2, "issueDate": "2023-06-08T07:24:59Z",
            "nextUpdate": "2023-07-08T07:24:59Z"}


# --- paths, queries, headers ---------------------------------------------------------------------

def test_collateral_comes_from_the_pcs_v4_paths_with_decoded_chains(pcs, sample, sleeps):
    with client_for(pcs, sleeps) as client:
        collateral = client.collateral(FMSPC)
    assert fields_of(collateral) == sample
    assert collateral.source == pcs.url
    assert pcs.targets == ALL_TARGETS
    assert all(request.method == "GET" for request in pcs.requests)
    assert pcs.requests[0].header("user-agent") == "ccattest-pcs"
    assert sleeps == []


def test_older_tcb_chain_header_is_accepted(pcs, sample, sleeps):
    pcs.serve_tcb_info(FMSPC, sample.tcb_info, sample.tcb_info_issuer_chain,
                       header="SGX-TCB-Info-Issuer-Chain")
    with client_for(pcs, sleeps) as client:
        assert client.collateral(FMSPC).tcb_info_issuer_chain == sample.tcb_info_issuer_chain


def test_the_processor_ca_crl_is_asked_for_and_checked(pcs, sleeps):
    chain = make_chain(intel_name("Intel SGX PCK Processor CA"))
    crl = make_crl(intel_name("Intel SGX PCK Processor CA"))
    pcs.serve_pck_crl("processor", crl, chain)
    with client_for(pcs, sleeps) as client:
        collateral = client.collateral(FMSPC, "processor")
        assert (collateral.pck_crl, collateral.pck_crl_issuer_chain) == (crl, chain)
        assert pcs.targets[2] == "/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
        pcs.serve_pck_crl("processor", make_crl(intel_name("Intel SGX PCK Platform CA")), chain)
        with pytest.raises(CollateralUnavailable, match="wrong issuer"):
            client.collateral(FMSPC, "processor", at=AT + timedelta(days=40))


def test_root_ca_crl_url_is_configurable(pcs, sample, sleeps):
    pcs.serve_root_ca_crl(sample.root_ca_crl, path="/IntelSGXRootCA.der")
    with client_for(pcs, sleeps, root_ca_crl_url=pcs.url + "/IntelSGXRootCA.der") as client:
        assert client.collateral(FMSPC).root_ca_crl == sample.root_ca_crl
    assert pcs.targets[-1] == "/IntelSGXRootCA.der"


def test_default_root_ca_crl_url_for_pcs_and_pccs():
    assert default_root_ca_crl_url(PCS_URL + "/") == ROOT_CA_CRL_URL
    assert default_root_ca_crl_url("https://pccs:8081/") == \
        "https://pccs:8081/sgx/certification/v4/rootcacrl"
    with PcsClient(offline=True) as client:
        assert client.root_ca_crl_request().url == ROOT_CA_CRL_URL
        assert client.tcb_info_request(FMSPC).url == PCS_URL + TCB_TARGET


def test_pccs_style_answers_real_dcap_qvl_collateral(vectors, sleeps):
    """dcap-qvl's collateral (FMSPC B0C06F000000, upper case in the JSON; the 2025 TCB Signing
    certificate) served as a PCCS would: the root CA CRL as hex text of its DER."""
    raw = json.loads((vectors / DCAP_QVL).read_text())
    tcb_body = (b'{"tcbInfo":' + raw["tcb_info"].encode() + b',"signature":"'
                + raw["tcb_info_signature"].encode() + b'"}')
    qe_body = (b'{"enclaveIdentity":' + raw["qe_identity"].encode() + b',"signature":"'
               + raw["qe_identity_signature"].encode() + b'"}')
    fmspc = bytes.fromhex("b0c06f000000")
    at = datetime(2025, 7, 1, tzinfo=UTC)
    with PcsServer() as server:
        server.serve_tcb_info(fmspc, tcb_body, raw["tcb_info_issuer_chain"].encode())
        server.serve_qe_identity(qe_body, raw["qe_identity_issuer_chain"].encode())
        server.serve_pck_crl("platform", bytes.fromhex(raw["pck_crl"]),
                             raw["pck_crl_issuer_chain"].encode())
        server.serve_root_ca_crl(raw["root_ca_crl"].encode())  # hex text, as PCCS answers
        with PcsClient(server.url, cache=CollateralCache(), sleep=sleeps,
                       now=lambda: at) as client:
            collateral = client.collateral(fmspc)
        assert server.targets[0] == "/tdx/certification/v4/tcb?fmspc=b0c06f000000"
    assert collateral.tcb_info == tcb_body
    assert collateral.qe_identity == qe_body
    assert collateral.root_ca_crl == bytes.fromhex(raw["root_ca_crl"])
    assert collateral.tcb_info_issuer_chain == raw["tcb_info_issuer_chain"].encode()


def test_a_pem_pck_crl_is_kept_as_pem(pcs, sleeps):
    chain = make_chain(intel_name("Intel SGX PCK Platform CA"))
    crl = make_crl(intel_name("Intel SGX PCK Platform CA"), pem=True)
    pcs.serve_pck_crl("platform", crl, chain)
    with client_for(pcs, sleeps) as client:
        assert client.collateral(FMSPC).pck_crl == crl


# --- retries ------------------------------------------------------------------------------------

def test_429_with_retry_after_then_success(pcs, sample, sleeps):
    pcs.fail(429, retry_after="7")
    pcs.fail(429, retry_after="3600")
    with client_for(pcs, sleeps) as client:
        assert fields_of(client.collateral(FMSPC)) == sample
    assert sleeps == [7.0, MAX_DELAY]
    assert pcs.targets == [TCB_TARGET] * 3 + ALL_TARGETS[1:]


def test_500_n_times_then_success_backs_off_exponentially(pcs, sample, sleeps):
    pcs.fail(500, times=3)
    with client_for(pcs, sleeps) as client:
        assert client.collateral(FMSPC).tcb_info == sample.tcb_info
    assert sleeps == [0.5, 1.0, 2.0]
    assert pcs.targets == [TCB_TARGET] * 4 + ALL_TARGETS[1:]


def test_backoff_is_capped(pcs, sleeps):
    pcs.fail(503, times=2)
    with client_for(pcs, sleeps, backoff=40.0) as client:
        client.collateral(FMSPC)
    assert sleeps == [40.0, MAX_DELAY]


def test_retries_exhausted(pcs, sleeps):
    pcs.fail(500, times=3)
    pcs.fail(429, times=2)
    cache = CollateralCache()
    with client_for(pcs, sleeps, cache=cache) as client, \
            pytest.raises(CollateralUnavailable) as caught:
        client.collateral(FMSPC)
    error = caught.value
    assert "after 5 tries" in error.message
    assert error.found == "HTTP 500; HTTP 500; HTTP 500; HTTP 429; HTTP 429"
    assert pcs.url + TCB_TARGET in str(error)
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert cache.items() == []


@pytest.mark.parametrize("status", [404, 400, 401])
def test_client_errors_are_not_retried(pcs, sleeps, status):
    pcs.fail(status)
    with client_for(pcs, sleeps) as client, pytest.raises(CollateralUnavailable) as caught:
        client.collateral(FMSPC)
    assert caught.value.found == f"HTTP {status}"
    assert len(pcs.requests) == 1
    assert sleeps == []


def test_unknown_fmspc_is_a_404_without_retry(pcs, sleeps):
    with client_for(pcs, sleeps) as client, pytest.raises(CollateralUnavailable, match="404"):
        client.collateral(bytes.fromhex("00906ed50000"))
    assert pcs.targets == ["/tdx/certification/v4/tcb?fmspc=00906ed50000"]
    assert sleeps == []


def test_dropped_connection_is_retried(pcs, sample, sleeps):
    pcs.drop()
    with client_for(pcs, sleeps) as client:
        assert fields_of(client.collateral(FMSPC)) == sample
    assert sleeps == [0.5]


def test_timeout_is_retried_then_reported(sleeps):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with PcsClient(f"http://127.0.0.1:{port}", timeout=0.05, retries=1, sleep=sleeps
                       ) as client, pytest.raises(CollateralUnavailable) as caught:
            client.collateral(FMSPC, at=AT)
    assert "timeout" in str(caught.value.found)
    assert sleeps == [0.5]


def test_connection_refused(sleeps):
    with PcsServer() as server:
        url = server.url
    with PcsClient(url, retries=0, sleep=sleeps) as client, \
            pytest.raises(CollateralUnavailable, match="connection error"):
        client.collateral(FMSPC, at=AT)
    assert sleeps == []


def test_oversized_answer_is_refused_without_retry(pcs, sleeps, monkeypatch):
    monkeypatch.setattr(pcs_module, "MAX_RESPONSE_BYTES", 100)
    with client_for(pcs, sleeps) as client, pytest.raises(CollateralUnavailable,
                                                          match="larger than 100"):
        client.collateral(FMSPC)
    assert len(pcs.requests) == 1


# --- cache and offline ----------------------------------------------------------------------------

def test_cache_hit_makes_no_second_request(pcs, sample, sleeps):
    cache = CollateralCache()
    with client_for(pcs, sleeps, cache=cache) as client:
        first = client.collateral(FMSPC)
        second = client.collateral(FMSPC)
    assert fields_of(first) == fields_of(second) == sample
    assert second.source == "cache"
    assert len(pcs.requests) == 4
    windows = {item.kind: (item.not_before, item.not_after, item.source)
               for item in cache.items()}
    assert windows == {
        KINDS["tcb_info"]: (datetime(2023, 6, 18, 8, 42, 58, tzinfo=UTC),
                            datetime(2023, 7, 18, 8, 42, 58, tzinfo=UTC), pcs.url + TCB_TARGET),
        KINDS["qe_identity"]: (datetime(2023, 6, 8, 7, 24, 59, tzinfo=UTC),
                               datetime(2023, 7, 8, 7, 24, 59, tzinfo=UTC), pcs.url + QE_TARGET),
        KINDS["pck_crl"]: (datetime(2023, 6, 8, 7, 27, 52, tzinfo=UTC),
                           datetime(2023, 7, 8, 7, 27, 52, tzinfo=UTC), pcs.url + PCK_TARGET),
        KINDS["root_ca_crl"]: (datetime(2023, 4, 3, 10, 22, 51, tzinfo=UTC),
                               datetime(2024, 4, 2, 10, 22, 51, tzinfo=UTC),
                               pcs.url + ROOT_TARGET),
    }


def test_issuer_chains_are_stored_with_their_item(pcs, sample, sleeps):
    cache = CollateralCache()
    with client_for(pcs, sleeps, cache=cache) as client:
        client.collateral(FMSPC)
    item = cache.get(KINDS["tcb_info"], ("50806f000000",), AT)
    assert item is not None
    assert unpack_item(item.data) == (sample.tcb_info, sample.tcb_info_issuer_chain)
    root = cache.get(KINDS["root_ca_crl"], ("sgx_root_ca",), AT)
    assert root is not None and root.data == sample.root_ca_crl


def test_each_item_is_fetched_again_after_its_next_update(pcs, sleeps):
    with client_for(pcs, sleeps) as client:
        client.collateral(FMSPC)
        # 2023-07-10: QE Identity and PCK CRL (next 07-08) are stale, TCB Info (07-18) and the
        # root CRL (2024) are not.
        client.collateral(FMSPC, at=datetime(2023, 7, 10, tzinfo=UTC))
    assert pcs.targets == [*ALL_TARGETS, QE_TARGET, PCK_TARGET]


def test_disk_cache_is_shared_between_clients(pcs, sample, sleeps, tmp_path):
    with client_for(pcs, sleeps, cache=CollateralCache(tmp_path)) as client:
        client.collateral(FMSPC)
    with client_for(pcs, sleeps, cache=CollateralCache(tmp_path), offline=True) as client:
        assert fields_of(client.collateral(FMSPC)) == sample
    assert len(pcs.requests) == 4


def test_without_a_cache_every_call_fetches(pcs, sleeps):
    with client_for(pcs, sleeps, cache=None) as client:
        client.collateral(FMSPC)
        client.collateral(FMSPC)
    assert len(pcs.requests) == 8


def test_offline_miss_names_the_url_and_the_bundle_import(pcs, sleeps):
    with client_for(pcs, sleeps, offline=True) as client, \
            pytest.raises(CollateralUnavailable) as caught:
        client.collateral(FMSPC)
    error = caught.value
    assert "offline" in error.message
    assert pcs.url + TCB_TARGET in str(error)
    assert "ccattest collateral import" in str(error)
    assert "--platform tdx" in str(error)
    assert pcs.requests == []


def test_concurrent_callers_fetch_each_item_once(pcs, sample, sleeps):
    results: list[bytes] = []
    with client_for(pcs, sleeps) as client:
        def work() -> None:
            results.append(client.fetch(client.tcb_info_request(FMSPC)).body)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [sample.tcb_info] * 8
    assert len(pcs.requests) == 1


# --- what PCS answers is checked before caching ------------------------------------------------

def _garbage_cases(sample: TdxCollateral) -> dict[str, tuple[str, dict]]:
    """name -> (reason, how to serve TCB Info or the PCK CRL instead of the real one)."""
    other = sample.tcb_info.replace(b'"fmspc":"50806f000000"', b'"fmspc":"00906ed50000"')
    return {
        "wrong fmspc": ("another FMSPC", {"tcb": other}),
        "bad json": ("not JSON", {"tcb": sample.tcb_info[:-5]}),
        "qe identity as tcb info": ("lacks tcbInfo", {"tcb": sample.qe_identity}),
        "wrong chain": ("wrong certificates", {"tcb_chain": sample.pck_crl_issuer_chain}),
        "bad crl": ("does not parse", {"crl": b"\x30\x82\x01\x00" + bytes(40)}),
        "root crl as pck crl": ("wrong issuer", {"crl": sample.root_ca_crl}),
    }


@pytest.mark.parametrize("case", ["wrong fmspc", "bad json", "qe identity as tcb info",
                                  "wrong chain", "bad crl", "root crl as pck crl"])
def test_garbage_is_not_cached(pcs, sample, sleeps, case):
    reason, change = _garbage_cases(sample)[case]
    pcs.serve_tcb_info(FMSPC, change.get("tcb", sample.tcb_info),
                       change.get("tcb_chain", sample.tcb_info_issuer_chain))
    pcs.serve_pck_crl("platform", change.get("crl", sample.pck_crl),
                      sample.pck_crl_issuer_chain)
    cache = CollateralCache()
    with client_for(pcs, sleeps, cache=cache) as client:
        for _ in range(2):
            with pytest.raises(CollateralUnavailable, match=reason) as caught:
                client.collateral(FMSPC)
            assert "unusable" in caught.value.message
    target = PCK_TARGET if "crl" in change else TCB_TARGET
    assert pcs.targets.count(target) == 2  # nothing cached: asked again
    assert all(item.kind != KINDS["tcb_info" if target == TCB_TARGET else "pck_crl"]
               for item in cache.items())


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "without an issuer chain"),
    ({"TCB-Info-Issuer-Chain": "not%20a%20chain"}, "unusable issuer chain"),
])
def test_missing_or_bad_chain_header_is_refused(pcs, sample, sleeps, headers, reason):
    pcs.serve("/tdx/certification/v4/tcb", sample.tcb_info, query={"fmspc": FMSPC.hex()},
              headers=headers)
    cache = CollateralCache()
    with client_for(pcs, sleeps, cache=cache) as client, \
            pytest.raises(CollateralUnavailable, match=reason):
        client.collateral(FMSPC)
    assert cache.items() == []


def test_an_sgx_qe_identity_is_refused(pcs, sample, sleeps):
    sgx = sample.qe_identity.replace(b'"id":"TD_QE"', b'"id":"QE"')
    pcs.serve_qe_identity(sgx, sample.qe_identity_issuer_chain)
    with client_for(pcs, sleeps) as client, pytest.raises(CollateralUnavailable,
                                                          match="TD QE"):
        client.collateral(FMSPC)


# --- exact bytes --------------------------------------------------------------------------------

def pretty_tcb_info(compact: bytes) -> bytes:
    """The same TCB Info with whitespace around (not inside) the signed inner object."""
    start, end = len(b'{"tcbInfo":'), compact.rindex(b',"signature":')
    signature = json.loads(compact)["signature"].encode()
    return (b'{\n  "tcbInfo" :  ' + compact[start:end] + b' ,\r\n  "signature": "'
            + signature + b'"\n}\n\n')


def test_exact_bytes_survive_fetch_cache_disk_and_bundle(pcs, sample, sleeps, tmp_path):
    body = pretty_tcb_info(sample.tcb_info)
    assert body != sample.tcb_info and json.loads(body) == json.loads(sample.tcb_info)
    pcs.serve_tcb_info(FMSPC, body, sample.tcb_info_issuer_chain)
    with client_for(pcs, sleeps, cache=CollateralCache(tmp_path / "cache")) as client:
        assert client.collateral(FMSPC).tcb_info == body
    disk = CollateralCache(tmp_path / "cache")
    with client_for(pcs, sleeps, cache=disk, offline=True) as client:
        assert client.collateral(FMSPC).tcb_info == body
    export_bundle(disk, tmp_path / "bundle.json", created_at=AT)
    imported = CollateralCache()
    import_bundle(imported, tmp_path / "bundle.json")
    with client_for(pcs, sleeps, cache=imported, offline=True) as client:
        assert client.collateral(FMSPC).tcb_info == body
    assert len(pcs.requests) == 4


# --- bundles and folders ------------------------------------------------------------------------

def test_bundle_round_trip_of_tdx_items(pcs, sample, sleeps, tmp_path):
    cache = CollateralCache()
    with client_for(pcs, sleeps, cache=cache) as client:
        client.collateral(FMSPC)
    written = export_bundle(cache, tmp_path / "tdx.json", created_at=AT)
    assert sorted(item.kind for item in written) == sorted(KINDS.values())
    document = json.loads((tmp_path / "tdx.json").read_text())
    assert {entry["source"] for entry in document["manifest"]} == \
        {pcs.url + target for target in ALL_TARGETS}
    air_gapped = CollateralCache(tmp_path / "air-gapped")
    stored = import_bundle(air_gapped, tmp_path / "tdx.json")
    assert [(item.kind, item.key, item.data) for item in stored] == \
        [(item.kind, item.key, item.data) for item in written]
    with PcsClient("https://pccs.invalid", cache=CollateralCache(tmp_path / "air-gapped"),
                   offline=True, now=lambda: AT) as client:
        collateral = client.collateral(FMSPC)
    assert fields_of(collateral) == sample
    assert collateral.source == "cache"


def test_a_bundle_with_a_tdx_item_under_another_key_is_refused(pcs, sleeps, tmp_path):
    cache = CollateralCache()
    with client_for(pcs, sleeps, cache=cache) as client:
        client.collateral(FMSPC)
    export_bundle(cache, tmp_path / "tdx.json", created_at=AT)
    document = json.loads((tmp_path / "tdx.json").read_text())
    for entry in document["manifest"]:
        if entry["kind"] == KINDS["tcb_info"]:
            entry["key"] = ["00906ed50000"]
    with pytest.raises(ConfigError, match="another FMSPC"):
        load_bundle(json.dumps(document).encode())


def test_folder_round_trip(pcs, sample, sleeps, tmp_path):
    with client_for(pcs, sleeps) as client:
        collateral = client.collateral(FMSPC)
    written = write_collateral_folder(collateral, tmp_path / "tdx")
    assert sorted(path.name for path in written) == sorted(FOLDER_FILES.values())
    again = collateral_from_path(tmp_path / "tdx")
    assert fields_of(again) == sample
    assert again.source == str(tmp_path / "tdx")
    assert (tmp_path / "tdx" / "tcb_info.json").read_bytes() == sample.tcb_info


def test_folder_names_its_missing_files(sample, tmp_path):
    write_collateral_folder(sample, tmp_path)
    (tmp_path / "pck_crl.der").unlink()
    (tmp_path / "root_ca_crl.der").unlink()
    with pytest.raises(ConfigError, match="lacks files") as caught:
        collateral_from_path(tmp_path)
    assert "pck_crl.der" in str(caught.value) and "root_ca_crl.der" in str(caught.value)
    with pytest.raises(ConfigError, match="must be a folder"):
        collateral_from_path(tmp_path / "tcb_info.json")


def test_folder_accepts_a_hex_root_crl_and_refuses_bad_files(sample, tmp_path):
    write_collateral_folder(sample, tmp_path)
    (tmp_path / "root_ca_crl.der").write_text(sample.root_ca_crl.hex() + "\n")
    assert collateral_from_path(tmp_path).root_ca_crl == sample.root_ca_crl
    (tmp_path / "qe_identity.json").write_bytes(sample.tcb_info)
    with pytest.raises(ConfigError, match=r"qe_identity\.json is refused"):
        collateral_from_path(tmp_path)


def test_folder_read_and_write_errors(sample, tmp_path, monkeypatch):
    write_collateral_folder(sample, tmp_path / "ok")
    read_bytes = Path.read_bytes

    def refuse(path: Path) -> bytes:
        if path.name == "tcb_info.json":
            raise PermissionError(13, "Permission denied")
        return read_bytes(path)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "read_bytes", refuse)
        with pytest.raises(ConfigError, match="cannot read"):
            collateral_from_path(tmp_path / "ok")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot create"):
        write_collateral_folder(sample, tmp_path / "file" / "sub")
    (tmp_path / "blocked" / "tcb_info.json").mkdir(parents=True)
    with pytest.raises(ConfigError, match="cannot write"):
        write_collateral_folder(sample, tmp_path / "blocked")


# --- validators ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "reason"), [
    (b"[]", "not a JSON object"),
    (signed("tcbInfo", TCB_INNER, "ab" * 63), "signature is not 64 bytes"),
    (signed("tcbInfo", {**TCB_INNER, "id": "SGX"}), "not for TDX"),
    (signed("tcbInfo", {**TCB_INNER, "fmspc": "50806f"}), "no FMSPC"),
    (signed("tcbInfo", {**TCB_INNER, "nextUpdate": "soon"}), "nextUpdate is not"),
    (signed("tcbInfo", {**TCB_INNER, "issueDate": "2023-06-18T08:42:58"}), "issueDate is not"),
    (signed("tcbInfo", {**TCB_INNER, "issueDate": 1687077778}), "issueDate is not"),
    (signed("tcbInfo", {**TCB_INNER, "nextUpdate": "2023-06-01T00:00:00Z"}), "before its"),
    (json.dumps({"tcbInfo": TCB_INNER}).encode(), "lacks tcbInfo or signature"),
])
def test_tcb_info_shapes(body, reason):
    with pytest.raises(MalformedEvidence, match=reason):
        tcb_info_window(body, "50806f000000")


def test_tcb_info_window_and_case():
    upper = signed("tcbInfo", {**TCB_INNER, "fmspc": "50806F000000"})
    assert tcb_info_window(upper, "50806f000000").not_after == \
        datetime(2023, 7, 18, 8, 42, 58, tzinfo=UTC)
    assert tcb_info_window(upper).not_before == datetime(2023, 6, 18, 8, 42, 58, tzinfo=UTC)
    assert qe_identity_window(signed("enclaveIdentity", QE_INNER)).not_after == \
        datetime(2023, 7, 8, 7, 24, 59, tzinfo=UTC)


def test_chain_and_crl_checks():
    platform = intel_name("Intel SGX PCK Platform CA")
    with pytest.raises(MalformedEvidence, match="not PEM"):
        check_issuer_chain(b"\x30\x82", "Intel SGX TCB Signing")
    with pytest.raises(MalformedEvidence, match="does not parse"):
        check_issuer_chain(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                           "Intel SGX TCB Signing")
    with pytest.raises(MalformedEvidence, match="wrong certificates"):
        check_issuer_chain(make_chain(platform, root="Other Root"), platform.rfc4514_string())
    # A chain whose first certificate has the CA's common name but not the CRL issuer's name.
    impostor = make_chain(intel_name("Intel SGX PCK Platform CA", "Someone Else"))
    packed = pack_item(make_crl(platform), impostor)
    with pytest.raises(CollateralUnavailable, match="does not start with the CRL's issuer"):
        check_item(KINDS["pck_crl"], ("platform",), packed)
    window, issuer = crl_window(make_crl(platform, pem=True), ["Intel SGX PCK Platform CA"])
    assert issuer == platform and window.not_after == datetime(2023, 8, 1, tzinfo=UTC)
    with pytest.raises(MalformedEvidence, match="no nextUpdate"):
        crl_window(crl_without_next_update(platform), ["Intel SGX PCK Platform CA"])
    assert crl_bytes(b"30 82") == b"30 82"  # not one run of hex digits: kept
    assert crl_bytes(b"3082\n") == b"\x30\x82"


@pytest.mark.parametrize(("kind", "key"), [
    ("tcb_info", ("50806F000000",)), ("tcb_info", ("50806f000000", "x")),
    ("qe_identity", ("QE",)), ("pck_crl", ("other",)), ("root_ca_crl", ()),
])
def test_bad_keys_are_refused(kind, key):
    with pytest.raises(CollateralUnavailable, match="bad key"):
        check_item(KINDS[kind], key, b"{}")


@pytest.mark.parametrize(("data", "reason"), [
    (b'{"format": "other"}', "not a TDX collateral item"),
    (b'{"format": "ccattest-tdx-collateral/1", "body": 1}', "body is not base64 text"),
    (b'{"format": "ccattest-tdx-collateral/1", "body": "!!", "issuer_chain": ""}',
     "body is not base64"),
])
def test_bad_envelopes(data, reason):
    with pytest.raises(MalformedEvidence, match=reason):
        unpack_item(data)


def test_pack_item_round_trip():
    assert unpack_item(pack_item(b"\x00 body \n", b"chain")) == (b"\x00 body \n", b"chain")


def test_header_decoding(sample):
    assert decode_issuer_chain(encode_chain(sample.pck_crl_issuer_chain)) == \
        sample.pck_crl_issuer_chain
    assert decode_issuer_chain(encode_chain(sample.pck_crl_issuer_chain).encode()) == \
        sample.pck_crl_issuer_chain
    with pytest.raises(MalformedEvidence, match="not ASCII"):
        decode_issuer_chain("é".encode())
    with pytest.raises(MalformedEvidence, match="not URL-encoded PEM"):
        decode_issuer_chain("%2D%2D")
    with pytest.raises(ConfigError, match="must be text"):
        decode_issuer_chain(42)  # type: ignore[arg-type]


# --- property tests: arbitrary input, only typed errors -------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
FIELDS = st.fixed_dictionaries({}, optional={
    "id": st.sampled_from(["TDX", "TD_QE", "SGX"]) | JSON_VALUES,
    "fmspc": st.sampled_from(["50806f000000", "50806F000000", "zz"]) | JSON_VALUES,
    "issueDate": st.sampled_from(["2023-06-18T08:42:58Z", "0001-01-01T00:00:00+01:00",
                                  "9999-12-31T23:59:59-01:00"]) | JSON_VALUES,
    "nextUpdate": st.sampled_from(["2023-07-18T08:42:58Z", "2023-07-18"]) | JSON_VALUES,
})


def _typed(call, *args) -> None:
    with contextlib.suppress(CCAttestError):
        call(*args)


@given(st.text() | st.binary())
def test_header_decoding_raises_only_typed_errors(value):
    _typed(decode_issuer_chain, value)


@given(st.binary(max_size=400), st.sampled_from(sorted(KINDS)))
def test_checkers_raise_only_collateral_unavailable(data, kind):
    key = {"tcb_info": ("50806f000000",), "qe_identity": ("TD_QE",), "pck_crl": ("platform",),
           "root_ca_crl": ("sgx_root_ca",)}[kind]
    with contextlib.suppress(CollateralUnavailable):
        check_item(KINDS[kind], key, data)


@given(FIELDS, st.sampled_from(["tcbInfo", "enclaveIdentity"]),
       st.text(alphabet="0123456789abcdefg", min_size=126, max_size=130))
def test_json_validators_raise_only_typed_errors(inner, name, signature):
    body = json.dumps({name: inner, "signature": signature}).encode()
    _typed(tcb_info_window, body, "50806f000000")
    _typed(qe_identity_window, body)


@given(JSON_VALUES)
def test_json_validators_on_any_json(value):
    body = json.dumps(value).encode()
    _typed(tcb_info_window, body)
    _typed(qe_identity_window, body)
    _typed(unpack_item, body)


@given(st.binary(max_size=300) | st.text(alphabet="0123456789abcdefABCDEF \n", max_size=60)
       .map(str.encode))
def test_crl_and_chain_parsers_raise_only_typed_errors(data):
    _typed(crl_window, crl_bytes(data), ["Intel SGX Root CA"])
    _typed(check_issuer_chain, b"-----BEGIN CERTIFICATE-----\n" + data, "Intel SGX TCB Signing")


@given(st.text(max_size=20) | st.binary(max_size=10))
def test_fmspc_parsing_raises_only_config_errors(value):
    with contextlib.suppress(ConfigError):
        assert len(parse_fmspc(value)) == 6


# --- settings and arguments -----------------------------------------------------------------------

@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.collateral(b"\x01" * 5), "wrong length"),
    (lambda c: c.collateral("50806f00000g"), "6 bytes or 12 hex"),  # type: ignore[arg-type]
    (lambda c: c.collateral(FMSPC, "root"), "unknown PCK CA"),
    (lambda c: c.collateral(FMSPC, at=datetime(2023, 7, 1)), "naive"),
])
def test_bad_arguments_are_config_errors(call, message):
    with PcsClient("http://127.0.0.1:9", offline=True) as client, \
            pytest.raises(ConfigError, match=message):
        call(client)


def test_fmspc_from_hex_text():
    assert parse_fmspc(" 50806F000000 ") == FMSPC
    with PcsClient("http://127.0.0.1:9", offline=True) as client:
        assert client.tcb_info_request("50806F000000").key == ("50806f000000",)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [
    {"base_url": "ftp://pcs.example"}, {"base_url": "http://"}, {"base_url": "http://[::1"},
    {"root_ca_crl_url": "file:///crl.der"}, {"retries": -1}, {"retries": 1.5},
    {"backoff": -0.1}, {"timeout": 0},
])
def test_bad_client_settings(kwargs):
    with pytest.raises(ConfigError):
        PcsClient(**kwargs)


def test_base_url_trailing_slash_is_dropped():
    with PcsClient("https://pccs.example:8081/", offline=True) as client:
        assert [request.url for request in client.requests_for(FMSPC, "processor")] == [
            "https://pccs.example:8081" + TCB_TARGET,
            "https://pccs.example:8081" + QE_TARGET,
            "https://pccs.example:8081/sgx/certification/v4/pckcrl?ca=processor&encoding=der",
            "https://pccs.example:8081" + ROOT_TARGET]


# --- the local PCS itself -------------------------------------------------------------------------

def test_server_lifecycle_and_routes(sample):
    server = PcsServer()
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.stop()
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
        server.serve_pck_crl("platform", sample.pck_crl, sample.pck_crl_issuer_chain,
                             encoding=None)
        with PcsClient(server.url, retries=0, now=lambda: AT) as client, \
                pytest.raises(CollateralUnavailable, match="404"):
            client.fetch(client.pck_crl_request())
        assert server.targets == [PCK_TARGET]
    assert not server.running

