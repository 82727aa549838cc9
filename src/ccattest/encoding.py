"""Reading evidence files as users have them: envelopes, raw bytes, hex or base64 text."""

from __future__ import annotations

import base64
import binascii
import re
import string

from .errors import MalformedEvidence
from .evidence import MAX_ENVELOPE_BYTES, Evidence

_HEX = re.compile(rb"\A(?:0x)?[0-9a-fA-F]+\Z")
_B64 = re.compile(rb"\A[A-Za-z0-9+/_-]+={0,2}\Z")
_TEXT = set(string.printable.encode())


def decode_blob(data: bytes) -> bytes:
    """Raw binary stays as it is; hex or base64 text is decoded (whitespace ignored)."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise MalformedEvidence("evidence too large", expected=f"at most {MAX_ENVELOPE_BYTES} "
                                "bytes", found=f"{len(data)} bytes")
    if not data or not set(data) <= _TEXT:
        return data
    compact = b"".join(data.split())
    if _HEX.match(compact):
        digits = compact[2:] if compact[:2].lower() == b"0x" else compact
        if len(digits) % 2:
            raise MalformedEvidence("hex evidence has an odd number of digits",
                                    found=f"{len(digits)} digits")
        return bytes.fromhex(digits.decode())
    if _B64.match(compact):
        try:
            padded = compact + b"=" * (-len(compact) % 4)
            return base64.b64decode(padded.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
        except (binascii.Error, ValueError):
            raise MalformedEvidence("evidence looks like base64 but does not decode") from None
    return data


def load_evidence(data: bytes, platform: str | None = None) -> Evidence:
    """An Evidence from file bytes: an envelope, or a bare report of a known platform."""
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        evidence = Evidence.from_json(data)
        if platform is not None and evidence.platform != platform:
            raise MalformedEvidence("evidence is for another platform",
                                    expected=platform, found=evidence.platform)
        return evidence
    report = decode_blob(data)
    if platform is None:
        from .platforms.base import detect_platform

        platform = detect_platform(report)
    return Evidence(platform=platform, report=report)
