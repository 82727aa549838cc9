"""Intel PCS / PCCS client for TDX collateral: TCB Info, QE Identity, PCK CRL, root CA CRL.

Intel PCS API v4 (FORMATS.md, "Intel TDX"):
  GET /tdx/certification/v4/tcb?fmspc={hex}            TCB Info v3 (JSON body); issuer chain
      in `TCB-Info-Issuer-Chain` (older servers: `SGX-TCB-Info-Issuer-Chain`)
  GET /tdx/certification/v4/qe/identity                QE Identity v2 (JSON body); issuer
      chain in `SGX-Enclave-Identity-Issuer-Chain`
  GET /sgx/certification/v4/pckcrl?ca={platform|processor}&encoding=der
                                                       PCK CRL (DER); issuer chain in
      `SGX-PCK-CRL-Issuer-Chain`
  Root CA CRL: PCS has no API for it; it lives at the CRL distribution point of the Intel SGX
      Root CA certificate (ROOT_CA_CRL_URL). A PCCS serves it at
      /sgx/certification/v4/rootcacrl.
Issuer chains are URL-encoded PEM (the signer, then the Intel SGX Root CA).

TCB Info and QE Identity are signed over the exact bytes of their inner JSON object, so the
body is kept exactly as served, never parsed and re-dumped. The checks made here are about
shape (it parses, it is what was asked for, it says how long it is good for); signatures and
chains to the pinned Intel root are the verifier's business.

PCCS (Intel's Provisioning Certificate Caching Service, usually https://HOST:8081) is used by
passing its URL as `base_url`. Differences from PCS that this client copes with:
- the root CA CRL comes from the PCCS at /sgx/certification/v4/rootcacrl (the default
  root_ca_crl_url for any base URL other than PCS), and PCCS answers it as hex text of the
  DER, not DER: hex CRLs are decoded to DER before they are checked and cached;
- without `encoding=der` a PCCS (and PCS) answers the PCK CRL as PEM; PEM CRLs are accepted;
- PCCS instances usually have a self-signed TLS certificate: pass
  `transport=httpx.HTTPTransport(verify=<CA bundle or SSLContext>)`;
- a PCCS serves what it cached from PCS (its refresh policy decides how stale), and it may
  answer 404 for an FMSPC it has never seen while PCS is unreachable.

The cache holds four kinds (registered below), each valid from its issue time until its
nextUpdate: "tdx.tcb_info" (key: FMSPC hex), "tdx.qe_identity" (key: "TD_QE"),
"tdx.pck_crl" (key: "platform" or "processor") and "tdx.root_ca_crl" (key: "sgx_root_ca").
The first three are stored with their issuer chain in a small JSON envelope (ITEM_FORMAT:
base64 of the exact body and of the chain); the root CA CRL, which has no chain, as DER.

A collateral folder (collateral_from_path, write_collateral_folder) holds one file per field
of TdxCollateral; FOLDER_FILES names them:
  tcb_info.json, tcb_info_issuer_chain.pem, qe_identity.json, qe_identity_issuer_chain.pem,
  pck_crl.der, pck_crl_issuer_chain.pem, root_ca_crl.der
"""

from __future__ import annotations

import base64
import binascii
import json
import string
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from cryptography import x509

from ...collateral.cache import (
    CollateralCache,
    Key,
    Window,
    atomic_write,
    check_item,
    register_kind,
)
from ...collateral.http import ServiceHttp, check_service_url
from ...errors import CCAttestError, CollateralUnavailable, ConfigError, MalformedEvidence
from ...timeutil import require_aware, utcnow
from ..snp.certs import PARSE_ERRORS, common_name
from . import PCS_URL
from .collateral import TdxCollateral

if TYPE_CHECKING:
    import httpx  # annotations only: the HTTP client is imported when first used

ROOT_CA_CRL_URL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
TCB_PATH = "/tdx/certification/v4/tcb"
QE_IDENTITY_PATH = "/tdx/certification/v4/qe/identity"
PCK_CRL_PATH = "/sgx/certification/v4/pckcrl"
PCCS_ROOT_CA_CRL_PATH = "/sgx/certification/v4/rootcacrl"
TCB_CHAIN_HEADERS = ("TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain")
QE_CHAIN_HEADERS = ("SGX-Enclave-Identity-Issuer-Chain", "Enclave-Identity-Issuer-Chain")
PCK_CRL_CHAIN_HEADERS = ("SGX-PCK-CRL-Issuer-Chain",)

KINDS = {"tcb_info": "tdx.tcb_info", "qe_identity": "tdx.qe_identity",
         "pck_crl": "tdx.pck_crl", "root_ca_crl": "tdx.root_ca_crl"}
CAS = {"platform": "Intel SGX PCK Platform CA", "processor": "Intel SGX PCK Processor CA"}
QE_IDENTITY_ID = "TD_QE"
ROOT_KEY = "sgx_root_ca"
ROOT_CA = "Intel SGX Root CA"
TCB_SIGNER = "Intel SGX TCB Signing"
FMSPC_BYTES = 6
SIGNATURE_BYTES = 64
ITEM_FORMAT = "ccattest-tdx-collateral/1"
MAX_RESPONSE_BYTES = 1024 * 1024
FOLDER_FILES = {
    "tcb_info": "tcb_info.json",
    "tcb_info_issuer_chain": "tcb_info_issuer_chain.pem",
    "qe_identity": "qe_identity.json",
    "qe_identity_issuer_chain": "qe_identity_issuer_chain.pem",
    "pck_crl": "pck_crl.der",
    "pck_crl_issuer_chain": "pck_crl_issuer_chain.pem",
    "root_ca_crl": "root_ca_crl.der",
}
IMPORT_HINT = ("fetch it on a connected machine with `ccattest collateral fetch --platform tdx "
               "--fmspc HEX`, `ccattest collateral export BUNDLE`, then "
               "`ccattest collateral import BUNDLE` here")
_HEX = frozenset(string.hexdigits)
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_PEM_CRL = b"-----BEGIN X509 CRL-----"


# --- small parsers: every failure is a MalformedEvidence ----------------------------------------

def parse_fmspc(value: str | bytes) -> bytes:
    """An FMSPC as 6 bytes, from bytes or hex text (as on the command line)."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    elif isinstance(value, str) and _is_hex(value.strip(), FMSPC_BYTES):
        raw = bytes.fromhex(value.strip())
    else:
        raise ConfigError("FMSPC must be 6 bytes or 12 hex digits", expected="e.g. 50806f000000",
                          found=repr(value)[:40])
    if len(raw) != FMSPC_BYTES:
        raise ConfigError("FMSPC has the wrong length", expected=f"{FMSPC_BYTES} bytes",
                          found=f"{len(raw)} bytes")
    return raw


def _is_hex(text: str, size: int) -> bool:
    return len(text) == 2 * size and all(char in _HEX for char in text)


def decode_issuer_chain(value: str | bytes) -> bytes:
    """The PEM chain from an `*-Issuer-Chain` header (URL-encoded PEM)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedEvidence("issuer chain header is not ASCII",
                                    expected="URL-encoded PEM") from None
    if not isinstance(value, str):
        raise ConfigError("issuer chain header must be text", found=type(value).__name__)
    pem = unquote_to_bytes(value.strip())
    if _PEM_CERT not in pem:
        raise MalformedEvidence("issuer chain header is not URL-encoded PEM",
                                expected="URL-encoded PEM certificates",
                                found=f"{len(value)} characters starting {value[:24]!r}")
    return pem


def check_issuer_chain(pem: bytes, signer: str | Collection[str]) -> list[x509.Certificate]:
    """PEM certificates: the signer (by common name) first, the Intel SGX Root CA last."""
    if _PEM_CERT not in pem:
        raise MalformedEvidence("issuer chain is not PEM", expected="PEM certificates",
                                found=f"{len(pem)} bytes without a PEM header")
    try:
        certificates = x509.load_pem_x509_certificates(pem)
        names = [common_name(cert) for cert in certificates]
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("issuer chain does not parse", found=str(exc)) from None
    signers = {signer} if isinstance(signer, str) else set(signer)
    if len(names) < 2 or names[0] not in signers or names[-1] != ROOT_CA:
        raise MalformedEvidence("issuer chain has the wrong certificates",
                                expected=f"one of {sorted(signers)}, ..., {ROOT_CA}",
                                found=names)
    return certificates


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvidence(f"{what} is not JSON", found=str(exc)[:200]) from None
    if not isinstance(document, dict):
        raise MalformedEvidence(f"{what} is not a JSON object", found=type(document).__name__)
    return document


def _signed_object(body: bytes, name: str, what: str) -> dict[str, Any]:
    """The inner object of {"<name>": {...}, "signature": "<hex r||s>"}."""
    document = _json_object(body, what)
    inner, signature = document.get(name), document.get("signature")
    if not isinstance(inner, dict) or not isinstance(signature, str):
        raise MalformedEvidence(f"{what} lacks {name} or signature",
                                expected=f'{{"{name}": {{...}}, "signature": "hex"}}',
                                found=f"keys {sorted(document)[:8]}")
    if not _is_hex(signature, SIGNATURE_BYTES):
        raise MalformedEvidence(f"{what} signature is not {SIGNATURE_BYTES} bytes of hex",
                                found=f"{len(signature)} characters")
    return inner


def _instant(inner: dict[str, Any], name: str, what: str) -> datetime:
    value = inner.get(name)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        if parsed is not None and parsed.utcoffset() is not None:
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise MalformedEvidence(f"{what} {name} is not an ISO 8601 time with a zone",
                            expected="e.g. 2023-07-18T08:42:58Z", found=repr(value)[:60])


def _update_window(inner: dict[str, Any], what: str) -> Window:
    issued = _instant(inner, "issueDate", what)
    next_update = _instant(inner, "nextUpdate", what)
    if next_update < issued:
        raise MalformedEvidence(f"{what} nextUpdate is before its issueDate",
                                found=f"{issued.isoformat()} .. {next_update.isoformat()}")
    return Window(issued, next_update)


def tcb_info_window(body: bytes, fmspc: str | None = None) -> Window:
    """TCB Info v3 for TDX (for `fmspc`, lower-case hex, when given): issueDate..nextUpdate."""
    inner = _signed_object(body, "tcbInfo", "TCB Info")
    if inner.get("id") != "TDX":
        raise MalformedEvidence("TCB Info is not for TDX", expected='id "TDX"',
                                found=repr(inner.get("id"))[:40])
    found = inner.get("fmspc")
    if not isinstance(found, str) or not _is_hex(found, FMSPC_BYTES):
        raise MalformedEvidence("TCB Info has no FMSPC", expected="12 hex digits",
                                found=repr(found)[:40])
    if fmspc is not None and found.lower() != fmspc:
        raise MalformedEvidence("TCB Info is for another FMSPC", expected=fmspc,
                                found=found.lower())
    return _update_window(inner, "TCB Info")


def qe_identity_window(body: bytes) -> Window:
    """QE Identity v2 of the TD quoting enclave: issueDate..nextUpdate."""
    inner = _signed_object(body, "enclaveIdentity", "QE Identity")
    if inner.get("id") != QE_IDENTITY_ID:
        raise MalformedEvidence("QE Identity is not the TD QE's", expected=f'id "{QE_IDENTITY_ID}"',
                                found=repr(inner.get("id"))[:40])
    return _update_window(inner, "QE Identity")


def crl_bytes(data: bytes) -> bytes:
    """A CRL as DER or PEM, as served; hex text of the DER (as PCCS serves the root CA CRL)
    decoded to DER."""
    text = bytes(data).strip()
    if text and len(text) % 2 == 0 and all(chr(byte) in _HEX for byte in text):
        return bytes.fromhex(text.decode("ascii"))
    return bytes(data)


def crl_window(data: bytes, issuers: Collection[str]) -> tuple[Window, x509.Name]:
    """A DER or PEM CRL issued by one of `issuers` (common names) with a nextUpdate: its
    thisUpdate..nextUpdate and its issuer."""
    try:
        crl = (x509.load_pem_x509_crl(data) if _PEM_CRL in data
               else x509.load_der_x509_crl(data))
        issuer = crl.issuer
        names = issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        name = str(names[0].value) if names else ""
        window = (crl.last_update_utc, crl.next_update_utc)
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("CRL does not parse", expected="a DER or PEM X.509 CRL",
                                found=str(exc)[:200]) from None
    if name not in issuers:
        raise MalformedEvidence("CRL has the wrong issuer", expected=sorted(issuers), found=name)
    if window[1] is None:
        raise MalformedEvidence("CRL has no nextUpdate", expected="a nextUpdate time")
    return Window(window[0], window[1]), issuer


def _pck_crl_window(crl: bytes, chain: bytes, cas: Collection[str]) -> Window:
    window, issuer = crl_window(crl, cas)
    certificates = check_issuer_chain(chain, cas)
    if certificates[0].subject != issuer:
        raise MalformedEvidence("PCK CRL issuer chain does not start with the CRL's issuer",
                                expected=issuer.rfc4514_string(),
                                found=certificates[0].subject.rfc4514_string())
    return window


# --- cache items --------------------------------------------------------------------------------

def pack_item(body: bytes, issuer_chain: bytes) -> bytes:
    """The cache item for a body and its issuer chain (ITEM_FORMAT): both kept exactly."""
    record = {"format": ITEM_FORMAT, "body": _b64(body), "issuer_chain": _b64(issuer_chain)}
    return json.dumps(record, sort_keys=True).encode("ascii")


def unpack_item(data: bytes) -> tuple[bytes, bytes]:
    """(body, issuer chain) from a pack_item envelope."""
    record = _json_object(data, "TDX collateral item")
    if record.get("format") != ITEM_FORMAT:
        raise MalformedEvidence("not a TDX collateral item", expected=f"format {ITEM_FORMAT!r}",
                                found=repr(record.get("format"))[:60])
    return _unb64(record.get("body"), "body"), _unb64(record.get("issuer_chain"), "issuer_chain")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedEvidence(f"TDX collateral item {name} is not base64 text",
                                found=type(value).__name__)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEvidence(f"TDX collateral item {name} is not base64",
                                found=str(exc)) from None


def _one_part(key: Key, allowed: Callable[[str], bool], expected: str) -> str:
    if len(key) != 1 or not allowed(key[0]):
        raise MalformedEvidence("bad key for TDX collateral", expected=expected, found=list(key))
    return key[0]


def check_tcb_info(key: Key, data: bytes) -> Window:
    fmspc = _one_part(key, lambda part: _is_hex(part, FMSPC_BYTES) and part == part.lower(),
                      "(FMSPC as 12 lower-case hex digits,)")
    body, chain = unpack_item(data)
    check_issuer_chain(chain, TCB_SIGNER)
    return tcb_info_window(body, fmspc)


def check_qe_identity(key: Key, data: bytes) -> Window:
    _one_part(key, lambda part: part == QE_IDENTITY_ID, f"({QE_IDENTITY_ID!r},)")
    body, chain = unpack_item(data)
    check_issuer_chain(chain, TCB_SIGNER)
    return qe_identity_window(body)


def check_pck_crl(key: Key, data: bytes) -> Window:
    ca = _one_part(key, lambda part: part in CAS, f"one of {sorted(CAS)}")
    crl, chain = unpack_item(data)
    return _pck_crl_window(crl, chain, [CAS[ca]])


def check_root_ca_crl(key: Key, data: bytes) -> Window:
    _one_part(key, lambda part: part == ROOT_KEY, f"({ROOT_KEY!r},)")
    return crl_window(data, [ROOT_CA])[0]


register_kind(KINDS["tcb_info"], check_tcb_info)
register_kind(KINDS["qe_identity"], check_qe_identity)
register_kind(KINDS["pck_crl"], check_pck_crl)
register_kind(KINDS["root_ca_crl"], check_root_ca_crl)


# --- requests -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PcsRequest:
    """One piece of collateral: its cache address, its URL and where its chain comes."""

    field: str  # the TdxCollateral field it fills: tcb_info, qe_identity, pck_crl, root_ca_crl
    kind: str
    key: Key
    url: str
    chain_headers: tuple[str, ...]  # empty: no issuer chain (the root CA CRL)

    @property
    def what(self) -> str:
        return f"{self.field} for {'/'.join(self.key)}"


@dataclass(frozen=True)
class Fetched:
    """What fetch returns: the body exactly as served (CRLs: DER or PEM) and its chain."""

    body: bytes
    issuer_chain: bytes | None
    source: str  # the URL it came from
    cached: bool  # served from the cache, not fetched now


def _check_ca(ca: str) -> str:
    if ca not in CAS:
        raise ConfigError("unknown PCK CA", expected=f"one of {sorted(CAS)}", found=repr(ca))
    return ca


def default_root_ca_crl_url(base_url: str) -> str:
    """Intel's CRL distribution point for PCS; the PCCS rootcacrl API for any other server."""
    base = base_url.rstrip("/")
    return ROOT_CA_CRL_URL if base == PCS_URL else base + PCCS_ROOT_CA_CRL_PATH


# --- the client ---------------------------------------------------------------------------------

class PcsClient:
    """Fetch TDX collateral from Intel PCS or a PCCS through a cache. `retries` is the number
    of tries after the first; the n-th retry waits backoff * 2**n seconds (at most MAX_DELAY)
    unless the server says how long with Retry-After. Use as a context manager, or close()."""

    def __init__(self, base_url: str = PCS_URL, *, cache: CollateralCache | None = None,
                 offline: bool = False, timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.5, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = utcnow,
                 root_ca_crl_url: str | None = None) -> None:
        self.base_url = check_service_url(base_url, "PCS", PCS_URL)
        self.root_ca_crl_url = (default_root_ca_crl_url(self.base_url) if root_ca_crl_url is None
                                else check_service_url(root_ca_crl_url, "root CA CRL", PCS_URL))
        self.cache, self.offline, self._now = cache, offline, now
        self._http = ServiceHttp("Intel PCS", max_bytes=MAX_RESPONSE_BYTES, timeout=timeout,
                                 retries=retries, backoff=backoff, transport=transport,
                                 sleep=sleep, now=now, headers={"User-Agent": "ccattest-pcs"},
                                 hint="retry later, use a PCCS, or import a bundle")
        self._flights: dict[tuple[str, Key], threading.Lock] = {}
        self._flights_lock = threading.Lock()

    def __enter__(self) -> PcsClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- requests -------------------------------------------------------------------------------

    def tcb_info_request(self, fmspc: bytes) -> PcsRequest:
        fmspc_hex = parse_fmspc(fmspc).hex()
        return PcsRequest("tcb_info", KINDS["tcb_info"], (fmspc_hex,),
                          f"{self.base_url}{TCB_PATH}?fmspc={fmspc_hex}", TCB_CHAIN_HEADERS)

    def qe_identity_request(self) -> PcsRequest:
        return PcsRequest("qe_identity", KINDS["qe_identity"], (QE_IDENTITY_ID,),
                          self.base_url + QE_IDENTITY_PATH, QE_CHAIN_HEADERS)

    def pck_crl_request(self, ca: str = "platform") -> PcsRequest:
        ca = _check_ca(ca)
        return PcsRequest("pck_crl", KINDS["pck_crl"], (ca,),
                          f"{self.base_url}{PCK_CRL_PATH}?ca={ca}&encoding=der",
                          PCK_CRL_CHAIN_HEADERS)

    def root_ca_crl_request(self) -> PcsRequest:
        return PcsRequest("root_ca_crl", KINDS["root_ca_crl"], (ROOT_KEY,),
                          self.root_ca_crl_url, ())

    def requests_for(self, fmspc: bytes, ca: str = "platform") -> list[PcsRequest]:
        """The four requests a quote of this FMSPC and PCK CA needs."""
        return [self.tcb_info_request(fmspc), self.qe_identity_request(),
                self.pck_crl_request(ca), self.root_ca_crl_request()]

    # --- the public calls -----------------------------------------------------------------------

    def collateral(self, fmspc: bytes, ca: str = "platform", *,
                   at: datetime | None = None) -> TdxCollateral:
        """Everything a quote of this FMSPC (PCK issued by the `ca` PCK CA) is verified with,
        each item from the cache when one is valid at `at` (default: now), else fetched,
        checked and cached. `source` is the base URL when anything was fetched, else
        "cache"."""
        got = {request.field: self.fetch(request, at=at)
               for request in self.requests_for(fmspc, ca)}
        fresh = any(not item.cached for item in got.values())
        return TdxCollateral(
            tcb_info=got["tcb_info"].body,
            tcb_info_issuer_chain=got["tcb_info"].issuer_chain or b"",
            qe_identity=got["qe_identity"].body,
            qe_identity_issuer_chain=got["qe_identity"].issuer_chain or b"",
            pck_crl=got["pck_crl"].body,
            pck_crl_issuer_chain=got["pck_crl"].issuer_chain or b"",
            root_ca_crl=got["root_ca_crl"].body,
            source=self.base_url if fresh else "cache",
        )

    def fetch(self, request: PcsRequest, *, at: datetime | None = None) -> Fetched:
        """One item from the cache when valid at `at` (default: now), else from the server
        (checked, then cached). One fetch per item at a time: concurrent callers wait."""
        at = require_aware(at, "lookup time") if at is not None else self._now()
        with self._flight(request):
            cached = self.cache.get(request.kind, request.key, at) if self.cache else None
            if cached is not None:
                return _fetched(request, cached.data, cached.source, cached=True)
            if self.offline:
                raise CollateralUnavailable(f"offline and no cached TDX {request.what}",
                                            expected=f"a cached copy of {request.url}",
                                            found=f"nothing valid in the cache at "
                                                  f"{at.isoformat()}", hint=IMPORT_HINT)
            return self._download(request)

    # --- internals ------------------------------------------------------------------------------

    def _flight(self, request: PcsRequest) -> threading.Lock:
        with self._flights_lock:
            return self._flights.setdefault((request.kind, request.key), threading.Lock())

    def _download(self, request: PcsRequest) -> Fetched:
        answer = self._http.fetch("GET", request.url)
        data = self._item_data(request, answer.body, answer.headers)
        try:
            check_item(request.kind, request.key, data)
        except CollateralUnavailable as exc:
            raise CollateralUnavailable(f"Intel PCS answered {request.url} with an unusable "
                                        f"{request.field} ({exc.message})",
                                        expected=exc.expected, found=exc.found) from None
        if self.cache is not None:
            self.cache.put(request.kind, request.key, data, source=request.url,
                           fetched_at=self._now())
        return _fetched(request, data, request.url, cached=False)

    def _item_data(self, request: PcsRequest, body: bytes, headers: httpx.Headers) -> bytes:
        if request.kind in (KINDS["pck_crl"], KINDS["root_ca_crl"]):
            body = crl_bytes(body)
        if not request.chain_headers:
            return body
        value = next((headers[name] for name in request.chain_headers if name in headers), None)
        if value is None:
            raise CollateralUnavailable(f"Intel PCS answered {request.url} without an issuer "
                                        "chain", expected=f"header {request.chain_headers[0]}",
                                        found=f"headers {sorted(headers.keys())}")
        try:
            chain = decode_issuer_chain(value)
        except CCAttestError as exc:
            raise CollateralUnavailable(f"Intel PCS answered {request.url} with an unusable "
                                        f"issuer chain ({exc.message})", expected=exc.expected,
                                        found=exc.found) from None
        return pack_item(body, chain)


def _fetched(request: PcsRequest, data: bytes, source: str, *, cached: bool) -> Fetched:
    if not request.chain_headers:
        return Fetched(data, None, source, cached)
    body, chain = unpack_item(data)
    return Fetched(body, chain, source, cached)


# --- collateral folders ---------------------------------------------------------------------------

def collateral_from_path(path: Path) -> TdxCollateral:
    """A TdxCollateral from a folder holding the FOLDER_FILES (as write_collateral_folder
    writes them, or as copied from PCS answers: bodies as served, chains URL-decoded).
    Each file is checked like a fetched item (except the FMSPC, which the folder does not
    name); hex CRLs are decoded to DER."""
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError("TDX collateral must be a folder", expected="a folder holding "
                          + ", ".join(FOLDER_FILES.values()), found=str(folder))
    missing = [name for name in FOLDER_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"TDX collateral folder {folder} lacks files",
                          expected=list(FOLDER_FILES.values()), found=f"missing {missing}")
    data = {field: _read(folder / name) for field, name in FOLDER_FILES.items()}
    data["pck_crl"], data["root_ca_crl"] = crl_bytes(data["pck_crl"]), crl_bytes(
        data["root_ca_crl"])
    for field, check in _FOLDER_CHECKS.items():
        try:
            check(data)
        except CCAttestError as exc:
            raise ConfigError(f"{folder / FOLDER_FILES[field]} is refused: {exc.message}",
                              expected=exc.expected, found=exc.found) from None
    return TdxCollateral(**data, source=str(folder))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError("cannot read TDX collateral", expected="a readable file",
                          found=f"{path}: {exc.strerror or exc}") from None


_FOLDER_CHECKS: dict[str, Callable[[dict[str, bytes]], object]] = {
    "tcb_info": lambda data: tcb_info_window(data["tcb_info"]),
    "tcb_info_issuer_chain": lambda data: check_issuer_chain(data["tcb_info_issuer_chain"],
                                                             TCB_SIGNER),
    "qe_identity": lambda data: qe_identity_window(data["qe_identity"]),
    "qe_identity_issuer_chain": lambda data: check_issuer_chain(
        data["qe_identity_issuer_chain"], TCB_SIGNER),
    "pck_crl": lambda data: _pck_crl_window(data["pck_crl"], data["pck_crl_issuer_chain"],
                                            CAS.values()),
    "root_ca_crl": lambda data: crl_window(data["root_ca_crl"], [ROOT_CA]),
}


def write_collateral_folder(collateral: TdxCollateral, path: Path) -> list[Path]:
    """Write the FOLDER_FILES of `collateral` into `path` (created if needed), each file
    atomically and byte for byte; returns the files written."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("cannot create the TDX collateral folder",
                          expected="a writable directory",
                          found=f"{folder}: {exc.strerror or exc}") from None
    written = []
    for field, name in FOLDER_FILES.items():
        target = folder / name
        try:
            atomic_write(target, getattr(collateral, field))
        except OSError as exc:
            raise ConfigError("cannot write TDX collateral", expected="a writable directory",
                              found=f"{target}: {exc.strerror or exc}") from None
        written.append(target)
    return written
