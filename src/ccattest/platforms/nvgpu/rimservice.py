"""NVIDIA RIM service client: driver and VBIOS RIMs by id, through the collateral cache.

  GET {base}/v1/rim/{id}   ->  JSON {"id": ..., "rim": base64 of the RIM's XML, ...}

The default base is https://rim.attestation.nvidia.com (no authentication needed; an API key,
when given, is sent as a bearer token). Ids look like NV_GPU_DRIVER_GH100_550.90.07 and
NV_GPU_VBIOS_1010_0200_882_96009F0001 (`rim.rim_ids` builds them from a report's claims).

What the service returns is checked before it is cached: the body must be JSON with a base64
`rim` (and, when it names one, the id asked for), the XML must parse as a RIM of the kind and
version the id names, and, unless `verify=False`, its signature and chain must verify at the
lookup time against the pinned NVIDIA RIM root (a RIM that fails that raises
VerificationFailed and is not cached). A cached RIM ("nvgpu.rim", key: the id) is served from
the latest notBefore to the earliest notAfter of the certificates its signature carries: a RIM
lives as long as its signer certificate (one to two years), and NVIDIA re-signs RIMs before
that. The verifier checks every RIM again whatever its source.

HTTP: 429, 5xx, timeouts and dropped connections are retried with exponential backoff
(Retry-After, capped, wins); 404 and other refusals are not
(`ccattest.collateral.http.ServiceHttp`, shared with the other collateral clients). When no
connection can be made at all (the name does not resolve, the connection is refused), the
client gives up at once with one CollateralUnavailable that names the ways to verify without
the service (UNREACHABLE_HINT): a machine without network should hear that in a moment, not
after a minute of retries.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from cryptography import x509

from ...collateral.cache import CollateralCache, Key, Window, check_item, register_kind
from ...collateral.http import ServiceHttp, ServiceUnreachable, check_service_url
from ...errors import CollateralUnavailable, ConfigError, MalformedEvidence
from ...timeutil import require_aware, utcnow
from .rim import RimIds, check_rim_id, embedded_certificates, id_kind, parse_rim, verify_rim

if TYPE_CHECKING:
    import httpx  # annotations only: the HTTP client is imported when first used

RIM_SERVICE_URL = "https://rim.attestation.nvidia.com"
RIM_PATH = "/v1/rim/"
KIND = "nvgpu.rim"
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_SAFE_ID = re.compile(r"[A-Za-z0-9._\-]{1,200}")
IMPORT_HINT = ("fetch it where the service is reachable into a cache, export that with "
               "`ccattest collateral export BUNDLE`, then `ccattest collateral import BUNDLE` here")
UNREACHABLE_HINT = ("give the driver and VBIOS RIMs as files (--rim FILE, once for each), or "
                    "verify with --offline --collateral DIR from a collateral cache that holds "
                    "them, or bring a "
                    "collateral bundle: on a connected machine `ccattest collateral fetch "
                    "--platform nvgpu REPORT` then `ccattest collateral export BUNDLE`, and "
                    "here `--collateral BUNDLE`")


# --- what the service returns: checked before anything is cached ----------------------------------

def check_rim_item(key: Key, data: bytes) -> Window:
    """A signed RIM of the kind and version the key's id names; valid while every certificate
    its signature carries is."""
    if len(key) != 1 or id_kind(key[0]) is None:
        raise MalformedEvidence("bad key for a RIM", expected="(NV_GPU_... RIM id,)",
                                found=list(key))
    check_rim_id(parse_rim(data, rim_id=key[0]), key[0])
    return _window(embedded_certificates(data))


def _window(certificates: tuple[x509.Certificate, ...]) -> Window:
    return Window(max(cert.not_valid_before_utc for cert in certificates),
                  min(cert.not_valid_after_utc for cert in certificates))


register_kind(KIND, check_rim_item)


def rim_from_response(body: bytes, rim_id: str) -> bytes:
    """The RIM's XML from the service's JSON answer; MalformedEvidence when it has none."""
    try:
        record = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvidence("answer is not JSON", found=str(exc)[:200]) from None
    if not isinstance(record, dict) or not isinstance(record.get("rim"), str):
        raise MalformedEvidence("answer has no RIM", expected='a JSON object with "rim" text',
                                found=type(record).__name__ if not isinstance(record, dict)
                                else sorted(record)[:10])
    if "id" in record and record["id"] != rim_id:
        raise MalformedEvidence("answer is for another RIM", expected=rim_id,
                                found=repr(record["id"])[:200])
    try:
        return base64.b64decode("".join(record["rim"].split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEvidence("answer's rim is not base64", found=str(exc)) from None


class RimServiceUnreachable(CollateralUnavailable):
    """No connection to the RIM service at all: the caller asks for no further RIM from it."""


# --- the client -----------------------------------------------------------------------------------

def _check_id(rim_id: str) -> str:
    if not isinstance(rim_id, str) or not _SAFE_ID.fullmatch(rim_id) or id_kind(rim_id) is None:
        raise ConfigError("not an NVIDIA GPU RIM id",
                          expected="NV_GPU_DRIVER_..., NV_GPU_CC_DRIVER_... or NV_GPU_VBIOS_...",
                          found=repr(rim_id)[:200])
    return rim_id


class RimClient:
    """Fetch RIMs through a cache. Use as a context manager, or call close()."""

    def __init__(self, base_url: str = RIM_SERVICE_URL, *, cache: CollateralCache | None = None,
                 offline: bool = False, timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.5, verify: bool = True, root: x509.Certificate | None = None,
                 api_key: str | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.base_url = check_service_url(base_url, "RIM service", RIM_SERVICE_URL)
        self.cache, self.offline, self.verify, self.root = cache, offline, verify, root
        self._now = now
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = ServiceHttp("NVIDIA RIM service", max_bytes=MAX_RESPONSE_BYTES,
                                 timeout=timeout, retries=retries, backoff=backoff,
                                 transport=transport, sleep=sleep, now=now, headers=headers,
                                 retry_unreachable=False)
        self._flights: dict[str, threading.Lock] = {}
        self._flights_lock = threading.Lock()

    def __enter__(self) -> RimClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def url(self, rim_id: str) -> str:
        return self.base_url + RIM_PATH + _check_id(rim_id)

    def rim(self, rim_id: str, *, at: datetime) -> bytes:
        """The RIM's XML: from the cache when one is valid at `at`, else from the service
        (checked, verified at `at` unless the client was made with verify=False, cached)."""
        url = self.url(rim_id)
        at = require_aware(at, "lookup time")
        with self._flight(rim_id):
            cached = self.cache.get(KIND, (rim_id,), at) if self.cache else None
            if cached is not None:
                return cached.data
            if self.offline:
                raise CollateralUnavailable(f"offline and no cached RIM {rim_id}",
                                            expected=f"a cached copy of {url}",
                                            found=f"nothing valid in the cache at {at.isoformat()}",
                                            hint=IMPORT_HINT)
            return self._download(rim_id, url, at)

    def rims_for(self, ids: RimIds, *, at: datetime) -> dict[str, bytes]:
        """{"driver": XML, "vbios": XML} for the ids `rim.rim_ids` built from a report."""
        return {"driver": self.rim(ids.driver, at=at), "vbios": self.rim(ids.vbios, at=at)}

    def _flight(self, rim_id: str) -> threading.Lock:
        with self._flights_lock:
            return self._flights.setdefault(rim_id, threading.Lock())

    def _download(self, rim_id: str, url: str, at: datetime) -> bytes:
        xml = self._fetch(rim_id, url)
        try:
            rim_xml = rim_from_response(xml, rim_id)
            check_item(KIND, (rim_id,), rim_xml)
        except (MalformedEvidence, CollateralUnavailable) as exc:
            raise CollateralUnavailable(f"NVIDIA RIM service answered {url} with an unusable "
                                        f"RIM ({exc.message})", expected=exc.expected,
                                        found=exc.found) from None
        if self.verify:
            verify_rim(rim_xml, at=at, root=self.root, expected_id=rim_id)
        if self.cache is not None:
            self.cache.put(KIND, (rim_id,), rim_xml, source=url, fetched_at=self._now())
        return rim_xml

    def _fetch(self, rim_id: str, url: str) -> bytes:
        try:
            return self._http.get(url)
        except ServiceUnreachable as exc:
            raise RimServiceUnreachable("the GPU's RIMs could not be fetched from NVIDIA's RIM "
                                        "service: it cannot be reached", expected=url,
                                        found=exc.found, hint=UNREACHABLE_HINT) from None
        except CollateralUnavailable as exc:
            if exc.found == "HTTP 404":
                raise CollateralUnavailable(f"NVIDIA RIM service has no RIM {rim_id}",
                                            expected=f"HTTP 200 from {url}", found="HTTP 404",
                                            hint="NVIDIA publishes RIMs for released drivers "
                                                 "and VBIOS images only; check the versions "
                                                 "the report gives") from None
            raise


__all__ = [
    "KIND",
    "RIM_SERVICE_URL",
    "UNREACHABLE_HINT",
    "RimClient",
    "RimServiceUnreachable",
    "check_rim_item",
    "rim_from_response",
]
