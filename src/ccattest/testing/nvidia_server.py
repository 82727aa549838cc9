"""Local stand-ins for NVIDIA's attestation services, for tests and demos.

- `NvidiaServer`: a real HTTP server on 127.0.0.1 that plays the RIM service
  (GET /v1/rim/{id} -> {"id", "rim": base64, ...}) and OCSP responders (POST /ocsp). It can
  be told to answer the next requests with an error (429 with Retry-After, 500, any canned
  body) or to drop the connection, and records every request it gets.
- `OcspResponder`: answers OCSP requests for the certificates one issuer signed, with the
  status it is given (good, revoked, on hold, unknown), signed by the issuer or by a delegated
  responder certificate; it can also sign badly or echo a wrong nonce.
- `RimAuthority`: a test RIM signing PKI (root -> CA -> signer, P-384) that signs SWID XML
  the way NVIDIA does (enveloped XML-DSig, ecdsa-sha384, C14N 1.1); `swid_xml` writes a RIM.

    with NvidiaServer() as nvidia:
        nvidia.serve_rim("NV_GPU_DRIVER_GH100_550.90.07", xml)
        nvidia.add_responder(OcspResponder(ca.cert, ca.key)).set_status(leaf, "revoked")
        client = RimClient(nvidia.url, ...); ocsp = OcspClient(nvidia.ocsp_url, ...)
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Literal
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner
from signxml.algorithms import SignatureConstructionMethod

from .local_server import LocalServer

RIM_PREFIX = "/v1/rim/"
OCSP_PATH = "/ocsp"
SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
StatusName = Literal["good", "revoked", "on_hold", "unknown"]


# --- a small test PKI ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CertKey:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def issue(name: str, *, issuer: CertKey | None = None, not_before: datetime,
          not_after: datetime, ca: bool = True, path_length: int | None = None,
          ocsp_signing: bool = False, key_usage: bool = True) -> CertKey:
    """A P-384 certificate for `name`, self-signed when there is no issuer. CAs get
    keyCertSign, leaves digitalSignature (unless `key_usage` is False: no KeyUsage at all);
    `ocsp_signing` adds the OCSP-signing extended key usage."""
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer = issuer.key if issuer else key
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length),
                              critical=True))
    if key_usage:
        builder = builder.add_extension(_key_usage(ca), critical=True)
    if ocsp_signing:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    return CertKey(builder.sign(signer, hashes.SHA384()), key)


def _key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                         decipher_only=False)


# --- RIMs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RimRecord:
    """One measurement record of a RIM: index, active flag, alternative SHA-384 values."""

    index: int
    active: bool
    alternatives: tuple[bytes, ...]


def swid_xml(*, colloquial_version: str, records: Iterable[RimRecord], product: str = "GH100",
             tag_id: str | None = None) -> bytes:
    """An unsigned RIM (SWID tag) shaped like NVIDIA's."""
    nsmap = {None: SWID_NS, "ns0": SWID_NS, "ns2": SHA384_NS}
    root = etree.Element(f"{{{SWID_NS}}}SoftwareIdentity", nsmap=nsmap)  # type: ignore[dict-item]
    default_id = hashlib.sha384(colloquial_version.encode()).hexdigest()
    for name, value in (("corpus", "false"), ("name", product), ("patch", "false"),
                        ("supplemental", "false"), ("tagId", tag_id or default_id),
                        ("version", "1.0"), ("tagVersion", "0")):
        root.set(name, value)
    etree.SubElement(root, f"{{{SWID_NS}}}Entity", name="NVIDIA Corporation",
                     role="softwareCreator tagCreator")
    etree.SubElement(root, f"{{{SWID_NS}}}Meta", colloquialVersion=colloquial_version,
                     edition="GPU", product=product, revision="r1")
    payload = etree.SubElement(root, f"{{{SWID_NS}}}Payload")
    for record in records:
        element = etree.SubElement(payload, f"{{{SWID_NS}}}Resource", type="Measurement",
                                   index=str(record.index),
                                   active="True" if record.active else "False",
                                   alternatives=str(len(record.alternatives)),
                                   name=f"Measurement_{record.index}", size="48")
        for number, value in enumerate(record.alternatives):
            element.set(f"{{{SHA384_NS}}}Hash{number}", value.hex())
    return etree.tostring(root)


class RimAuthority:
    """A RIM signing PKI for tests: root CA -> CA -> signer, all P-384. The signer is valid
    from `not_before` to `not_after`; the CAs from a year before to ten years after."""

    def __init__(self, *, not_before: datetime, not_after: datetime,
                 root_name: str = "Test CoRIM signing Root CA") -> None:
        start, end = not_before - timedelta(days=365), not_after + timedelta(days=3650)
        self.root = issue(root_name, not_before=start, not_after=end)
        self.ca = issue("Test Reference Value CA", issuer=self.root, not_before=start,
                        not_after=end, path_length=0)
        self.signer = issue("Test RIM Signer", issuer=self.ca, not_before=not_before,
                            not_after=not_after, ca=False)

    @property
    def chain(self) -> list[x509.Certificate]:
        """Signer first, root last."""
        return [self.signer.cert, self.ca.cert, self.root.cert]

    def sign(self, xml: bytes, *, certificates: Sequence[x509.Certificate] | None = None,
             key: ec.EllipticCurvePrivateKey | None = None,
             signature: SignatureMethod = SignatureMethod.ECDSA_SHA384,
             c14n: CanonicalizationMethod = CanonicalizationMethod.CANONICAL_XML_1_1) -> bytes:
        """`xml` with an enveloped signature; by default the signer's key, the whole chain in
        KeyInfo, ecdsa-sha384 and C14N 1.1 (the others are for negative tests; no
        certificates: a KeyValue instead)."""
        signer = XMLSigner(method=SignatureConstructionMethod.enveloped,
                           signature_algorithm=signature,
                           digest_algorithm=DigestAlgorithm.SHA384, c14n_algorithm=c14n)
        chain = list(certificates) if certificates is not None else self.chain
        signed = signer.sign(etree.fromstring(xml), key=key or self.signer.key,
                             cert=chain or None)
        return etree.tostring(signed)


# --- OCSP ---------------------------------------------------------------------------------------

@dataclass
class _Entry:
    status: StatusName
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None


@dataclass
class OcspResponder:
    """Answers for the certificates `issuer` signed. The signer is the issuer unless a
    delegated `responder` (a certificate with the OCSP-signing EKU, issued by the issuer) is
    given. Certificates without a status are "unknown". `this_update` defaults to an hour
    before the request, `next_update` to `validity` after `this_update` (None: no
    nextUpdate)."""

    issuer: x509.Certificate
    issuer_key: ec.EllipticCurvePrivateKey
    responder: CertKey | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None
    validity: timedelta | None = timedelta(days=1)
    echo_nonce: bool = True
    wrong_nonce: bool = False
    bad_signature: bool = False
    _entries: dict[int, _Entry] = field(default_factory=dict)

    def set_status(self, cert: x509.Certificate | int, status: StatusName, *,
                   revoked_at: datetime | None = None,
                   reason: x509.ReasonFlags | None = None) -> OcspResponder:
        """The status for a certificate (or serial number). "on_hold" is revoked with reason
        certificateHold; "revoked" takes an optional reason."""
        serial = cert if isinstance(cert, int) else cert.serial_number
        if status == "on_hold":
            reason = x509.ReasonFlags.certificate_hold
        revoked = status in ("revoked", "on_hold")
        when = (revoked_at or datetime(2020, 1, 1, tzinfo=UTC)) if revoked else None
        self._entries[serial] = _Entry(status, when, reason)
        return self

    def serves(self, request: ocsp.OCSPRequest) -> bool:
        """Whether the request is about a certificate this issuer signed."""
        # The key hash depends on the issuer argument only (the name hash on the certificate's
        # issuer field), so the issuer can stand in for the certificate here.
        mine = ocsp.OCSPRequestBuilder().add_certificate(
            self.issuer, self.issuer, request.hash_algorithm).build()
        return mine.issuer_key_hash == request.issuer_key_hash

    def answer(self, request: ocsp.OCSPRequest, now: datetime) -> bytes:
        entry = self._entries.get(request.serial_number, _Entry("unknown"))
        this_update = self.this_update or now - timedelta(hours=1)
        next_update = self.next_update or (this_update + self.validity if self.validity else None)
        status = {"good": ocsp.OCSPCertStatus.GOOD, "unknown": ocsp.OCSPCertStatus.UNKNOWN}.get(
            entry.status, ocsp.OCSPCertStatus.REVOKED)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash, issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number, algorithm=request.hash_algorithm,
            cert_status=status, this_update=this_update, next_update=next_update,
            revocation_time=entry.revoked_at, revocation_reason=entry.reason)
        signer_cert = self.responder.cert if self.responder else self.issuer
        signer_key = self.responder.key if self.responder else self.issuer_key
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        if self.responder:
            builder = builder.certificates([self.responder.cert])
        builder = self._nonce(builder, request)
        response = builder.sign(signer_key, hashes.SHA384())
        der = response.public_bytes(serialization.Encoding.DER)
        return _corrupt(der, response.signature) if self.bad_signature else der

    def _nonce(self, builder: ocsp.OCSPResponseBuilder,
               request: ocsp.OCSPRequest) -> ocsp.OCSPResponseBuilder:
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            return builder
        if not self.echo_nonce:
            return builder
        if self.wrong_nonce:
            nonce = bytes(byte ^ 0xFF for byte in nonce)
        return builder.add_extension(x509.OCSPNonce(nonce), critical=False)


def _corrupt(der: bytes, signature: bytes) -> bytes:
    """The response with one bit of its signature flipped (still valid DER)."""
    broken = signature[:-1] + bytes([signature[-1] ^ 1])
    return der.replace(signature, broken)


def unsuccessful_ocsp(status: ocsp.OCSPResponseStatus) -> bytes:
    """An OCSP response that carries only an error status (tryLater, internalError, ...)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER)


# --- the server ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SeenRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


@dataclass(frozen=True)
class Reply:
    """A canned answer: status, body, content type, extra headers (None status: drop)."""

    status: int | None
    body: bytes = b""
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()


class NvidiaServer(LocalServer):
    """The RIM service and OCSP responders on 127.0.0.1 with an OS-chosen port, served from
    a background thread. `now` gives the OCSP responders' default times."""

    name = "NVIDIA"
    owner_attribute = "nvidia"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    def __init__(self, *, now: datetime | None = None) -> None:
        self.now = now
        self._routes: dict[str, Reply] = {}
        self._responders: list[OcspResponder] = []
        self._faults: deque[Reply] = deque()
        self._requests: list[SeenRequest] = []
        super().__init__()

    @property
    def ocsp_url(self) -> str:
        return self.url + OCSP_PATH

    # --- what it serves -------------------------------------------------------------------

    def serve_rim(self, rim_id: str, xml: bytes, *, record: Mapping[str, object] | None = None,
                  ) -> None:
        """Answer GET /v1/rim/{rim_id} the way NVIDIA's service does; `record` replaces or
        adds JSON fields (for broken answers)."""
        body = {"id": rim_id, "rim": base64.b64encode(xml).decode("ascii"),
                "sha256": hashlib.sha256(xml).hexdigest(), "rim_format": "SWID",
                "last_updated": "2025-01-01T00:00:00Z", **(record or {})}
        self.serve(RIM_PREFIX + rim_id, json.dumps(body).encode(), "application/json")

    def serve(self, path: str, body: bytes, content_type: str = "application/octet-stream",
              status: int = 200) -> None:
        """Answer GET `path` with `body`."""
        with self._lock:
            self._routes[path] = Reply(status, bytes(body), content_type)

    def add_responder(self, responder: OcspResponder) -> OcspResponder:
        """Answer OCSP requests about the certificates `responder.issuer` signed."""
        with self._lock:
            self._responders.append(responder)
        return responder

    def fail(self, status: int, times: int = 1, *, retry_after: str | None = None,
             body: bytes = b"", content_type: str = "text/plain") -> None:
        """Answer the next `times` requests, whatever they ask, with `status` and `body`."""
        headers = (("Retry-After", retry_after),) if retry_after else ()
        with self._lock:
            self._faults.extend([Reply(status, body, content_type, headers)] * times)

    def drop(self, times: int = 1) -> None:
        """Close the next `times` connections without answering."""
        with self._lock:
            self._faults.extend([Reply(None)] * times)

    # --- what it saw ----------------------------------------------------------------------

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    # --- used by the handler ----------------------------------------------------------------

    def _reply(self, request: SeenRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            if self._faults:
                return self._faults.popleft()
            routes, responders = dict(self._routes), list(self._responders)
        if request.method == "POST" and request.path == OCSP_PATH:
            return self._ocsp(request.body, responders)
        if request.method == "GET" and request.path in routes:
            return routes[request.path]
        return Reply(404, b'{"message": "not found"}', "application/json")

    def _ocsp(self, body: bytes, responders: list[OcspResponder]) -> Reply:
        try:
            request = ocsp.load_der_ocsp_request(body)
        except ValueError:
            return Reply(200, unsuccessful_ocsp(ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
                         "application/ocsp-response")
        responder = next((each for each in responders if each.serves(request)), None)
        if responder is None:
            return Reply(200, unsuccessful_ocsp(ocsp.OCSPResponseStatus.UNAUTHORIZED),
                         "application/ocsp-response")
        now = self.now or datetime.now(UTC)
        return Reply(200, responder.answer(request, now), "application/ocsp-response")


class _Handler(BaseHTTPRequestHandler):
    server_version = "ccattest-nvidia/1"

    def do_GET(self) -> None:
        self._handle("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle("POST", self.rfile.read(min(length, 1024 * 1024)))

    def _handle(self, method: str, body: bytes) -> None:
        path = unquote(urlsplit(self.path).path)
        request = SeenRequest(method, path, tuple(self.headers.items()), body)
        reply = self.server.nvidia._reply(request)  # type: ignore[attr-defined]
        if reply.status is None:
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read the recorded requests instead."""


__all__ = [
    "CertKey",
    "NvidiaServer",
    "OcspResponder",
    "Reply",
    "RimAuthority",
    "RimRecord",
    "SeenRequest",
    "issue",
    "swid_xml",
    "unsuccessful_ocsp",
]
