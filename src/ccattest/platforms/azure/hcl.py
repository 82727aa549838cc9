"""The Azure HCL report: what the paravisor (HCL) of a confidential VM puts in vTPM NV index
0x01400001 (FORMATS.md, "Azure").

Layout, little-endian:

    0x000  header (0x20): 'HCLA', version, report size, request type, status, 12 reserved
    0x020  hardware report (0x4A0): an SNP ATTESTATION_REPORT, or a TDX TDREPORT (0x400)
           followed by zero padding
    0x4C0  IGVM request data header (0x14): data size, version, report type, hash type,
           variable data size
    0x4D4  variable data: the runtime data JSON (HCLAkPub, HCLEkPub, vm-configuration, ...)

The NV index is larger than the report; what follows `report size` must be zero. The
hardware report's report_data is the runtime data's digest (hash type) zero-padded to 64.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ...errors import MalformedEvidence

SIGNATURE = b"HCLA"
HEADER_SIZE = 0x20
HW_REPORT_SIZE = 0x4A0
TDREPORT_SIZE = 0x400
IGVM_HEADER_SIZE = 0x14
HW_REPORT_OFFSET = HEADER_SIZE
IGVM_OFFSET = HEADER_SIZE + HW_REPORT_SIZE
RUNTIME_OFFSET = IGVM_OFFSET + IGVM_HEADER_SIZE
MAX_RUNTIME_SIZE = 64 * 1024  # real runtime data is about 1.2 KiB; the NV index about 2.5 KiB
MAX_NV_SIZE = RUNTIME_OFFSET + MAX_RUNTIME_SIZE
AK_KID = "HCLAkPub"

_HEADER = struct.Struct("<4sIIII12s")
_IGVM = struct.Struct("<5I")


class ReportType(IntEnum):
    """IGVM request data: which hardware report the HCL embedded."""

    INVALID = 0
    RESERVED = 1
    SNP = 2
    TVM = 3
    TDX = 4


class HashType(IntEnum):
    """IGVM request data: how report_data is derived from the runtime data."""

    INVALID = 0
    SHA256 = 1
    SHA384 = 2
    SHA512 = 3


_HASHES = {HashType.SHA256: hashlib.sha256, HashType.SHA384: hashlib.sha384,
           HashType.SHA512: hashlib.sha512}
_SUPPORTED_REPORTS = (ReportType.SNP, ReportType.TDX)


@dataclass(frozen=True)
class HclReport:
    hardware_report: bytes  # the whole 0x4A0 field, as found
    runtime_data: bytes
    report_type: ReportType
    hash_type: HashType
    version: int = 1
    request_type: int = 2
    status: int = 0
    igvm_version: int = 1
    reserved: bytes = bytes(12)
    nv_size: int | None = field(default=None)  # the size read from NV, padding included

    @property
    def report_size(self) -> int:
        return RUNTIME_OFFSET + len(self.runtime_data)

    @property
    def snp_report(self) -> bytes:
        if self.report_type != ReportType.SNP:
            raise MalformedEvidence("HCL report does not carry an SNP report",
                                    expected="report type 2 (SNP)", found=self.type_name)
        return self.hardware_report

    @property
    def tdreport(self) -> bytes:
        if self.report_type != ReportType.TDX:
            raise MalformedEvidence("HCL report does not carry a TDREPORT",
                                    expected="report type 4 (TDX)", found=self.type_name)
        return self.hardware_report[:TDREPORT_SIZE]

    @property
    def type_name(self) -> str:
        return f"{int(self.report_type)} ({self.report_type.name})"

    def runtime_digest(self) -> bytes:
        return _HASHES[self.hash_type](self.runtime_data).digest()

    def expected_report_data(self) -> bytes:
        """What the hardware report's 64-byte report_data must hold."""
        return self.runtime_digest().ljust(64, b"\0")

    def to_bytes(self) -> bytes:
        header = _HEADER.pack(SIGNATURE, self.version, self.report_size, self.request_type,
                              self.status, self.reserved)
        igvm = _IGVM.pack(IGVM_HEADER_SIZE + len(self.runtime_data), self.igvm_version,
                          int(self.report_type), int(self.hash_type), len(self.runtime_data))
        raw = header + self.hardware_report + igvm + self.runtime_data
        return raw.ljust(self.nv_size or 0, b"\0")


def _enum(kind: type[IntEnum], value: int, what: str, allowed: tuple[IntEnum, ...]) -> Any:
    if value not in [int(item) for item in allowed]:
        raise MalformedEvidence(f"unsupported HCL {what}",
                                expected=", ".join(f"{int(i)} ({i.name})" for i in allowed),
                                found=value)
    return kind(value)


def parse_hcl_report(data: bytes) -> HclReport:
    """Parse exactly one HCL report; trailing NV padding must be zero."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedEvidence("HCL report must be bytes", found=type(data).__name__)
    data = bytes(data)
    if not RUNTIME_OFFSET <= len(data) <= MAX_NV_SIZE:
        raise MalformedEvidence("HCL report has the wrong size",
                                expected=f"{RUNTIME_OFFSET} to {MAX_NV_SIZE} bytes",
                                found=f"{len(data)} bytes")
    magic, version, report_size, request_type, status, reserved = _HEADER.unpack_from(data)
    if magic != SIGNATURE:
        raise MalformedEvidence("not an HCL report", expected="signature 'HCLA'",
                                found=magic.hex())
    data_size, igvm_version, report_type, hash_type, var_size = _IGVM.unpack_from(data,
                                                                                  IGVM_OFFSET)
    _check_sizes(len(data), report_size, data_size, var_size)
    if any(data[report_size:]):
        raise MalformedEvidence("non-zero bytes after the HCL report",
                                expected="zero padding", found=f"at {report_size:#x}")
    return HclReport(
        hardware_report=data[HW_REPORT_OFFSET:IGVM_OFFSET],
        runtime_data=data[RUNTIME_OFFSET:report_size],
        report_type=_enum(ReportType, report_type, "report type", _SUPPORTED_REPORTS),
        hash_type=_enum(HashType, hash_type, "hash type", tuple(_HASHES)),
        version=version, request_type=request_type, status=status, igvm_version=igvm_version,
        reserved=reserved, nv_size=len(data) if len(data) > report_size else None,
    )


def _check_sizes(total: int, report_size: int, data_size: int, var_size: int) -> None:
    if data_size != IGVM_HEADER_SIZE + var_size:
        raise MalformedEvidence("IGVM request data size disagrees with its variable data size",
                                expected=IGVM_HEADER_SIZE + var_size, found=data_size)
    if report_size != IGVM_OFFSET + data_size:
        raise MalformedEvidence("HCL report size disagrees with its request data",
                                expected=IGVM_OFFSET + data_size, found=report_size)
    if report_size > total:
        raise MalformedEvidence("HCL report is truncated", expected=f"{report_size} bytes",
                                found=f"{total} bytes")


# --- runtime data ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RuntimeData:
    """The runtime data JSON: the vTPM keys (JWKs), the VM configuration, user data."""

    document: Mapping[str, Any]

    @property
    def keys(self) -> dict[str, Mapping[str, Any]]:
        return {str(key.get("kid")): key for key in self.document.get("keys", [])}

    def key(self, kid: str = AK_KID) -> Mapping[str, Any]:
        found = self.keys.get(kid)
        if found is None:
            raise MalformedEvidence(f"runtime data has no {kid} key",
                                    found=sorted(self.keys) or "no keys")
        return found

    @property
    def vm_configuration(self) -> dict[str, Any]:
        return dict(self.document.get("vm-configuration", {}))

    @property
    def user_data(self) -> str | None:
        value = self.document.get("user-data")
        return value if isinstance(value, str) else None


def parse_runtime_data(data: bytes) -> RuntimeData:
    try:
        document = json.loads(bytes(data).rstrip(b"\0").decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise MalformedEvidence("HCL runtime data is not JSON", found=str(exc)[:80]) from None
    if not isinstance(document, dict):
        raise MalformedEvidence("HCL runtime data is not a JSON object",
                                found=type(document).__name__)
    keys = document.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
        raise MalformedEvidence("HCL runtime data 'keys' must be a list of JWKs")
    if not isinstance(document.get("vm-configuration", {}), dict):
        raise MalformedEvidence("HCL runtime data 'vm-configuration' must be an object")
    return RuntimeData(document)
