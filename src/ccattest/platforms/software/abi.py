"""The software report: bytes <-> typed record. No cryptography here.

Layout (little-endian, 288 bytes, fixed size like hardware reports):

    off  size  field
    000  4     magic "CCSW"
    004  2     version (1)
    006  2     flags: bit 0 debug; other bits reserved, zero
    008  4     svn (security version of the attested software)
    00C  4     reserved, zero
    010  48    measurement (SHA-384 chain over the measured items, see measure.py)
    040  64    report_data
    080  64    site identity, UTF-8, NUL-padded
    0C0  32    signer key id: SHA-256 of the raw Ed25519 public key
    0E0  64    Ed25519 signature over bytes 000-0DF
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from ...errors import MalformedEvidence

MAGIC = b"CCSW"
VERSION = 1
REPORT_SIZE = 0x120
SIGNED_SIZE = 0xE0
IDENTITY_SIZE = 64
FLAG_DEBUG = 0x1
_KNOWN_FLAGS = FLAG_DEBUG
_HEADER = struct.Struct("<4sHHII")


@dataclass(frozen=True)
class SoftwareReport:
    version: int
    debug: bool
    svn: int
    measurement: bytes
    report_data: bytes
    identity: str
    key_id: bytes
    signature: bytes = bytes(64)

    def signed_bytes(self) -> bytes:
        return self.to_bytes()[:SIGNED_SIZE]

    def with_signature(self, signature: bytes) -> SoftwareReport:
        return replace(self, signature=signature)

    def to_bytes(self) -> bytes:
        _check_lengths(self)
        flags = FLAG_DEBUG if self.debug else 0
        identity = self.identity.encode("utf-8").ljust(IDENTITY_SIZE, b"\0")
        header = _HEADER.pack(MAGIC, self.version, flags, self.svn, 0)
        body = header + self.measurement + self.report_data + identity + self.key_id
        return body + self.signature


def _check_lengths(report: SoftwareReport) -> None:
    sizes = {"measurement": 48, "report_data": 64, "key_id": 32, "signature": 64}
    for name, size in sizes.items():
        if len(getattr(report, name)) != size:
            raise ValueError(f"{name} must be {size} bytes")
    encoded = report.identity.encode("utf-8")
    if not encoded or len(encoded) > IDENTITY_SIZE or b"\0" in encoded:
        raise ValueError(f"identity must be 1 to {IDENTITY_SIZE} UTF-8 bytes without NUL")
    if not 0 <= report.svn < 2**32:
        raise ValueError("svn must fit in 32 bits")


def parse_report(data: bytes) -> SoftwareReport:
    """Parse exactly one report; reject anything truncated, oversized or inconsistent."""
    if len(data) != REPORT_SIZE:
        raise MalformedEvidence("software report has the wrong size",
                                expected=f"{REPORT_SIZE} bytes", found=f"{len(data)} bytes")
    magic, version, flags, svn, reserved = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise MalformedEvidence("not a software report", expected=MAGIC.hex(), found=magic.hex())
    if version != VERSION:
        raise MalformedEvidence("unsupported software report version",
                                expected=VERSION, found=version)
    if flags & ~_KNOWN_FLAGS or reserved:
        raise MalformedEvidence("reserved bits are set in the software report",
                                expected="0", found=f"flags={flags:#06x} reserved={reserved:#x}")
    return SoftwareReport(
        version=version,
        debug=bool(flags & FLAG_DEBUG),
        svn=svn,
        measurement=data[0x10:0x40],
        report_data=data[0x40:0x80],
        identity=_parse_identity(data[0x80:0xC0]),
        key_id=data[0xC0:0xE0],
        signature=data[0xE0:0x120],
    )


def _parse_identity(raw: bytes) -> str:
    text, _, padding = raw.partition(b"\0")
    if not text or padding.strip(b"\0"):
        raise MalformedEvidence("site identity field is empty or has bytes after its end",
                                found=raw.rstrip(b"\0").hex())
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEvidence("site identity is not UTF-8", found=text.hex()) from None
