"""Azure confidential VMs (vTPM): verify an HCL report and a TPM quote, collect them.

Verification, in this order (each layer only trusts what the one before proved):

1. the hardware report verifies natively and binds the runtime data: SNP through
   SnpVerifier with report_data = digest(runtime data) zero-padded to 64; TDX: the
   TDREPORT's report_data is that digest, the TD quote's body equals the TDREPORT's TD fields
   (report_data, MRTD, RTMRs, attributes, ...) and the quote verifies with the TDX verifier;
2. the attestation key HCLAkPub is read from the (now authenticated) runtime data;
3. the TPM quote (TPMS_ATTEST) is signed by that key;
4. its extraData equals the verifier's nonce (`report_data` of `verify`, 1 to 64 bytes);
5. its pcrDigest equals the digest of the PCR values given.

TDX collateral: a TD quote is only fully verified with Intel's collateral (TCB Info, QE
Identity, CRLs), given to the TdxVerifier or as the endorsement "tdx_collateral" (the JSON
that TdxVerifier reads as "collateral"). Without it, verify raises CollateralUnavailable,
unless the verifier was built with tdx_chain_only=True: then the quote's signatures and PCK
chain to the pinned Intel root are checked, no TCB status is claimed (tcb_status None) and
a failed "tdx_tcb" check says so.

Claims: the hardware claims nested under "snp" or "tdx"; "hcl", "pcrs" {"index": hex},
"vm_configuration", "ak_pub", "tpm", "runtime_data", "nonce".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ...errors import (
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    PlatformUnavailable,
    VerificationFailed,
)
from ...evidence import Evidence
from ...result import Reason
from ...timeutil import require_aware
from ..base import VerifiedClaims
from ..snp import PLATFORM as SNP
from ..snp.verify import SnpVerifier
from ..tdx import PLATFORM as TDX
from ..tdx.abi import decode_td_attributes, parse_quote, parse_tdreport
from ..tdx.verify import TdxVerifier, verify_quote_chain
from . import PLATFORM_SNP, PLATFORM_TDX
from .hcl import TDREPORT_SIZE, HclReport, ReportType, parse_hcl_report, parse_runtime_data
from .tpm import (
    TPM_ALG_NULL,
    TPM_ALG_SHA256,
    Attest,
    PcrSelection,
    check_pcr_digest,
    parse_attest,
    parse_pcr_values,
    parse_signature,
    pcr_selections_bytes,
    rsa_key_from_jwk,
    verify_signature,
)

TPM_QUOTE = "tpm_quote"
TPM_SIGNATURE = "tpm_signature"
PCRS = "pcrs"
TD_QUOTE = "td_quote"
TDX_COLLATERAL = "tdx_collateral"
SNP_ENDORSEMENTS = ("vcek", "vlek", "ask", "asvk", "ark", "cert_chain", "crl", "auxblob")
_REPORT_TYPES = {PLATFORM_SNP: ReportType.SNP, PLATFORM_TDX: ReportType.TDX}
_TD_FIELDS = ("report_data", "mr_td", "td_attributes", "xfam", "mr_config_id", "mr_owner",
              "mr_owner_config", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_seam",
              "mr_signer_seam", "seam_attributes", "tee_tcb_svn")


@dataclass(frozen=True)
class _Hardware:
    name: str  # "snp" or "tdx"
    claims: Mapping[str, Any]
    checks: tuple[Reason, ...]
    collateral: Mapping[str, Any]
    # The hardware verifier's bound; the vTPM quote adds none (its key is in the report).
    valid_until: datetime | None = None
    valid_until_source: str | None = None


class AzureCvmVerifier:
    platform: ClassVar[str] = PLATFORM_SNP

    def __init__(self, platform: str | None = None, *, snp_verifier: SnpVerifier | None = None,
                 tdx_verifier: TdxVerifier | None = None, tdx_chain_only: bool = False,
                 tdx_root: x509.Certificate | bytes | None = None) -> None:
        platform = platform or type(self).platform
        if platform not in _REPORT_TYPES:
            raise ConfigError("unknown Azure CVM platform", expected=sorted(_REPORT_TYPES),
                              found=platform)
        self.platform = platform  # type: ignore[misc]  # an instance may narrow the class's
        self._snp = snp_verifier
        self._tdx = tdx_verifier
        self.tdx_chain_only = tdx_chain_only
        self.tdx_root = tdx_root

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime) -> VerifiedClaims:
        at = require_aware(at, "verification time")
        if evidence.platform != self.platform:
            raise MalformedEvidence("evidence is for another platform", expected=self.platform,
                                    found=evidence.platform)
        nonce = _nonce(report_data)
        hcl = parse_hcl_report(evidence.report)
        if hcl.report_type != _REPORT_TYPES[self.platform]:
            raise MalformedEvidence("HCL report carries another hardware report",
                                    expected=_REPORT_TYPES[self.platform].name,
                                    found=hcl.type_name)
        message = _endorsement(evidence, TPM_QUOTE)
        attest = parse_attest(message)
        values = parse_pcr_values(_json(_endorsement(evidence, PCRS), PCRS))
        hardware = (self._snp_report(hcl, evidence, at) if hcl.report_type == ReportType.SNP
                    else self._tdx_report(hcl, evidence, at))
        runtime = parse_runtime_data(hcl.runtime_data)  # authenticated by the step above
        jwk = runtime.key()
        key = rsa_key_from_jwk(jwk)
        signature = parse_signature(_endorsement(evidence, TPM_SIGNATURE), key.key_size // 8)
        verify_signature(message, signature, key)
        if not hmac.compare_digest(attest.extra_data, nonce):
            raise VerificationFailed("TPM quote does not carry the expected nonce",
                                     expected=nonce.hex(), found=attest.extra_data.hex(),
                                     hint="wrong nonce or a replayed quote")
        pcrs = check_pcr_digest(attest, values)
        claims = {hardware.name: dict(hardware.claims), "hcl": _hcl_claims(hcl),
                  "pcrs": {str(index): value.hex() for index, value in pcrs.items()},
                  "vm_configuration": runtime.vm_configuration,
                  "ak_pub": _ak_claims(key, jwk), "tpm": _tpm_claims(attest),
                  "runtime_data": {"keys": sorted(runtime.keys), "user_data": runtime.user_data,
                                   "fields": sorted(runtime.document)},
                  "nonce": nonce.hex()}
        return VerifiedClaims(platform=self.platform, claims=claims,
                              checks=(*hardware.checks, *_checks(hardware.name, len(pcrs))),
                              attester=None,
                              collateral={hardware.name: dict(hardware.collateral)},
                              valid_until=hardware.valid_until,
                              valid_until_source=hardware.valid_until_source)

    # --- layer 1: the hardware report -------------------------------------------------------

    def _snp_report(self, hcl: HclReport, evidence: Evidence, at: datetime) -> _Hardware:
        endorsements = {key: evidence.endorsements[key] for key in SNP_ENDORSEMENTS
                        if key in evidence.endorsements}
        verifier = self._snp or SnpVerifier()
        result = verifier.verify(Evidence(SNP, hcl.snp_report, endorsements),
                                 report_data=hcl.expected_report_data(), at=at)
        checks = tuple(Reason(f"snp_{r.check}", r.passed, r.message, r.expected, r.found)
                       for r in result.checks)
        binding = Reason("hcl_binding", True, "SNP report_data is the digest of the HCL "
                                              "runtime data")
        return _Hardware("snp", result.claims, (*checks, binding), result.collateral,
                         result.valid_until, _prefixed("SNP", result.valid_until_source))

    def _tdx_report(self, hcl: HclReport, evidence: Evidence, at: datetime) -> _Hardware:
        if any(hcl.hardware_report[TDREPORT_SIZE:]):
            raise MalformedEvidence("non-zero bytes after the TDREPORT in the HCL report")
        tdreport = parse_tdreport(hcl.tdreport)
        expected = hcl.expected_report_data()
        if not hmac.compare_digest(tdreport.report_data, expected):
            raise VerificationFailed("TDREPORT report_data is not the digest of the runtime data",
                                     expected=expected.hex(), found=tdreport.report_data.hex())
        raw_quote = _endorsement(evidence, TD_QUOTE)
        body = parse_quote(raw_quote).body
        for name in _TD_FIELDS:
            if getattr(body, name) != getattr(tdreport, name):
                raise VerificationFailed(f"TD quote and TDREPORT differ in {name}",
                                         expected=getattr(tdreport, name).hex(),
                                         found=getattr(body, name).hex())
        collateral = evidence.endorsements.get(TDX_COLLATERAL)
        verifier = self._tdx or TdxVerifier()
        if collateral is None and verifier.collateral is None:
            return self._tdx_chain_only(raw_quote, at)
        endorsements = {} if collateral is None else {"collateral": collateral}
        result = verifier.verify(Evidence(TDX, raw_quote, endorsements),
                                 report_data=tdreport.report_data, at=at)
        checks = tuple(Reason(f"tdx_{r.check}", r.passed, r.message, r.expected, r.found)
                       for r in result.checks)
        return _Hardware("tdx", result.claims, (*checks, _TDX_BINDING), result.collateral,
                         result.valid_until, _prefixed("TDX", result.valid_until_source))

    def _tdx_chain_only(self, raw_quote: bytes, at: datetime) -> _Hardware:
        if not self.tdx_chain_only:
            raise CollateralUnavailable(
                "no TDX collateral for the TD quote",
                expected=f"collateral given to the TDX verifier or an endorsement "
                         f"{TDX_COLLATERAL!r}",
                hint="fetch it from Intel PCS, or build the verifier with tdx_chain_only=True "
                     "to accept a quote without a TCB status")
        chain = verify_quote_chain(raw_quote, at=at, root=self.tdx_root)
        body = parse_quote(raw_quote).body
        claims = {**_td_claims(body), **chain, "tcb_status": None, "collateral": "absent"}
        checks = (Reason("tdx_signature", True, "TD quote and QE report signatures verify; "
                                                "PCK chain to the pinned Intel root"),
                  Reason("tdx_tcb", False, "no collateral: TCB status not evaluated"),
                  _TDX_BINDING)
        return _Hardware("tdx", claims, checks, {"collateral": "absent"})


def _prefixed(tee: str, source: str | None) -> str | None:
    return None if source is None else f"{tee} {source}"


class AzureSnpVerifier(AzureCvmVerifier):
    platform: ClassVar[str] = PLATFORM_SNP


class AzureTdxVerifier(AzureCvmVerifier):
    platform: ClassVar[str] = PLATFORM_TDX


_TDX_BINDING = Reason("hcl_binding", True, "TDREPORT report_data is the digest of the HCL "
                                           "runtime data; the TD quote's body equals the "
                                           "TDREPORT")


def _nonce(report_data: bytes) -> bytes:
    if not isinstance(report_data, bytes | bytearray | memoryview) or not 0 < len(
            report_data) <= 64:
        raise ConfigError("expected nonce must be 1 to 64 bytes (TPM2B_DATA)",
                          found=type(report_data).__name__)
    return bytes(report_data)


def _endorsement(evidence: Evidence, name: str) -> bytes:
    value = evidence.endorsements.get(name)
    if value is None:
        raise MalformedEvidence(f"evidence has no {name!r} endorsement",
                                expected=f"{TPM_QUOTE}, {TPM_SIGNATURE}, {PCRS}"
                                         + (f", {TD_QUOTE}" if name == TD_QUOTE else ""))
    if not isinstance(value, bytes | bytearray | memoryview):
        raise MalformedEvidence(f"endorsement {name!r} must be bytes", found=type(value).__name__)
    return bytes(value)


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise MalformedEvidence(f"endorsement {name!r} is not JSON") from None


def _td_claims(body: Any) -> dict[str, Any]:
    claims = {name: getattr(body, name).hex() for name in _TD_FIELDS}
    claims["td_attributes"] = decode_td_attributes(body.td_attributes)
    return claims


def _hcl_claims(hcl: HclReport) -> dict[str, Any]:
    return {"version": hcl.version, "report_type": hcl.report_type.name.lower(),
            "hash_type": hcl.hash_type.name.lower(), "runtime_digest": hcl.runtime_digest().hex()}


def _ak_claims(key: rsa.RSAPublicKey, jwk: Mapping[str, Any]) -> dict[str, Any]:
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"sha256": hashlib.sha256(spki).hexdigest(), "bits": key.key_size,
            "kid": jwk.get("kid")}


def _tpm_claims(attest: Attest) -> dict[str, Any]:
    return {"firmware": attest.firmware, "clock": attest.clock_info.to_dict(),
            "qualified_signer": attest.qualified_signer.hex()}


def _checks(hardware: str, pcr_count: int) -> tuple[Reason, ...]:
    return (
        Reason("ak", True, f"HCLAkPub taken from runtime data the {hardware.upper()} report "
                           "binds"),
        Reason("tpm_signature", True, "TPM quote signed by HCLAkPub"),
        Reason("tpm_nonce", True, "TPM quote extraData equals the expected nonce"),
        Reason("pcr_digest", True, f"{pcr_count} PCR values match the quote's pcrDigest"),
    )


# --- the trustee evidence shapes -----------------------------------------------------------------

def evidence_from_trustee_json(data: bytes | str | Mapping[str, Any]) -> Evidence:
    """Evidence from confidential-containers/trustee az-snp-vtpm / az-tdx-vtpm JSON: v0
    (byte arrays, `report`/`quote` or `hcl_report`/`tpm_quote`, PEM `vcek`) and v1/v2
    (base64url HCL report and TD quote, hex TPM quote, base64url DER `vcek`)."""
    document = _json(data.encode() if isinstance(data, str) else data, "trustee evidence") \
        if not isinstance(data, Mapping) else data
    if not isinstance(document, Mapping):
        raise MalformedEvidence("trustee evidence must be a JSON object")
    report = _blob(_member(document, "hcl_report", "report"), "hcl_report")
    quote = _member(document, "tpm_quote", "quote")
    if not isinstance(quote, Mapping):
        raise MalformedEvidence("trustee evidence tpm_quote must be an object")
    pcrs = quote.get("pcrs")
    if not isinstance(pcrs, list):
        raise MalformedEvidence("trustee evidence tpm_quote.pcrs must be a list")
    endorsements = {TPM_QUOTE: _hex_blob(quote.get("message"), "message"),
                    TPM_SIGNATURE: _hex_blob(quote.get("signature"), "signature"),
                    PCRS: json.dumps([_hex_blob(pcr, "pcr").hex() for pcr in pcrs]).encode()}
    if "td_quote" in document:
        endorsements[TD_QUOTE] = _blob(document["td_quote"], "td_quote")
    if "vcek" in document:
        endorsements["vcek"] = _certificate(document["vcek"])
    kind = parse_hcl_report(report).report_type
    return Evidence(PLATFORM_TDX if kind == ReportType.TDX else PLATFORM_SNP, report,
                    endorsements)


def _member(document: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in document:
            return document[name]
    raise MalformedEvidence("trustee evidence lacks a member", expected=" or ".join(names))


def _blob(value: Any, what: str) -> bytes:
    if isinstance(value, list):
        try:
            return bytes(value)
        except (TypeError, ValueError):
            raise MalformedEvidence(f"{what} is not a byte array") from None
    if isinstance(value, str):
        try:
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise MalformedEvidence(f"{what} is not base64url") from None
    raise MalformedEvidence(f"{what} must be a byte array or base64url text",
                            found=type(value).__name__)


def _hex_blob(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise MalformedEvidence(f"TPM quote {what} is not hex") from None
    return _blob(value, what)


def _certificate(value: Any) -> bytes:
    if isinstance(value, str) and "-----BEGIN" in value:
        return value.encode()
    return _blob(value, "vcek")


# --- collection on an Azure CVM (TPM 2.0 commands over /dev/tpmrm0) -----------------------------

AK_HANDLE = 0x81000003  # Azure's persistent vTPM attestation key
TPM_RS_PW = 0x40000009
TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS = 0x8001, 0x8002
CC_NV_READ, CC_NV_READ_PUBLIC, CC_QUOTE, CC_PCR_READ = 0x14E, 0x169, 0x158, 0x17E
NV_CHUNK = 1024
MAX_RESPONSE = 8192
_ALL_PCRS = PcrSelection(TPM_ALG_SHA256, tuple(range(24)))
Transport = Callable[[bytes], bytes]


def _device_transport(path: Path) -> Transport:
    def send(command: bytes) -> bytes:
        try:
            descriptor = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise PlatformUnavailable(f"cannot open the TPM device {path}",
                                      found=exc.strerror,
                                      hint="run on an Azure confidential VM with the vTPM "
                                           "resource manager (and read/write access)") from None
        try:
            os.write(descriptor, command)
            return os.read(descriptor, MAX_RESPONSE)
        finally:
            os.close(descriptor)
    return send


def _command(code: int, handles: tuple[int, ...], parameters: bytes, *, auth: bool) -> bytes:
    body = b"".join(struct.pack(">I", handle) for handle in handles)
    if auth:  # one empty-password session: TPMS_AUTH_COMMAND with continueSession
        session = struct.pack(">IHBH", TPM_RS_PW, 0, 0x01, 0)
        body += struct.pack(">I", len(session)) + session
    body += parameters
    tag = TPM_ST_SESSIONS if auth else TPM_ST_NO_SESSIONS
    return struct.pack(">HII", tag, 10 + len(body), code) + body


class _Response:
    def __init__(self, data: bytes, what: str, *, auth: bool) -> None:
        if len(data) < 10:
            raise PlatformUnavailable(f"TPM {what}: short response", found=f"{len(data)} bytes")
        _, size, code = struct.unpack(">HII", data[:10])
        if code != 0:
            raise PlatformUnavailable(f"TPM {what} failed", found=f"TPM_RC {code:#x}")
        self.data, self.offset, self.what = data[:size], 14 if auth else 10, what

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise PlatformUnavailable(f"TPM {self.what}: truncated response")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def tpm2b(self) -> bytes:
        return self.take(self.uint(2))


class AzureCvmAttester:
    """Reads the HCL report from vTPM NV and quotes PCRs 0-23 (SHA-256) with the nonce.

    The SNP VCEK chain (Azure THIM) and the TD quote (Azure IMDS) come from services, not the
    TPM: pass them to the verifier as endorsements ("vcek"/"cert_chain", "td_quote")."""

    platform: ClassVar[str] = PLATFORM_SNP

    def __init__(self, *, tpm_device: Path = Path("/dev/tpmrm0"), nv_index: int = 0x01400001,
                 ak_handle: int = AK_HANDLE, transport: Transport | None = None) -> None:
        self.tpm_device = Path(tpm_device)
        self.nv_index = nv_index
        self.ak_handle = ak_handle
        self._device = transport is None
        self._send = transport or _device_transport(self.tpm_device)

    def collect(self, report_data: bytes) -> Evidence:
        nonce = _nonce(report_data)
        if self._device and not self.tpm_device.exists():
            raise PlatformUnavailable(f"no TPM device at {self.tpm_device}",
                                      hint="run on an Azure confidential VM (vTPM)")
        report = self.read_hcl_report()
        platform = (PLATFORM_TDX if parse_hcl_report(report).report_type == ReportType.TDX
                    else PLATFORM_SNP)
        message, signature = self.quote(nonce)
        pcrs = self.read_pcrs()
        return Evidence(platform, report, {
            TPM_QUOTE: message, TPM_SIGNATURE: signature,
            PCRS: json.dumps([pcrs[index].hex() for index in range(24)]).encode()})

    def _call(self, code: int, handles: tuple[int, ...], parameters: bytes, what: str, *,
              auth: bool) -> _Response:
        return _Response(self._send(_command(code, handles, parameters, auth=auth)), what,
                         auth=auth)

    def read_hcl_report(self) -> bytes:
        public = self._call(CC_NV_READ_PUBLIC, (self.nv_index,), b"", "NV_ReadPublic",
                            auth=False)
        public.take(2 + 4 + 2 + 4)  # size, nvIndex, nameAlg, attributes
        public.tpm2b()  # authPolicy
        size = public.uint(2)
        data = b""
        while len(data) < size:
            chunk = min(NV_CHUNK, size - len(data))
            response = self._call(CC_NV_READ, (self.nv_index, self.nv_index),
                                  struct.pack(">HH", chunk, len(data)), "NV_Read", auth=True)
            data += response.tpm2b()
        return data

    def quote(self, nonce: bytes) -> tuple[bytes, bytes]:
        parameters = (struct.pack(">H", len(nonce)) + nonce + struct.pack(">H", TPM_ALG_NULL)
                      + pcr_selections_bytes([_ALL_PCRS]))
        response = self._call(CC_QUOTE, (self.ak_handle,), parameters, "Quote", auth=True)
        message = response.tpm2b()
        algorithms = response.take(4)  # sigAlg, hash
        signature = response.tpm2b()
        return message, algorithms + struct.pack(">H", len(signature)) + signature

    def read_pcrs(self) -> dict[int, bytes]:
        values: dict[int, bytes] = {}
        while len(values) < 24:
            wanted = PcrSelection(TPM_ALG_SHA256, tuple(i for i in range(24) if i not in values))
            response = self._call(CC_PCR_READ, (), pcr_selections_bytes([wanted]), "PCR_Read",
                                  auth=False)
            response.uint(4)  # pcrUpdateCounter
            read = [i for _ in range(response.uint(4)) for i in _selection(response)]
            digests = [response.tpm2b() for _ in range(response.uint(4))]
            if not digests or len(read) != len(digests):
                raise PlatformUnavailable("TPM PCR_Read returned no SHA-256 PCR values")
            values.update(zip(read, digests, strict=True))
        return values


def _selection(response: _Response) -> list[int]:
    response.uint(2)  # hash
    bits = response.take(response.uint(1))
    return [i for i in range(len(bits) * 8) if bits[i // 8] >> (i % 8) & 1]

