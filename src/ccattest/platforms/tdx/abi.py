"""Intel TDX quotes (v4, v5) and the TDREPORT: bytes <-> typed records. No cryptography here.

Layouts: Intel TDX DCAP Quoting Library API, appendix "Quote Format", and the TDX module ABI
(TDREPORT_STRUCT); summarised in FORMATS.md. Integers are little-endian; measurements, keys
and SVN arrays are opaque byte strings. Parsers check every length against what is left and
raise only MalformedEvidence; `to_bytes` of a parsed record gives back the same bytes.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ...errors import MalformedEvidence

QUOTE_V4, QUOTE_V5 = 4, 5
ATT_KEY_ECDSA_P256 = 2
TEE_TYPE_TDX = 0x81
BODY_TDX10, BODY_TDX15 = 2, 3
BODY_SIZES = {BODY_TDX10: 584, BODY_TDX15: 648}
HEADER_SIZE = 48
ENCLAVE_REPORT_SIZE = 384
SIGNATURE_SIZE = 64  # ECDSA P-256 r||s, big-endian
KEY_SIZE = 64  # P-256 x||y
CERT_PCK_CHAIN = 5
CERT_QE_REPORT = 6
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
# Generous: a real quote is ~5 KB; some drivers return it in a fixed, zero-padded buffer.
MAX_QUOTE_SIZE = 256 * 1024
TDREPORT_SIZE = 1024
REPORT_TYPE_TDX = 0x81

Layout = tuple[tuple[str | None, str], ...]  # (field, struct code); None: reserved, zero


# --- helpers ------------------------------------------------------------------------------

class _Reader:
    """A cursor over bytes that raises MalformedEvidence instead of reading past the end."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.position, self.what = data, 0, what

    def take(self, size: int, field: str) -> bytes:
        end = self.position + size
        if end > len(self.data):
            raise MalformedEvidence(f"{self.what} is truncated in {field}",
                                    expected=f"{size} bytes at offset {self.position}",
                                    found=f"{len(self.data) - self.position} bytes")
        chunk = self.data[self.position:end]
        self.position = end
        return chunk

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "little")

    def rest(self) -> bytes:
        chunk = self.data[self.position:]
        self.position = len(self.data)
        return chunk

    def finish(self, field: str) -> None:
        left = len(self.data) - self.position
        if left:
            raise MalformedEvidence(f"unexpected bytes after the {field}",
                                    expected="nothing", found=f"{left} bytes")


def _as_bytes(data: object, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedEvidence(f"{what} must be bytes", found=type(data).__name__)
    return bytes(data)


@functools.cache  # a handful of module-level layouts
def _struct(layout: Layout) -> struct.Struct:
    return struct.Struct("<" + "".join(code for _, code in layout))


@functools.cache
def _fields(layout: Layout) -> tuple[tuple[str | None, int], ...]:
    """(name, offset) of each field: the offsets are only needed to name a bad reserved byte."""
    offsets, offset = [], 0
    for name, code in layout:
        offsets.append((name, offset))
        offset += struct.calcsize("<" + code)
    return tuple(offsets)


def _named(layout: Layout, values: Sequence[Any], what: str) -> dict[str, Any]:
    """Field values by name; reserved ranges must be zero."""
    named: dict[str, Any] = {}
    for (name, offset), value in zip(_fields(layout), values, strict=True):
        if name is not None:
            named[name] = value
        elif any(value):
            raise MalformedEvidence(f"{what}: reserved bytes at {offset:#x} are not zero",
                                    expected="zero", found=value.hex())
    return named


def _packed(layout: Layout, record: object) -> bytes:
    values = [b"" if name is None else getattr(record, name) for name, _ in layout]
    for (name, code), value in zip(layout, values, strict=True):
        # Programming errors in whoever built the record, not bad evidence: ValueError.
        if name is not None and code.endswith("s") and len(value) != int(code[:-1]):
            raise ValueError(f"{name} must be {code[:-1]} bytes, not {len(value)}")
    try:
        return _struct(layout).pack(*values)
    except struct.error as exc:
        raise ValueError(str(exc)) from None


# --- the quote header -----------------------------------------------------------------------

_HEADER: Layout = (("version", "H"), ("attestation_key_type", "H"), ("tee_type", "I"),
                   ("qe_svn", "H"), ("pce_svn", "H"), ("qe_vendor_id", "16s"),
                   ("user_data", "20s"))


@dataclass(frozen=True)
class QuoteHeader:
    version: int = QUOTE_V4
    attestation_key_type: int = ATT_KEY_ECDSA_P256
    tee_type: int = TEE_TYPE_TDX
    qe_svn: int = 0  # reserved in TDX quotes; kept as found
    pce_svn: int = 0
    qe_vendor_id: bytes = INTEL_QE_VENDOR_ID
    user_data: bytes = bytes(20)

    def to_bytes(self) -> bytes:
        return _packed(_HEADER, self)


def parse_header(data: bytes) -> QuoteHeader:
    header = QuoteHeader(**_named(_HEADER, _struct(_HEADER).unpack(data), "quote header"))
    if header.version not in (QUOTE_V4, QUOTE_V5):
        raise MalformedEvidence("unsupported quote version", expected="4 or 5",
                                found=header.version)
    if header.tee_type != TEE_TYPE_TDX:
        raise MalformedEvidence("not a TDX quote", expected=f"TEE type {TEE_TYPE_TDX:#x}",
                                found=f"{header.tee_type:#x}",
                                hint="TEE type 0 is an SGX quote, which ccattest does not verify")
    if header.attestation_key_type != ATT_KEY_ECDSA_P256:
        raise MalformedEvidence("unsupported attestation key type",
                                expected=f"{ATT_KEY_ECDSA_P256} (ECDSA P-256)",
                                found=header.attestation_key_type)
    return header


# --- the TD quote body ----------------------------------------------------------------------

_BODY10: Layout = (
    ("tee_tcb_svn", "16s"), ("mr_seam", "48s"), ("mr_signer_seam", "48s"),
    ("seam_attributes", "8s"), ("td_attributes", "8s"), ("xfam", "8s"), ("mr_td", "48s"),
    ("mr_config_id", "48s"), ("mr_owner", "48s"), ("mr_owner_config", "48s"),
    ("rtmr0", "48s"), ("rtmr1", "48s"), ("rtmr2", "48s"), ("rtmr3", "48s"),
    ("report_data", "64s"),
)
_BODY15: Layout = (*_BODY10, ("tee_tcb_svn_2", "16s"), ("mr_servicetd", "48s"))
_BODIES = {BODY_TDX10: _BODY10, BODY_TDX15: _BODY15}

# TD ATTRIBUTES bits (TDX module ABI); unknown bits are kept and exposed.
TD_ATTRIBUTE_FLAGS = {"debug": 0, "sept_ve_disable": 28, "migratable": 29, "pks": 30,
                      "kl": 31, "perfmon": 63}
_TD_ATTRIBUTES_KNOWN = sum(1 << bit for bit in TD_ATTRIBUTE_FLAGS.values())


def decode_td_attributes(raw: bytes) -> dict[str, Any]:
    """The TD attributes as the quote carries them (hex, little-endian) and decoded."""
    value = int.from_bytes(raw, "little")
    decoded: dict[str, Any] = {"raw": raw.hex(), "value": value}
    decoded.update({name: bool(value >> bit & 1) for name, bit in TD_ATTRIBUTE_FLAGS.items()})
    decoded["unknown_bits"] = value & ~_TD_ATTRIBUTES_KNOWN
    return decoded


@dataclass(frozen=True)
class TdQuoteBody:
    """TD quote body: TDX 1.0 (584 bytes), or TDX 1.5 (648) when tee_tcb_svn_2 is set."""

    tee_tcb_svn: bytes = bytes(16)
    mr_seam: bytes = bytes(48)
    mr_signer_seam: bytes = bytes(48)
    seam_attributes: bytes = bytes(8)
    td_attributes: bytes = bytes(8)
    xfam: bytes = bytes(8)
    mr_td: bytes = bytes(48)
    mr_config_id: bytes = bytes(48)
    mr_owner: bytes = bytes(48)
    mr_owner_config: bytes = bytes(48)
    rtmr0: bytes = bytes(48)
    rtmr1: bytes = bytes(48)
    rtmr2: bytes = bytes(48)
    rtmr3: bytes = bytes(48)
    report_data: bytes = bytes(64)
    tee_tcb_svn_2: bytes | None = None  # TDX 1.5 only, with mr_servicetd
    mr_servicetd: bytes | None = None

    @property
    def body_type(self) -> int:
        return BODY_TDX10 if self.tee_tcb_svn_2 is None else BODY_TDX15

    @property
    def rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        return (self.rtmr0, self.rtmr1, self.rtmr2, self.rtmr3)

    def to_bytes(self) -> bytes:
        if (self.tee_tcb_svn_2 is None) != (self.mr_servicetd is None):
            raise ValueError("tee_tcb_svn_2 and mr_servicetd go together (TDX 1.5)")
        return _packed(_BODIES[self.body_type], self)


def parse_body(data: bytes, body_type: int) -> TdQuoteBody:
    layout = _BODIES[body_type]
    return TdQuoteBody(**_named(layout, _struct(layout).unpack(data), "TD quote body"))


# --- the QE report (an SGX report body) -------------------------------------------------------

_ENCLAVE: Layout = (
    ("cpu_svn", "16s"), ("misc_select", "I"), (None, "12s"), ("isv_ext_prod_id", "16s"),
    ("attributes", "16s"), ("mr_enclave", "32s"), (None, "32s"), ("mr_signer", "32s"),
    (None, "32s"), ("config_id", "64s"), ("isv_prod_id", "H"), ("isv_svn", "H"),
    ("config_svn", "H"), (None, "42s"), ("isv_family_id", "16s"), ("report_data", "64s"),
)


@dataclass(frozen=True)
class EnclaveReport:
    cpu_svn: bytes = bytes(16)
    misc_select: int = 0
    isv_ext_prod_id: bytes = bytes(16)
    attributes: bytes = bytes(16)
    mr_enclave: bytes = bytes(32)
    mr_signer: bytes = bytes(32)
    config_id: bytes = bytes(64)
    isv_prod_id: int = 0
    isv_svn: int = 0
    config_svn: int = 0
    isv_family_id: bytes = bytes(16)
    report_data: bytes = bytes(64)

    def to_bytes(self) -> bytes:
        return _packed(_ENCLAVE, self)


def parse_enclave_report(data: bytes) -> EnclaveReport:
    data = _as_bytes(data, "QE report")
    if len(data) != ENCLAVE_REPORT_SIZE:
        raise MalformedEvidence("QE report has the wrong size",
                                expected=f"{ENCLAVE_REPORT_SIZE} bytes", found=len(data))
    return EnclaveReport(**_named(_ENCLAVE, _struct(_ENCLAVE).unpack(data), "QE report"))


# --- certification data -------------------------------------------------------------------------

@dataclass(frozen=True)
class QeCertification:
    """Certification data type 6: the QE's report, signed by the PCK key, and what certifies
    the PCK key (normally type 5, the PCK certificate chain)."""

    report: EnclaveReport
    report_signature: bytes
    auth_data: bytes = b""
    certification_type: int = CERT_PCK_CHAIN
    certification: bytes = b""

    def to_bytes(self) -> bytes:
        if len(self.report_signature) != SIGNATURE_SIZE:
            raise ValueError(f"report_signature must be {SIGNATURE_SIZE} bytes")
        return (self.report.to_bytes() + self.report_signature
                + struct.pack("<H", len(self.auth_data)) + self.auth_data
                + struct.pack("<HI", self.certification_type, len(self.certification))
                + self.certification)


def parse_qe_certification(data: bytes) -> QeCertification:
    reader = _Reader(_as_bytes(data, "QE certification data"), "QE certification data")
    report = parse_enclave_report(reader.take(ENCLAVE_REPORT_SIZE, "QE report"))
    signature = reader.take(SIGNATURE_SIZE, "QE report signature")
    auth_data = reader.take(reader.u16("QE auth data size"), "QE auth data")
    kind = reader.u16("certification data type")
    certification = reader.take(reader.u32("certification data size"), "certification data")
    reader.finish("PCK certification data")
    return QeCertification(report, signature, auth_data, kind, certification)


@functools.lru_cache(maxsize=256)
def _qe_certification(data: bytes) -> QeCertification:
    """Every quote of one platform carries the same QE certification data (QE report, its
    signature, the PCK chain): parsed once per exact bytes. The record is immutable; a parse
    error raises and is not cached."""
    return parse_qe_certification(data)


# --- the quote ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Quote:
    """A TD quote. The certification data is decoded as `qe` when it is type 6 and kept raw
    in `certification` otherwise. `trailing` holds bytes after the signature data: nothing
    signs or reads them, but some drivers pad their buffers (and one sample appends text)."""

    header: QuoteHeader
    body: TdQuoteBody
    signature: bytes = bytes(SIGNATURE_SIZE)
    attestation_key: bytes = bytes(KEY_SIZE)
    certification_type: int = CERT_QE_REPORT
    qe: QeCertification | None = None
    certification: bytes = b""
    trailing: bytes = b""

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def signed_size(self) -> int:
        descriptor = 6 if self.header.version == QUOTE_V5 else 0
        return HEADER_SIZE + descriptor + BODY_SIZES[self.body.body_type]

    def signed_bytes(self) -> bytes:
        """What the attestation key signs: the header, (v5) the body descriptor, the body."""
        body = self.body.to_bytes()
        descriptor = b""
        if self.header.version == QUOTE_V5:
            descriptor = struct.pack("<HI", self.body.body_type, len(body))
        elif self.body.body_type != BODY_TDX10:
            raise ValueError("a version 4 quote carries a TDX 1.0 body")
        return self.header.to_bytes() + descriptor + body

    def signature_data(self) -> bytes:
        if len(self.signature) != SIGNATURE_SIZE or len(self.attestation_key) != KEY_SIZE:
            raise ValueError("signature and attestation_key must be 64 bytes each")
        certification = self.qe.to_bytes() if self.qe is not None else self.certification
        return (self.signature + self.attestation_key
                + struct.pack("<HI", self.certification_type, len(certification))
                + certification)

    def to_bytes(self) -> bytes:
        signature_data = self.signature_data()
        return (self.signed_bytes() + struct.pack("<I", len(signature_data)) + signature_data
                + self.trailing)

    def with_signature(self, signature: bytes) -> Quote:
        return replace(self, signature=signature)


def parse_quote(data: bytes) -> Quote:
    """Parse one quote (v4 or v5, ECDSA P-256, TDX); any inconsistency is MalformedEvidence."""
    data = _as_bytes(data, "TDX quote")
    if len(data) > MAX_QUOTE_SIZE:
        raise MalformedEvidence("TDX quote is too large", expected=f"at most {MAX_QUOTE_SIZE}"
                                " bytes", found=f"{len(data)} bytes")
    reader = _Reader(data, "TDX quote")
    header = parse_header(reader.take(HEADER_SIZE, "header"))
    body_type = BODY_TDX10
    if header.version == QUOTE_V5:
        body_type = reader.u16("body type")
        size = reader.u32("body size")
        if BODY_SIZES.get(body_type) != size:
            raise MalformedEvidence("unsupported TD quote body",
                                    expected="type 2 (584 bytes) or 3 (648 bytes)",
                                    found=f"type {body_type}, {size} bytes")
    body = parse_body(reader.take(BODY_SIZES[body_type], "body"), body_type)
    signature_data = reader.take(reader.u32("signature data size"), "signature data")
    return _with_signature_data(header, body, signature_data, reader.rest())


def _with_signature_data(header: QuoteHeader, body: TdQuoteBody, data: bytes,
                         trailing: bytes) -> Quote:
    reader = _Reader(data, "quote signature data")
    signature = reader.take(SIGNATURE_SIZE, "quote signature")
    key = reader.take(KEY_SIZE, "attestation key")
    kind = reader.u16("certification data type")
    certification = reader.take(reader.u32("certification data size"), "certification data")
    reader.finish("quote signature data")
    if kind == CERT_QE_REPORT:
        return Quote(header, body, signature, key, kind, _qe_certification(certification),
                     trailing=trailing)
    return Quote(header, body, signature, key, kind, None, certification, trailing)


# --- the TDREPORT (from inside the TD; Azure CVMs carry it in their HCL report) -------------------

_TDREPORT: Layout = (
    # REPORTMACSTRUCT (256)
    ("report_type", "B"), ("report_subtype", "B"), ("report_version", "B"), (None, "1s"),
    (None, "12s"), ("cpu_svn", "16s"), ("tee_tcb_info_hash", "48s"), ("tee_info_hash", "48s"),
    ("report_data", "64s"), (None, "32s"), ("mac", "32s"),
    # TEE_TCB_INFO (239)
    ("tcb_info_valid", "8s"), ("tee_tcb_svn", "16s"), ("mr_seam", "48s"),
    ("mr_signer_seam", "48s"), ("seam_attributes", "8s"), ("tee_tcb_svn_2", "16s"),
    ("tcb_info_reserved", "95s"),
    (None, "17s"),
    # TDINFO (512)
    ("td_attributes", "8s"), ("xfam", "8s"), ("mr_td", "48s"), ("mr_config_id", "48s"),
    ("mr_owner", "48s"), ("mr_owner_config", "48s"), ("rtmr0", "48s"), ("rtmr1", "48s"),
    ("rtmr2", "48s"), ("rtmr3", "48s"), ("servtd_hash", "48s"), ("td_info_reserved", "64s"),
)


@dataclass(frozen=True)
class TdReport:
    """TDREPORT_STRUCT: MAC'd by the CPU for local verification only (no signature); what a
    quote's body is made from. TEE_TCB_INFO and TDINFO reserved ranges are kept as found
    because newer TDX modules fill them."""

    report_type: int = REPORT_TYPE_TDX
    report_subtype: int = 0
    report_version: int = 0
    cpu_svn: bytes = bytes(16)
    tee_tcb_info_hash: bytes = bytes(48)
    tee_info_hash: bytes = bytes(48)
    report_data: bytes = bytes(64)
    mac: bytes = bytes(32)
    tcb_info_valid: bytes = bytes(8)
    tee_tcb_svn: bytes = bytes(16)
    mr_seam: bytes = bytes(48)
    mr_signer_seam: bytes = bytes(48)
    seam_attributes: bytes = bytes(8)
    tee_tcb_svn_2: bytes = bytes(16)
    tcb_info_reserved: bytes = bytes(95)
    td_attributes: bytes = bytes(8)
    xfam: bytes = bytes(8)
    mr_td: bytes = bytes(48)
    mr_config_id: bytes = bytes(48)
    mr_owner: bytes = bytes(48)
    mr_owner_config: bytes = bytes(48)
    rtmr0: bytes = bytes(48)
    rtmr1: bytes = bytes(48)
    rtmr2: bytes = bytes(48)
    rtmr3: bytes = bytes(48)
    servtd_hash: bytes = bytes(48)
    td_info_reserved: bytes = bytes(64)

    @property
    def rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        return (self.rtmr0, self.rtmr1, self.rtmr2, self.rtmr3)

    def to_bytes(self) -> bytes:
        return _packed(_TDREPORT, self)


def parse_tdreport(data: bytes) -> TdReport:
    data = _as_bytes(data, "TDREPORT")
    if len(data) != TDREPORT_SIZE:
        raise MalformedEvidence("TDREPORT has the wrong size", expected=f"{TDREPORT_SIZE} bytes",
                                found=f"{len(data)} bytes")
    report = TdReport(**_named(_TDREPORT, _struct(_TDREPORT).unpack(data), "TDREPORT"))
    if report.report_type != REPORT_TYPE_TDX:
        raise MalformedEvidence("not a TDX TDREPORT", expected=f"report type {REPORT_TYPE_TDX:#x}",
                                found=f"{report.report_type:#x}")
    return report

