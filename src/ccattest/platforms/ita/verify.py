"""The Intel Trust Authority verifier: JWKS x5c chain to a configured root, PS384 token
signature, times, report_data binding, and the token's TDX claims under ccattest's names.

Trust: ccattest pins no ITA root. The only ITA chain in the public vectors ends at a
"Development Amber Root CA" of a pre-production instance, which must not be trusted by
default; callers configure the root they trust (`roots=`, CLI `--root`).

Binding: ITA hashes the verifier nonce (`verifier_nonce.val || verifier_nonce.iat`) and the
attester's user data into the quote's report_data (SHA-512 for TDX; SHA-256, zero-padded
to 64 bytes, for SGX) and echoes the user data as `attester_held_data`. Our report_data is
bound when either the quote's report_data is exactly ours, or the held data is exactly ours
and the quote's report_data is that hash of it (recomputed here, not taken on trust). The
SGX rule is confirmed by the real sample; the TDX rule and the TDX claim names follow Intel's
client libraries and are exercised with synthetic tokens only (no real TDX token is public
in the vectors).

Returns claims, never judges them: which TCB status or measurements are acceptable is the
policy's business. Every rejection is a typed CCAttestError.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ...errors import ConfigError, MalformedEvidence, StaleEvidence, VerificationFailed
from ...evidence import Evidence
from ...jws import (
    check_audience,
    check_token_times,
    date_claim,
    expiry,
    parse_header,
    short,
    token_text,
)
from ...result import Reason
from ...timeutil import require_aware
from ..base import VerifiedClaims
from ..tdx.abi import decode_td_attributes
from . import JWS_ALGORITHM, PLATFORM

MIN_RSA_BITS = 2048
MAX_CHAIN_LENGTH = 8
MAX_JWKS_BYTES = 1 << 20
_CERT_HASHES = frozenset({"sha256", "sha384", "sha512"})
# What cryptography raises for certificates that do not parse; it parses many parts lazily.
_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                 x509.DuplicateExtension)
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_HEX = re.compile(r"[0-9a-fA-F]*")
_JWT_OPTIONS = {
    "verify_signature": True, "verify_exp": False, "verify_nbf": False, "verify_iat": False,
    "verify_aud": False, "verify_iss": False, "verify_sub": False, "verify_jti": False,
    "require": [],
}

# TDX claims in ITA tokens -> (ccattest TDX claim name, size in bytes).
TDX_HEX_CLAIMS: Mapping[str, tuple[str, int]] = {
    "tdx_tee_tcb_svn": ("tee_tcb_svn", 16),
    "tdx_mrseam": ("mr_seam", 48),
    "tdx_mrsignerseam": ("mr_signer_seam", 48),
    "tdx_mrtd": ("mr_td", 48),
    "tdx_mrconfigid": ("mr_config_id", 48),
    "tdx_mrowner": ("mr_owner", 48),
    "tdx_mrownerconfig": ("mr_owner_config", 48),
    "tdx_rtmr0": ("rtmr0", 48),
    "tdx_rtmr1": ("rtmr1", 48),
    "tdx_rtmr2": ("rtmr2", 48),
    "tdx_rtmr3": ("rtmr3", 48),
    "tdx_report_data": ("report_data", 64),
    "tdx_xfam": ("xfam", 8),
    "tdx_seam_attributes": ("seam_attributes", 8),
}
SGX_HEX_CLAIMS: Mapping[str, tuple[str, int]] = {
    "sgx_mrenclave": ("mr_enclave", 32),
    "sgx_mrsigner": ("mr_signer", 32),
    "sgx_report_data": ("report_data", 64),
}
SGX_INT_CLAIMS: Mapping[str, str] = {"sgx_isvprodid": "isv_prod_id", "sgx_isvsvn": "isv_svn"}
_DEBUG_FLAGS = ("tdx_is_debuggable", "tdx_td_attributes_debug")
# Claims the TDX verifier produces that an ITA token does not carry: present, and None.
_TDX_ABSENT = ("quote_version", "fmspc", "qe_tcb_status", "collateral_expired")


# --- certificates ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Cert:
    """What verification needs from one certificate, extracted once per distinct DER."""

    certificate: x509.Certificate
    der: bytes
    subject: bytes  # DER names, compared byte for byte
    issuer: bytes
    name: str
    not_before: datetime
    not_after: datetime
    fingerprint: str
    public_key: Any
    spki: bytes
    basic_constraints: x509.BasicConstraints | None
    key_usage: x509.KeyUsage | None
    unknown_critical: tuple[str, ...]
    hash_name: str | None

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    @property
    def window(self) -> str:
        return f"{self.not_before.isoformat()} .. {self.not_after.isoformat()}"


def _extension(extensions: x509.Extensions, kind: type) -> Any:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _hash_name(certificate: x509.Certificate) -> str | None:
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return None if algorithm is None else algorithm.name


# Parsing and signatures are pure functions of the bytes, so they are cached (bounded);
# validity times are checked on every call.
@functools.lru_cache(maxsize=256)
def _parse_cert(der: bytes) -> _Cert:
    certificate = x509.load_der_x509_certificate(der)
    extensions = certificate.extensions
    public_key = certificate.public_key()
    return _Cert(
        certificate=certificate, der=der, subject=certificate.subject.public_bytes(),
        issuer=certificate.issuer.public_bytes(), name=certificate.subject.rfc4514_string(),
        not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(), public_key=public_key,
        spki=public_key.public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo),
        basic_constraints=_extension(extensions, x509.BasicConstraints),
        key_usage=_extension(extensions, x509.KeyUsage),
        unknown_critical=tuple(ext.oid.dotted_string for ext in extensions
                               if ext.critical and isinstance(ext.value,
                                                              x509.UnrecognizedExtension)),
        hash_name=_hash_name(certificate),
    )


@functools.lru_cache(maxsize=256)
def _signed_by(child_der: bytes, issuer_der: bytes) -> bool:
    """The issuer's key verifies the child's signature, with the padding (PKCS#1 v1.5 or
    PSS) and hash that the child's signature algorithm OID names."""
    child, issuer = _parse_cert(child_der), _parse_cert(issuer_der)
    try:
        child.certificate.verify_directly_issued_by(issuer.certificate)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _cert_of(certificate: x509.Certificate) -> _Cert:
    return _parse_cert(certificate.public_bytes(serialization.Encoding.DER))


def load_roots(source: bytes | Path) -> list[x509.Certificate]:
    """Trust roots from PEM (one or more certificates) or DER bytes, or a file of either."""
    data = _read(source, "ITA root") if isinstance(source, Path) else bytes(source)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except _PARSE_ERRORS as exc:
        raise ConfigError("ITA root does not parse", expected="PEM or DER certificates",
                          found=short(str(exc), 120)) from None


def _configured_roots(roots: Sequence[x509.Certificate] | None) -> tuple[_Cert, ...]:
    if roots is None:
        raise ConfigError("no Intel Trust Authority root configured",
                          expected="roots=[certificate, ...]",
                          hint="ccattest pins no ITA root; pass the root you trust "
                               "(CLI: --root PEM)")
    if isinstance(roots, str | bytes | x509.Certificate) or not isinstance(roots, Sequence):
        raise ConfigError("ITA roots must be a sequence of certificates",
                          found=type(roots).__name__)
    configured = tuple(_configured_root(root) for root in roots)
    if not configured:
        raise ConfigError("no Intel Trust Authority root configured", expected="one or more",
                          found="an empty sequence")
    return configured


def _configured_root(root: object) -> _Cert:
    if not isinstance(root, x509.Certificate):
        raise ConfigError("an ITA root is not a certificate", expected="x509.Certificate",
                          found=type(root).__name__, hint="use load_roots() for PEM or DER")
    try:
        cert = _cert_of(root)
    except _PARSE_ERRORS as exc:
        raise ConfigError("an ITA root does not parse", found=short(str(exc), 120)) from None
    constraints = cert.basic_constraints
    if constraints is None or not constraints.ca:
        raise ConfigError("an ITA root must be a CA certificate", expected="CA:TRUE",
                          found=cert.name)
    return cert


# --- JWKS --------------------------------------------------------------------------------------

def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}",
                          found=exc.strerror or type(exc).__name__) from None
    if len(data) > MAX_JWKS_BYTES:
        raise ConfigError(f"{what} {path} is too large",
                          expected=f"at most {MAX_JWKS_BYTES} bytes")
    return data


def load_ita_jwks(jwks: Mapping[str, Any] | bytes | Path) -> dict[str, Mapping[str, Any]]:
    """kid -> JWK of an ITA JWKS (a mapping, JSON bytes or a file). Only the shape is
    checked here; each key's chain is checked when a token names it."""
    if isinstance(jwks, Path):
        jwks = _read(jwks, "JWKS")
    if isinstance(jwks, bytes | bytearray):
        jwks = _json_jwks(bytes(jwks))
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise ConfigError("malformed JWKS", expected='an object with a "keys" list',
                          found=short(jwks))
    index: dict[str, Mapping[str, Any]] = {}
    for position, jwk in enumerate(jwks["keys"]):
        kid = _jwk_kid(jwk, position)
        if kid is None:
            continue  # valid but unaddressable: ITA tokens always name their key
        if kid in index:
            raise ConfigError("JWKS has duplicate kid", expected="unique kids", found=kid)
        index[kid] = jwk
    if not index:
        raise ConfigError("JWKS holds no key with a kid", expected="at least one key")
    return index


def _json_jwks(data: bytes) -> Any:
    if len(data) > MAX_JWKS_BYTES:
        raise ConfigError("JWKS is too large", expected=f"at most {MAX_JWKS_BYTES} bytes")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ConfigError("JWKS is not valid JSON", found=short(str(exc), 120)) from None


def _jwk_kid(jwk: object, position: int) -> str | None:
    where = f"JWKS key {position}"
    if not isinstance(jwk, Mapping):
        raise ConfigError(f"malformed {where}", expected="a JSON object", found=short(jwk))
    if "d" in jwk:
        raise ConfigError(f"{where} contains private key material", expected="public keys only",
                          found='a "d" member')
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ConfigError(f"{where} has a non-string kid", found=short(kid))
    return kid


def _kid(kid: str) -> str:
    """A kid for messages: ITA's are 96 hex digits."""
    return kid if len(kid) <= 24 else kid[:16] + "..."


def _check_jwk(jwk: Mapping[str, Any], kid: str) -> None:
    if jwk.get("kty") != "RSA":
        raise VerificationFailed(f"JWKS key {_kid(kid)} cannot verify {JWS_ALGORITHM}",
                                 expected="kty RSA", found=short(jwk.get("kty")))
    if "alg" in jwk and jwk["alg"] != JWS_ALGORITHM:
        raise VerificationFailed(f"JWKS key {_kid(kid)} is restricted to another algorithm",
                                 expected=JWS_ALGORITHM, found=short(jwk["alg"]))
    if "use" in jwk and jwk["use"] != "sig":
        raise VerificationFailed(f"JWKS key {_kid(kid)} is not a signature key",
                                 expected="use sig", found=short(jwk["use"]))
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise VerificationFailed(f"JWKS key {_kid(kid)} may not verify",
                                 expected='key_ops with "verify"', found=short(key_ops))


def _jwk_int(jwk: Mapping[str, Any], member: str, kid: str) -> int:
    value = jwk.get(member)
    if not isinstance(value, str) or not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise VerificationFailed(f"JWKS key {_kid(kid)} has a malformed {member!r}",
                                 expected="unpadded base64url", found=short(value))
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


# --- the x5c chain -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Link:
    cert: _Cert
    label: str  # e.g. "leaf certificate (x5c[0])": what an error names


@dataclass(frozen=True)
class _Chain:
    links: tuple[_Link, ...]  # leaf first; the last is the configured root
    anchor_in_x5c: bool

    @property
    def leaf(self) -> _Link:
        return self.links[0]

    @property
    def root(self) -> _Link:
        return self.links[-1]


def _role(index: int, count: int, cert: _Cert | None) -> str:
    if index == 0:
        return "leaf"
    if cert is not None:
        return "root" if cert.self_signed else "intermediate"
    return "root" if index == count - 1 and count >= 3 else "intermediate"


def _label(index: int, count: int, cert: _Cert | None = None) -> str:
    return f"{_role(index, count, cert)} certificate (x5c[{index}])"


def _x5c(jwk: Mapping[str, Any], kid: str) -> list[_Link]:
    entries = jwk.get("x5c")
    if not isinstance(entries, list) or not entries:
        raise VerificationFailed(f"JWKS key {_kid(kid)} carries no certificate chain",
                                 expected="a non-empty x5c list", found=short(entries))
    if len(entries) > MAX_CHAIN_LENGTH:
        raise VerificationFailed(f"JWKS key {_kid(kid)} has too long a certificate chain",
                                 expected=f"at most {MAX_CHAIN_LENGTH}", found=len(entries))
    links = []
    for index, entry in enumerate(entries):
        cert = _x5c_entry(entry, _label(index, len(entries)))
        links.append(_Link(cert, _label(index, len(entries), cert)))
    return links


def _x5c_entry(entry: object, label: str) -> _Cert:
    # RFC 7517 4.7: standard (not URL-safe) base64 of the DER certificate.
    if not isinstance(entry, str):
        raise VerificationFailed(f"{label} is not a base64 string", found=type(entry).__name__)
    try:
        der = base64.b64decode(entry, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed(f"{label} is not base64", found=short(entry)) from None
    try:
        return _parse_cert(der)
    except _PARSE_ERRORS as exc:
        raise VerificationFailed(f"{label} does not parse", found=short(str(exc), 120)) from None


def _build_chain(links: list[_Link], roots: tuple[_Cert, ...], at: datetime) -> _Chain:
    for child, parent in itertools.pairwise(links):
        _check_issued(child, parent)
    anchor, in_x5c = _anchor(links[-1], roots)
    if in_x5c:
        chain = _Chain((*links[:-1], _Link(anchor, links[-1].label)), anchor_in_x5c=True)
    else:
        label = f"configured root certificate ({anchor.name})"
        chain = _Chain((*links, _Link(anchor, label)), anchor_in_x5c=False)
    _check_certificates(chain, at)
    return chain


def _check_issued(child: _Link, parent: _Link) -> None:
    if child.cert.issuer != parent.cert.subject:
        raise VerificationFailed(f"{child.label} names another issuer than the {parent.label}",
                                 expected=parent.cert.name,
                                 found=child.cert.certificate.issuer.rfc4514_string())
    if not _signed_by(child.cert.der, parent.cert.der):
        raise VerificationFailed(f"{child.label} signature does not verify with the key of the "
                                 f"{parent.label}",
                                 expected=f"a signature by {parent.cert.fingerprint[:16]}...",
                                 found=f"{child.cert.name} ({child.cert.fingerprint[:16]}...)")


def _anchor(top: _Link, roots: tuple[_Cert, ...]) -> tuple[_Cert, bool]:
    """The configured root that ends the chain, and whether x5c carried it itself. A
    self-signed certificate in x5c is only accepted as one of the configured roots."""
    fingerprints = ", ".join(root.fingerprint[:16] + "..." for root in roots)
    if top.cert.self_signed:
        for root in roots:
            if root.der == top.cert.der or (root.subject, root.spki) == (top.cert.subject,
                                                                          top.cert.spki):
                return root, True
        raise VerificationFailed(f"{top.label} is not a configured Intel Trust Authority root",
                                 expected=f"one of {fingerprints}",
                                 found=f"{top.cert.name} ({top.cert.fingerprint[:16]}...)")
    for root in roots:
        if root.subject == top.cert.issuer and _signed_by(top.cert.der, root.der):
            return root, False
    raise VerificationFailed(f"{top.label} was not issued by a configured root",
                             expected=f"a signature by one of {fingerprints}",
                             found=f"issuer {top.cert.certificate.issuer.rfc4514_string()}")


def _check_certificates(chain: _Chain, at: datetime) -> None:
    for depth, link in enumerate(chain.links):
        _check_validity(link, at)
        if link.cert.unknown_critical:
            raise VerificationFailed(f"{link.label} has critical extensions ccattest does not "
                                     "understand", found=", ".join(link.cert.unknown_critical))
        if depth == 0:
            _check_leaf(link)
        else:
            _check_ca(link, intermediates_below=depth - 1)
    for link in chain.links[:-1]:  # every signature that was verified above
        if link.cert.hash_name not in _CERT_HASHES:
            raise VerificationFailed(f"{link.label} is signed with a hash ccattest does not "
                                     "accept", expected=", ".join(sorted(_CERT_HASHES)),
                                     found=link.cert.hash_name)


def _check_validity(link: _Link, at: datetime) -> None:
    if not link.cert.not_before <= at <= link.cert.not_after:
        raise VerificationFailed(f"{link.label} is not valid at the verification time",
                                 expected=link.cert.window, found=at.isoformat())


def _check_leaf(link: _Link) -> None:
    constraints, usage = link.cert.basic_constraints, link.cert.key_usage
    if constraints is not None and constraints.ca:
        raise VerificationFailed(f"{link.label} is a CA certificate", expected="CA:FALSE")
    if usage is not None and not usage.digital_signature:
        raise VerificationFailed(f"{link.label} may not sign", expected="digitalSignature")


def _check_ca(link: _Link, intermediates_below: int) -> None:
    constraints, usage = link.cert.basic_constraints, link.cert.key_usage
    if constraints is None or not constraints.ca:
        raise VerificationFailed(f"{link.label} is not a CA certificate", expected="CA:TRUE")
    if usage is not None and not usage.key_cert_sign:
        raise VerificationFailed(f"{link.label} may not sign certificates",
                                 expected="keyCertSign")
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        raise VerificationFailed(f"{link.label} path length constraint is exceeded",
                                 expected=f"at most {constraints.path_length} intermediates",
                                 found=intermediates_below)


def _check_key(jwk: Mapping[str, Any], kid: str, leaf: _Link) -> rsa.RSAPublicKey:
    key = leaf.cert.public_key
    if not isinstance(key, rsa.RSAPublicKey):
        raise VerificationFailed(f"{leaf.label} does not hold an RSA key",
                                 expected=f"RSA for {JWS_ALGORITHM}", found=type(key).__name__)
    if key.key_size < MIN_RSA_BITS:
        raise VerificationFailed(f"{leaf.label} key is too short",
                                 expected=f"at least {MIN_RSA_BITS} bits", found=key.key_size)
    numbers = key.public_numbers()
    found = (_jwk_int(jwk, "n", kid), _jwk_int(jwk, "e", kid))
    if found != (numbers.n, numbers.e):
        raise VerificationFailed(f"JWKS key {_kid(kid)} is not the key of the {leaf.label}",
                                 expected=f"n {numbers.n:x}"[:26] + "...",
                                 found=f"n {found[0]:x}"[:26] + "...")
    thumbprint = jwk.get("x5t#S256")
    if thumbprint is not None and thumbprint != _b64url(hashlib.sha256(leaf.cert.der).digest()):
        raise VerificationFailed(f"JWKS key {_kid(kid)} x5t#S256 does not name the "
                                 f"{leaf.label}", found=short(thumbprint))
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- the token -------------------------------------------------------------------------------

def _select_kid(header: Mapping[str, Any], index: Mapping[str, Mapping[str, Any]]) -> str:
    """The kid to verify with. Keys come from the configured JWKS only: header jku, jwk and
    x5c members are never followed."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise VerificationFailed("token is unsigned or names no algorithm",
                                 expected=JWS_ALGORITHM, found=short(alg))
    if alg != JWS_ALGORITHM:
        # HS* would be keyed with a public key; RS*/ES* are not what ITA signs with.
        raise VerificationFailed("token algorithm is not accepted", expected=JWS_ALGORITHM,
                                 found=short(alg))
    if "crit" in header:
        raise VerificationFailed("token requires header extensions ccattest does not implement",
                                 expected="no crit header", found=short(header["crit"]))
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise VerificationFailed("token header names no key", expected="a kid string",
                                 found=short(kid))
    if kid not in index:
        raise VerificationFailed("token signed by a key not in the JWKS",
                                 expected="a kid in the JWKS", found=short(kid))
    return kid


def _decode(token: str, key: rsa.RSAPublicKey, kid: str) -> dict[str, Any]:
    try:
        return jwt.decode(token, key=key, algorithms=[JWS_ALGORITHM], options=_JWT_OPTIONS)
    except jwt.InvalidSignatureError:
        raise VerificationFailed("token signature does not verify",
                                 expected=f"a {JWS_ALGORITHM} signature by JWKS key {_kid(kid)}",
                                 found="a signature that does not match") from None
    except jwt.DecodeError as exc:
        raise MalformedEvidence("token does not decode", found=short(str(exc), 120)) from None
    except jwt.PyJWTError as exc:
        raise VerificationFailed("token rejected",
                                 found=short(str(exc) or type(exc).__name__, 120)) from None


def _check_issuer_audience(claims: Mapping[str, Any], issuer: str | None,
                           audience: str | None) -> None:
    if issuer is not None and claims.get("iss") != issuer:
        raise VerificationFailed("token is from another issuer", expected=issuer,
                                 found=short(claims.get("iss")))
    check_audience(claims, audience)


# --- claims inside the token ----------------------------------------------------------------

def _section(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """Newer tokens nest the TDX claims under "tdx"; older ones keep them at the top."""
    nested = claims.get("tdx")
    return nested if isinstance(nested, Mapping) else claims


def _lookup(claims: Mapping[str, Any], name: str) -> Any:
    section = _section(claims)
    return section[name] if name in section else claims.get(name)


def _std_b64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedEvidence(f"token claim {name} is not a base64 string",
                                found=type(value).__name__)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvidence(f"token claim {name} is not base64", found=short(value)) from None


def attester_type(claims: Mapping[str, Any]) -> str | None:
    """"TDX", "SGX", ... as the token states it; a nested "tdx" section implies TDX."""
    value = _lookup(claims, "attester_type")
    if value is None and _section(claims) is not claims:
        return "TDX"
    if value is not None and not isinstance(value, str):
        raise MalformedEvidence("token claim attester_type is not a string", found=short(value))
    return value


def verifier_nonce(claims: Mapping[str, Any]) -> tuple[bytes, bytes] | None:
    """(val, iat) of the ITA verifier nonce the token answers, decoded; None if absent."""
    nonce = _lookup(claims, "verifier_nonce")
    if nonce is None:
        return None
    if not isinstance(nonce, Mapping):
        raise MalformedEvidence("token claim verifier_nonce is not an object",
                                found=short(nonce))
    return (_std_b64(nonce.get("val"), "verifier_nonce.val"),
            _std_b64(nonce.get("iat"), "verifier_nonce.iat"))


def held_data(claims: Mapping[str, Any]) -> bytes | None:
    """The attester's user data as ITA echoes it (`attester_held_data`), decoded."""
    value = _lookup(claims, "attester_held_data")
    return None if value is None else _std_b64(value, "attester_held_data")


def _hex_claim(section: Mapping[str, Any], name: str, size: int) -> str | None:
    value = section.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise MalformedEvidence(f"token claim {name} is not {size} bytes of hex",
                                found=short(value))
    return value.lower()


def quote_report_data(claims: Mapping[str, Any]) -> bytes | None:
    """The report_data of the quote ITA appraised (tdx_report_data or sgx_report_data)."""
    section = _section(claims)
    for name in ("tdx_report_data", "sgx_report_data"):
        value = _hex_claim(section, name, 64)
        if value is not None:
            return bytes.fromhex(value)
    return None


def expected_quote_report_data(claims: Mapping[str, Any]) -> bytes | None:
    """What the quote's report_data must be if it binds the held data and verifier nonce:
    SHA-512 (TDX) or zero-padded SHA-256 (SGX) of nonce val || nonce iat || held data.
    None when the token holds no user data or its attester type has no known rule."""
    data = held_data(claims)
    kind = attester_type(claims)
    if data is None or kind not in ("TDX", "SGX"):
        return None
    nonce = verifier_nonce(claims)
    message = (b"".join(nonce) if nonce else b"") + data
    if kind == "TDX":
        return hashlib.sha512(message).digest()
    return hashlib.sha256(message).digest() + bytes(32)


def _binding(claims: Mapping[str, Any], report_data: bytes | None, allow_unbound: bool) -> str:
    if report_data is None:
        if not allow_unbound:
            raise ConfigError("no expected report_data given",
                              hint="pass report_data, or allow_unbound=True to accept a token "
                                   "that binds nothing of ours")
        return "not_checked"
    if not isinstance(report_data, bytes | bytearray) or not report_data:
        raise ConfigError("expected report_data must be non-empty bytes",
                          found=type(report_data).__name__)
    quoted = quote_report_data(claims)
    if quoted is None:
        raise VerificationFailed("token carries no quote report_data",
                                 expected="tdx_report_data or sgx_report_data")
    if hmac.compare_digest(quoted, bytes(report_data)):
        return "report_data"
    data = held_data(claims)
    if data is None or not hmac.compare_digest(data, bytes(report_data)):
        raise VerificationFailed("token does not bind the expected report_data",
                                 expected=bytes(report_data).hex(),
                                 found=f"report_data {quoted.hex()}, held data "
                                       f"{None if data is None else short(data.hex())}",
                                 hint="wrong nonce, wrong identity, or a replayed token")
    expected = expected_quote_report_data(claims)
    if expected is None or not hmac.compare_digest(expected, quoted):
        raise VerificationFailed("the quote's report_data does not bind the token's held data",
                                 expected=None if expected is None else expected.hex(),
                                 found=quoted.hex())
    return "user_data"


def _check_nonce(claims: Mapping[str, Any], nonce: bytes | None) -> None:
    if nonce is None:
        return
    found = verifier_nonce(claims)
    if found is None or not hmac.compare_digest(found[0], bytes(nonce)):
        raise StaleEvidence("token does not answer our verifier nonce",
                            expected=short(bytes(nonce)),
                            found=None if found is None else short(found[0]))


# --- mapping onto ccattest's claim names ------------------------------------------------------

def _td_attributes(section: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = _hex_claim(section, "tdx_td_attributes", 8)
    flags = [section.get(name) for name in _DEBUG_FLAGS]
    for name, flag in zip(_DEBUG_FLAGS, flags, strict=True):
        if flag is not None and not isinstance(flag, bool):
            raise MalformedEvidence(f"token claim {name} is not a boolean", found=short(flag))
    if raw is None and all(flag is None for flag in flags):
        return None
    # The same decoding as a quote's, so the tdx policy section reads both alike.
    decoded = decode_td_attributes(bytes.fromhex(raw) if raw is not None else bytes(8))
    if raw is None:
        decoded["raw"] = None
    # Any of the token's statements that the TD is debuggable makes it debuggable.
    decoded["debug"] = decoded["debug"] or any(flag is True for flag in flags)
    return decoded


def _string_claim(claims: Mapping[str, Any], name: str) -> str | None:
    value = _lookup(claims, name)
    if value is not None and not isinstance(value, str):
        raise MalformedEvidence(f"token claim {name} is not a string", found=short(value))
    return value


def _advisories(claims: Mapping[str, Any]) -> list[str]:
    value = _lookup(claims, "attester_advisory_ids")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedEvidence("token claim attester_advisory_ids is not a list of strings",
                                found=short(value))
    return list(value)


def _tdx_claims(section: Mapping[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = dict.fromkeys(_TDX_ABSENT)
    for source, (name, size) in TDX_HEX_CLAIMS.items():
        claims[name] = _hex_claim(section, source, size)
    claims["td_attributes"] = _td_attributes(section)
    return claims


def _sgx_claims(section: Mapping[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for source, (name, size) in SGX_HEX_CLAIMS.items():
        claims[name] = _hex_claim(section, source, size)
    for source, name in SGX_INT_CLAIMS.items():
        value = section.get(source)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise MalformedEvidence(f"token claim {source} is not an integer",
                                    found=short(value))
        claims[name] = value
    debug = section.get("sgx_is_debuggable")
    if debug is not None and not isinstance(debug, bool):
        raise MalformedEvidence("token claim sgx_is_debuggable is not a boolean",
                                found=short(debug))
    claims["debug"] = debug
    return claims


def map_claims(claims: Mapping[str, Any], *, binding: str, at: datetime) -> dict[str, Any]:
    """The token's claims under ccattest's names (the TDX verifier's, for TDX tokens), with
    the raw token claims kept under "token"."""
    kind = attester_type(claims)
    section = _section(claims)
    mapped: dict[str, Any] = {"attester_type": kind}
    if kind == "TDX":
        mapped.update(_tdx_claims(section))
    elif kind == "SGX":
        mapped.update(_sgx_claims(section))
    else:
        report_data = quote_report_data(claims)
        mapped["report_data"] = None if report_data is None else report_data.hex()
    mapped.update({
        "tcb_status": _string_claim(claims, "attester_tcb_status"),
        "tcb_date": _string_claim(claims, "attester_tcb_date"),
        "advisory_ids": _advisories(claims),
        "binding": binding,
        "issuer": claims.get("iss"),
        "issued_at": date_claim(claims, "iat"),
        "expires_at": date_claim(claims, "exp"),
        "verified_at": at.isoformat(),
        "token": dict(claims),
    })
    return mapped


# --- verification ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Outcome:
    claims: dict[str, Any]
    chain: _Chain
    kid: str


def _verify(token: str, index: Mapping[str, Mapping[str, Any]], roots: tuple[_Cert, ...], *,
            at: datetime, report_data: bytes | None, nonce: bytes | None,
            allow_unbound: bool, audience: str | None, issuer: str | None,
            leeway: timedelta) -> _Outcome:
    at = require_aware(at, "verification time")
    if leeway < timedelta(0):
        raise ConfigError("leeway must not be negative", found=str(leeway))
    kid = _select_kid(parse_header(token), index)
    jwk = index[kid]
    _check_jwk(jwk, kid)
    chain = _build_chain(_x5c(jwk, kid), roots, at)
    key = _check_key(jwk, kid, chain.leaf)
    claims = _decode(token, key, kid)
    check_token_times(claims, at, leeway)
    _check_issuer_audience(claims, issuer, audience)
    _check_nonce(claims, nonce)
    binding = _binding(claims, report_data, allow_unbound)
    return _Outcome(map_claims(claims, binding=binding, at=at), chain, kid)


def verify_ita_token(token: str, jwks: Mapping[str, Any] | bytes | Path, *, at: datetime,
                     roots: Sequence[x509.Certificate] | None, nonce: bytes | None = None,
                     report_data: bytes | None = None, allow_unbound: bool = False,
                     audience: str | None = None, issuer: str | None = None,
                     leeway: timedelta = timedelta(0)) -> dict[str, Any]:
    """The mapped claims of an ITA `token` whose signing key in `jwks` chains to one of
    `roots`, judged as of `at`. `nonce` is the ITA verifier nonce value the relying party
    obtained; `report_data` what the token must bind (see the module docstring)."""
    return _verify(token, load_ita_jwks(jwks), _configured_roots(roots), at=at,
                   report_data=report_data, nonce=nonce, allow_unbound=allow_unbound,
                   audience=audience, issuer=issuer, leeway=leeway).claims


class ItaVerifier:
    """Verifies ITA tokens carried as evidence.report (the JWT text)."""

    platform: ClassVar[str] = PLATFORM

    def __init__(self, jwks: Mapping[str, Any] | bytes | Path, *,
                 roots: Sequence[x509.Certificate] | None = None, audience: str | None = None,
                 issuer: str | None = None, leeway: timedelta = timedelta(0),
                 allow_unbound: bool = False) -> None:
        """`allow_unbound` is the default for verify calls that do not say (the pipeline's
        never do): True lets report_data=None through, claimed as binding "not_checked"."""
        self._index = load_ita_jwks(jwks)
        self._roots = _configured_roots(roots)
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.allow_unbound = allow_unbound

    def verify_token(self, token: str, *, at: datetime, report_data: bytes | None = None,
                     nonce: bytes | None = None,
                     allow_unbound: bool | None = None) -> dict[str, Any]:
        return self._outcome(token, at, report_data, nonce, allow_unbound).claims

    def verify(self, evidence: Evidence, *, report_data: bytes | None, at: datetime,
               nonce: bytes | None = None, allow_unbound: bool | None = None) -> VerifiedClaims:
        if evidence.platform != PLATFORM:
            raise MalformedEvidence("evidence is for another platform", expected=PLATFORM,
                                    found=evidence.platform)
        outcome = self._outcome(token_text(evidence.report, "ITA"), at, report_data, nonce,
                                allow_unbound)
        return VerifiedClaims(platform=PLATFORM, claims=outcome.claims,
                              checks=_checks(outcome, self.issuer, self.audience),
                              attester=None, collateral=_collateral(outcome),
                              valid_until=expiry(outcome.claims["token"]),
                              valid_until_source="ITA token exp")

    def _outcome(self, token: str, at: datetime, report_data: bytes | None,
                 nonce: bytes | None, allow_unbound: bool | None) -> _Outcome:
        unbound = self.allow_unbound if allow_unbound is None else allow_unbound
        return _verify(token, self._index, self._roots, at=at, report_data=report_data,
                       nonce=nonce, allow_unbound=unbound, audience=self.audience,
                       issuer=self.issuer, leeway=self.leeway)


_BINDING_NOTES = {
    "report_data": "the quote's report_data equals the expected report_data",
    "user_data": "the token's held data equals the expected report_data, and the quote's "
                 "report_data is its hash with the verifier nonce",
    "not_checked": "report_data not checked (allow_unbound): the token binds nothing of ours",
}


def _checks(outcome: _Outcome, issuer: str | None, audience: str | None) -> tuple[Reason, ...]:
    chain = outcome.chain
    path = " <- ".join(link.cert.name.split(",")[0] for link in chain.links)
    binding = outcome.claims["binding"]
    checks = [
        Reason("algorithm", True, f"{JWS_ALGORITHM} token; key {outcome.kid[:16]}... "
                                  "chosen by kid from the configured JWKS"),
        Reason("chain", True, f"{path} (configured root), each valid at the given time"),
        Reason("key", True, "the JWK is the leaf certificate's RSA key"),
        Reason("signature", True, f"{JWS_ALGORITHM} token signature verifies"),
        Reason("freshness", True, "exp, iat and nbf hold at the given time"),
    ]
    if issuer is not None:
        checks.append(Reason("issuer", True, f"issuer is {issuer}"))
    if audience is not None:
        checks.append(Reason("audience", True, f"audience includes {audience}"))
    checks.append(Reason("binding", binding != "not_checked", _BINDING_NOTES[binding]))
    return tuple(checks)


def _collateral(outcome: _Outcome) -> dict[str, Any]:
    def describe(link: _Link, source: str) -> dict[str, str]:
        return {"source": source, "subject": link.cert.name, "sha256": link.cert.fingerprint,
                "not_after": link.cert.not_after.isoformat()}

    chain = outcome.chain
    return {
        "jwks_kid": outcome.kid,
        "signing_certificate": describe(chain.leaf, "jwks:x5c"),
        "intermediates": [describe(link, "jwks:x5c") for link in chain.links[1:-1]],
        "root": describe(chain.root, "configured"),
    }


__all__ = [
    "MAX_CHAIN_LENGTH",
    "MIN_RSA_BITS",
    "TDX_HEX_CLAIMS",
    "ItaVerifier",
    "attester_type",
    "expected_quote_report_data",
    "held_data",
    "load_ita_jwks",
    "load_roots",
    "map_claims",
    "quote_report_data",
    "verifier_nonce",
    "verify_ita_token",
]
