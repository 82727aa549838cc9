"""Azure Confidential Container Instances (ACI): evidence from the SKR sidecar.

A confidential container group runs Microsoft's SKR sidecar, which serves on localhost
(port 8284 in the usual deployment):

  POST /attest/maa  {"maa_endpoint": "<host>", "runtime_data": "<base64>"}
                    -> 200 {"token": "<MAA JWT>"}
  POST /attest/raw  {"runtime_data": "<base64>"}
                    -> 200 {"report": "<hex of the 1184-byte SNP report>"}
  errors            -> 4xx/5xx {"error": "<message>"}

The sidecar puts SHA-256(runtime_data) into the SNP report's report_data (zero-padded to 64
bytes); MAA echoes JSON runtime data as the token's x-ms-runtime claim. ccattest's runtime
data is `maa.runtime_data_for(report_data)` = {"nonce": "<hex of report_data>"}, so:

  - `collect(report_data)` returns Evidence(platform "maa", report = the token text), which
    MaaVerifier checks with the same report_data (binding "runtime_data");
  - `collect_raw(report_data)` returns Evidence(platform "snp", report = the raw report),
    whose report_data is `maa.snp_report_data_for(report_data)`: verify it with SnpVerifier
    and that value. The runtime data goes in the evidence log. The sidecar does not return
    the VCEK chain with /attest/raw; when a response carries one anyway (a "vcek_cert_chain"
    or "cert_chain" PEM member), it becomes the "cert_chain" endorsement, else fetch it from
    AMD KDS (or THIM) before verification.

The container group's CCE policy is measured as SHA-256 into host_data, which both evidence
kinds expose; the policy (ccattest.policy.azure host_data) judges it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from ...errors import ConfigError, MalformedEvidence, PlatformUnavailable
from ...evidence import Evidence
from ...jws import short
from ..snp.abi import REPORT_SIZE
from .maa import PLATFORM, normalize_instance, runtime_data_for

DEFAULT_SIDECAR = "http://localhost:8284"
MAX_RESPONSE_BYTES = 1 << 20
_CHAIN_MEMBERS = ("vcek_cert_chain", "cert_chain")


class AciAttester:
    """Collects MAA tokens and raw SNP reports through the SKR sidecar."""

    platform: ClassVar[str] = PLATFORM

    def __init__(self, sidecar: str = DEFAULT_SIDECAR,
                 maa_endpoint: str = "sharedeus2.eus2.attest.azure.net", *,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        if timeout <= 0:
            raise ConfigError("sidecar timeout must be positive", found=timeout)
        self.sidecar = _sidecar_url(sidecar)
        # The sidecar wants the MAA host name, without a scheme.
        self.maa_endpoint = normalize_instance(maa_endpoint).split("://", 1)[1]
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport,
                                  follow_redirects=False,
                                  headers={"User-Agent": "ccattest-aci"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AciAttester:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def collect(self, report_data: bytes) -> Evidence:
        """An MAA token whose x-ms-runtime carries `report_data` (see the module docstring)."""
        body = self._post("/attest/maa", {"maa_endpoint": self.maa_endpoint,
                                          "runtime_data": _runtime_b64(report_data)})
        token = _text_member(body, "token", "/attest/maa")
        if token.count(".") != 2 or not token.isascii():
            raise MalformedEvidence("sidecar token is not a compact JWT",
                                    found=short(token))
        return Evidence(PLATFORM, token.encode("ascii"))

    def collect_raw(self, report_data: bytes) -> Evidence:
        """The raw SNP report whose report_data is SHA-256 of our runtime data, padded."""
        runtime = runtime_data_for(report_data)
        body = self._post("/attest/raw", {"runtime_data": base64.b64encode(runtime).decode()})
        report = _report_bytes(_text_member(body, "report", "/attest/raw"))
        endorsements: dict[str, bytes] = {}
        for name in _CHAIN_MEMBERS:
            if isinstance(body.get(name), str) and "BEGIN CERTIFICATE" in body[name]:
                endorsements["cert_chain"] = body[name].encode("ascii", "replace")
                break
        return Evidence("snp", report, endorsements,
                        log=({"runtime_data": runtime.decode("ascii")},))

    def _post(self, path: str, payload: Mapping[str, str]) -> dict[str, Any]:
        url = self.sidecar + path
        try:
            response = self._http.post(url, json=dict(payload))
        except httpx.ConnectError as exc:
            raise PlatformUnavailable("the SKR sidecar is not reachable",
                                      expected=f"the sidecar listening at {self.sidecar}",
                                      found=f"connection failed ({exc})",
                                      hint="run inside a confidential container group with "
                                           "the SKR sidecar, or pass its address") from None
        except httpx.HTTPError as exc:
            raise PlatformUnavailable(f"the SKR sidecar did not answer {path}",
                                      found=f"{type(exc).__name__}: {exc}") from None
        return _json_body(response, path)


def _sidecar_url(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError("sidecar URL does not parse", found=str(exc)) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError("sidecar URL must be http(s)://host:port",
                          expected=DEFAULT_SIDECAR, found=short(url))
    return str(url).rstrip("/")


def _runtime_b64(report_data: bytes) -> str:
    return base64.b64encode(runtime_data_for(report_data)).decode("ascii")


def _json_body(response: httpx.Response, path: str) -> dict[str, Any]:
    content = response.content
    if len(content) > MAX_RESPONSE_BYTES:
        raise MalformedEvidence(f"sidecar answer to {path} is too large",
                                expected=f"<= {MAX_RESPONSE_BYTES} bytes", found=len(content))
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        body = None
    if response.status_code != 200:
        error = body.get("error") if isinstance(body, dict) else None
        raise PlatformUnavailable(f"the SKR sidecar refused {path}", expected="HTTP 200",
                                  found=f"HTTP {response.status_code}: "
                                        f"{short(error if error is not None else content)}")
    if not isinstance(body, dict):
        raise MalformedEvidence(f"sidecar answer to {path} is not a JSON object",
                                found=short(content))
    return body


def _text_member(body: Mapping[str, Any], name: str, path: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvidence(f"sidecar answer to {path} has no {name}",
                                expected=f'{{"{name}": "..."}}', found=short(dict(body)))
    return value.strip()


def _report_bytes(text: str) -> bytes:
    """The report: hex as the sidecar documents it; standard base64 accepted too."""
    try:
        report = bytes.fromhex(text)
    except ValueError:
        try:
            report = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedEvidence("sidecar report is neither hex nor base64",
                                    found=short(text)) from None
    if len(report) != REPORT_SIZE:
        raise MalformedEvidence("sidecar report has the wrong size",
                                expected=f"{REPORT_SIZE} bytes", found=f"{len(report)} bytes")
    return report


__all__ = ["DEFAULT_SIDECAR", "AciAttester"]
