"""Intel PCK certificates without cryptography: loading PEM/DER chains, the SGX extensions
(FMSPC, TCB, PCE-ID, ...) of a PCK certificate, and the pinned Intel SGX Root CA.

Signatures and chains are checked in verify.py. The SGX extension is one SEQUENCE of
(OID, value) pairs that `cryptography` leaves as an UnrecognizedExtension; the small DER
reader below walks it and nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from ...errors import MalformedEvidence

# What cryptography raises for certificates that do not parse; it parses many parts lazily.
PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                x509.DuplicateExtension)
PEM_MARKER = b"-----BEGIN CERTIFICATE-----"

SGX_OID = "1.2.840.113741.1.13.1"
_PPID, _TCB, _PCE_ID, _FMSPC, _SGX_TYPE, _INSTANCE = (f"{SGX_OID}.{n}" for n in range(1, 7))
_TCB_COMPONENT = _TCB + ".{}"  # .1-.16 SGX component SVNs, .17 PCESVN, .18 CPUSVN
COMPONENTS = 16

TAG_BOOLEAN, TAG_INTEGER, TAG_OCTETS, TAG_OID, TAG_ENUM, TAG_SEQUENCE = (
    0x01, 0x02, 0x04, 0x06, 0x0A, 0x30)


# --- minimal DER --------------------------------------------------------------------------

def read_tlv(data: bytes, start: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, end) of the element at `start`: single-byte tags, definite lengths."""
    if start + 2 > len(data):
        raise MalformedEvidence("truncated DER element", found=data[start:].hex() or "nothing")
    tag, first = data[start], data[start + 1]
    if tag & 0x1F == 0x1F:
        raise MalformedEvidence("unsupported multi-byte DER tag", found=f"{tag:#04x}")
    position = start + 2
    length = first
    if first & 0x80:
        size = first & 0x7F
        if not 1 <= size <= 4 or position + size > len(data):
            raise MalformedEvidence("bad DER length", found=data[start:start + 6].hex())
        length = int.from_bytes(data[position:position + size], "big")
        position += size
    end = position + length
    if end > len(data):
        raise MalformedEvidence("truncated DER element", expected=f"{length} content bytes",
                                found=f"{len(data) - position} bytes")
    return tag, data[position:end], end


def children(content: bytes) -> Iterator[tuple[int, bytes]]:
    """The elements inside a constructed value, in order."""
    position = 0
    while position < len(content):
        tag, value, position = read_tlv(content, position)
        yield tag, value


def expect(tag: int, content: bytes, wanted: int, what: str) -> bytes:
    if tag != wanted:
        raise MalformedEvidence(f"{what} has the wrong DER type", expected=f"tag {wanted:#04x}",
                                found=f"tag {tag:#04x}")
    return content


def decode_oid(content: bytes) -> str:
    """Dotted text of an OBJECT IDENTIFIER's content octets (base-128 arcs)."""
    if not content or content[-1] & 0x80:
        raise MalformedEvidence("truncated OBJECT IDENTIFIER", found=content.hex())
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def decode_unsigned(content: bytes, what: str, *, bits: int) -> int:
    if not content or len(content) > bits // 8 + 1:
        raise MalformedEvidence(f"{what} is not a {bits}-bit INTEGER", found=content.hex())
    value = int.from_bytes(content, "big", signed=True)
    if not 0 <= value < 1 << bits:
        raise MalformedEvidence(f"{what} out of range", expected=f"0..{(1 << bits) - 1}",
                                found=value)
    return value


def _pairs(content: bytes, what: str) -> dict[str, tuple[int, bytes]]:
    """SEQUENCE OF SEQUENCE {OID, value}, as {oid: (tag, content)}; duplicates refused."""
    found: dict[str, tuple[int, bytes]] = {}
    for tag, item in children(content):
        parts = list(children(expect(tag, item, TAG_SEQUENCE, what)))
        if len(parts) != 2:
            raise MalformedEvidence(f"{what} entry is not an (OID, value) pair",
                                    found=f"{len(parts)} elements")
        oid = decode_oid(expect(*parts[0], TAG_OID, f"{what} OID"))
        if oid in found:
            raise MalformedEvidence(f"{what} names {oid} twice")
        found[oid] = parts[1]
    return found


# --- the SGX extensions of a PCK certificate ----------------------------------------------------

@dataclass(frozen=True)
class PckExtensions:
    ppid: bytes
    sgx_svns: tuple[int, ...]  # the 16 SGX TCB component SVNs
    pce_svn: int
    cpu_svn: bytes
    pce_id: bytes
    fmspc: bytes
    sgx_type: int | None
    platform_instance_id: bytes | None  # Platform CA certificates only


def _octets(values: dict[str, tuple[int, bytes]], oid: str, what: str,
            size: int | None) -> bytes | None:
    if oid not in values:
        return None
    content = expect(*values[oid], TAG_OCTETS, what)
    if size is not None and len(content) != size:
        raise MalformedEvidence(f"{what} has the wrong length", expected=size,
                                found=len(content))
    return content


def _required(value: bytes | None, what: str) -> bytes:
    if value is None:
        raise MalformedEvidence(f"PCK certificate has no {what}",
                                expected=f"{what} in the SGX extension {SGX_OID}")
    return value


def parse_sgx_extension(value: bytes) -> PckExtensions:
    """The DER value of extension 1.2.840.113741.1.13.1."""
    tag, content, end = read_tlv(value)
    if end != len(value):
        raise MalformedEvidence("unexpected bytes after the SGX extension",
                                found=f"{len(value) - end} bytes")
    top = _pairs(expect(tag, content, TAG_SEQUENCE, "SGX extension"), "SGX extension")
    if _TCB not in top:
        raise MalformedEvidence("PCK certificate has no TCB", expected=f"{_TCB}")
    tcb = _pairs(expect(*top[_TCB], TAG_SEQUENCE, "SGX TCB"), "SGX TCB")
    svns = tuple(_component(tcb, n) for n in range(1, COMPONENTS + 1))
    sgx_type = None
    if _SGX_TYPE in top:
        sgx_type = decode_unsigned(expect(*top[_SGX_TYPE], TAG_ENUM, "SGX type"), "SGX type",
                                   bits=8)
    return PckExtensions(
        ppid=_required(_octets(top, _PPID, "PPID", 16), "PPID"),
        sgx_svns=svns,
        pce_svn=_component(tcb, 17, bits=16),
        cpu_svn=_required(_octets(tcb, _TCB_COMPONENT.format(18), "CPUSVN", 16), "CPUSVN"),
        pce_id=_required(_octets(top, _PCE_ID, "PCE-ID", 2), "PCE-ID"),
        fmspc=_required(_octets(top, _FMSPC, "FMSPC", 6), "FMSPC"),
        sgx_type=sgx_type,
        platform_instance_id=_octets(top, _INSTANCE, "platform instance ID", 16),
    )


def _component(tcb: dict[str, tuple[int, bytes]], number: int, *, bits: int = 8) -> int:
    oid = _TCB_COMPONENT.format(number)
    what = "PCESVN" if number == 17 else f"SGX TCB component {number}"
    if oid not in tcb:
        raise MalformedEvidence(f"PCK certificate has no {what}", expected=oid)
    return decode_unsigned(expect(*tcb[oid], TAG_INTEGER, what), what, bits=bits)


def sgx_extension_value(cert: x509.Certificate) -> bytes | None:
    """The raw SGX extension, or None for certificates without one (CAs)."""
    try:
        value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_OID)).value
    except x509.ExtensionNotFound:
        return None
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("certificate extensions do not parse", found=str(exc)) from None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def pck_extensions(cert: x509.Certificate) -> PckExtensions:
    value = sgx_extension_value(cert)
    if value is None:
        raise MalformedEvidence("not a PCK certificate", expected=f"extension {SGX_OID}")
    return parse_sgx_extension(value)


# --- certificates ------------------------------------------------------------------------------

def load_certificates(data: bytes, what: str = "certificate chain") -> list[x509.Certificate]:
    """PEM blocks, or DER certificates back to back (Intel's QVL samples); NUL padding after
    either is allowed, anything else is MalformedEvidence."""
    data = bytes(data)
    if not data.strip(b"\0"):
        raise MalformedEvidence(f"{what} is empty", expected="PEM or DER certificates")
    try:
        if PEM_MARKER in data:
            return x509.load_pem_x509_certificates(data.rstrip(b"\0"))
        return [x509.load_der_x509_certificate(item) for item in _der_items(data)]
    except PARSE_ERRORS as exc:
        raise MalformedEvidence(f"{what} does not parse", found=str(exc)) from None


def _der_items(data: bytes) -> Iterator[bytes]:
    position = 0
    while any(data[position:]):  # a DER element may end in 0x00: only padding after it
        start = position
        tag, _, position = read_tlv(data, position)
        if tag != TAG_SEQUENCE:
            raise MalformedEvidence("not a DER certificate", expected="SEQUENCE (0x30)",
                                    found=f"{tag:#04x} at offset {start}")
        yield data[start:position]


def load_crl(data: bytes, what: str) -> x509.CertificateRevocationList:
    """A CRL as DER or PEM (Intel PCS serves both); MalformedEvidence when it does not parse."""
    data = bytes(data)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data.strip(b"\0 \t\r\n"))
        return x509.load_der_x509_crl(data)
    except PARSE_ERRORS as exc:
        raise MalformedEvidence(f"{what} does not parse", found=str(exc)) from None


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


# --- the pinned root (package data) --------------------------------------------------------------

@functools.cache
def pinned_root() -> x509.Certificate:
    """The Intel SGX Root CA; see roots/README.md for its fingerprint."""
    data = resources.files(__package__).joinpath("roots", "intel-sgx-root-ca.pem").read_bytes()
    return x509.load_pem_x509_certificate(data)
