"""OCSP (RFC 6960) for NVIDIA certificate chains: the GPU's device identity chain and the RIM
signer chains. NVIDIA's responder is http://ocsp.ndis.nvidia.com/ (the AIA of its certificates).

Each certificate is checked against its issuer, the next certificate in the chain (the root is
not checked). A request asks for one certificate (CertID hashed with SHA-384 by default) and
carries a random nonce. An answer is believed only when
- its response status is successful, and one of its single responses is for that CertID;
- it is signed by the issuer, or by a responder certificate that the issuer signed, that has
  the OCSP-signing extended key usage and is valid at `at`;
- thisUpdate <= `at` <= nextUpdate (give or take `leeway`); without a nextUpdate, `at` must
  be within `max_age` of thisUpdate;
- when it carries a nonce, that nonce is the request's (responders that pre-produce their
  answers do not echo nonces, so an answer without one is accepted unless `require_nonce`).
The outcome is "good", "revoked", "on_hold" (revoked with reason certificateHold: NVIDIA puts
certificates on hold, then releases or revokes them) or "unknown". A response that does not
hold raises VerificationFailed; a responder that cannot answer (HTTP or OCSP errors such as
tryLater) raises CollateralUnavailable.

Responses are cached as "nvgpu.ocsp" (key: hash algorithm, issuer name hash, issuer key hash,
serial, all hex) until their nextUpdate, and checked again, signature included, every time they
are used: the cache is not trusted. Answers without a nextUpdate are not cached.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ...collateral.cache import CollateralCache, Key, Window, register_kind
from ...collateral.http import ServiceHttp, check_service_url
from ...errors import CollateralUnavailable, ConfigError, MalformedEvidence, VerificationFailed
from ...timeutil import require_aware, utcnow
from .rimservice import IMPORT_HINT, MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    import httpx  # annotations only: the HTTP client is imported when first used

OCSP_URL = "http://ocsp.ndis.nvidia.com/"
KIND = "nvgpu.ocsp"
NONCE_SIZE = 32
REQUEST_TYPE = "application/ocsp-request"
Status = Literal["good", "revoked", "on_hold", "unknown"]
_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                 x509.DuplicateExtension)


# --- requests ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class OcspRequest:
    """One certificate's request: its cache key (the CertID) and the DER to POST."""

    cert: x509.Certificate
    issuer: x509.Certificate
    key: Key
    der: bytes
    nonce: bytes | None


def _check_pair(cert: object, issuer: object) -> None:
    for name, value in (("certificate", cert), ("issuer", issuer)):
        if not isinstance(value, x509.Certificate):
            raise ConfigError(f"OCSP {name} must be an x509.Certificate",
                              found=type(value).__name__)


def cert_id(cert: x509.Certificate, issuer: x509.Certificate,
            algorithm: hashes.HashAlgorithm) -> Key:
    """(hash name, issuer name hash, issuer key hash, serial), hex: the CertID as a cache key."""
    try:
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build()
    except _PARSE_ERRORS as exc:
        raise ConfigError("cannot make an OCSP CertID", expected="SHA-1 or SHA-2 hash",
                          found=f"{algorithm.name}: {exc}") from None
    return (algorithm.name, request.issuer_name_hash.hex(), request.issuer_key_hash.hex(),
            format(request.serial_number, "x"))


def build_request(cert: x509.Certificate, issuer: x509.Certificate, *,
                  algorithm: hashes.HashAlgorithm | None = None,
                  nonce: bytes | None = None) -> OcspRequest:
    """The OCSP request for `cert` (issued by `issuer`), with `nonce` when given."""
    _check_pair(cert, issuer)
    algorithm = algorithm or hashes.SHA384()
    key = cert_id(cert, issuer, algorithm)
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    der = builder.build().public_bytes(serialization.Encoding.DER)
    return OcspRequest(cert, issuer, key, der, nonce)


def requests_for_chain(chain: Sequence[x509.Certificate], *,
                       algorithm: hashes.HashAlgorithm | None = None,
                       nonce: bool = True) -> list[OcspRequest]:
    """A request for every certificate of a leaf-first chain but the last (the root), each
    against the certificate after it."""
    return [build_request(cert, issuer, algorithm=algorithm,
                          nonce=os.urandom(NONCE_SIZE) if nonce else None)
            for cert, issuer in itertools.pairwise(chain)]


# --- responses --------------------------------------------------------------------------------

@dataclass(frozen=True)
class OcspResult:
    """What a verified OCSP answer says about one certificate."""

    status: Status
    this_update: datetime
    next_update: datetime | None
    revocation_time: datetime | None
    revocation_reason: str | None
    source: str  # the responder's URL, or "cache"
    cert_id: Key = ()  # the CertID the responder answered for

    def claims(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()
        return {"status": self.status, "this_update": iso(self.this_update),
                "next_update": iso(self.next_update),
                "revocation_time": iso(self.revocation_time),
                "revocation_reason": self.revocation_reason, "source": self.source}


def load_response(data: bytes) -> ocsp.OCSPResponse:
    """A successful OCSP response; MalformedEvidence if it does not parse,
    CollateralUnavailable if the responder answered with an error status."""
    try:
        response = ocsp.load_der_ocsp_response(bytes(data))
    except _PARSE_ERRORS as exc:
        raise MalformedEvidence("OCSP response does not parse", expected="a DER OCSPResponse",
                                found=str(exc)) from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise CollateralUnavailable("OCSP responder gave no status",
                                    expected="successful", found=response.response_status.name,
                                    hint="the responder may be busy: retry later")
    return response


def _single_id(single: ocsp.OCSPSingleResponse) -> Key:
    return (single.hash_algorithm.name, single.issuer_name_hash.hex(),
            single.issuer_key_hash.hex(), format(single.serial_number, "x"))


def _single(response: ocsp.OCSPResponse, key: Key,
            pair: tuple[x509.Certificate, x509.Certificate] | None
            ) -> tuple[ocsp.OCSPSingleResponse, Key]:
    """The single response for the CertID `key` and its own CertID. With the certificate and
    its issuer (`pair`), the CertID is recomputed with each single response's hash algorithm,
    so that a responder may answer with another hash than it was asked."""
    singles: list[ocsp.OCSPSingleResponse] = []
    try:
        singles = list(response.responses)
        for single in singles:
            found = _single_id(single)
            wanted = key if pair is None else cert_id(*pair, single.hash_algorithm)
            if found == wanted:
                return single, found
    except (*_PARSE_ERRORS, ConfigError) as exc:
        raise MalformedEvidence("OCSP single response does not parse",
                                found=getattr(exc, "message", str(exc))) from None
    raise VerificationFailed("OCSP response is for another certificate", expected="/".join(key),
                             found=f"{len(singles)} response(s) for other CertIDs")


def _names(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return "<unreadable subject>"


def _is_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_id = x509.SubjectKeyIdentifier.from_public_key(cert.public_key())  # type: ignore[arg-type]
    return response.responder_key_hash == key_id.digest


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, *_PARSE_ERRORS):
        return False
    return True


def _may_sign_ocsp(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, *_PARSE_ERRORS):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usage


def _delegate(cert: x509.Certificate, issuer: x509.Certificate, at: datetime,
              leeway: timedelta) -> bool:
    return (_issued_by(cert, issuer) and _may_sign_ocsp(cert)
            and cert.not_valid_before_utc - leeway <= at <= cert.not_valid_after_utc + leeway)


def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: datetime,
            leeway: timedelta) -> x509.Certificate:
    """The issuer, or a responder certificate it authorised (RFC 6960 4.2.2.2)."""
    try:
        if _is_responder(response, issuer):
            return issuer
        for cert in response.certificates:
            if _is_responder(response, cert) and _delegate(cert, issuer, at, leeway):
                return cert
    except _PARSE_ERRORS as exc:
        raise MalformedEvidence("OCSP responder id does not parse", found=str(exc)) from None
    raise VerificationFailed("OCSP response is not signed by the issuer or a responder it "
                             "authorised", expected=f"{_names(issuer)} or its OCSP signer",
                             found=f"responder {response.responder_name or 'by key hash'}")


def _check_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    try:
        key = signer.public_key()
        data, signature = response.tbs_response_bytes, response.signature
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_hash(response)))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), _hash(response))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            raise VerificationFailed("OCSP signer has an unsupported key",
                                     found=type(key).__name__)
    except (InvalidSignature, *_PARSE_ERRORS) as exc:
        raise VerificationFailed("OCSP response signature does not verify",
                                 expected=f"signed by {_names(signer)}",
                                 found=f"{type(exc).__name__} {exc}".strip()) from None


def _hash(response: ocsp.OCSPResponse) -> hashes.HashAlgorithm:
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        raise ValueError("no hash algorithm for this signature")
    return algorithm


def _check_times(single: ocsp.OCSPSingleResponse, at: datetime, leeway: timedelta,
                 max_age: timedelta) -> None:
    this, until = single.this_update_utc, single.next_update_utc
    last = until if until is not None else this + max_age
    if not this - leeway <= at <= last + leeway:
        raise VerificationFailed(f"OCSP response is not current at {at.isoformat()}",
                                 expected=f"thisUpdate {this.isoformat()} .. "
                                          f"{'nextUpdate' if until else 'max age'} "
                                          f"{last.isoformat()}", found=at.isoformat())


def _check_nonce(response: ocsp.OCSPResponse, nonce: bytes | None, required: bool) -> None:
    if nonce is None:
        return
    try:
        echoed: bytes | None = response.extensions.get_extension_for_class(
            x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    except _PARSE_ERRORS as exc:
        raise MalformedEvidence("OCSP response extensions do not parse", found=str(exc)) from None
    if echoed is None and not required:
        return
    if echoed != nonce:
        raise VerificationFailed("OCSP response nonce is not the request's",
                                 expected=nonce.hex(), found=None if echoed is None else
                                 echoed.hex())


def _status(single: ocsp.OCSPSingleResponse) -> tuple[Status, str | None]:
    status = single.certificate_status
    if status == ocsp.OCSPCertStatus.GOOD:
        return "good", None
    if status == ocsp.OCSPCertStatus.UNKNOWN:
        return "unknown", None
    reason = single.revocation_reason
    if reason == x509.ReasonFlags.certificate_hold:
        return "on_hold", reason.value
    return "revoked", None if reason is None else reason.value


@dataclass(frozen=True)
class Checks:
    """How strictly an answer is judged."""

    leeway: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=1)
    require_nonce: bool = False


def evaluate(data: bytes, request: OcspRequest, at: datetime, *, source: str,
             checks: Checks | None = None, nonce: bytes | None = None) -> OcspResult:
    """Verify an OCSP answer to `request` at `at` (see the module's rules) and say what it
    says. `nonce`: the one sent with this answer's request (None for a cached answer)."""
    at = require_aware(at, "OCSP check time")
    checks = checks or Checks()
    response = load_response(data)
    single, answered = _single(response, request.key, (request.cert, request.issuer))
    _check_signature(response, _signer(response, request.issuer, at, checks.leeway))
    _check_times(single, at, checks.leeway, checks.max_age)
    _check_nonce(response, nonce, checks.require_nonce)
    status, reason = _status(single)
    return OcspResult(status, single.this_update_utc, single.next_update_utc,
                      single.revocation_time_utc, reason, source, answered)


# --- the cache ----------------------------------------------------------------------------------

def check_ocsp_item(key: Key, data: bytes) -> Window:
    """A successful OCSP response with a single response for the key's CertID and a
    nextUpdate: cached from thisUpdate to nextUpdate. Its signature is checked on use."""
    if len(key) != 4 or not all(part for part in key):
        raise MalformedEvidence("bad key for an OCSP response",
                                expected="(hash, issuer name hash, issuer key hash, serial)",
                                found=list(key))
    single, _ = _single(load_response(data), key, None)
    if single.next_update_utc is None:
        raise MalformedEvidence("OCSP response has no nextUpdate", expected="a nextUpdate")
    return Window(single.this_update_utc, single.next_update_utc)


register_kind(KIND, check_ocsp_item)


# --- the client ---------------------------------------------------------------------------------

class OcspClient:
    """Certificate status from an OCSP responder, through a cache. This is the `ocsp`
    argument of the GPU verifier, which calls check(cert, issuer, at) so that each answer's
    nextUpdate bounds the verdict. Use as a context manager, or call close()."""

    def __init__(self, url: str = OCSP_URL, *, cache: CollateralCache | None = None,
                 offline: bool = False, timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.5, algorithm: hashes.HashAlgorithm | None = None,
                 nonce: bool = True, checks: Checks | None = None,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.url = check_service_url(url, "OCSP responder", OCSP_URL)
        self.cache, self.offline, self.nonce = cache, offline, nonce
        self.algorithm = algorithm or hashes.SHA384()
        self.checks = checks or Checks()
        self._now = now
        self._http = ServiceHttp("OCSP responder", max_bytes=MAX_RESPONSE_BYTES,
                                 timeout=timeout, retries=retries, backoff=backoff,
                                 transport=transport, sleep=sleep, now=now,
                                 headers={"Accept": "application/ocsp-response"})
        self._flights: dict[Key, threading.Lock] = {}
        self._flights_lock = threading.Lock()

    def __enter__(self) -> OcspClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def status(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> Status:
        """"good", "revoked", "on_hold" or "unknown" for `cert` at `at`."""
        return self.check(cert, issuer, at).status

    def chain_status(self, chain: Sequence[x509.Certificate], at: datetime) -> list[OcspResult]:
        """The result for each certificate of a leaf-first chain but the root."""
        return [self.check(cert, issuer, at)
                for cert, issuer in itertools.pairwise(chain)]

    def check(self, cert: x509.Certificate, issuer: x509.Certificate,
              at: datetime) -> OcspResult:
        """The verified answer for `cert`: a cached one valid at `at`, else a fresh one."""
        at = require_aware(at, "OCSP check time")
        request = build_request(cert, issuer, algorithm=self.algorithm,
                                nonce=os.urandom(NONCE_SIZE) if self.nonce else None)
        with self._flight(request.key):
            cached = self.cache.get(KIND, request.key, at) if self.cache else None
            if cached is not None:
                return evaluate(cached.data, request, at, source="cache", checks=self.checks)
            if self.offline:
                raise CollateralUnavailable(
                    f"offline and no cached OCSP status for {_names(cert)}",
                    expected=f"a cached answer from {self.url}",
                    found=f"nothing valid in the cache at {at.isoformat()}", hint=IMPORT_HINT)
            return self._ask(request, at)

    def _flight(self, key: Key) -> threading.Lock:
        with self._flights_lock:
            return self._flights.setdefault(key, threading.Lock())

    def _ask(self, request: OcspRequest, at: datetime) -> OcspResult:
        data = self._http.post(self.url, request.der, REQUEST_TYPE)
        try:
            result = evaluate(data, request, at, source=self.url, checks=self.checks,
                              nonce=request.nonce)
        except MalformedEvidence as exc:
            raise CollateralUnavailable(f"OCSP responder {self.url} answered with an unusable "
                                        f"response ({exc.message})", expected=exc.expected,
                                        found=exc.found) from None
        cacheable = result.next_update is not None and result.cert_id == request.key
        if self.cache is not None and cacheable:
            self.cache.put(KIND, request.key, data, source=self.url, fetched_at=self._now())
        return result


__all__ = [
    "KIND",
    "OCSP_URL",
    "Checks",
    "OcspClient",
    "OcspRequest",
    "OcspResult",
    "Status",
    "build_request",
    "cert_id",
    "check_ocsp_item",
    "evaluate",
    "load_response",
    "requests_for_chain",
]
