"""Compact JWS helpers shared by every token verifier (EAR, ITA, MAA, NRAS): strict
segment decoding, header parsing, NumericDate checks and bounded error text. Signatures and
keys stay with each verifier; these only refuse malformed input with typed errors."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import MalformedEvidence, StaleEvidence, VerificationFailed

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# A token far beyond any we would accept is an attack on the parser, not evidence.
MAX_TOKEN_LENGTH = 1 << 20


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def short(value: object, limit: int = 80) -> str:
    """repr for error messages, bounded: the value may come from an attacker."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decode_segment(segment: str, name: str) -> bytes:
    # Strict: canonical base64url without padding, as RFC 7515 compact form requires.
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise MalformedEvidence(
            f"token {name} is not base64url", expected="unpadded base64url", found=short(segment)
        )
    decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if b64url(decoded) != segment:
        raise MalformedEvidence(f"token {name} is not canonical base64url", found=short(segment))
    return decoded


def parse_header(token: object) -> dict[str, Any]:
    if not isinstance(token, str):
        raise MalformedEvidence("token is not a string", found=type(token).__name__)
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedEvidence(
            "token is too long",
            expected=f"at most {MAX_TOKEN_LENGTH} characters",
            found=len(token),
        )
    segments = token.split(".")
    if len(segments) != 3:
        raise MalformedEvidence(
            "token is not a compact JWS",
            expected="3 dot-separated segments",
            found=len(segments),
        )
    header_bytes = decode_segment(segments[0], "header")
    decode_segment(segments[1], "payload")
    decode_segment(segments[2], "signature")
    try:
        header = json.loads(header_bytes)
    except (ValueError, RecursionError):
        raise MalformedEvidence("token header is not JSON", found=short(header_bytes)) from None
    if not isinstance(header, dict):
        raise MalformedEvidence(
            "token header is not a JSON object", expected="an object", found=short(header)
        )
    return header


def iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return str(seconds)


def required_date(claims: Mapping[str, Any], name: str) -> float:
    if name not in claims:
        raise VerificationFailed(f"token has no {name} claim", expected=f"an {name} claim")
    return numeric_date(claims, name)


def numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise VerificationFailed(
            f"token {name} is not a NumericDate",
            expected="a finite number of seconds",
            found=short(value),
        )
    return value


def check_token_times(claims: Mapping[str, Any], at: datetime, leeway: timedelta) -> None:
    """exp after `at`, iat and (when present) nbf at or before it, each within `leeway`;
    StaleEvidence otherwise. exp and iat are required: a token without them never ages out."""
    now, slack = at.timestamp(), leeway.total_seconds()
    exp = required_date(claims, "exp")
    iat = required_date(claims, "iat")
    nbf = numeric_date(claims, "nbf") if "nbf" in claims else None
    if exp <= now - slack:
        raise StaleEvidence("token has expired", expected=f"exp after {at.isoformat()}",
                            found=iso(exp))
    for name, value in (("iat", iat), ("nbf", nbf)):
        if value is not None and value > now + slack:
            raise StaleEvidence(f"token is not yet valid ({name} is in the future)",
                                expected=f"{name} at or before {at.isoformat()}",
                                found=iso(value))


def expiry(claims: Mapping[str, Any]) -> datetime | None:
    """`exp` as an aware datetime, for VerifiedClaims.valid_until: a verdict on a token lasts
    no longer than the token. None when absent, not a number or beyond datetime's range (a
    date that far away bounds nothing; check_token_times has refused bad values already)."""
    value = claims.get("exp")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def check_audience(claims: Mapping[str, Any], audience: str | None) -> None:
    """`aud` equal to, or (as a list) holding, `audience`; no check when it is None."""
    if audience is None:
        return
    aud = claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise VerificationFailed("token is for another audience", expected=audience,
                                 found=short(aud))


def date_claim(claims: Mapping[str, Any], name: str) -> str | None:
    """A NumericDate claim as ISO text for the result's claims; None when absent or not a
    number (the time checks have already refused a bad exp, iat or nbf)."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return iso(value)


def token_text(report: bytes | str, what: str) -> str:
    """The compact JWS an evidence report carries, as text; `what` names the evidence."""
    if isinstance(report, str):
        return report.strip()
    try:
        return bytes(report).strip().decode("ascii")
    except (UnicodeDecodeError, TypeError):
        raise MalformedEvidence(f"{what} evidence is not a JWT text",
                                expected="ASCII compact JWS") from None
