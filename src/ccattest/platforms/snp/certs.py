"""AMD certificates without cryptography: the extended-report certificate table, loading
DER/PEM certificates, the VCEK/VLEK extensions, and the pinned roots shipped as package data.

Signatures are checked in verify.py; this module only turns bytes into typed values and
raises MalformedEvidence for bytes that do not parse.
"""

from __future__ import annotations

import functools
import struct
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning

from ...errors import MalformedEvidence
from . import PRODUCTS

# What cryptography raises for certificates that do not parse; it parses many parts lazily.
PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                x509.DuplicateExtension)

# AMD issues VCEKs with serial number 0, which cryptography accepts with a deprecation
# warning on every load. A process-wide filter for that one message (warnings.catch_warnings
# is not thread-safe).
warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive",
                        category=CryptographyDeprecationWarning)

# --- certificate table (GHCB extended guest request; configfs-tsm auxblob) ----------------

TABLE_GUIDS = {
    uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"): "vcek",
    uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"): "vlek",
    uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"): "ask",
    uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"): "ark",
}
_ROLE_GUIDS = {role: guid for guid, role in TABLE_GUIDS.items()}
_ENTRY = struct.Struct("<16sII")
MAX_TABLE_ENTRIES = 64
# One endorsement (a chain, a certificate, a firmware certificate table): real ones are 2 to
# 20 KiB. Verifiers cache parsed endorsements by their bytes, so a peer's oversized one must
# be refused before it is parsed or kept.
MAX_ENDORSEMENT_BYTES = 64 * 1024


def _bounded(data: bytes, what: str) -> bytes:
    if len(data) > MAX_ENDORSEMENT_BYTES:
        raise MalformedEvidence(f"{what} is too large", expected=f"at most "
                                f"{MAX_ENDORSEMENT_BYTES} bytes", found=f"{len(data)} bytes")
    return data


def parse_cert_table(blob: bytes) -> dict[str, bytes]:
    """{"vcek"|"vlek"|"ask"|"ark"|<guid>: certificate bytes}; entries bounds-checked."""
    entries, table_end = _table_entries(_bounded(bytes(blob), "certificate table"))
    found: dict[str, bytes] = {}
    for guid, offset, length in entries:
        if length == 0:
            continue
        if offset < table_end or offset + length > len(blob):
            raise MalformedEvidence("certificate table entry points outside its data",
                                    expected=f"{table_end}..{len(blob)}",
                                    found=f"offset {offset}, length {length}")
        name = TABLE_GUIDS.get(guid, str(guid))
        if name in found:
            raise MalformedEvidence("certificate table names an entry twice", found=name)
        found[name] = bytes(blob[offset:offset + length])
    return found


def _table_entries(blob: bytes) -> tuple[list[tuple[uuid.UUID, int, int]], int]:
    entries = []
    for position in range(0, _ENTRY.size * MAX_TABLE_ENTRIES, _ENTRY.size):
        if position + _ENTRY.size > len(blob):
            break
        raw_guid, offset, length = _ENTRY.unpack_from(blob, position)
        if raw_guid == bytes(16):
            return entries, position + _ENTRY.size
        entries.append((uuid.UUID(bytes=raw_guid), offset, length))
    raise MalformedEvidence("certificate table has no terminating all-zero entry",
                            found=f"{len(entries)} entries in {len(blob)} bytes")


def build_cert_table(certificates: Mapping[str, bytes]) -> bytes:
    """The inverse of parse_cert_table, for tests and tools: roles or GUID strings."""
    guids = [_ROLE_GUIDS.get(name) or uuid.UUID(name) for name in certificates]
    offset = _ENTRY.size * (len(guids) + 1)
    header, body = b"", b""
    for guid, data in zip(guids, certificates.values(), strict=True):
        header += _ENTRY.pack(guid.bytes, offset + len(body), len(data))
        body += data
    return header + bytes(_ENTRY.size) + body


# --- certificates ----------------------------------------------------------------------------

def load_certificates(data: bytes) -> list[x509.Certificate]:
    """One DER certificate (trailing zero padding allowed) or one or more PEM blocks."""
    data = _bounded(bytes(data), "certificate data")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(_der_prefix(data))]
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("certificate does not parse", found=str(exc)) from None


def _der_prefix(data: bytes) -> bytes:
    # Certificate tables pad entries; keep the one DER element and require zeros after it.
    _, _, end = _tlv(data, 0)
    if any(data[end:]):
        raise MalformedEvidence("unexpected bytes after a DER certificate",
                                found=f"{len(data) - end} bytes")
    return data[:end]


def der_bytes(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


# --- minimal DER for single primitive values (AMD extension values) ----------------------

def _tlv(data: bytes, start: int) -> tuple[int, bytes, int]:
    """(tag, content, end) of the element at `start`; short and long length forms."""
    if start + 2 > len(data):
        raise MalformedEvidence("truncated DER element", found=data[start:].hex())
    tag, first = data[start], data[start + 1]
    position = start + 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if not 1 <= size <= 4 or position + size > len(data):
            raise MalformedEvidence("bad DER length", found=data[start:start + 6].hex())
        length = int.from_bytes(data[position:position + size], "big")
        position += size
    end = position + length
    if end > len(data):
        raise MalformedEvidence("truncated DER element",
                                expected=f"{length} content bytes", found=len(data) - position)
    return tag, data[position:end], end


def _single(data: bytes, tags: tuple[int, ...], what: str) -> bytes:
    tag, content, end = _tlv(data, 0)
    if tag not in tags or end != len(data):
        raise MalformedEvidence(f"{what} is not the expected DER value",
                                expected=f"tag {tags[0]:#04x}, nothing after",
                                found=f"tag {tag:#04x}, {len(data) - end} bytes after")
    return content


def der_integer(data: bytes, what: str) -> int:
    content = _single(data, (0x02,), what)
    if not content:
        raise MalformedEvidence(f"{what} is an empty INTEGER")
    return int.from_bytes(content, "big", signed=True)


def der_string(data: bytes, what: str) -> str:
    content = _single(data, (0x16, 0x0C, 0x13), what)  # IA5String, UTF8String, Printable
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEvidence(f"{what} is not text", found=content.hex()) from None


def hwid_value(data: bytes) -> bytes:
    """hwID is the raw 64 bytes (Turin: 8) on AMD's certificates; some copies wrap it in a
    DER OCTET STRING. The lengths tell the two apart without guessing."""
    if len(data) in (8, 64):
        return data
    if len(data) in (10, 66) and data[0] == 0x04 and data[1] == len(data) - 2:
        return data[2:]
    raise MalformedEvidence("hwID extension has an unexpected length",
                            expected="8 or 64 bytes, raw or as an OCTET STRING",
                            found=f"{len(data)} bytes")


# --- the AMD extensions of VCEK and VLEK certificates ---------------------------------------

_AMD = "1.3.6.1.4.1.3704.1."
SPL_OIDS = {"bootloader": "3.1", "tee": "3.2", "snp": "3.3", "microcode": "3.8", "fmc": "3.9"}


@dataclass(frozen=True)
class AmdExtensions:
    struct_version: int | None
    product_name: str | None
    spls: Mapping[str, int]  # the SPLs present, by TCB component name
    hwid: bytes | None  # VCEK only
    csp_id: str | None  # VLEK only

    @property
    def product(self) -> str | None:
        """"Milan-B0" -> "Milan": the product line, if the name is one ccattest knows."""
        line = (self.product_name or "").split("-", 1)[0]
        return line if line in PRODUCTS else None


def _extension(cert: x509.Certificate, suffix: str) -> bytes | None:
    oid = x509.ObjectIdentifier(_AMD + suffix)
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("certificate extensions do not parse", found=str(exc)) from None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def amd_extensions(cert: x509.Certificate) -> AmdExtensions:
    version = _extension(cert, "1")
    name = _extension(cert, "2")
    spls = {}
    for component, suffix in SPL_OIDS.items():
        raw = _extension(cert, suffix)
        if raw is not None:
            spls[component] = _spl(raw, component)
    hwid = _extension(cert, "4")
    csp = _extension(cert, "5")
    return AmdExtensions(
        struct_version=None if version is None else der_integer(version, "structVersion"),
        product_name=None if name is None else der_string(name, "productName"),
        spls=spls,
        hwid=None if hwid is None else hwid_value(hwid),
        csp_id=None if csp is None else der_string(csp, "cspID"),
    )


def _spl(raw: bytes, component: str) -> int:
    value = der_integer(raw, f"{component} SPL")
    if not 0 <= value <= 0xFF:
        raise MalformedEvidence(f"{component} SPL out of range", expected="0..255", found=value)
    return value


# --- pinned roots and bundled intermediates (package data) ---------------------------------

def _packaged(name: str) -> x509.Certificate:
    data = resources.files(__package__).joinpath("roots", name).read_bytes()
    return x509.load_der_x509_certificate(data)


@functools.cache
def pinned_arks() -> Mapping[str, x509.Certificate]:
    """AMD's root keys per product line; see roots/README.md for their fingerprints."""
    return {product: _packaged(f"ark-{product.lower()}.der") for product in PRODUCTS}


@functools.cache
def bundled_intermediates() -> tuple[x509.Certificate, ...]:
    """AMD's ASKs and ASVKs: checked against the pinned ARK on every use like any other
    intermediate; shipped so that a bare VCEK or VLEK verifies offline."""
    return tuple(_packaged(f"{role}-{product.lower()}.der")
                 for product in PRODUCTS for role in ("ask", "asvk"))
