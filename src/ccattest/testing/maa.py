"""A synthetic Microsoft Azure Attestation instance: RS256 tokens from a key generated at run
time, its JWKS as MAA publishes it (kid, kty, x5c with a self-signed certificate), and
token claims that describe a synthetic SNP report from ccattest.testing.snp.

Nothing here is Microsoft's: the verifier accepts these tokens only because tests allow-list
the fixture's instance and give it the fixture's JWKS (offline or from a local server).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..errors import MalformedEvidence, StaleEvidence, VerificationFailed
from ..evidence import Evidence, bind
from ..platforms.azure.maa import CERTS_PATH, JWS_ALGORITHM, PLATFORM, MaaVerifier
from ..platforms.snp.abi import SnpReport
from .cases import FIXED_NOW, BrokenCase

INSTANCE = "https://ccattest-test.weu.attest.azure.net"
TEST_ATTESTER = "aci-test-group"
TOKEN_LIFETIME = timedelta(hours=8)  # what MAA issues


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(dict(value), separators=(",", ":")).encode())


@dataclasses.dataclass(frozen=True)
class MaaKeys:
    """The instance's signing key and a rogue key; generate once per test session."""

    signing: rsa.RSAPrivateKey
    rogue: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, bits: int = 2048) -> MaaKeys:
        return cls(*(rsa.generate_private_key(public_exponent=65537, key_size=bits)
                     for _ in range(2)))


def signing_certificate(key: rsa.RSAPrivateKey, now: datetime, *,
                        days: int = 365) -> x509.Certificate:
    """A self-signed certificate for the signing key, as MAA puts in x5c."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, INSTANCE.split("://")[1])])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))


def jwk_for(key: rsa.RSAPrivateKey, kid: str, certificate: x509.Certificate | None = None,
            *, numbers: bool = False) -> dict[str, Any]:
    """A JWKS entry: MAA's shape (kid, kty, x5c), with n/e as well when `numbers`."""
    jwk: dict[str, Any] = {"kid": kid, "kty": "RSA"}
    if certificate is not None:
        jwk["x5c"] = [base64.b64encode(certificate.public_bytes(
            serialization.Encoding.DER)).decode()]
    if numbers or certificate is None:
        public = key.public_key().public_numbers()
        jwk["n"] = _b64url(public.n.to_bytes((public.n.bit_length() + 7) // 8, "big"))
        jwk["e"] = _b64url(public.e.to_bytes(3, "big"))
    return jwk


def snp_token_claims(report: SnpReport) -> dict[str, Any]:
    """The x-ms-sevsnpvm-* claims MAA issues for `report` (Milan/Genoa TCB layout)."""
    tcb = report.reported_tcb
    policy = report.policy
    return {
        "x-ms-sevsnpvm-authorkeydigest": report.author_key_digest.hex(),
        "x-ms-sevsnpvm-bootloader-svn": tcb & 0xFF,
        "x-ms-sevsnpvm-familyId": report.family_id.hex(),
        "x-ms-sevsnpvm-guestsvn": report.guest_svn,
        "x-ms-sevsnpvm-hostdata": report.host_data.hex(),
        "x-ms-sevsnpvm-idkeydigest": report.id_key_digest.hex(),
        "x-ms-sevsnpvm-imageId": report.image_id.hex(),
        "x-ms-sevsnpvm-is-debuggable": bool(policy >> 19 & 1),
        "x-ms-sevsnpvm-launchmeasurement": report.measurement.hex(),
        "x-ms-sevsnpvm-microcode-svn": tcb >> 56 & 0xFF,
        "x-ms-sevsnpvm-migration-allowed": bool(policy >> 18 & 1),
        "x-ms-sevsnpvm-reportdata": report.report_data.hex(),
        "x-ms-sevsnpvm-reportid": report.report_id.hex(),
        "x-ms-sevsnpvm-smt-allowed": bool(policy >> 16 & 1),
        "x-ms-sevsnpvm-snpfw-svn": tcb >> 48 & 0xFF,
        "x-ms-sevsnpvm-tee-svn": tcb >> 8 & 0xFF,
        "x-ms-sevsnpvm-vmpl": report.vmpl,
    }


def runtime_json(report_data: bytes) -> bytes:
    """Runtime data as the ACI attester sends it, written here independently of aci.py."""
    return b'{"nonce":"' + report_data.hex().encode() + b'"}'


def default_report(report_data: bytes, /, **changes: Any) -> SnpReport:
    """A plausible SNP report of a confidential container: report_data = SHA-256 of the
    runtime data, zero-padded; host_data = SHA-256 of a CCE policy."""
    fields: dict[str, Any] = {
        "guest_svn": 2, "policy": 0x3001F, "vmpl": 0,
        "reported_tcb": 0x7308_0000_0000_0003,  # Milan: bl 3, tee 0, snp 8, ucode 115
        "report_data": hashlib.sha256(runtime_json(report_data)).digest() + bytes(32),
        "measurement": hashlib.sha384(b"ccattest uvm").digest(),
        "host_data": hashlib.sha256(b"ccattest cce policy").digest(),
        "id_key_digest": hashlib.sha384(b"id key").digest(),
        "report_id": hashlib.sha256(b"report id").digest(),
        "family_id": b"\x01" + bytes(15), "image_id": b"\x02" + bytes(15),
    }
    fields.update(changes)
    return SnpReport(**fields)


@dataclasses.dataclass(frozen=True)
class MaaFixture:
    """One MAA instance and what it issues, pinned to `now`."""

    keys: MaaKeys
    certificate: x509.Certificate
    instance: str
    kid: str
    now: datetime

    @classmethod
    def create(cls, *, keys: MaaKeys | None = None, instance: str = INSTANCE,
               now: datetime = FIXED_NOW) -> MaaFixture:
        keys = keys or MaaKeys.generate()
        certificate = signing_certificate(keys.signing, now)
        kid = base64.b64encode(certificate.fingerprint(hashes.SHA256())).decode()
        return cls(keys, certificate, instance.rstrip("/"), kid, now)

    def at_instance(self, instance: str) -> MaaFixture:
        """The same keys serving another base URL (e.g. a local server)."""
        return dataclasses.replace(self, instance=instance.rstrip("/"))

    @property
    def jku(self) -> str:
        return self.instance + CERTS_PATH

    def jwks(self, *, numbers: bool = False) -> dict[str, Any]:
        return {"keys": [jwk_for(self.keys.signing, self.kid, self.certificate,
                                 numbers=numbers)]}

    def verifier(self, **kwargs: Any) -> MaaVerifier:
        kwargs.setdefault("jwks", self.jwks())
        return MaaVerifier(instances=[self.instance], **kwargs)

    def claims(self, report_data: bytes, *, report: SnpReport | None = None,
               **overrides: Any) -> dict[str, Any]:
        """What MAA says of an ACI container that sent `runtime_json(report_data)`."""
        iat = int(self.now.timestamp()) - 60
        claims: dict[str, Any] = {
            "exp": iat + int(TOKEN_LIFETIME.total_seconds()), "iat": iat, "nbf": iat,
            "iss": self.instance, "jti": hashlib.sha256(report_data).hexdigest(),
            "x-ms-attestation-type": "sevsnpvm",
            "x-ms-compliance-status": "azure-compliant-uvm",
            "x-ms-policy-hash": _b64url(hashlib.sha256(b"maa policy").digest()),
            "x-ms-runtime": {"nonce": report_data.hex()},
            "x-ms-ver": "1.0",
            **snp_token_claims(report or default_report(report_data)),
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: Mapping[str, Any], *, key: rsa.RSAPrivateKey | None = None,
             header: Mapping[str, Any] | None = None, algorithm: str = JWS_ALGORITHM) -> str:
        fields = {"jku": self.jku, "kid": self.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(dict(claims), key or self.keys.signing, algorithm=algorithm,
                          headers=fields)

    def token(self, report_data: bytes, **overrides: Any) -> str:
        return self.sign(self.claims(report_data, **overrides))

    def evidence(self, nonce: bytes | None = None) -> tuple[Evidence, bytes]:
        report_data = bind(nonce or b"maa-test-nonce-0123456789", TEST_ATTESTER)
        return Evidence(PLATFORM, self.token(report_data).encode()), report_data

    # --- forged tokens ------------------------------------------------------------------

    def unsigned(self, claims: Mapping[str, Any]) -> str:
        header = {"alg": "none", "jku": self.jku, "kid": self.kid}
        return f"{_segment(header)}.{_segment(claims)}."

    def hmac_with_public_key(self, claims: Mapping[str, Any]) -> str:
        """HS256 keyed with the instance's public key (PEM): the classic key confusion."""
        secret = self.keys.signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        signing_input = f"{_segment({'alg': 'HS256', 'jku': self.jku, 'kid': self.kid})}." \
                        f"{_segment(claims)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(mac)}"

    def broken_cases(self) -> list[BrokenCase]:
        report_data = bind(b"maa-test-nonce-0123456789", TEST_ATTESTER)
        claims = self.claims(report_data)
        late = self.now + TOKEN_LIFETIME + timedelta(minutes=1)
        early = self.now - timedelta(hours=1)
        cases: list[tuple[str, str, type, datetime]] = [
            ("alg_none", self.unsigned(claims), VerificationFailed, self.now),
            ("hmac_public_key", self.hmac_with_public_key(claims), VerificationFailed,
             self.now),
            ("rs384", self.sign(claims, algorithm="RS384"), VerificationFailed, self.now),
            ("unknown_kid", self.sign(claims, header={"kid": "other"}), VerificationFailed,
             self.now),
            ("foreign_jku", self.sign(claims, header={"jku": "https://evil.example/certs"}),
             VerificationFailed, self.now),
            ("no_jku", self.sign(claims, header={"jku": None}), VerificationFailed, self.now),
            ("rogue_key", self.sign(claims, key=self.keys.rogue), VerificationFailed,
             self.now),
            ("expired", self.sign(claims), StaleEvidence, late),
            ("not_yet_valid", self.sign(claims), StaleEvidence, early),
            ("wrong_issuer", self.sign({**claims, "iss": "https://other.attest.azure.net"}),
             VerificationFailed, self.now),
            ("no_exp", self.sign({k: v for k, v in claims.items() if k != "exp"}),
             VerificationFailed, self.now),
            ("wrong_nonce", self.token(bind(b"another-nonce-0123456789", TEST_ATTESTER)),
             VerificationFailed, self.now),
            ("bad_hex_claim", self.sign({**claims, "x-ms-sevsnpvm-hostdata": "zz"}),
             MalformedEvidence, self.now),
            ("runtime_not_object", self.sign({**claims, "x-ms-runtime": "nonce"}),
             MalformedEvidence, self.now),
        ]
        return [BrokenCase(name, Evidence(PLATFORM, token.encode()), report_data, at, error)
                for name, token, error, at in cases]


__all__ = [
    "INSTANCE",
    "TEST_ATTESTER",
    "MaaFixture",
    "MaaKeys",
    "default_report",
    "jwk_for",
    "runtime_json",
    "signing_certificate",
    "snp_token_claims",
]
