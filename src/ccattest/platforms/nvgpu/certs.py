"""NVIDIA device certificates without signature checks: loading the PEM chain, the FWID
extensions, the architecture a chain names, and the pinned NVIDIA Device Identity CA.

Signatures and validity are checked in verify.py; this module turns bytes into values and
raises MalformedEvidence for bytes that do not parse.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from ...errors import MalformedEvidence

PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                x509.DuplicateExtension)
MAX_CHAIN = 8
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
ROOT_FILE = "nvidia-device-identity-ca.pem"

# TCG DICE: Hopper's leaf carries the FWID in tcg-dice-TcbInfo's older NVIDIA form (the
# FWID is the OCTET STRING of the value's last element); Blackwell's in a DiceTcbInfo
# (2.23.133.5.4.1.1 as NVIDIA issues it), fwids[0].
HOPPER_FWID_OID = x509.ObjectIdentifier("2.23.133.5.4.1")
BLACKWELL_FWID_OID = x509.ObjectIdentifier("2.23.133.5.4.1.1")
FWID_SIZE = 48
_SEQUENCE, _OID, _OCTET_STRING, _FWIDS = 0x30, 0x06, 0x04, 0xA6

# Device certificates are named after the chip: "GH100 A01 GSP FMC LF", "GB100 A01 GSP BROM".
_CHIP_NAME = re.compile(r"\b(G[HB])(\d{3})\b")
_ARCH_OF_PREFIX = {"GH": "HOPPER", "GB": "BLACKWELL"}


def load_chain(data: bytes) -> tuple[x509.Certificate, ...]:
    """Concatenated PEM certificates, leaf first, as NVML returns them."""
    data = bytes(data)
    if PEM_BEGIN not in data:
        raise MalformedEvidence("GPU certificate chain is not PEM",
                                expected="concatenated PEM certificates, leaf first",
                                found=f"{len(data)} bytes starting {data[:8].hex() or '(empty)'}")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("GPU certificate does not parse", found=str(exc)) from None
    if len(certificates) > MAX_CHAIN:
        raise MalformedEvidence("GPU certificate chain too long", expected=f"at most {MAX_CHAIN}",
                                found=len(certificates))
    return tuple(certificates)


def common_name(cert: x509.Certificate) -> str:
    try:
        names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("certificate subject does not parse", found=str(exc)) from None
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def arch_from_name(name: str) -> str | None:
    """HOPPER or BLACKWELL from a device certificate's common name; None if it names neither."""
    match = _CHIP_NAME.search(name)
    return _ARCH_OF_PREFIX[match.group(1)] if match else None


# --- FWID -------------------------------------------------------------------------------------

def certificate_fwid(cert: x509.Certificate) -> tuple[str, bytes] | None:
    """("HOPPER"|"BLACKWELL", FWID) from whichever extension the certificate carries."""
    for oid, arch, extract in ((BLACKWELL_FWID_OID, "BLACKWELL", _dice_fwid),
                               (HOPPER_FWID_OID, "HOPPER", _hopper_fwid)):
        value = _extension(cert, oid)
        if value is not None:
            return arch, extract(value)
    return None


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("certificate extensions do not parse", found=str(exc)) from None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _hopper_fwid(value: bytes) -> bytes:
    elements = _children(_single(value, _SEQUENCE, "FWID extension"), "FWID extension")
    if not elements:
        raise MalformedEvidence("FWID extension is an empty SEQUENCE")
    tag, content = elements[-1]
    if tag != _SEQUENCE:
        raise MalformedEvidence("FWID extension does not end with an FWID",
                                expected="SEQUENCE { hash OID, digest }", found=f"tag {tag:#04x}")
    return _digest(content)


def _dice_fwid(value: bytes) -> bytes:
    fields = _children(_single(value, _SEQUENCE, "DiceTcbInfo"), "DiceTcbInfo")
    fwids = [content for tag, content in fields if tag == _FWIDS]
    if not fwids:
        raise MalformedEvidence("DiceTcbInfo has no fwids")
    first = _children(fwids[0], "DiceTcbInfo fwids")
    if not first or first[0][0] != _SEQUENCE:
        raise MalformedEvidence("DiceTcbInfo fwids is empty or not a list of FWIDs")
    return _digest(first[0][1])


def _digest(fwid: bytes) -> bytes:
    """FWID ::= SEQUENCE { hashAlg OID, digest OCTET STRING }: the 48-byte digest."""
    parts = _children(fwid, "FWID")
    if [tag for tag, _ in parts] != [_OID, _OCTET_STRING] or len(parts[1][1]) != FWID_SIZE:
        raise MalformedEvidence("FWID is not a hash OID and a 48-byte digest",
                                found=fwid[:16].hex())
    return parts[1][1]


# --- minimal DER: just enough to walk the two FWID structures ----------------------------------

def _tlv(data: bytes, start: int, what: str) -> tuple[int, bytes, int]:
    """(tag, content, end) of the element at `start`; definite lengths only."""
    if start + 2 > len(data):
        raise MalformedEvidence(f"truncated DER in the {what}", found=data[start:].hex())
    tag, first = data[start], data[start + 1]
    position = start + 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if not 1 <= size <= 3 or position + size > len(data):
            raise MalformedEvidence(f"bad DER length in the {what}",
                                    found=data[start:start + 5].hex())
        length = int.from_bytes(data[position:position + size], "big")
        position += size
    end = position + length
    if end > len(data):
        raise MalformedEvidence(f"truncated DER in the {what}",
                                expected=f"{length} content bytes", found=len(data) - position)
    return tag, data[position:end], end


def _single(data: bytes, tag: int, what: str) -> bytes:
    found, content, end = _tlv(data, 0, what)
    if found != tag or end != len(data):
        raise MalformedEvidence(f"{what} is not the expected DER value",
                                expected=f"tag {tag:#04x}, nothing after",
                                found=f"tag {found:#04x}, {len(data) - end} bytes after")
    return content


def _children(content: bytes, what: str) -> list[tuple[int, bytes]]:
    children, position = [], 0
    while position < len(content):
        tag, value, position = _tlv(content, position, what)
        children.append((tag, value))
    return children


# --- the pinned root (package data) ------------------------------------------------------------

@functools.cache
def pinned_root() -> x509.Certificate:
    """NVIDIA Device Identity CA; roots/README.md gives its fingerprint."""
    data = resources.files(__package__).joinpath("roots", ROOT_FILE).read_bytes()
    return x509.load_pem_x509_certificate(data)
