"""AMD Key Distribution Service (KDS) client: VCEKs, certificate chains and CRLs.

URLs (AMD #57230; FORMATS.md, "AMD SEV-SNP"):
  /vcek/v1/{product}/{hwid hex}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=   one VCEK, DER
      (Turin: fmcSPL first, and the 8-byte hwID)
  /{vcek|vlek}/v1/{product}/cert_chain                             ASK (or ASVK) + ARK, PEM
  /{vcek|vlek}/v1/{product}/crl                                    the ARK's CRL, DER

KDS rate-limits with HTTP 429, so the client looks in the cache first (a VCEK is keyed by
product, hwID and TCB: a site fetches each one once), retries 429, 5xx and connection errors
with exponential backoff, honours Retry-After (capped), and checks what KDS returns before
caching it. Whether the collateral is *trustworthy* is the verifier's business (pinned ARKs,
signatures); this module only makes sure it is what was asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from cryptography import x509

from ...collateral.cache import CollateralCache, Key, Window, check_item, register_kind
from ...collateral.http import ServiceHttp, check_service_url
from ...errors import CollateralUnavailable, ConfigError, MalformedEvidence
from ...timeutil import require_aware, utcnow
from . import PRODUCTS
from .abi import SnpReport, tcb_layout
from .certs import PARSE_ERRORS, amd_extensions, common_name, load_certificates

if TYPE_CHECKING:
    import httpx  # annotations only: the HTTP client is imported when first used

KDS_URL = "https://kdsintf.amd.com"
MAX_RESPONSE_BYTES = 1024 * 1024
KINDS = {"vcek": "snp.vcek", "cert_chain": "snp.cert_chain", "crl": "snp.crl"}
KEY_TYPES = ("vcek", "vlek")
SPL_PARAMETERS = {"fmc": "fmcSPL", "bootloader": "blSPL", "tee": "teeSPL", "snp": "snpSPL",
                  "microcode": "ucodeSPL"}
IMPORT_HINT = ("fetch it on a connected machine with `ccattest collateral fetch`, "
               "`ccattest collateral export BUNDLE`, then `ccattest collateral import BUNDLE` here")


@dataclass(frozen=True)
class KdsRequest:
    """One piece of collateral to get: its cache address and where KDS serves it."""

    endorsement: str  # "vcek", "cert_chain" or "crl": the key it takes in Evidence
    kind: str  # cache kind
    key: Key
    path: str  # path and query, relative to the KDS base URL

    @property
    def what(self) -> str:
        return f"{self.endorsement} for {'/'.join(self.key)}"


# --- URLs and keys ----------------------------------------------------------------------------

def _check_product(product: str) -> str:
    if product not in PRODUCTS:
        raise ConfigError("unknown SNP product", expected=f"one of {PRODUCTS}",
                          found=repr(product))
    return product


def _check_key_type(key: str) -> str:
    if key not in KEY_TYPES:
        raise ConfigError("unknown SNP signing key type", expected=f"one of {KEY_TYPES}",
                          found=repr(key))
    return key


def kds_hwid(product: str, hwid: bytes) -> bytes:
    """The hwID KDS expects: 64 bytes, or for Turin 8 (the first 8 of a 64-byte chip_id)."""
    if not isinstance(hwid, bytes | bytearray | memoryview):
        raise ConfigError("hwID must be bytes", found=type(hwid).__name__)
    hwid = bytes(hwid)
    if product == "Turin" and len(hwid) == 64 and not any(hwid[8:]):
        hwid = hwid[:8]
    size = 8 if product == "Turin" else 64
    if len(hwid) != size:
        raise ConfigError(f"hwID for {product} has the wrong length", expected=f"{size} bytes",
                          found=f"{len(hwid)} bytes")
    if not any(hwid):
        raise CollateralUnavailable("cannot fetch a VCEK for a masked chip_id",
                                    expected="a non-zero chip_id", found="all zero bytes",
                                    hint="the attester must supply its VCEK (MASK_CHIP_KEY set)")
    return hwid


def tcb_parameters(product: str, tcb: Mapping[str, int]) -> list[tuple[str, int]]:
    """(query name, value) for each SPL of the product's TCB layout, in KDS's order."""
    names = [name for name in SPL_PARAMETERS if name in tcb_layout(product)]
    missing = [name for name in names if name not in tcb]
    if missing:
        raise ConfigError(f"TCB for {product} lacks components", expected=names, found=dict(tcb))
    values = [(SPL_PARAMETERS[name], tcb[name]) for name in names]
    for parameter, value in values:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
            raise ConfigError(f"TCB component {parameter} out of range", expected="0..255",
                              found=repr(value))
    return values


def _tcb_text(parameters: list[tuple[str, int]]) -> str:
    return ",".join(f"{name}={value}" for name, value in parameters)


def vcek_request(product: str, hwid: bytes, tcb: Mapping[str, int]) -> KdsRequest:
    product = _check_product(product)
    chip = kds_hwid(product, hwid).hex()
    parameters = tcb_parameters(product, tcb)
    query = "&".join(f"{name}={value}" for name, value in parameters)
    return KdsRequest("vcek", KINDS["vcek"], (product, chip, _tcb_text(parameters)),
                      f"/vcek/v1/{product}/{chip}?{query}")


def chain_request(product: str, key: str = "vcek") -> KdsRequest:
    product, key = _check_product(product), _check_key_type(key)
    return KdsRequest("cert_chain", KINDS["cert_chain"], (product, key),
                      f"/{key}/v1/{product}/cert_chain")


def crl_request(product: str, key: str = "vcek") -> KdsRequest:
    product, key = _check_product(product), _check_key_type(key)
    return KdsRequest("crl", KINDS["crl"], (product, key), f"/{key}/v1/{product}/crl")


def requests_for(report: SnpReport, *, product: str | None = None,
                 crl: bool = False) -> list[KdsRequest]:
    """What a report needs from KDS: its VCEK and the chain (a VLEK-signed report: only the
    ASVK chain; the VLEK itself comes with the evidence), plus the CRL when asked."""
    product = product or report.product
    if product is None:
        raise ConfigError("cannot tell the product of this report",
                          expected=f"one of {PRODUCTS}",
                          found=f"version {report.version} report without cpuid",
                          hint="pass the product (v2 reports do not name it)")
    if report.signing_key not in KEY_TYPES:
        raise ConfigError("report is not signed by a VCEK or VLEK", expected=KEY_TYPES,
                          found=report.signing_key)
    key = report.signing_key
    needed = [chain_request(product, key)]
    if key == "vcek":
        tcb = report.tcb("reported_tcb", product)
        needed.insert(0, vcek_request(product, report.chip_id, tcb))
    if crl:
        needed.append(crl_request(product, key))
    return needed


# --- what KDS returns: checked before anything is cached ----------------------------------------

def _certificate_window(certificates: list[x509.Certificate]) -> Window:
    try:
        return Window(max(cert.not_valid_before_utc for cert in certificates),
                      min(cert.not_valid_after_utc for cert in certificates))
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("certificate validity does not parse", found=str(exc)) from None


def check_vcek(key: Key, data: bytes) -> Window:
    """One DER certificate whose productName, hwID and SPLs are the key's."""
    if data.lstrip().startswith(b"-----BEGIN"):
        raise MalformedEvidence("VCEK is PEM", expected="one DER certificate", found="PEM")
    certificates = load_certificates(data)
    extensions = amd_extensions(certificates[0])
    product = extensions.product
    if product is None or extensions.hwid is None:
        raise MalformedEvidence("certificate is not a VCEK",
                                expected="AMD productName and hwID extensions",
                                found=f"productName {extensions.product_name!r}, "
                                      f"hwID {'present' if extensions.hwid else 'absent'}")
    spls = [(parameter, extensions.spls.get(name, -1)) for name, parameter
            in SPL_PARAMETERS.items() if name in tcb_layout(product)]
    found = (product, extensions.hwid.hex(), _tcb_text(spls))
    if found != tuple(key):
        raise MalformedEvidence("VCEK is for another product, chip or TCB",
                                expected="/".join(key), found="/".join(found))
    return _certificate_window(certificates)


def check_chain(key: Key, data: bytes) -> Window:
    """Two PEM certificates: the ASK (ASVK for "vlek") and the ARK of the key's product."""
    product, key_type = _key_pair(key)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise MalformedEvidence("certificate chain is not PEM", expected="two PEM certificates",
                                found=f"{len(data)} bytes without a PEM header")
    certificates = load_certificates(data)
    intermediate = f"SEV-VLEK-{product}" if key_type == "vlek" else f"SEV-{product}"
    names = [common_name(cert) for cert in certificates]
    if names != [intermediate, f"ARK-{product}"]:
        raise MalformedEvidence("certificate chain has the wrong certificates",
                                expected=[intermediate, f"ARK-{product}"], found=names)
    return _certificate_window(certificates)


def check_crl(key: Key, data: bytes) -> Window:
    """One DER CRL issued by the key's ARK, with a nextUpdate."""
    product, _ = _key_pair(key)
    try:
        crl = x509.load_der_x509_crl(data)
        issuer = crl.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        issuer_name = str(issuer[0].value) if issuer else ""
        window = (crl.last_update_utc, crl.next_update_utc)
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("CRL does not parse", expected="a DER CRL",
                                found=str(exc)) from None
    if issuer_name != f"ARK-{product}":
        raise MalformedEvidence("CRL has the wrong issuer", expected=f"ARK-{product}",
                                found=issuer_name)
    if window[1] is None:
        raise MalformedEvidence("CRL has no nextUpdate", expected="a nextUpdate time")
    return Window(window[0], window[1])


def _key_pair(key: Key) -> tuple[str, str]:
    if len(key) != 2 or key[0] not in PRODUCTS or key[1] not in KEY_TYPES:
        raise MalformedEvidence("bad key for a chain or CRL", expected="(product, vcek|vlek)",
                                found=list(key))
    return key[0], key[1]


register_kind(KINDS["vcek"], check_vcek)
register_kind(KINDS["cert_chain"], check_chain)
register_kind(KINDS["crl"], check_crl)


# --- the client -----------------------------------------------------------------------------

class KdsClient:
    """Fetch AMD collateral through a cache. `retries` is the number of tries after the
    first; the n-th retry waits backoff * 2**n seconds (at most MAX_DELAY) unless the server
    says how long with Retry-After. Use as a context manager, or call close()."""

    def __init__(self, base_url: str = KDS_URL, *, cache: CollateralCache | None = None,
                 offline: bool = False, timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.5, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.base_url = check_service_url(base_url, "KDS", KDS_URL)
        self.cache, self.offline, self._now = cache, offline, now
        self._http = ServiceHttp("AMD KDS", max_bytes=MAX_RESPONSE_BYTES, timeout=timeout,
                                 retries=retries, backoff=backoff, transport=transport,
                                 sleep=sleep, now=now, headers={"User-Agent": "ccattest-kds"},
                                 hint="KDS rate-limits: retry later, or import a bundle")
        self._flights: dict[tuple[str, Key], threading.Lock] = {}
        self._flights_lock = threading.Lock()

    def __enter__(self) -> KdsClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- the public calls ---------------------------------------------------------------------

    def vcek(self, product: str, hwid: bytes, tcb: Mapping[str, int], *,
             at: datetime | None = None) -> bytes:
        """The VCEK (DER) for a chip at a TCB."""
        return self.fetch(vcek_request(product, hwid, tcb), at=at)

    def cert_chain(self, product: str, key: str = "vcek", *, at: datetime | None = None) -> bytes:
        """ASK + ARK (key "vlek": ASVK + ARK) as PEM."""
        return self.fetch(chain_request(product, key), at=at)

    def vlek_chain(self, product: str, *, at: datetime | None = None) -> bytes:
        return self.cert_chain(product, "vlek", at=at)

    def crl(self, product: str, key: str = "vcek", *, at: datetime | None = None) -> bytes:
        """The ARK's CRL (DER) for the product."""
        return self.fetch(crl_request(product, key), at=at)

    def collateral_for(self, report: SnpReport, *, product: str | None = None,
                       crl: bool = False, at: datetime | None = None) -> dict[str, bytes]:
        """{"vcek": DER, "cert_chain": PEM} (+ "crl": DER when asked) for a report, ready to
        merge into its Evidence's endorsements. A VLEK-signed report gets the ASVK chain
        only. `product` is needed for v2 reports, which do not name theirs. The verifier
        takes the CRL through SnpVerifier(crls=...)."""
        return {request.endorsement: self.fetch(request, at=at)
                for request in requests_for(report, product=product, crl=crl)}

    def url(self, request: KdsRequest) -> str:
        return self.base_url + request.path

    def fetch(self, request: KdsRequest, *, at: datetime | None = None) -> bytes:
        """The item from the cache when one is valid at `at` (default: now), else from KDS
        (checked, then cached). One fetch per item at a time: concurrent callers wait."""
        at = require_aware(at, "lookup time") if at is not None else self._now()
        with self._flight(request):
            cached = self.cache.get(request.kind, request.key, at) if self.cache else None
            if cached is not None:
                return cached.data
            if self.offline:
                raise CollateralUnavailable(f"offline and no cached {request.what}",
                                            expected=f"a cached copy of {self.url(request)}",
                                            found="nothing valid in the cache at "
                                                  f"{at.isoformat()}", hint=IMPORT_HINT)
            return self._download(request)

    # --- internals ----------------------------------------------------------------------------

    def _flight(self, request: KdsRequest) -> threading.Lock:
        with self._flights_lock:
            return self._flights.setdefault((request.kind, request.key), threading.Lock())

    def _download(self, request: KdsRequest) -> bytes:
        url = self.url(request)
        data = self._http.get(url)
        try:
            check_item(request.kind, request.key, data)
        except CollateralUnavailable as exc:
            raise CollateralUnavailable(f"AMD KDS answered {url} with an unusable "
                                        f"{request.endorsement} ({exc.message})",
                                        expected=exc.expected, found=exc.found) from None
        if self.cache is not None:
            self.cache.put(request.kind, request.key, data, source=url, fetched_at=self._now())
        return data
