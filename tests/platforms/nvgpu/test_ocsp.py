"""OCSP for NVIDIA chains against a real HTTP responder on 127.0.0.1
(ccattest.testing.nvidia_server) built with test keys: good, revoked, on hold, unknown, badly
signed, delegated responders, nonces, validity windows, retries, caching and offline mode."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509 import ocsp

from ccattest.collateral import CollateralCache
from ccattest.errors import (
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    VerificationFailed,
)
from ccattest.platforms.nvgpu import ocsp as ocsp_module
from ccattest.platforms.nvgpu.ocsp import (
    KIND,
    Checks,
    OcspClient,
    build_request,
    cert_id,
    check_ocsp_item,
    evaluate,
    load_response,
    requests_for_chain,
)
from ccattest.testing.nvidia_server import (
    CertKey,
    NvidiaServer,
    OcspResponder,
    issue,
    unsuccessful_ocsp,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=10)  # what the responder thinks the time is
WINDOW = {"not_before": T0, "not_after": T0 + timedelta(days=365)}


class Pki:
    """root -> ca -> leaf, like a (short) device chain."""

    def __init__(self) -> None:
        self.root = issue("Test Device Root", **WINDOW)
        self.ca = issue("Test Device CA", issuer=self.root, **WINDOW)
        self.leaf = issue("Test Device Leaf", issuer=self.ca, ca=False, **WINDOW)

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.leaf.cert, self.ca.cert, self.root.cert]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture
def server():
    with NvidiaServer(now=NOW) as running:
        yield running


@pytest.fixture
def responder(server: NvidiaServer, pki: Pki) -> OcspResponder:
    return server.add_responder(OcspResponder(pki.ca.cert, pki.ca.key))


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(server: NvidiaServer, **options: object) -> OcspClient:
    options.setdefault("sleep", Sleeps())
    options.setdefault("now", lambda: NOW)
    return OcspClient(server.ocsp_url, **options)  # type: ignore[arg-type]


def ocsp_posts(server: NvidiaServer) -> int:
    return sum(1 for request in server.requests if request.method == "POST")


# --- statuses -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "reason", "expected"), [
    ("good", None, "good"),
    ("revoked", None, "revoked"),
    ("revoked", x509.ReasonFlags.key_compromise, "revoked"),
    ("on_hold", None, "on_hold"),
    ("unknown", None, "unknown"),
])
def test_statuses(server: NvidiaServer, responder: OcspResponder, pki: Pki, status: str,
                  reason: x509.ReasonFlags | None, expected: str) -> None:
    responder.set_status(pki.leaf.cert, status, reason=reason)  # type: ignore[arg-type]
    with client(server) as ocsp_client:
        result = ocsp_client.check(pki.leaf.cert, pki.ca.cert, NOW)
        assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW) == expected
    assert result.status == expected and result.source == server.ocsp_url
    assert result.this_update == NOW - timedelta(hours=1)
    assert result.next_update == NOW + timedelta(hours=23)
    claims = result.claims()
    assert claims["status"] == expected and claims["next_update"] == result.next_update.isoformat()
    if expected == "on_hold":
        assert claims["revocation_reason"] == "certificateHold"
    if reason is not None:
        assert claims["revocation_reason"] == "keyCompromise"
    if expected in ("revoked", "on_hold"):
        assert result.revocation_time == datetime(2020, 1, 1, tzinfo=UTC)


def test_unregistered_certificates_are_unknown(server: NvidiaServer, responder: OcspResponder,
                                               pki: Pki) -> None:
    stranger = issue("never registered", issuer=pki.ca, ca=False, **WINDOW)
    with client(server) as ocsp_client:
        assert ocsp_client.status(stranger.cert, pki.ca.cert, NOW) == "unknown"


def test_status_by_serial_and_the_request_sent(server: NvidiaServer, responder: OcspResponder,
                                               pki: Pki) -> None:
    responder.set_status(pki.leaf.cert.serial_number, "good")
    with client(server) as ocsp_client:
        assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW) == "good"
    sent = server.requests[-1]
    assert sent.header("Content-Type") == "application/ocsp-request"
    request = ocsp.load_der_ocsp_request(sent.body)
    assert request.serial_number == pki.leaf.cert.serial_number
    assert isinstance(request.hash_algorithm, hashes.SHA384)
    nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert len(nonce) == 32


def test_chain_status_checks_every_certificate_but_the_root(server: NvidiaServer, pki: Pki) -> None:
    server.add_responder(OcspResponder(pki.ca.cert, pki.ca.key)).set_status(pki.leaf.cert, "good")
    server.add_responder(OcspResponder(pki.root.cert, pki.root.key)).set_status(pki.ca.cert,
                                                                                "revoked")
    with client(server) as ocsp_client:
        results = ocsp_client.chain_status(pki.chain, NOW)
    assert [result.status for result in results] == ["good", "revoked"]
    requests = requests_for_chain(pki.chain, algorithm=hashes.SHA256())
    assert [request.cert for request in requests] == pki.chain[:2]
    assert all(request.nonce and len(request.nonce) == 32 for request in requests)
    assert requests_for_chain(pki.chain, nonce=False)[0].nonce is None
    assert requests[0].key[0] == "sha256"


# --- who signed ---------------------------------------------------------------------------------

def test_badly_signed_answers_are_refused(server: NvidiaServer, responder: OcspResponder,
                                          pki: Pki) -> None:
    responder.set_status(pki.leaf.cert, "good").bad_signature = True
    with client(server) as ocsp_client, pytest.raises(VerificationFailed,
                                                      match="signature does not verify"):
        ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)


def test_delegated_responders(server: NvidiaServer, responder: OcspResponder, pki: Pki) -> None:
    responder.set_status(pki.leaf.cert, "revoked")
    responder.responder = issue("OCSP signer", issuer=pki.ca, ca=False, ocsp_signing=True,
                                **WINDOW)
    with client(server) as ocsp_client:
        assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW) == "revoked"
    other = Pki()
    for delegate in (issue("no EKU", issuer=pki.ca, ca=False, **WINDOW),
                     issue("other issuer", issuer=other.ca, ca=False, ocsp_signing=True, **WINDOW),
                     issue("expired", issuer=pki.ca, ca=False, ocsp_signing=True,
                           not_before=T0, not_after=T0 + timedelta(days=2))):
        responder.responder = delegate
        with client(server) as ocsp_client, pytest.raises(VerificationFailed,
                                                          match="not signed by the issuer"):
            ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)


def test_answers_for_another_certificate_are_refused(pki: Pki) -> None:
    other = issue("other leaf", issuer=pki.ca, ca=False, **WINDOW)
    answer = _response(other.cert, pki.ca, hashes.SHA384())
    request = build_request(pki.leaf.cert, pki.ca.cert)
    with pytest.raises(VerificationFailed, match="another certificate"):
        evaluate(answer, request, NOW, source="test")


def _response(cert: x509.Certificate, signer: CertKey, algorithm: hashes.HashAlgorithm, *,
              next_update: datetime | None = NOW + timedelta(days=1),
              hash_for_signature: hashes.HashAlgorithm | None = None,
              issuer: x509.Certificate | None = None,
              encoding: ocsp.OCSPResponderEncoding = ocsp.OCSPResponderEncoding.HASH) -> bytes:
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert, issuer=issuer or signer.cert, algorithm=algorithm,
        cert_status=ocsp.OCSPCertStatus.GOOD, this_update=NOW - timedelta(hours=1),
        next_update=next_update, revocation_time=None, revocation_reason=None,
    ).responder_id(encoding, signer.cert)
    signature_hash = hash_for_signature if hash_for_signature is not None else hashes.SHA384()
    if isinstance(signer.key, ed25519.Ed25519PrivateKey):
        signature_hash = None  # type: ignore[assignment]
    response = builder.sign(signer.key, signature_hash)  # type: ignore[arg-type]
    return response.public_bytes(serialization.Encoding.DER)


def test_answers_hashed_otherwise_are_matched(pki: Pki) -> None:
    answer = _response(pki.leaf.cert, pki.ca, hashes.SHA1())
    request = build_request(pki.leaf.cert, pki.ca.cert)  # asked with SHA-384
    result = evaluate(answer, request, NOW, source="test")
    assert result.status == "good" and result.cert_id[0] == "sha1"
    assert result.cert_id != request.key  # so the client does not cache it under request.key
    by_name = _response(pki.leaf.cert, pki.ca, hashes.SHA384(),
                        encoding=ocsp.OCSPResponderEncoding.NAME)
    assert evaluate(by_name, request, NOW, source="test").status == "good"


def _certified(name: str, key: object, issuer: CertKey) -> x509.Certificate:
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
               .issuer_name(issuer.cert.subject).public_key(key.public_key())  # type: ignore[attr-defined]
               .serial_number(x509.random_serial_number())
               .not_valid_before(T0).not_valid_after(T0 + timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    return builder.sign(issuer.key, hashes.SHA384())


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_rsa_and_ed25519_signers(pki: Pki, kind: str) -> None:
    key = (rsa.generate_private_key(65537, 2048) if kind == "rsa"
           else ed25519.Ed25519PrivateKey.generate())
    issuer = CertKey(_certified(f"{kind} CA", key, pki.root), key)  # type: ignore[arg-type]
    leaf = issue("leaf", issuer=pki.ca, ca=False, **WINDOW)
    answer = _response(leaf.cert, issuer, hashes.SHA256(), issuer=issuer.cert)
    request = build_request(leaf.cert, issuer.cert)
    assert evaluate(answer, request, NOW, source="test").status == "good"
    tampered = bytearray(answer)
    tampered[-1] ^= 1
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        evaluate(bytes(tampered), request, NOW, source="test")


def test_unsupported_signer_keys_are_refused(pki: Pki) -> None:
    key = dsa.generate_private_key(1024)
    issuer = CertKey(_certified("DSA CA", key, pki.root), key)  # type: ignore[arg-type]
    answer = _response(pki.leaf.cert, issuer, hashes.SHA256(), issuer=issuer.cert,
                       hash_for_signature=hashes.SHA256())
    with pytest.raises(VerificationFailed, match="unsupported key"):
        evaluate(answer, build_request(pki.leaf.cert, issuer.cert), NOW, source="test")


# --- times and nonces ---------------------------------------------------------------------------

def test_validity_window_is_checked_against_at(server: NvidiaServer, responder: OcspResponder,
                                               pki: Pki) -> None:
    responder.set_status(pki.leaf.cert, "good")
    with client(server) as ocsp_client:
        for at in (NOW - timedelta(hours=2), NOW + timedelta(days=2)):
            with pytest.raises(VerificationFailed, match="not current"):
                ocsp_client.status(pki.leaf.cert, pki.ca.cert, at)
        assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW - timedelta(minutes=64)) == "good"
    responder.this_update = NOW - timedelta(days=3)
    responder.next_update = NOW - timedelta(days=2)
    with client(server) as ocsp_client, pytest.raises(VerificationFailed, match="nextUpdate"):
        ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)


def test_answers_without_next_update(server: NvidiaServer, responder: OcspResponder, pki: Pki,
                                     tmp_path: Path) -> None:
    responder.set_status(pki.leaf.cert, "good").validity = None
    cache = CollateralCache(tmp_path)
    with client(server, cache=cache) as ocsp_client:
        result = ocsp_client.check(pki.leaf.cert, pki.ca.cert, NOW)
        assert result.next_update is None and result.status == "good"
        assert cache.items() == []  # not cacheable
        with pytest.raises(VerificationFailed, match="max age"):
            ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW + timedelta(days=2))
    with client(server, checks=Checks(max_age=timedelta(days=3))) as ocsp_client:
        assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW + timedelta(days=2)) == "good"


def test_nonces(server: NvidiaServer, responder: OcspResponder, pki: Pki) -> None:
    responder.set_status(pki.leaf.cert, "good").wrong_nonce = True
    with client(server) as ocsp_client, pytest.raises(VerificationFailed, match="nonce"):
        ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)
    responder.echo_nonce = False
    with client(server) as ocsp_client:
        assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW) == "good"
    with client(server, checks=Checks(require_nonce=True)) as ocsp_client, pytest.raises(
            VerificationFailed, match="nonce") as caught:
        ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)
    assert caught.value.found is None
    with client(server, nonce=False) as ocsp_client:
        assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW) == "good"
    request = ocsp.load_der_ocsp_request(server.requests[-1].body)
    assert len(request.extensions) == 0


# --- the cache and offline mode -------------------------------------------------------------------

def test_answers_are_cached_until_next_update(server: NvidiaServer, responder: OcspResponder,
                                              pki: Pki, tmp_path: Path) -> None:
    responder.set_status(pki.leaf.cert, "on_hold")
    cache = CollateralCache(tmp_path)
    with client(server, cache=cache) as ocsp_client:
        first = ocsp_client.check(pki.leaf.cert, pki.ca.cert, NOW)
        second = ocsp_client.check(pki.leaf.cert, pki.ca.cert, NOW + timedelta(hours=12))
    assert (first.source, second.source) == (server.ocsp_url, "cache")
    assert second.status == "on_hold" and ocsp_posts(server) == 1
    (item,) = CollateralCache(tmp_path).items()
    assert item.kind == KIND and item.not_after == NOW + timedelta(hours=23)
    assert item.key == cert_id(pki.leaf.cert, pki.ca.cert, hashes.SHA384())
    with client(server, cache=CollateralCache(tmp_path), offline=True) as offline:
        assert offline.status(pki.leaf.cert, pki.ca.cert, NOW) == "on_hold"
        with pytest.raises(CollateralUnavailable, match="offline") as caught:
            offline.status(pki.leaf.cert, pki.ca.cert, NOW + timedelta(days=2))
    assert server.ocsp_url in str(caught.value.expected)
    assert "ccattest collateral import" in (caught.value.hint or "")
    assert ocsp_posts(server) == 1


def test_cached_answers_are_verified_again(pki: Pki, tmp_path: Path) -> None:
    forger = Pki()
    forged = _response(pki.leaf.cert, CertKey(forger.ca.cert, forger.ca.key), hashes.SHA384(),
                       issuer=pki.ca.cert)
    key = cert_id(pki.leaf.cert, pki.ca.cert, hashes.SHA384())
    cache = CollateralCache(tmp_path)
    cache.put(KIND, key, forged, source="planted", fetched_at=NOW)
    with OcspClient(cache=cache, offline=True) as ocsp_client, pytest.raises(
            VerificationFailed, match="not signed by the issuer"):
        ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)


def test_cache_checker(pki: Pki) -> None:
    key = cert_id(pki.leaf.cert, pki.ca.cert, hashes.SHA384())
    answer = _response(pki.leaf.cert, pki.ca, hashes.SHA384())
    window = check_ocsp_item(key, answer)
    assert (window.not_before, window.not_after) == (NOW - timedelta(hours=1),
                                                     NOW + timedelta(days=1))
    with pytest.raises(MalformedEvidence, match="bad key"):
        check_ocsp_item(("sha384",), answer)
    with pytest.raises(VerificationFailed, match="another certificate"):
        check_ocsp_item((*key[:3], "ff"), answer)
    with pytest.raises(MalformedEvidence, match="nextUpdate"):
        check_ocsp_item(key, _response(pki.leaf.cert, pki.ca, hashes.SHA384(), next_update=None))
    with pytest.raises(MalformedEvidence, match="does not parse"):
        check_ocsp_item(key, b"garbage")
    with pytest.raises(CollateralUnavailable, match="no status"):
        load_response(unsuccessful_ocsp(ocsp.OCSPResponseStatus.TRY_LATER))


# --- HTTP: retries and refusals -----------------------------------------------------------------

def test_retries_on_429_and_5xx(server: NvidiaServer, responder: OcspResponder, pki: Pki) -> None:
    responder.set_status(pki.leaf.cert, "good")
    server.fail(429, retry_after="3")
    server.fail(503)
    server.drop()
    sleeps = Sleeps()
    with client(server, sleep=sleeps, backoff=0.25) as ocsp_client:
        assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW) == "good"
    assert sleeps == [3.0, 0.5, 1.0] and ocsp_posts(server) == 4


def test_giving_up_and_refusals(server: NvidiaServer, responder: OcspResponder, pki: Pki) -> None:
    server.fail(500, times=3)
    with client(server, retries=2) as ocsp_client, pytest.raises(
            CollateralUnavailable, match="did not answer") as caught:
        ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)
    assert caught.value.found == "HTTP 500; HTTP 500; HTTP 500"
    server.fail(403)
    with client(server) as ocsp_client, pytest.raises(CollateralUnavailable, match="refused"):
        ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)
    assert ocsp_posts(server) == 4


def test_unusable_answers(server: NvidiaServer, pki: Pki) -> None:
    with client(server) as ocsp_client:
        with pytest.raises(CollateralUnavailable, match="no status") as caught:
            ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)  # no responder for this CA
        assert caught.value.found == "UNAUTHORIZED"
        server.fail(200, body=b"not OCSP")
        with pytest.raises(CollateralUnavailable, match="unusable response"):
            ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)
        server.fail(200, body=unsuccessful_ocsp(ocsp.OCSPResponseStatus.TRY_LATER))
        with pytest.raises(CollateralUnavailable, match="TRY_LATER"):
            ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)


def test_server_answers_malformed_requests(server: NvidiaServer) -> None:
    reply = httpx.post(server.ocsp_url, content=b"not a request")
    assert reply.status_code == 200
    status = ocsp.load_der_ocsp_response(reply.content).response_status
    assert status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_timeouts_are_retried(pki: Pki) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    sleeps = Sleeps()
    with OcspClient("http://ocsp.test/", transport=httpx.MockTransport(handler), retries=1,
                    sleep=sleeps) as ocsp_client, pytest.raises(CollateralUnavailable,
                                                                match="timeout"):
        ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW)
    assert len(calls) == 2 and sleeps == [0.5]


def test_concurrent_checks_share_one_fetch(server: NvidiaServer, responder: OcspResponder,
                                           pki: Pki, tmp_path: Path) -> None:
    responder.set_status(pki.leaf.cert, "good")
    results: list[str] = []
    with client(server, cache=CollateralCache(tmp_path)) as ocsp_client:
        threads = [threading.Thread(target=lambda: results.append(
            ocsp_client.status(pki.leaf.cert, pki.ca.cert, NOW))) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == ["good"] * 6 and ocsp_posts(server) == 1


# --- settings -----------------------------------------------------------------------------------

def test_settings_and_arguments_are_checked(pki: Pki) -> None:
    for url in ("ftp://ocsp.example", "not a url", "http://"):
        with pytest.raises(ConfigError, match="URL"):
            OcspClient(url)
    with pytest.raises(ConfigError, match="settings"):
        OcspClient(retries=-1)
    with OcspClient() as ocsp_client:
        assert ocsp_client.url == "http://ocsp.ndis.nvidia.com"
        with pytest.raises(ConfigError, match="naive"):
            ocsp_client.status(pki.leaf.cert, pki.ca.cert, datetime(2025, 1, 1))
        with pytest.raises(ConfigError, match=r"x509\.Certificate"):
            ocsp_client.status(b"cert", pki.ca.cert, NOW)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="CertID"):
        cert_id(pki.leaf.cert, pki.ca.cert, hashes.MD5())
    assert ocsp_module.OCSP_URL == "http://ocsp.ndis.nvidia.com/"


def test_server_lifecycle_and_routes() -> None:
    server = NvidiaServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
        server.serve("/plain", b"hello", "text/plain", status=202)
        reply = httpx.get(server.url + "/plain")
        assert (reply.status_code, reply.text) == (202, "hello")
        assert httpx.get(server.url + "/nothing").status_code == 404
        assert server.paths == ["/plain", "/nothing"]
        assert server.requests[0].header("x-missing") is None
    server.stop()


def test_responder_times_follow_the_clock(server: NvidiaServer, pki: Pki) -> None:
    responder = OcspResponder(pki.ca.cert, pki.ca.key).set_status(pki.leaf.cert, "good")
    request = ocsp.load_der_ocsp_request(build_request(pki.leaf.cert, pki.ca.cert).der)
    answer = ocsp.load_der_ocsp_response(responder.answer(request, T0))
    assert answer.this_update_utc == T0 - timedelta(hours=1)
    live = NvidiaServer().start()
    try:
        live.add_responder(responder)
        with OcspClient(live.ocsp_url) as ocsp_client:
            at = datetime.now(UTC)
            assert ocsp_client.status(pki.leaf.cert, pki.ca.cert, at) == "good"
    finally:
        live.stop()


def test_ec_responders_sign_with_sha384(server: NvidiaServer, responder: OcspResponder,
                                        pki: Pki) -> None:
    responder.set_status(pki.leaf.cert, "good")
    reply = httpx.post(server.ocsp_url, content=build_request(pki.leaf.cert, pki.ca.cert).der)
    answer = ocsp.load_der_ocsp_response(reply.content)
    assert isinstance(answer.signature_hash_algorithm, hashes.SHA384)
    assert isinstance(pki.ca.key, ec.EllipticCurvePrivateKey)
