"""Attestation results as signed EAR tokens, the JWKS that verifies them, and verification.

Tokens follow IETF RATS EAR (draft-ietf-rats-ear, profile "tag:github.com,2023:veraison/ear"):
one `submods` entry per platform, each carrying the AR4SI status and trustworthiness vector.
A relying party that only speaks EAR can read them; ccattest adds two private claims per
submod (`ccattest.verified`, `ccattest.reasons`) so that failures stay explainable.

Verification is deliberately narrow: ES256/ES384 only, keys chosen by `kid` from a JWKS the
caller trusts, and time given by the caller (`at`) rather than read from the clock, so
replaying a decision later gives the same answer. Every rejection is a CCAttestError.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import __version__
from .errors import ConfigError, MalformedEvidence, StaleEvidence, VerificationFailed
from .jws import (
    MAX_TOKEN_LENGTH,
    b64url,
    check_audience,
    check_token_times,
    parse_header,
    short,
)
from .result import AttestationResult
from .timeutil import require_aware

EAR_PROFILE = "tag:github.com,2023:veraison/ear"

# alg -> (JWK crv, cryptography curve class, coordinate length in bytes)
_CURVES: dict[str, tuple[str, type[ec.EllipticCurve], int]] = {
    "ES256": ("P-256", ec.SECP256R1, 32),
    "ES384": ("P-384", ec.SECP384R1, 48),
}
_ACCEPTED_ALGS = ", ".join(_CURVES)






def _curve_for(alg: str) -> tuple[str, type[ec.EllipticCurve], int]:
    try:
        return _CURVES[alg]
    except KeyError:
        raise ConfigError(
            "unsupported signing algorithm", expected=_ACCEPTED_ALGS, found=short(alg)
        ) from None


class SigningKey:
    """An EC private key with the JOSE alg its curve implies and its RFC 7638 thumbprint.

    The kid is the thumbprint so that it is derived from the key itself: it cannot drift
    from the key it names, and two installations never invent colliding ids.
    """

    __slots__ = ("_alg", "_kid", "_private_key")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise ConfigError(
                "signing key is not an EC private key",
                expected="an EC P-256 or P-384 private key",
                found=type(private_key).__name__,
            )
        curve_name = private_key.curve.name
        for alg, (_, curve_type, _) in _CURVES.items():
            if isinstance(private_key.curve, curve_type):
                self._alg = alg
                break
        else:
            raise ConfigError(
                "unsupported EC curve for signing", expected="P-256 or P-384", found=curve_name
            )
        self._private_key = private_key
        self._kid = _thumbprint(self._members())

    @classmethod
    def generate(cls, alg: str = "ES256") -> SigningKey:
        _, curve_type, _ = _curve_for(alg)
        return cls(ec.generate_private_key(curve_type()))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(
                "signing key is not an unencrypted PEM private key",
                expected="PKCS8 or SEC1 PEM without a passphrase",
                found=str(exc) or type(exc).__name__,
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(
                "signing key is not an EC private key",
                expected="an EC P-256 or P-384 private key",
                found=type(key).__name__,
            )
        return cls(key)

    @property
    def alg(self) -> str:
        return self._alg

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return self._private_key

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._private_key.public_key()

    def to_pem(self) -> bytes:
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def _members(self) -> dict[str, str]:
        """The RFC 7638 required members of the public JWK."""
        crv, _, size = _CURVES[self._alg]
        numbers = self._private_key.public_key().public_numbers()
        return {
            "crv": crv,
            "kty": "EC",
            "x": b64url(numbers.x.to_bytes(size, "big")),
            "y": b64url(numbers.y.to_bytes(size, "big")),
        }

    def public_jwk(self) -> dict[str, str]:
        members = self._members()
        return {
            "kty": members["kty"],
            "crv": members["crv"],
            "x": members["x"],
            "y": members["y"],
            "kid": self._kid,
            "alg": self._alg,
            "use": "sig",
        }

    def __repr__(self) -> str:  # never show key material
        return f"SigningKey(alg={self._alg!r}, kid={self._kid!r})"


def _thumbprint(members: Mapping[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace."""
    canonical = json.dumps(dict(members), sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def load_or_create_signing_key(path: Path, alg: str = "ES256") -> SigningKey:
    """The key at `path`, created (mode 0600) on first use so a verifier keeps one identity."""
    _curve_for(alg)
    try:
        data: bytes | None = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        raise ConfigError(
            f"cannot read signing key {path}", found=exc.strerror or type(exc).__name__
        ) from None
    if data is None:
        key = SigningKey.generate(alg)
        try:
            _write_new_key(path, key.to_pem())
        except FileExistsError:
            # Another process created it between our read and our create: use theirs.
            return load_or_create_signing_key(path, alg)
        except OSError as exc:
            raise ConfigError(
                f"cannot write signing key {path}", found=exc.strerror or type(exc).__name__
            ) from None
        return key
    try:
        key = SigningKey.from_pem(data)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc.message} ({path})", expected=exc.expected, found=exc.found
        ) from None
    if key.alg != alg:
        raise ConfigError(
            f"signing key {path} does not match the requested algorithm",
            expected=alg,
            found=key.alg,
            hint="pass the key's algorithm or move the file aside to generate a new key",
        )
    return key


def _write_new_key(path: Path, pem: bytes) -> None:
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_EXCL: never clobber a key (or follow a planted symlink); 0600 from the first byte.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        with open(fd, "wb", closefd=True) as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def jwks(keys: Iterable[SigningKey]) -> dict[str, list[dict[str, str]]]:
    """The public half of `keys`, as a relying party fetches it (RFC 7517 JWK Set)."""
    return {"keys": [key.public_jwk() for key in keys]}


def load_jwks(path: Path) -> dict[str, Any]:
    """A JWKS from a JSON file, checked so that a bad file fails here, not at first use."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(
            f"cannot read JWKS {path}", found=exc.strerror or type(exc).__name__
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"JWKS {path} is not valid JSON", found=short(str(exc), 120)) from None
    _index_jwks(data)
    return data


def _index_jwks(jwks: object) -> dict[str, tuple[Mapping[str, Any], Any]]:
    """kid -> (JWK, loaded public key). Every key must load; kids must be unique."""
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise ConfigError(
            "malformed JWKS", expected='an object with a "keys" list', found=short(jwks)
        )
    if not jwks["keys"]:
        raise ConfigError("JWKS holds no keys", expected="at least one key", found="[]")
    index: dict[str, tuple[Mapping[str, Any], Any]] = {}
    for position, jwk in enumerate(jwks["keys"]):
        where = f"JWKS key {position}"
        if not isinstance(jwk, Mapping):
            raise ConfigError(f"malformed {where}", expected="a JSON object", found=short(jwk))
        if "d" in jwk:
            raise ConfigError(
                f"{where} contains private key material",
                expected="public keys only",
                found='a "d" member',
                hint="publish SigningKey.public_jwk(), never the private key",
            )
        try:
            loaded = jwt.PyJWK(dict(jwk)).key
        except Exception as exc:  # PyJWT raises several unrelated types on bad members
            raise ConfigError(
                f"{where} does not load", found=short(str(exc) or type(exc).__name__, 120)
            ) from None
        kid = jwk.get("kid")
        if kid is None:
            continue  # valid but unaddressable: our tokens always name their key
        if not isinstance(kid, str):
            raise ConfigError(f"{where} has a non-string kid", found=short(kid))
        if kid in index:
            raise ConfigError("JWKS has duplicate kid", expected="unique kids", found=kid)
        index[kid] = (jwk, loaded)
    return index


class KeySet:
    """A JWKS checked and loaded once, for relying parties that verify many tokens."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.index = _index_jwks(jwks)


def sign_results(
    results: Sequence[AttestationResult],
    key: SigningKey,
    *,
    issued_at: datetime,
    expires_at: datetime | None = None,
    nonce: bytes | None = None,
    audience: str | None = None,
    verifier_id: Mapping[str, str] | None = None,
    subject: str | None = None,
) -> str:
    """One EAR token for all `results`, so a relying party sees the whole appraisal at once.

    The token expires with the first of its results (each already bounded by the collateral
    it rested on), or earlier at `expires_at`: it must not vouch for a result past that
    result's own freshness, so a later `expires_at` is refused.
    """
    if not results:
        raise ConfigError("no attestation results to sign", expected="at least one result")
    require_aware(issued_at, "issued_at")
    submods: dict[str, dict[str, Any]] = {}
    for result in results:
        if result.platform in submods:
            raise ConfigError(
                "two results for the same platform",
                expected="one result per platform",
                found=result.platform,
                hint="EAR submods are keyed by platform",
            )
        require_aware(result.expires_at, f"expires_at of the {result.platform} result")
        submod: dict[str, Any] = {
            "ear.status": result.status.value,
            "ear.trustworthiness-vector": result.trust_vector.to_dict(),
        }
        if result.policy_id is not None:
            submod["ear.appraisal-policy-id"] = result.policy_id
        submod["ccattest.verified"] = result.verified
        submod["ccattest.reasons"] = [reason.to_dict() for reason in result.failures()]
        submods[result.platform] = submod

    first = min(results, key=lambda result: result.expires_at)
    if expires_at is None:
        expires_at = first.expires_at
    require_aware(expires_at, "expires_at")
    if expires_at > first.expires_at:
        raise ConfigError(
            "token would outlive its results",
            expected=f"expiry at or before {first.expires_at.isoformat()} (the "
            f"{first.platform} result's, set by {first.expiry_source or 'its appraisal'})",
            found=expires_at.isoformat(),
        )
    iat = math.floor(issued_at.timestamp())
    exp = math.floor(expires_at.timestamp())
    if exp <= iat:
        raise ConfigError(
            "token would be expired when issued",
            expected=f"expiry after {issued_at.isoformat()}",
            found=expires_at.isoformat(),
        )

    if verifier_id is None:
        verifier_id = {"developer": "ccattest", "build": f"ccattest {__version__}"}
    elif not all(isinstance(verifier_id.get(k), str) for k in ("developer", "build")):
        raise ConfigError(
            "EAR verifier-id needs developer and build",
            expected='{"developer": str, "build": str}',
            found=short(dict(verifier_id)),
        )
    if subject is None:
        attesters = {result.attester for result in results}
        if len(attesters) == 1:
            subject = attesters.pop()

    claims: dict[str, Any] = {"eat_profile": EAR_PROFILE, "iat": iat, "exp": exp}
    if nonce is not None:
        claims["eat_nonce"] = b64url(nonce)
    if audience is not None:
        claims["aud"] = audience
    if subject is not None:
        claims["sub"] = subject
    claims["ear.verifier-id"] = dict(verifier_id)
    claims["submods"] = submods
    return jwt.encode(
        claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"}
    )






def _select_key(
    header: Mapping[str, Any], index: Mapping[str, tuple[Mapping[str, Any], Any]]
) -> tuple[str, Any]:
    """The (alg, public key) to verify with, or why there is none we may use."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise VerificationFailed(
            "token is unsigned or names no algorithm", expected=_ACCEPTED_ALGS, found=short(alg)
        )
    if alg not in _CURVES:
        # HS* in particular: an HMAC keyed with our public key is forgeable by anyone.
        raise VerificationFailed(
            "token algorithm is not accepted", expected=_ACCEPTED_ALGS, found=short(alg)
        )
    if "crit" in header:
        raise VerificationFailed(
            "token requires header extensions ccattest does not implement",
            expected="no crit header",
            found=short(header["crit"]),
        )
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise VerificationFailed(
            "token header names no key", expected="a kid string", found=short(kid)
        )
    if kid not in index:
        raise VerificationFailed(
            "token signed by a key not in the JWKS",
            expected=f"one of {sorted(index)}" if len(index) <= 8 else "a kid in the JWKS",
            found=short(kid),
        )
    jwk, public_key = index[kid]
    crv = _CURVES[alg][0]
    if jwk.get("kty") != "EC" or jwk.get("crv") != crv:
        raise VerificationFailed(
            f"JWKS key {kid} cannot verify {alg}",
            expected=f"kty EC, crv {crv}",
            found=f"kty {short(jwk.get('kty'))}, crv {short(jwk.get('crv'))}",
        )
    if "alg" in jwk and jwk["alg"] != alg:
        raise VerificationFailed(
            f"JWKS key {kid} is restricted to another algorithm",
            expected=alg,
            found=short(jwk["alg"]),
        )
    if "use" in jwk and jwk["use"] != "sig":
        raise VerificationFailed(
            f"JWKS key {kid} is not a signature key",
            expected="use sig",
            found=short(jwk["use"]),
        )
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise VerificationFailed(
            f"JWKS key {kid} may not verify",
            expected='key_ops with "verify"',
            found=short(key_ops),
        )
    return alg, public_key








def signed_claims(token: str, jwks: Mapping[str, Any] | KeySet) -> dict[str, Any]:
    """The claims of a JWT whose signature verifies with a key in `jwks`; nothing else is
    judged (times, profile and audience are the caller's: receipts, for one, never expire).
    """
    index = jwks.index if isinstance(jwks, KeySet) else _index_jwks(jwks)
    header = parse_header(token)
    alg, public_key = _select_key(header, index)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=public_key,
            algorithms=[alg],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
                "require": [],
            },
        )
    except jwt.InvalidSignatureError:
        raise VerificationFailed(
            "token signature does not verify",
            expected=f"an {alg} signature by JWKS key {header['kid']}",
            found="a signature that does not match",
        ) from None
    except jwt.DecodeError as exc:
        raise MalformedEvidence("token does not decode", found=short(str(exc), 120)) from None
    except jwt.PyJWTError as exc:
        raise VerificationFailed(
            "token rejected", found=short(str(exc) or type(exc).__name__, 120)
        ) from None

    return claims


def verify_token(
    token: str,
    jwks: Mapping[str, Any] | KeySet,
    *,
    at: datetime,
    audience: str | None = None,
    nonce: bytes | None = None,
    leeway: timedelta = timedelta(seconds=0),
    subject: str | None = None,
) -> dict[str, Any]:
    """The claims of an EAR `token` signed by a key in `jwks`, judged as of `at`.

    `audience`, `nonce` and `subject` are checked only when given; a relying party that
    issued a challenge must pass it, or a replayed token from another session would be
    accepted, and one that asked about a site must pass its name as `subject`, or another
    site's token (relayed with our nonce) would be accepted for it.
    """
    require_aware(at, "at")
    if leeway < timedelta(0):
        raise ConfigError("leeway must not be negative", found=str(leeway))
    claims = signed_claims(token, jwks)
    profile = claims.get("eat_profile")
    if profile != EAR_PROFILE:
        raise VerificationFailed(
            "token is not an EAR", expected=f"eat_profile {EAR_PROFILE}", found=short(profile)
        )
    check_token_times(claims, at, leeway)
    check_audience(claims, audience)
    if subject is not None and claims.get("sub") != subject:
        raise VerificationFailed(
            "token is about another attester", expected=subject, found=short(claims.get("sub"))
        )
    if nonce is not None:
        expected_nonce = b64url(nonce)
        found_nonce = claims.get("eat_nonce")
        if not (
            found_nonce == expected_nonce
            or (isinstance(found_nonce, list) and expected_nonce in found_nonce)
        ):
            raise StaleEvidence(
                "token does not carry our nonce",
                expected=expected_nonce,
                found=short(found_nonce),
            )
    return claims


__all__ = [
    "EAR_PROFILE",
    "MAX_TOKEN_LENGTH",
    "KeySet",
    "SigningKey",
    "jwks",
    "load_jwks",
    "load_or_create_signing_key",
    "sign_results",
    "signed_claims",
    "verify_token",
]
