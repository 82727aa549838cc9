"""NVIDIA Remote Attestation Service (NRAS) results: the detached EAT, verified and mapped.

NRAS (FORMATS.md, "NVIDIA GPU") takes `POST /v4/attest/gpu` with the caller's nonce, the GPU
architecture and the evidence list, appraises the evidence itself, and answers a *detached
EAT*: the JSON text `[["JWT", overall], {"GPU-0": jwt, ...}]`. Every token is ES384, signed by
a key NRAS publishes at `/.well-known/jwks.json`. The overall token's `submods` holds, for each
GPU, `["DIGEST", ["SHA-256", hex]]` of that GPU's JWT string, so its signature covers the
per-GPU tokens as well; `x-nvidia-overall-att-result` is NRAS's verdict, and the HTTP answer
repeats it in a header of that name (an HTTP 200 may carry a failed attestation).

What is checked here: the exact shape of the detached EAT; for every token the algorithm
(ES384 only), the key (by kid, from the JWKS the caller trusts: header jku/jwk/x5c are never
followed), the signature, exp/iat/nbf against the caller's time `at`; that the submods
digests name exactly the GPU tokens present; the nonce, when the caller gives one; and that
the header agrees with the token. A verdict on the result lasts no longer than its tokens: its
valid_until is the earliest `exp` of the overall and per-GPU tokens. NVIDIA's *local* GPU
verifier signs its own tokens with HS256 and a constant key anyone can read: such tokens
prove nothing and are refused.

A failed attestation is a verified outcome, not an error: `overall_result` is False and
`errors` says, per GPU, which NRAS checks did not pass. Only broken integrity raises (typed
ccattest errors only). The per-GPU claims are also mapped onto the names ccattest's native
GPU verifier uses (`map_gpu_claims`), keeping NRAS's own claims under "token"; claims NRAS
does not report (FWID value, chip SKU, project, feature flag, PPCIe, DevTools) are None.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ...errors import (
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    StaleEvidence,
    VerificationFailed,
)
from ...evidence import Evidence
from ...jws import expiry
from ...result import Reason
from ...timeutil import require_aware
from ...tokens import KeySet, load_jwks
from ..base import VerifiedClaims, earliest

PLATFORM = "nvgpu-nras"
NRAS_URL = "https://nras.attestation.nvidia.com"
ATTEST_PATH = "/v4/attest/gpu"
JWKS_PATH = "/.well-known/jwks.json"
RESULT_HEADER = "x-nvidia-overall-att-result"
RESULT_CLAIM = "x-nvidia-overall-att-result"
ALGORITHM = "ES384"
LOCAL_VERIFIER_ISSUER = "LOCAL_GPU_VERIFIER"
ARCHITECTURES = ("HOPPER", "BLACKWELL")
NONCE_BYTES = 32
MAX_GPUS = 64
MAX_TOKEN_LENGTH = 1 << 16  # a real per-GPU token is about 3.6 KB
MAX_EAT_BYTES = 1 << 20
MAX_RESPONSE_BYTES = 1 << 20
MAX_DELAY = 30.0  # seconds: the longest wait between two tries, whatever Retry-After says

_SIGNATURE_BYTES = 96  # ES384: r || s, 48 bytes each
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_GPU_NAME = re.compile(r"GPU-(?:0|[1-9][0-9]{0,2})")
_RETRYABLE = frozenset({429}) | frozenset(range(500, 600))
_HMAC_NOTE = ("NVIDIA's local GPU verifier signs its tokens with HS256 and a constant key "
              "that anyone can read: they prove nothing")

# NRAS check claims that must be true for a GPU that passed (claims versions 2.0 and 3.0).
CHECK_CLAIMS = (
    "x-nvidia-gpu-arch-check",
    "x-nvidia-gpu-attestation-report-parsed",
    "x-nvidia-gpu-attestation-report-nonce-match",
    "x-nvidia-gpu-attestation-report-signature-verified",
    "x-nvidia-gpu-attestation-report-cert-chain-validated",
    "x-nvidia-gpu-attestation-report-cert-chain-fwid-match",
    "x-nvidia-gpu-driver-rim-fetched",
    "x-nvidia-gpu-driver-rim-schema-validated",
    "x-nvidia-gpu-driver-rim-signature-verified",
    "x-nvidia-gpu-driver-rim-cert-validated",
    "x-nvidia-gpu-driver-rim-version-match",
    "x-nvidia-gpu-driver-rim-measurements-available",
    "x-nvidia-gpu-vbios-rim-fetched",
    "x-nvidia-gpu-vbios-rim-schema-validated",
    "x-nvidia-gpu-vbios-rim-signature-verified",
    "x-nvidia-gpu-vbios-rim-cert-validated",
    "x-nvidia-gpu-vbios-rim-version-match",
    "x-nvidia-gpu-vbios-rim-measurements-available",
    "x-nvidia-gpu-vbios-index-no-conflict",
    "secboot",
)
# Certificate chain claims (3.0): an object with status, OCSP status, expiry, reason.
CHAIN_CLAIMS: Mapping[str, str] = {
    "attestation_report": "x-nvidia-gpu-attestation-report-cert-chain",
    "driver_rim": "x-nvidia-gpu-driver-rim-cert-chain",
    "vbios_rim": "x-nvidia-gpu-vbios-rim-cert-chain",
}
_ARCH_OF_MODEL = (("GH", "HOPPER"), ("GB", "BLACKWELL"))


# --- small helpers ---------------------------------------------------------------------------

def _short(value: object, limit: int = 80) -> str:
    """repr for error messages, bounded: the value may come from an attacker."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return str(seconds)


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: a repeated member is ambiguous (which one did NRAS sign?)."""
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise ValueError(f"duplicate member {name!r}")
        members[name] = value
    return members


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(data: bytes | str, what: str) -> Any:
    try:
        return json.loads(data, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvidence(f"{what} is not JSON", found=_short(str(exc), 120)) from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    value = _json(data, what)
    if not isinstance(value, dict):
        raise MalformedEvidence(f"{what} is not a JSON object", found=_short(value))
    return value


def gpu_order(name: str) -> int:
    """Sort key for "GPU-<n>" names: GPU-2 before GPU-10."""
    return int(name.partition("-")[2])


# --- the detached EAT ------------------------------------------------------------------------

@dataclass(frozen=True)
class DetachedEat:
    """The shape of an NRAS answer, nothing verified yet: the overall JWT and, per GPU, its
    JWT, keyed "GPU-0", "GPU-1", ... in index order."""

    overall: str
    gpus: Mapping[str, str]


def _eat_value(result: str | bytes | bytearray) -> Any:
    if len(result) > MAX_EAT_BYTES:
        raise MalformedEvidence("NRAS result is too large", expected=f"at most {MAX_EAT_BYTES} "
                                "bytes", found=f"{len(result)} bytes")
    if isinstance(result, bytes | bytearray):
        try:
            result = bytes(result).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEvidence("NRAS result is not UTF-8 text",
                                    expected="the detached EAT JSON") from None
    return _json(result, "NRAS result")


_EAT_SHAPE = '[["JWT", overall token], {"GPU-0": token, ...}]'


def parse_detached_eat(result: str | bytes | bytearray | Sequence[Any]) -> DetachedEat:
    """The detached EAT's parts, or MalformedEvidence if it has any other shape."""
    value = _eat_value(result) if isinstance(result, str | bytes | bytearray) else result
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise MalformedEvidence("NRAS result is not a detached EAT", expected=_EAT_SHAPE,
                                found=_short(value))
    head, devices = value
    if not (isinstance(head, list | tuple) and len(head) == 2 and head[0] == "JWT"
            and isinstance(head[1], str)):
        raise MalformedEvidence("NRAS result does not start with the overall token",
                                expected='["JWT", token]', found=_short(head))
    if not isinstance(devices, Mapping) or not devices:
        raise MalformedEvidence("NRAS result carries no per-GPU tokens",
                                expected='{"GPU-0": token, ...}', found=_short(devices))
    if len(devices) > MAX_GPUS:
        raise MalformedEvidence("NRAS result names too many GPUs",
                                expected=f"at most {MAX_GPUS}", found=len(devices))
    for name, token in devices.items():
        if not isinstance(name, str) or not _GPU_NAME.fullmatch(name):
            switch = isinstance(name, str) and name.startswith("SWITCH-")
            raise MalformedEvidence("NRAS result names a device that is not a GPU",
                                    expected="GPU-0, GPU-1, ...", found=_short(name),
                                    hint="NVSwitch results are not GPU results" if switch
                                    else None)
        if not isinstance(token, str):
            raise MalformedEvidence(f"{name} token is not a string", found=_short(token))
    gpus = {name: devices[name] for name in sorted(devices, key=gpu_order)}
    return DetachedEat(overall=head[1], gpus=gpus)


# --- one token -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    name: str  # "overall token", "GPU-0 token": what an error names
    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


def _segment(text: str, what: str) -> bytes:
    # Strict: canonical base64url without padding, as RFC 7515 compact form requires.
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedEvidence(f"{what} is not base64url", expected="unpadded base64url",
                                found=_short(text))
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url(data) != text:
        raise MalformedEvidence(f"{what} is not canonical base64url", found=_short(text))
    return data


def _split(token: str, name: str) -> _Token:
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedEvidence(f"{name} is too long",
                                expected=f"at most {MAX_TOKEN_LENGTH} characters",
                                found=len(token))
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedEvidence(f"{name} is not a compact JWS",
                                expected="3 dot-separated segments", found=len(parts))
    header = _json_object(_segment(parts[0], f"{name} header"), f"{name} header")
    payload = _segment(parts[1], f"{name} payload")
    signature = _segment(parts[2], f"{name} signature")
    return _Token(name, header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def _check_algorithm(token: _Token) -> None:
    alg = token.header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise VerificationFailed(f"{token.name} is unsigned or names no algorithm",
                                 expected=ALGORITHM, found=_short(alg))
    if alg.upper().startswith("HS"):
        raise VerificationFailed(f"{token.name} is HMAC-signed ({_short(alg, 12)}): "
                                 f"{_HMAC_NOTE}", expected=f"an {ALGORITHM} token from NRAS",
                                 found=_short(alg),
                                 hint="attest through NRAS, or verify the GPU evidence itself")
    if alg != ALGORITHM:
        raise VerificationFailed(f"{token.name} algorithm is not accepted", expected=ALGORITHM,
                                 found=_short(alg))
    if "crit" in token.header:
        raise VerificationFailed(f"{token.name} requires header extensions ccattest does not "
                                 "implement", expected="no crit header",
                                 found=_short(token.header["crit"]))


def _check_jwk(jwk: Mapping[str, Any], kid: str) -> None:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-384":
        raise VerificationFailed(f"JWKS key {kid} cannot verify {ALGORITHM}",
                                 expected="kty EC, crv P-384",
                                 found=f"kty {_short(jwk.get('kty'))}, "
                                       f"crv {_short(jwk.get('crv'))}")
    if "alg" in jwk and jwk["alg"] != ALGORITHM:
        raise VerificationFailed(f"JWKS key {kid} is restricted to another algorithm",
                                 expected=ALGORITHM, found=_short(jwk["alg"]))
    if "use" in jwk and jwk["use"] != "sig":
        raise VerificationFailed(f"JWKS key {kid} is not a signature key", expected="use sig",
                                 found=_short(jwk["use"]))
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise VerificationFailed(f"JWKS key {kid} may not verify",
                                 expected='key_ops with "verify"', found=_short(key_ops))


def _select_key(token: _Token, keys: KeySet) -> tuple[str, ec.EllipticCurvePublicKey]:
    """The kid and P-384 key to verify `token` with; keys come from the JWKS only."""
    _check_algorithm(token)
    kid = token.header.get("kid")
    if not isinstance(kid, str):
        raise VerificationFailed(f"{token.name} header names no key", expected="a kid string",
                                 found=_short(kid))
    entry = keys.index.get(kid)
    if entry is None:
        raise VerificationFailed(f"{token.name} is signed by a key not in the JWKS",
                                 expected="a kid in the JWKS", found=_short(kid),
                                 hint="NRAS rotates keys: fetch its current JWKS")
    jwk, key = entry
    _check_jwk(jwk, kid)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve,
                                                                         ec.SECP384R1):
        raise VerificationFailed(f"JWKS key {kid} is not a P-384 public key",
                                 found=type(key).__name__)
    return kid, key


def _check_signature(token: _Token, kid: str, key: ec.EllipticCurvePublicKey) -> None:
    signature = token.signature
    if len(signature) != _SIGNATURE_BYTES:
        raise VerificationFailed(f"{token.name} signature has the wrong length",
                                 expected=f"{_SIGNATURE_BYTES} bytes (ES384 r || s)",
                                 found=f"{len(signature)} bytes")
    r = int.from_bytes(signature[:48], "big")
    s = int.from_bytes(signature[48:], "big")
    try:
        key.verify(encode_dss_signature(r, s), token.signing_input, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise VerificationFailed(f"{token.name} signature does not verify",
                                 expected=f"an {ALGORITHM} signature by JWKS key {kid}",
                                 found="a signature that does not match") from None


def _date(claims: Mapping[str, Any], name: str, token: str, *, required: bool) -> float | None:
    if name not in claims:
        if required:
            raise VerificationFailed(f"{token} has no {name} claim", expected=f"an {name} claim")
        return None
    value = claims[name]
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))):
        raise VerificationFailed(f"{token} {name} is not a NumericDate",
                                 expected="a finite number of seconds", found=_short(value))
    return value


def _check_times(claims: Mapping[str, Any], token: str, at: datetime,
                 leeway: timedelta) -> None:
    now, slack = at.timestamp(), leeway.total_seconds()
    exp = _date(claims, "exp", token, required=True)
    iat = _date(claims, "iat", token, required=True)
    nbf = _date(claims, "nbf", token, required=False)
    if exp is not None and exp <= now - slack:
        raise StaleEvidence(f"{token} has expired", expected=f"exp after {at.isoformat()}",
                            found=_iso(exp))
    for name, value in (("iat", iat), ("nbf", nbf)):
        if value is not None and value > now + slack:
            raise StaleEvidence(f"{token} is not yet valid ({name} is in the future)",
                                expected=f"{name} at or before {at.isoformat()}",
                                found=_iso(value))


def _check_issuer(claims: Mapping[str, Any], token: str, issuer: str | None) -> None:
    found = claims.get("iss")
    if found == LOCAL_VERIFIER_ISSUER:
        raise VerificationFailed(f"{token} comes from the local GPU verifier: {_HMAC_NOTE}",
                                 expected="a token issued by NRAS", found=found)
    if issuer is not None and found != issuer:
        raise VerificationFailed(f"{token} is from another issuer", expected=issuer,
                                 found=_short(found))


@dataclass(frozen=True)
class _Verified:
    claims: dict[str, Any]
    kid: str


def _verify_token(text: str, name: str, keys: KeySet, at: datetime, issuer: str | None,
                  leeway: timedelta) -> _Verified:
    token = _split(text, name)
    kid, key = _select_key(token, keys)
    _check_signature(token, kid, key)
    claims = _json_object(token.payload, f"{name} payload")
    _check_times(claims, name, at, leeway)
    _check_issuer(claims, name, issuer)
    return _Verified(claims, kid)


# --- what binds the tokens together ----------------------------------------------------------

def _submod_digest(entry: object, name: str) -> str:
    shape = '["DIGEST", ["SHA-256", hex]]'
    if not (isinstance(entry, list) and len(entry) == 2 and entry[0] == "DIGEST"
            and isinstance(entry[1], list) and len(entry[1]) == 2):
        raise MalformedEvidence(f"overall token submods entry for {name} is not a digest",
                                expected=shape, found=_short(entry))
    algorithm, value = entry[1]
    if algorithm != "SHA-256":
        raise VerificationFailed(f"overall token digests {name} with an algorithm ccattest "
                                 "does not accept", expected="SHA-256", found=_short(algorithm))
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        raise MalformedEvidence(f"overall token digest for {name} is not 32 bytes of hex",
                                found=_short(value))
    return value.lower()


def check_submods(overall: Mapping[str, Any], eat: DetachedEat) -> None:
    """The overall token's submods digest exactly the GPU tokens of `eat`, each SHA-256 of
    the JWT string. Only meaningful once the overall token's signature has been verified."""
    submods = overall.get("submods")
    if not isinstance(submods, dict):
        raise MalformedEvidence("overall token has no submods object",
                                expected='{"GPU-0": ["DIGEST", ["SHA-256", hex]], ...}',
                                found=_short(submods))
    missing = [name for name in eat.gpus if name not in submods]
    if missing:
        raise VerificationFailed("overall token does not cover every GPU token",
                                 expected=f"a digest for each of {', '.join(eat.gpus)}",
                                 found=f"none for {', '.join(missing)}")
    extra = sorted(str(name) for name in submods if name not in eat.gpus)
    if extra:
        raise VerificationFailed("overall token names GPUs whose tokens are missing",
                                 expected=", ".join(eat.gpus),
                                 found=_short(", ".join(extra), 120))
    for name, token in eat.gpus.items():
        expected = _submod_digest(submods[name], name)
        actual = hashlib.sha256(token.encode("ascii")).hexdigest()
        if not hmac.compare_digest(expected, actual):
            raise VerificationFailed(f"{name} token is not the one the overall token covers",
                                     expected=f"SHA-256 {expected}", found=actual)


def _nonce_claim(claims: Mapping[str, Any], token: str) -> str | None:
    value = claims.get("eat_nonce")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048 or not _HEX.fullmatch(value):
        raise MalformedEvidence(f"{token} eat_nonce is not hex", found=_short(value))
    return value.lower()


def _check_nonce(overall: Mapping[str, Any], gpus: Mapping[str, _Verified],
                 nonce: bytes | None) -> str | None:
    found = _nonce_claim(overall, "overall token")
    for name, verified in gpus.items():
        answered = _nonce_claim(verified.claims, f"{name} token")
        if answered is not None and answered != found:
            raise VerificationFailed(f"{name} token answers another nonce than the overall "
                                     "token", expected=found, found=answered)
    if nonce is None:
        return found
    expected = bytes(nonce).hex()
    if found is None or not hmac.compare_digest(found, expected):
        raise StaleEvidence("NRAS result does not answer our nonce", expected=expected,
                            found=found, hint="a replayed result, or NRAS was sent another nonce")
    return found


def _overall_result(claims: Mapping[str, Any]) -> bool:
    value = claims.get(RESULT_CLAIM)
    if not isinstance(value, bool):
        raise MalformedEvidence(f"overall token has no boolean {RESULT_CLAIM}",
                                found=_short(value))
    return value


def parse_header_result(value: str | bytes | None) -> bool | None:
    """The x-nvidia-overall-att-result header as a boolean (None when not given)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str):
        raise MalformedEvidence(f"NRAS {RESULT_HEADER} header is not text",
                                found=type(value).__name__)
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise MalformedEvidence(f"NRAS {RESULT_HEADER} header is not true or false",
                                found=_short(value))
    return text == "true"


# --- mapping onto ccattest's GPU claim names -------------------------------------------------

def _opt(claims: Mapping[str, Any], name: str, kind: type) -> Any:
    value = claims.get(name)
    if value is not None and (not isinstance(value, kind)
                              or (kind is not bool and isinstance(value, bool))):
        raise MalformedEvidence(f"NRAS claim {name} is not a {kind.__name__}",
                                found=_short(value))
    return value


def _chain(claims: Mapping[str, Any], name: str, validated: str) -> dict[str, Any] | None:
    """A certificate chain's state: 3.0 claims give an object, 2.0 a boolean."""
    flag = _opt(claims, validated, bool)
    value = claims.get(name)
    if value is None and flag is None:
        return None
    if value is not None and not isinstance(value, Mapping):
        raise MalformedEvidence(f"NRAS claim {name} is not an object", found=_short(value))
    details = value or {}
    status = _opt(details, "x-nvidia-cert-status", str)
    return {
        "validated": flag if flag is not None else status == "valid",
        "status": status,
        "ocsp_status": _opt(details, "x-nvidia-cert-ocsp-status", str),
        "expires": _opt(details, "x-nvidia-cert-expiration-date", str),
        "revocation_reason": _opt(details, "x-nvidia-cert-revocation-reason", str),
    }


def _rim(claims: Mapping[str, Any], kind: str, version: str | None) -> dict[str, Any]:
    prefix = f"x-nvidia-gpu-{kind}-rim"
    return {
        "version": version,
        "fetched": _opt(claims, f"{prefix}-fetched", bool),
        "schema_validated": _opt(claims, f"{prefix}-schema-validated", bool),
        "signature_verified": _opt(claims, f"{prefix}-signature-verified", bool),
        "version_match": _opt(claims, f"{prefix}-version-match", bool),
        "measurements_available": _opt(claims, f"{prefix}-measurements-available", bool),
        "cert_chain": _chain(claims, f"{prefix}-cert-chain", f"{prefix}-cert-validated"),
    }


def _mismatch(record: object) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise MalformedEvidence("NRAS mismatch record is not an object", found=_short(record))
    return {"index": record.get("index"), "source": record.get("measurementSource"),
            "expected": record.get("goldenValue"), "found": record.get("runtimeValue")}


def _measurements(claims: Mapping[str, Any], rim: Mapping[str, Any]) -> dict[str, Any]:
    """As the native verifier's: matched, mismatched indices (as NRAS numbers them) and the
    RIMs; NRAS reports no block count."""
    result = _opt(claims, "measres", str)
    records = [_mismatch(record)
               for record in _opt(claims, "x-nvidia-mismatch-measurement-records", list) or []]
    return {"count": None, "result": result,
            "matched": None if result is None else result == "success",
            "mismatched": [record["index"] for record in records],
            "mismatch_records": records, "rim": rim}


def _on_hold(reason: object) -> bool:
    return isinstance(reason, str) and reason.replace("_", "").lower() == "certificatehold"


def _revocation(chains: Mapping[str, dict[str, Any] | None]) -> str:
    """One state for the three chains, as the native verifier words it: revoked, on_hold,
    unknown, good, or not_checked when NRAS reports no OCSP status."""
    states = []
    for chain in chains.values():
        status = None if chain is None else chain["ocsp_status"]
        if status == "revoked" and _on_hold(chain and chain["revocation_reason"]):
            status = "on_hold"
        if status is not None:
            states.append(status)
    for state in ("revoked", "on_hold", "unknown"):
        if state in states:
            return state
    odd = [state for state in states if state != "good"]
    return odd[0] if odd else "good" if states else "not_checked"


def _arch(hwmodel: str | None) -> str | None:
    for prefix, arch in _ARCH_OF_MODEL:
        if hwmodel is not None and hwmodel.startswith(prefix):
            return arch
    return None


def _when(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _iso(value)


def map_gpu_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """One GPU's NRAS claims under ccattest's GPU claim names; the raw claims under "token".
    Wrongly typed claims are MalformedEvidence."""
    hwmodel = _opt(claims, "hwmodel", str)
    driver = _opt(claims, "x-nvidia-gpu-driver-version", str)
    vbios = _opt(claims, "x-nvidia-gpu-vbios-version", str)
    dbgstat = _opt(claims, "dbgstat", str)
    report_chain = _chain(claims, CHAIN_CLAIMS["attestation_report"],
                          "x-nvidia-gpu-attestation-report-cert-chain-validated")
    rim = {"driver": _rim(claims, "driver", driver), "vbios": _rim(claims, "vbios", vbios)}
    chains = {"attestation_report": report_chain, "driver_rim": rim["driver"]["cert_chain"],
              "vbios_rim": rim["vbios"]["cert_chain"]}
    return {
        "arch": _arch(hwmodel),
        "hwmodel": hwmodel,
        "ueid": _opt(claims, "ueid", str),
        "oemid": _opt(claims, "oemid", str),
        "nonce": _nonce_claim(claims, "GPU token"),
        "nonce_match": _opt(claims, "x-nvidia-gpu-attestation-report-nonce-match", bool),
        "arch_check": _opt(claims, "x-nvidia-gpu-arch-check", bool),
        "driver_version": driver,
        "vbios_version": vbios,
        "fwid": None,  # NRAS says whether the FWIDs matched, not what they are
        "fwid_match": _opt(claims, "x-nvidia-gpu-attestation-report-cert-chain-fwid-match",
                           bool),
        "chip_sku": None,
        "project": None,
        "project_sku": None,
        "report": {
            "parsed": _opt(claims, "x-nvidia-gpu-attestation-report-parsed", bool),
            "signature_verified": _opt(claims,
                                       "x-nvidia-gpu-attestation-report-signature-verified",
                                       bool),
            "cert_chain": report_chain,
        },
        "measurements": _measurements(claims, rim),
        "rim": rim,
        "vbios_index_no_conflict": _opt(claims, "x-nvidia-gpu-vbios-index-no-conflict", bool),
        "revocation": _revocation(chains),
        "ocsp": {name: None if chain is None else chain["ocsp_status"]
                 for name, chain in chains.items()},
        "secure_boot": _opt(claims, "secboot", bool),
        "debug_status": dbgstat,
        "debug": None if dbgstat is None else dbgstat != "disabled",
        "feature_flag": None,
        "ppcie": None,
        "devtools": None,
        "warning": _opt(claims, "x-nvidia-attestation-warning", str),
        "issuer": _opt(claims, "iss", str),
        "issued_at": _when(claims, "iat"),
        "expires_at": _when(claims, "exp"),
        "token": dict(claims),
    }


def gpu_failures(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """Which of one GPU's NRAS checks did not pass, in words (empty: all passed)."""
    failures = [f"{name} is {_short(claims[name])}" for name in CHECK_CLAIMS
                if name in claims and claims[name] is not True]
    measres = claims.get("measres")
    if measres is not None and measres != "success":
        failures.append(f"measres is {_short(measres)}")
    records = claims.get("x-nvidia-mismatch-measurement-records")
    for record in records if isinstance(records, list) else []:
        item = _mismatch(record)
        failures.append(f"measurement {item['index']} ({item['source']}) does not match: "
                        f"found {_short(item['found'])}, expected {_short(item['expected'])}")
    for name in CHAIN_CLAIMS.values():
        chain = claims.get(name)
        if isinstance(chain, Mapping):
            failures.extend(_chain_failures(name, chain))
    dbgstat = claims.get("dbgstat")
    if dbgstat is not None and dbgstat != "disabled":
        failures.append(f"dbgstat is {_short(dbgstat)}")
    return tuple(failures)


def _chain_failures(name: str, chain: Mapping[str, Any]) -> list[str]:
    failures = []
    status = chain.get("x-nvidia-cert-status")
    if status is not None and status != "valid":
        failures.append(f"{name} status is {_short(status)}")
    ocsp = chain.get("x-nvidia-cert-ocsp-status")
    if ocsp is not None and ocsp != "good":
        reason = chain.get("x-nvidia-cert-revocation-reason")
        failures.append(f"{name} OCSP status is {_short(ocsp)}"
                        + (f" ({_short(reason)})" if reason is not None else ""))
    return failures


# --- verification ------------------------------------------------------------------------------

@dataclass(frozen=True)
class NrasResult:
    """A verified NRAS answer. `overall_result` False is a failed attestation that NRAS
    reported and we verified, with `errors` saying per GPU what failed."""

    overall_result: bool
    overall_claims: Mapping[str, Any]
    gpu_claims: Mapping[str, Mapping[str, Any]]  # raw, verified, keyed "GPU-0", ...
    mapped: Mapping[str, Mapping[str, Any]]  # ccattest's names, same keys
    errors: Mapping[str, tuple[str, ...]]  # per GPU: the NRAS checks that did not pass
    details: Mapping[str, Any]  # nonce, kids, issuer, header, claims version, warnings

    @property
    def gpus(self) -> tuple[str, ...]:
        return tuple(self.gpu_claims)


def load_keys(jwks: Mapping[str, Any] | KeySet | bytes | str | Path) -> KeySet:
    """The JWKS the caller trusts, checked: a mapping, JSON text, a file, or a KeySet."""
    if isinstance(jwks, KeySet):
        return jwks
    if isinstance(jwks, Path):
        return KeySet(load_jwks(jwks))
    if isinstance(jwks, str | bytes | bytearray):
        if len(jwks) > MAX_RESPONSE_BYTES:
            raise ConfigError("JWKS is too large", expected=f"at most {MAX_RESPONSE_BYTES} bytes")
        try:
            jwks = json.loads(jwks)
        except (ValueError, RecursionError) as exc:
            raise ConfigError("JWKS is not valid JSON", found=_short(str(exc), 120)) from None
    if not isinstance(jwks, Mapping):
        raise ConfigError("malformed JWKS", expected='an object with a "keys" list',
                          found=type(jwks).__name__)
    return KeySet(jwks)


def _check_settings(nonce: object, leeway: object) -> None:
    if nonce is not None and (not isinstance(nonce, bytes | bytearray) or not nonce):
        raise ConfigError("expected nonce must be non-empty bytes", found=_short(nonce))
    if not isinstance(leeway, timedelta) or leeway < timedelta(0):
        raise ConfigError("leeway must be a non-negative timedelta", found=_short(leeway))


def verify_nras(result: str | bytes | Sequence[Any],
                jwks: Mapping[str, Any] | KeySet | bytes | str | Path, *, at: datetime,
                nonce: bytes | None = None, header_result: str | bytes | None = None,
                issuer: str | None = None, leeway: timedelta = timedelta(0)) -> NrasResult:
    """Verify an NRAS detached EAT (JSON text or the parsed list) against `jwks`, as of `at`.

    `nonce` is the nonce sent to NRAS (its eat_nonce must be its hex); `header_result` the
    x-nvidia-overall-att-result header of the HTTP answer, which must agree with the token;
    `issuer`, when given, the `iss` every token must carry."""
    at = require_aware(at, "at")
    _check_settings(nonce, leeway)
    header = parse_header_result(header_result)
    keys = load_keys(jwks)
    eat = parse_detached_eat(result)
    overall = _verify_token(eat.overall, "overall token", keys, at, issuer, leeway)
    gpus = {name: _verify_token(token, f"{name} token", keys, at, issuer, leeway)
            for name, token in eat.gpus.items()}
    check_submods(overall.claims, eat)
    found_nonce = _check_nonce(overall.claims, gpus, nonce)
    verdict = _overall_result(overall.claims)
    if header is not None and header != verdict:
        raise VerificationFailed(f"NRAS {RESULT_HEADER} header and overall token disagree",
                                 expected=f"header {str(verdict).lower()}",
                                 found=f"header {str(header).lower()}")
    mapped = {name: map_gpu_claims(verified.claims) for name, verified in gpus.items()}
    errors = {name: gpu_failures(verified.claims) for name, verified in gpus.items()}
    details = {
        "nonce": found_nonce,
        "nonce_checked": nonce is not None,
        "header_result": header,
        "kids": sorted({overall.kid, *(verified.kid for verified in gpus.values())}),
        "issuer": overall.claims.get("iss"),
        "version": overall.claims.get("x-nvidia-ver"),
        "warnings": {name: claims["warning"] for name, claims in mapped.items()
                     if claims["warning"] is not None},
    }
    return NrasResult(overall_result=verdict, overall_claims=overall.claims,
                      gpu_claims={name: verified.claims for name, verified in gpus.items()},
                      mapped=mapped, errors=errors, details=details)


def nras_evidence(eat: str | bytes, header_result: str | None = None,
                  attester: str | None = None) -> Evidence:
    """Evidence for NrasVerifier: the detached EAT as the report and, when known, the HTTP
    header as an (unsigned) endorsement, which the verifier checks against the token."""
    report = eat.encode("utf-8") if isinstance(eat, str) else bytes(eat)
    endorsements = {} if header_result is None else {RESULT_HEADER: header_result.encode()}
    return Evidence(platform=PLATFORM, report=report, endorsements=endorsements,
                    attester=attester)


class NrasVerifier:
    """Verifies NRAS results carried as evidence.report (the detached EAT JSON text); the
    expected report_data is the nonce that was sent to NRAS."""

    platform: ClassVar[str] = PLATFORM

    def __init__(self, jwks: Mapping[str, Any] | KeySet | bytes | str | Path, *,
                 issuer: str | None = None, leeway: timedelta = timedelta(0),
                 allow_unbound: bool = False) -> None:
        """`allow_unbound` lets verify(report_data=None) through, claimed as binding
        "not_checked": a result that answers no challenge of ours may be a replay."""
        self._keys = load_keys(jwks)
        _check_settings(None, leeway)
        self.issuer = issuer
        self.leeway = leeway
        self.allow_unbound = allow_unbound

    def verify_result(self, result: str | bytes | Sequence[Any], *, at: datetime,
                      nonce: bytes | None = None,
                      header_result: str | bytes | None = None) -> NrasResult:
        return verify_nras(result, self._keys, at=at, nonce=nonce, header_result=header_result,
                           issuer=self.issuer, leeway=self.leeway)

    def verify(self, evidence: Evidence, *, report_data: bytes | None, at: datetime,
               allow_unbound: bool | None = None) -> VerifiedClaims:
        if evidence.platform != PLATFORM:
            raise MalformedEvidence("evidence is for another platform", expected=PLATFORM,
                                    found=evidence.platform)
        unbound = self.allow_unbound if allow_unbound is None else allow_unbound
        if report_data is None and not unbound:
            raise ConfigError("no expected nonce given",
                              hint="pass the nonce sent to NRAS as report_data, or "
                                   "allow_unbound=True to accept a result that answers none")
        outcome = self.verify_result(evidence.report, at=at, nonce=report_data,
                                     header_result=evidence.endorsements.get(RESULT_HEADER))
        valid_until, source = earliest((
            ("NRAS overall token exp", expiry(outcome.overall_claims)),
            *((f"NRAS {name} token exp", expiry(claims))
              for name, claims in outcome.gpu_claims.items())))
        return VerifiedClaims(platform=PLATFORM, claims=verified_claims(outcome, at),
                              checks=_checks(outcome, self.issuer), attester=None,
                              collateral={"jwks_kids": list(outcome.details["kids"]),
                                          "issuer": outcome.details["issuer"]},
                              valid_until=valid_until, valid_until_source=source)


def verified_claims(outcome: NrasResult, at: datetime) -> dict[str, Any]:
    """The claims NrasVerifier vouches for: NRAS's verdict and, under "gpus", a list of the
    mapped claims per GPU in index order (each with its NRAS name under "device"), the shape
    the nvgpu policy appraises GPU by GPU."""
    overall = outcome.overall_claims
    return {
        "overall_result": outcome.overall_result,
        "gpu_count": len(outcome.mapped),
        "gpus": [{"device": name, **claims} for name, claims in outcome.mapped.items()],
        "errors": {name: list(errors) for name, errors in outcome.errors.items()},
        "warnings": dict(outcome.details["warnings"]),
        "nonce": outcome.details["nonce"],
        "binding": "nonce" if outcome.details["nonce_checked"] else "not_checked",
        "header_result": outcome.details["header_result"],
        "issuer": outcome.details["issuer"],
        "version": outcome.details["version"],
        "issued_at": _when(overall, "iat"),
        "expires_at": _when(overall, "exp"),
        "verified_at": at.isoformat(),
        "token": dict(overall),
    }


def _checks(outcome: NrasResult, issuer: str | None) -> tuple[Reason, ...]:
    details = outcome.details
    count = len(outcome.gpu_claims)
    checks = [
        Reason("algorithm", True, f"{count + 1} {ALGORITHM} tokens, keys chosen by kid "
                                  f"({', '.join(details['kids'])}) from the configured JWKS"),
        Reason("signature", True, "every token signature verifies"),
        Reason("freshness", True, "exp, iat and nbf hold at the given time for every token"),
        Reason("submods", True, f"the overall token's SHA-256 digests cover exactly the "
                                f"{count} GPU token(s)"),
    ]
    if issuer is not None:
        checks.append(Reason("issuer", True, f"issuer is {issuer}"))
    checks.append(Reason("binding", details["nonce_checked"],
                         "eat_nonce equals the expected nonce" if details["nonce_checked"]
                         else "nonce not checked (allow_unbound): the result answers nothing "
                              "of ours"))
    if details["header_result"] is not None:
        checks.append(Reason("header", True, f"the {RESULT_HEADER} header agrees with the "
                                             "overall token"))
    failed = "; ".join(f"{name}: {', '.join(errors)}" for name, errors in outcome.errors.items()
                       if errors)
    checks.append(Reason("nras_result", outcome.overall_result,
                         "NRAS attested every GPU" if outcome.overall_result
                         else "NRAS reports a failed attestation",
                         expected="true", found=str(outcome.overall_result).lower()
                         + (f" ({failed})" if failed else "")))
    return tuple(checks)


# --- the NRAS client -------------------------------------------------------------------------

def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_DELAY)


@dataclass(frozen=True)
class _Answer:
    body: bytes | None
    headers: httpx.Headers | None
    failure: str = ""
    delay: float | None = None
    retry: bool = True


def _check_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError("NRAS URL does not parse", found=_short(str(exc), 120)) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("NRAS URL must be http(s)", expected=f"e.g. {NRAS_URL}",
                          found=_short(base_url))
    return str(base_url).rstrip("/")


def _nonce_hex(nonce: bytes | str) -> str:
    if isinstance(nonce, str):
        if not _HEX.fullmatch(nonce):
            raise ConfigError("NRAS nonce is not hex", found=_short(nonce))
        nonce = bytes.fromhex(nonce)
    if not isinstance(nonce, bytes | bytearray) or len(nonce) != NONCE_BYTES:
        raise ConfigError("NRAS nonce has the wrong length", expected=f"{NONCE_BYTES} bytes",
                          found=_short(nonce))
    return bytes(nonce).hex()


def _arch_name(arch: str) -> str:
    name = arch.upper() if isinstance(arch, str) else arch
    if name not in ARCHITECTURES:
        raise ConfigError("unknown GPU architecture for NRAS", expected=", ".join(ARCHITECTURES),
                          found=_short(arch))
    return name


def _evidence_items(evidence_list: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if (isinstance(evidence_list, str | bytes) or not isinstance(evidence_list, Sequence)
            or not 1 <= len(evidence_list) <= MAX_GPUS):
        raise ConfigError(f"NRAS evidence list must hold 1 to {MAX_GPUS} items",
                          found=_short(evidence_list))
    items = []
    for position, item in enumerate(evidence_list):
        if not isinstance(item, Mapping) or not all(
                isinstance(item.get(name), str) and item.get(name)
                for name in ("evidence", "certificate")):
            raise ConfigError(f"NRAS evidence item {position} is malformed",
                              expected='{"evidence": base64, "certificate": base64}',
                              found=_short(item))
        items.append(dict(item))
    return items


class NrasClient:
    """Ask NRAS to attest GPU evidence, and fetch its JWKS (cached for `jwks_ttl` seconds).

    `retries` is the number of tries after the first, for 429, 5xx and connection errors;
    the n-th retry waits backoff * 2**n seconds (at most MAX_DELAY) unless the server says
    how long with Retry-After. Responses over MAX_RESPONSE_BYTES are refused. Every failure
    is CollateralUnavailable (the service could not be used) or ConfigError (bad arguments).
    Use as a context manager, or call close()."""

    def __init__(self, base_url: str = NRAS_URL, *, timeout: float = 30.0, retries: int = 2,
                 backoff: float = 0.5, jwks_ttl: float = 3600.0,
                 headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = _check_base_url(base_url)
        numbers = (timeout, backoff, jwks_ttl)
        if (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
                or not all(isinstance(n, int | float) and n >= 0 for n in numbers)
                or timeout <= 0):
            raise ConfigError("bad NRAS client settings",
                              expected="retries >= 0, backoff >= 0, jwks_ttl >= 0, timeout > 0",
                              found=f"retries {retries!r}, backoff {backoff!r}, "
                                    f"jwks_ttl {jwks_ttl!r}, timeout {timeout!r}")
        self.retries, self.backoff, self.jwks_ttl = retries, backoff, jwks_ttl
        self._sleep, self._clock = sleep, clock
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport,
                                  follow_redirects=False,
                                  headers={"User-Agent": "ccattest-nras", **(headers or {})})
        self._jwks: tuple[float, dict[str, Any]] | None = None

    def __enter__(self) -> NrasClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def attest(self, evidence_list: Sequence[Mapping[str, Any]], nonce: bytes | str,
               arch: str, *, claims_version: str | None = "3.0") -> tuple[str, str | None]:
        """(the detached EAT text, the x-nvidia-overall-att-result header or None) for
        `evidence_list` (items {"evidence": base64 report, "certificate": base64 PEM chain}).
        Nothing is verified here: pass both to verify_nras or NrasVerifier."""
        request: dict[str, Any] = {"nonce": _nonce_hex(nonce), "arch": _arch_name(arch),
                                   "evidence_list": _evidence_items(evidence_list)}
        if claims_version is not None:
            request["claims_version"] = claims_version
        body, headers = self._call("POST", ATTEST_PATH, json.dumps(request).encode())
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise CollateralUnavailable("NRAS answered with a body that is not UTF-8 text",
                                        expected="the detached EAT JSON") from None
        return text, headers.get(RESULT_HEADER)

    def jwks(self, *, refresh: bool = False) -> dict[str, Any]:
        """NRAS's JWKS, checked, from the cache while younger than jwks_ttl seconds."""
        now = self._clock()
        if not refresh and self._jwks is not None and now - self._jwks[0] < self.jwks_ttl:
            return self._jwks[1]
        body, _ = self._call("GET", JWKS_PATH, None)
        try:
            data = json.loads(body)
            KeySet(data)
        except (ValueError, RecursionError, ConfigError) as exc:
            found = exc.message if isinstance(exc, ConfigError) else _short(str(exc), 120)
            raise CollateralUnavailable("NRAS served an unusable JWKS",
                                        expected="a JWK Set of public keys",
                                        found=found) from None
        self._jwks = (now, data)
        return data

    # --- internals ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: bytes | None) -> tuple[bytes, httpx.Headers]:
        url = self.base_url + path
        failures: list[str] = []
        for attempt in range(self.retries + 1):
            answer = self._try(method, url, body)
            if answer.body is not None and answer.headers is not None:
                return answer.body, answer.headers
            failures.append(answer.failure)
            if not answer.retry:
                raise CollateralUnavailable(f"NRAS refused {method} {url}", expected="HTTP 200",
                                            found=answer.failure)
            if attempt < self.retries:
                delay = answer.delay
                self._sleep(delay if delay is not None
                            else min(self.backoff * 2 ** attempt, MAX_DELAY))
        raise CollateralUnavailable(f"NRAS did not answer {method} {url} after "
                                    f"{self.retries + 1} tries", expected="HTTP 200",
                                    found="; ".join(failures))

    def _try(self, method: str, url: str, body: bytes | None) -> _Answer:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            with self._http.stream(method, url, content=body, headers=headers) as response:
                return self._answer(response)
        except httpx.TimeoutException as exc:
            return _Answer(None, None, f"timeout ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return _Answer(None, None, f"connection error ({type(exc).__name__})")

    def _answer(self, response: httpx.Response) -> _Answer:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                return _Answer(None, None, f"response larger than {MAX_RESPONSE_BYTES} bytes",
                               retry=False)
        status = response.status_code
        if status == 200:
            return _Answer(bytes(body), response.headers)
        failure = f"HTTP {status}" + (f": {_short(bytes(body[:200]))}" if body else "")
        if status in _RETRYABLE:
            return _Answer(None, None, failure, _retry_after(response.headers.get("Retry-After")))
        return _Answer(None, None, failure, retry=False)


__all__ = [
    "ALGORITHM",
    "ATTEST_PATH",
    "CHAIN_CLAIMS",
    "CHECK_CLAIMS",
    "JWKS_PATH",
    "LOCAL_VERIFIER_ISSUER",
    "MAX_GPUS",
    "NRAS_URL",
    "PLATFORM",
    "RESULT_CLAIM",
    "RESULT_HEADER",
    "DetachedEat",
    "NrasClient",
    "NrasResult",
    "NrasVerifier",
    "check_submods",
    "gpu_failures",
    "gpu_order",
    "load_keys",
    "map_gpu_claims",
    "nras_evidence",
    "parse_detached_eat",
    "parse_header_result",
    "verified_claims",
    "verify_nras",
]
