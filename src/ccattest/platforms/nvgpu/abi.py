"""NVIDIA GPU attestation reports: bytes <-> typed records. No cryptography here.

A report (NVML `nvmlDeviceGetConfComputeGpuAttestationReport`) is the SPDM 1.1
GET_MEASUREMENTS request the driver sent (37 bytes, the caller's nonce at offset 4) followed
by the GPU's MEASUREMENTS response: measurement blocks, the GPU's own nonce, opaque data
(type-length-value entries: driver and VBIOS versions, FWID, ...) and a raw r||s ECDSA
P-384 signature over everything before it. Layout in FORMATS.md, "NVIDIA GPU".

Also the multi-GPU serialized evidence JSON of NVIDIA's attestation SDK: a list of
`{arch, certificate, evidence, nonce}` with a base64 PEM chain and a base64 report.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import MalformedEvidence

SPDM_VERSION = 0x11
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
REQUEST_SIZE = 37
NONCE_SIZE = 32
SIGNATURE_SIZE = 96
MAX_REPORT_SIZE = 0x2000  # NVML's attestationReport buffer
DMTF_SPEC = 0x01  # MeasurementSpecification bit 0: the DMTF measurement format
_HEADER = struct.Struct("<BBBBB3s")  # version, code, param1, param2, blocks, record length
_BLOCK = struct.Struct("<BBHBH")  # index, spec, measurement size, DMTF type, value size
_ENTRY = struct.Struct("<HH")  # opaque entry type, length
_TEXT = re.compile(rb"\A[\x20-\x7e]*\Z")
_HEX_TEXT = re.compile(rb"\A(?:0x)?[0-9a-fA-F]+\Z")

# Opaque data entry types (FORMATS.md); entries of other types are kept raw.
DRIVER_VERSION = 3
GPU_INFO = 4
VBIOS_VERSION = 6
NVDEC0_STATUS = 11
MSRSCNT = 12
CPR_INFO = 13
BOARD_ID = 14
CHIP_SKU = 15
CHIP_SKU_MOD = 16
PROJECT = 17
PROJECT_SKU = 18
PROJECT_SKU_MOD = 19
FWID = 20
PROTECTED_PCIE_STATUS = 21
OPAQUE_DATA_VERSION = 34
CHIP_INFO = 35
FEATURE_FLAG = 36
STATUS_ENABLED, STATUS_DISABLED = 0xAA, 0x55
FEATURE_FLAGS = {0: "SPT", 1: "MPT", 2: "PPCIE"}  # single GPU, multi GPU, protected PCIe
FWID_SIZE = 48
VBIOS_SIZE = 8


# --- records ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeasurementRequest:
    """GET_MEASUREMENTS as NVML sends it: signature requested (param1 bit 0), all blocks."""

    nonce: bytes
    slot_id: int = 0
    version: int = SPDM_VERSION
    param1: int = 0x01
    param2: int = 0xFF

    def to_bytes(self) -> bytes:
        _require_size(self.nonce, NONCE_SIZE, "request nonce")
        return bytes([self.version, GET_MEASUREMENTS, self.param1, self.param2]) + \
            self.nonce + bytes([self.slot_id])


@dataclass(frozen=True)
class MeasurementBlock:
    """One DMTF measurement block; `value` is the digest (SHA-384 on NVIDIA GPUs)."""

    index: int
    value: bytes
    dmtf_type: int = 0x01
    spec: int = DMTF_SPEC

    def to_bytes(self) -> bytes:
        return _BLOCK.pack(self.index, self.spec, 3 + len(self.value), self.dmtf_type,
                           len(self.value)) + self.value


@dataclass(frozen=True)
class OpaqueEntry:
    type: int
    value: bytes

    def to_bytes(self) -> bytes:
        return _ENTRY.pack(self.type, len(self.value)) + self.value


@dataclass(frozen=True)
class OpaqueFields:
    """The opaque entries verifiers use, decoded; None where the GPU sent no such entry."""

    driver_version: str | None = None
    gpu_info: bytes | None = None
    vbios_version: str | None = None  # NVIDIA's notation, e.g. 96.00.9F.00.01
    nvdec0_enabled: bool | None = None
    msrscnt: tuple[int, ...] | None = None  # how often each measurement index was extended
    cpr_info: bytes | None = None
    board_id: bytes | None = None
    chip_sku: str | None = None
    chip_sku_mod: str | None = None
    project: str | None = None
    project_sku: str | None = None
    project_sku_mod: str | None = None
    fwid: bytes | None = None
    ppcie_enabled: bool | None = None
    opaque_data_version: int | None = None
    chip_info: str | None = None  # Blackwell
    feature_flag: int | None = None

    @property
    def feature_name(self) -> str | None:
        if self.feature_flag is None:
            return None
        return FEATURE_FLAGS.get(self.feature_flag, f"unknown({self.feature_flag})")


@dataclass(frozen=True)
class MeasurementResponse:
    blocks: tuple[MeasurementBlock, ...]
    nonce: bytes
    opaque: tuple[OpaqueEntry, ...]
    signature: bytes = bytes(SIGNATURE_SIZE)
    version: int = SPDM_VERSION
    param1: int = 0
    param2: int = 0

    def unsigned_bytes(self) -> bytes:
        _require_size(self.nonce, NONCE_SIZE, "responder nonce")
        record = b"".join(block.to_bytes() for block in self.blocks)
        opaque = b"".join(entry.to_bytes() for entry in self.opaque)
        header = _HEADER.pack(self.version, MEASUREMENTS, self.param1, self.param2,
                              len(self.blocks), len(record).to_bytes(3, "little"))
        return header + record + self.nonce + struct.pack("<H", len(opaque)) + opaque


@dataclass(frozen=True)
class GpuReport:
    """A whole NVML attestation report. `padding` counts the zero bytes some tools keep
    after the signature (a copy of NVML's fixed buffer rather than attestationReportSize)."""

    request: MeasurementRequest
    response: MeasurementResponse
    padding: int = 0
    fields: OpaqueFields = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", decode_opaque(self.response.opaque))

    @property
    def nonce(self) -> bytes:
        """The requester's nonce: the caller's challenge, the one to check."""
        return self.request.nonce

    @property
    def signature_rs(self) -> tuple[int, int]:
        signature = self.response.signature
        half = len(signature) // 2
        return int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")

    def measurements(self) -> dict[int, bytes]:
        return {block.index: block.value for block in self.response.blocks}

    def signed_bytes(self) -> bytes:
        return self.request.to_bytes() + self.response.unsigned_bytes()

    def with_signature(self, signature: bytes) -> GpuReport:
        return replace(self, response=replace(self.response, signature=signature))

    def to_bytes(self) -> bytes:
        _require_size(self.response.signature, SIGNATURE_SIZE, "signature")
        return self.signed_bytes() + self.response.signature + bytes(self.padding)


def _require_size(value: bytes, size: int, what: str) -> None:
    # A programming error in whoever built the record, not bad evidence: ValueError.
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, not {len(value)}")


# --- parsing ---------------------------------------------------------------------------------

def report_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    """Raw report bytes from raw bytes or hex text (NVIDIA's sample files are hex)."""
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedEvidence("GPU report must be bytes or hex text", found=type(data).__name__)
    data = bytes(data)
    if len(data) > 4 * MAX_REPORT_SIZE:
        raise MalformedEvidence("GPU report too large", expected=f"at most {MAX_REPORT_SIZE} "
                                "bytes", found=f"{len(data)} bytes")
    compact = b"".join(data.split())
    if compact[:4].lower() not in (b"11e0", b"0x11") or not _HEX_TEXT.match(compact):
        return data  # raw: its first byte (0x11) is not an ASCII hex digit
    digits = compact[2:] if compact[:2].lower() == b"0x" else compact
    if len(digits) % 2:
        raise MalformedEvidence("hex GPU report has an odd number of digits",
                                found=f"{len(digits)} digits")
    return bytes.fromhex(digits.decode("ascii"))


class _Reader:
    """Bounds-checked cursor: every read that runs past the end is MalformedEvidence."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.position + size
        if end > len(self.data):
            raise MalformedEvidence(f"GPU report truncated in the {what}",
                                    expected=f"{size} bytes at offset {self.position}",
                                    found=f"{len(self.data) - self.position} bytes")
        chunk = self.data[self.position:end]
        self.position = end
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple[Any, ...]:
        return layout.unpack(self.take(layout.size, what))


def parse_report(data: bytes | bytearray | memoryview | str) -> GpuReport:
    """Parse exactly one report; anything truncated, oversized or inconsistent is
    MalformedEvidence. Trailing bytes after the signature must be zero padding."""
    raw = report_bytes(data)
    if len(raw) > MAX_REPORT_SIZE:
        raise MalformedEvidence("GPU report too large", expected=f"at most {MAX_REPORT_SIZE} "
                                "bytes", found=f"{len(raw)} bytes")
    reader = _Reader(raw)
    request = _parse_request(reader.take(REQUEST_SIZE, "request"))
    response = _parse_response(reader)
    rest = raw[reader.position:]
    if any(rest):
        raise MalformedEvidence("unexpected bytes after the report's signature",
                                expected="nothing, or zero padding",
                                found=f"{len(rest)} bytes starting {rest[:8].hex()}")
    return GpuReport(request, response, padding=len(rest))


def _parse_request(data: bytes) -> MeasurementRequest:
    version, code, param1, param2 = data[:4]
    if version != SPDM_VERSION or code != GET_MEASUREMENTS:
        raise MalformedEvidence("not an SPDM 1.1 GET_MEASUREMENTS request",
                                expected="11 e0", found=data[:2].hex(" "))
    if param1 != 0x01 or param2 != 0xFF:
        raise MalformedEvidence("request does not ask for all measurements, signed",
                                expected="param1 01, param2 ff",
                                found=f"param1 {param1:02x}, param2 {param2:02x}")
    return MeasurementRequest(nonce=data[4:36], slot_id=data[36])


def _parse_response(reader: _Reader) -> MeasurementResponse:
    version, code, param1, param2, count, length = reader.unpack(_HEADER, "response header")
    if version != SPDM_VERSION or code != MEASUREMENTS:
        raise MalformedEvidence("not an SPDM 1.1 MEASUREMENTS response",
                                expected="11 60", found=f"{version:02x} {code:02x}")
    record = reader.take(int.from_bytes(length, "little"), "measurement record")
    blocks = _parse_blocks(record, count)
    nonce = reader.take(NONCE_SIZE, "responder nonce")
    (opaque_length,) = reader.unpack(struct.Struct("<H"), "opaque length")
    opaque = _parse_opaque(reader.take(opaque_length, "opaque data"))
    signature = reader.take(SIGNATURE_SIZE, "signature")
    return MeasurementResponse(blocks, nonce, opaque, signature, version, param1, param2)


def _parse_blocks(record: bytes, count: int) -> tuple[MeasurementBlock, ...]:
    reader = _Reader(record)
    blocks: list[MeasurementBlock] = []
    while reader.position < len(record):
        index, spec, size, dmtf_type, value_size = reader.unpack(_BLOCK, "measurement block")
        if spec != DMTF_SPEC or size != 3 + value_size:
            raise MalformedEvidence(f"measurement block {index} is not a DMTF block",
                                    expected=f"spec 1, size {3 + value_size}",
                                    found=f"spec {spec}, size {size}")
        blocks.append(MeasurementBlock(index, reader.take(value_size, "measurement value"),
                                       dmtf_type, spec))
    indices = [block.index for block in blocks]
    if len(blocks) != count or len(set(indices)) != count:
        raise MalformedEvidence("measurement record disagrees with its block count",
                                expected=f"{count} distinct blocks",
                                found=f"{len(blocks)} blocks, {len(set(indices))} indices")
    return tuple(blocks)


def _parse_opaque(data: bytes) -> tuple[OpaqueEntry, ...]:
    reader = _Reader(data)
    entries: list[OpaqueEntry] = []
    while reader.position < len(data):
        kind, length = reader.unpack(_ENTRY, "opaque entry header")
        entries.append(OpaqueEntry(kind, reader.take(length, f"opaque entry {kind}")))
    return tuple(entries)


# --- opaque fields -----------------------------------------------------------------------------

def decode_opaque(entries: Iterable[OpaqueEntry]) -> OpaqueFields:
    """Typed view of the entries FORMATS.md names; a duplicate or ill-sized one is malformed."""
    values: dict[int, bytes] = {}
    for entry in entries:
        if entry.type in values:
            raise MalformedEvidence("opaque data repeats an entry", found=f"type {entry.type}")
        values[entry.type] = entry.value
    decoded: dict[str, Any] = {}
    for kind, (name, decode) in _DECODERS.items():
        if kind in values:
            decoded[name] = decode(values[kind], name)
    return OpaqueFields(**decoded)


def _text(value: bytes, name: str) -> str:
    """ASCII, NUL-terminated or NUL-padded; nothing but NULs after the first NUL."""
    text, _, rest = value.partition(b"\0")
    if rest.strip(b"\0") or not _TEXT.match(text):
        raise MalformedEvidence(f"opaque {name} is not NUL-terminated ASCII", found=value.hex())
    return text.decode("ascii")


def _sized(size: int) -> Any:
    def check(value: bytes, name: str) -> bytes:
        if len(value) != size:
            raise MalformedEvidence(f"opaque {name} has the wrong size",
                                    expected=f"{size} bytes", found=f"{len(value)} bytes")
        return value
    return check


def _status(value: bytes, name: str) -> bool:
    if value not in (bytes([STATUS_ENABLED]), bytes([STATUS_DISABLED])):
        raise MalformedEvidence(f"opaque {name} is neither enabled nor disabled",
                                expected="aa or 55", found=value.hex())
    return value[0] == STATUS_ENABLED


def _u16(value: bytes, name: str) -> int:
    return int.from_bytes(_sized(2)(value, name), "little")


def _counts(value: bytes, name: str) -> tuple[int, ...]:
    if len(value) % 4:
        raise MalformedEvidence(f"opaque {name} is not a list of u32",
                                found=f"{len(value)} bytes")
    return tuple(count for (count,) in struct.iter_unpack("<I", value))


def _vbios(value: bytes, name: str) -> str:
    return format_vbios(_sized(VBIOS_SIZE)(value, name))


def format_vbios(raw: bytes) -> str:
    """NVIDIA's notation: bytes 3, 2, 1, 0 and 4 in hex (009f009601000000 -> 96.00.9F.00.01)."""
    return ".".join(f"{raw[i]:02X}" for i in (3, 2, 1, 0, 4))


def vbios_bytes(version: str) -> bytes:
    """The inverse of format_vbios, for building test reports."""
    parts = [int(part, 16) for part in version.split(".")]
    if len(parts) != 5 or not all(0 <= part <= 0xFF for part in parts):
        raise ValueError(f"not a VBIOS version: {version!r}")
    return bytes([parts[3], parts[2], parts[1], parts[0], parts[4], 0, 0, 0])


_DECODERS: Mapping[int, tuple[str, Any]] = {
    DRIVER_VERSION: ("driver_version", _text),
    GPU_INFO: ("gpu_info", lambda value, _: value),
    VBIOS_VERSION: ("vbios_version", _vbios),
    NVDEC0_STATUS: ("nvdec0_enabled", _status),
    MSRSCNT: ("msrscnt", _counts),
    CPR_INFO: ("cpr_info", lambda value, _: value),
    BOARD_ID: ("board_id", lambda value, _: value),
    CHIP_SKU: ("chip_sku", _text),
    CHIP_SKU_MOD: ("chip_sku_mod", _text),
    PROJECT: ("project", _text),
    PROJECT_SKU: ("project_sku", _text),
    PROJECT_SKU_MOD: ("project_sku_mod", _text),
    FWID: ("fwid", _sized(FWID_SIZE)),
    PROTECTED_PCIE_STATUS: ("ppcie_enabled", _status),
    OPAQUE_DATA_VERSION: ("opaque_data_version", _u16),
    CHIP_INFO: ("chip_info", _text),
    FEATURE_FLAG: ("feature_flag", _u16),
}


# --- multi-GPU serialized evidence (NVIDIA attestation SDK) ---------------------------------

MAX_GPUS = 64
MAX_LIST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class GpuEvidence:
    """One GPU's entry: its architecture as the SDK names it, PEM chain, report, nonce."""

    arch: str
    certificate: bytes
    evidence: bytes
    nonce: bytes

    def to_dict(self) -> dict[str, str]:
        return {"arch": self.arch, "certificate": base64.b64encode(self.certificate).decode(),
                "evidence": base64.b64encode(self.evidence).decode(), "nonce": self.nonce.hex()}


def is_evidence_list(data: bytes | str) -> bool:
    head = data.lstrip()[:1]
    return head in (b"[", "[")


def parse_evidence_list(data: bytes | str) -> tuple[GpuEvidence, ...]:
    """The SDK's JSON list; other keys in an entry are ignored, the four named ones required."""
    if len(data) > MAX_LIST_BYTES:
        raise MalformedEvidence("GPU evidence list too large",
                                expected=f"at most {MAX_LIST_BYTES} bytes", found=len(data))
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvidence("GPU evidence list is not JSON", found=str(exc)) from None
    if not isinstance(document, list) or not 1 <= len(document) <= MAX_GPUS:
        raise MalformedEvidence("GPU evidence must be a JSON list of entries",
                                expected=f"1 to {MAX_GPUS} entries",
                                found=type(document).__name__ if not isinstance(document, list)
                                else f"{len(document)} entries")
    return tuple(_entry(item, number) for number, item in enumerate(document))


def dump_evidence_list(items: Iterable[GpuEvidence]) -> bytes:
    return json.dumps([item.to_dict() for item in items], indent=2).encode()


def _entry(item: Any, number: int) -> GpuEvidence:
    if not isinstance(item, dict):
        raise MalformedEvidence(f"GPU evidence entry {number} is not an object",
                                found=type(item).__name__)
    arch = _string(item, "arch", number)
    if not arch:
        raise MalformedEvidence(f"GPU evidence entry {number} names no architecture")
    nonce_text = _string(item, "nonce", number)
    try:
        nonce = bytes.fromhex(nonce_text)
    except ValueError:
        raise MalformedEvidence(f"GPU evidence entry {number}: nonce is not hex",
                                found=nonce_text[:80]) from None
    return GpuEvidence(arch=arch, certificate=_base64(item, "certificate", number),
                       evidence=_base64(item, "evidence", number), nonce=nonce)


def _string(item: dict[str, Any], key: str, number: int) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise MalformedEvidence(f"GPU evidence entry {number}: {key!r} must be a string",
                                found=type(value).__name__)
    return value


def _base64(item: dict[str, Any], key: str, number: int) -> bytes:
    text = _string(item, key, number)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvidence(f"GPU evidence entry {number}: {key!r} is not base64") from None
