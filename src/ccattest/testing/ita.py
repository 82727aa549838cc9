"""Valid and broken Intel Trust Authority tokens from a test PKI generated at run time.

The test root is not Intel's: the verifier accepts it only because ItaFixture.verifier
passes it as `roots=[...]`. Keys are RSA-2048 for speed (ITA uses RSA-3072). Like ITA's,
the CA certificates are signed with PKCS#1 v1.5 SHA-512; the leaf with RSA-PSS SHA-384,
so both padding branches of the chain check are exercised. Tokens are PS384 with TDX
claims named as ITA names them, flat (token version 1) or nested under "tdx" (newer).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from ..errors import ConfigError, MalformedEvidence, StaleEvidence, VerificationFailed
from ..evidence import Evidence, bind
from ..platforms.ita import JWS_ALGORITHM, PLATFORM
from ..platforms.ita.verify import ItaVerifier
from .cases import FIXED_NOW, BrokenCase

ISSUER = "Intel Trust Authority"
TEST_ATTESTER = "ita-test-td"
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
LEAF_USAGE = x509.KeyUsage(digital_signature=True, content_commitment=False,
                           key_encipherment=False, data_encipherment=False, key_agreement=False,
                           key_cert_sign=False, crl_sign=False, encipher_only=False,
                           decipher_only=False)
CA_USAGE = x509.KeyUsage(digital_signature=False, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False)
# An OID under the documentation arc: no verifier understands it.
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
NONCE_VAL = base64.b64encode(hashlib.sha512(b"ita-test-nonce").digest())  # ITA's val is text
NONCE_IAT = b"2026-11-26 11:59:00 +0000 UTC"


@dataclasses.dataclass(frozen=True)
class ItaKeys:
    """The fixture's keys; generate once per test session, RSA is slow to make."""

    root: rsa.RSAPrivateKey
    intermediate: rsa.RSAPrivateKey
    leaf: rsa.RSAPrivateKey
    rogue: rsa.RSAPrivateKey  # signs what a forger would

    @classmethod
    def generate(cls, bits: int = 2048) -> ItaKeys:
        def make() -> rsa.RSAPrivateKey:
            return rsa.generate_private_key(public_exponent=65537, key_size=bits)

        return cls(make(), make(), make(), make())


# --- certificates ------------------------------------------------------------------------

def ita_name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ccattest test PKI"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


@dataclasses.dataclass(frozen=True)
class CertSpec:
    """One certificate to issue; the defaults give what ITA's chain looks like."""

    name: str
    ca: bool | None  # None: no BasicConstraints extension at all
    path_length: int | None = None
    usage: x509.KeyUsage | None = None
    not_before: timedelta = timedelta(days=-30)  # relative to the fixture's time
    not_after: timedelta = timedelta(days=365)
    hash_algorithm: hashes.HashAlgorithm = dataclasses.field(default_factory=hashes.SHA512)
    pss: bool = False
    unknown_critical: bool = False


def issue(spec: CertSpec, public_key: Any, issuer: x509.Name, issuer_key: Any,
          now: datetime) -> x509.Certificate:
    builder = (x509.CertificateBuilder()
               .subject_name(ita_name(spec.name)).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now + spec.not_before).not_valid_after(now + spec.not_after))
    if spec.ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=spec.ca, path_length=spec.path_length), critical=True)
    if spec.usage is not None:
        builder = builder.add_extension(spec.usage, critical=True)
    if spec.unknown_critical:
        builder = builder.add_extension(x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"),
                                        critical=True)
    return builder.sign(issuer_key, spec.hash_algorithm,
                        rsa_padding=PSS if spec.pss else None)


ROOT = CertSpec("Test ITA Root CA", ca=True, usage=CA_USAGE, not_after=timedelta(days=9000))
INTERMEDIATE = CertSpec("Test ITA Signing CA", ca=True, path_length=0, usage=CA_USAGE,
                        not_after=timedelta(days=4000))
LEAF = CertSpec("Test ITA Token Signing", ca=False, usage=LEAF_USAGE,
                hash_algorithm=hashes.SHA384(), pss=True)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def x5c(*certificates: x509.Certificate) -> list[str]:
    return [base64.b64encode(der(cert)).decode("ascii") for cert in certificates]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_int(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def compact(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes,
            signer: Callable[[bytes], bytes]) -> str:
    """A compact JWS with any header, for tokens PyJWT would refuse to make."""
    body = payload if isinstance(payload, bytes) else json.dumps(dict(payload)).encode()
    signing_input = f"{_b64url(json.dumps(dict(header)).encode())}.{_b64url(body)}"
    return f"{signing_input}.{_b64url(signer(signing_input.encode('ascii')))}"


# --- the fixture -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ItaBrokenCase(BrokenCase):
    """A broken case with what the verifier is configured with."""

    jwks: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    roots: tuple[x509.Certificate, ...] = ()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    nonce: bytes | None = None

    def run(self) -> None:
        verifier = ItaVerifier(self.jwks, roots=self.roots, **self.options)
        verifier.verify(self.evidence, report_data=self.report_data, at=self.at,
                        nonce=self.nonce)


class ItaFixture:
    """A test ITA: root -> signing CA -> token signing certificate, its JWKS, and tokens."""

    def __init__(self, keys: ItaKeys, now: datetime = FIXED_NOW) -> None:
        self.keys = keys
        self.now = now
        self.root = issue(ROOT, keys.root.public_key(), ita_name(ROOT.name), keys.root, now)
        self.intermediate = self.issue(INTERMEDIATE, keys.intermediate.public_key())
        self.leaf = self.issue(LEAF, keys.leaf.public_key(), issuer=self.intermediate,
                               issuer_key=keys.intermediate)
        self.kid = hashlib.sha384(der(self.leaf)).hexdigest()
        self.report_data = bind(hashlib.sha256(b"ita-test-challenge").digest(), TEST_ATTESTER)

    @classmethod
    def create(cls, keys: ItaKeys | None = None, now: datetime = FIXED_NOW) -> ItaFixture:
        return cls(keys or ItaKeys.generate(), now)

    # --- certificates and keys ---

    def issue(self, spec: CertSpec, public_key: Any, *, issuer: x509.Certificate | None = None,
              issuer_key: Any = None) -> x509.Certificate:
        """A certificate issued by the root (default) or by `issuer` with `issuer_key`."""
        parent = issuer or self.root
        key = issuer_key if issuer is not None else self.keys.root
        return issue(spec, public_key, parent.subject, key, self.now)

    def jwk(self, chain: Sequence[x509.Certificate] | None = None,
            key: rsa.RSAPublicKey | None = None, **members: Any) -> dict[str, Any]:
        """The JWK for the leaf with its x5c chain; a member set to None is left out."""
        chain = chain if chain is not None else (self.leaf, self.intermediate, self.root)
        numbers = (key or self.keys.leaf.public_key()).public_numbers()
        jwk: dict[str, Any] = {"alg": JWS_ALGORITHM, "e": _b64url_int(numbers.e),
                               "kid": self.kid, "kty": "RSA", "n": _b64url_int(numbers.n),
                               "x5c": x5c(*chain)}
        jwk.update(members)
        return {name: value for name, value in jwk.items() if value is not None}

    def jwks(self, *keys: Mapping[str, Any]) -> dict[str, Any]:
        return {"keys": [dict(key) for key in keys] or [self.jwk()]}

    # --- tokens ---

    def claims(self, report_data: bytes | None = None, *, mode: str = "user_data",
               nested: bool = False, **overrides: Any) -> dict[str, Any]:
        """TDX token claims binding `report_data` through the held data (mode "user_data")
        or directly as the quote's report_data (mode "report_data"). An override set to
        None removes the claim (from the TDX section when nested)."""
        report_data = self.report_data if report_data is None else report_data
        tdx = _tdx_section(report_data, mode)
        top: dict[str, Any] = {
            "verifier_nonce": {"val": base64.b64encode(NONCE_VAL).decode(),
                               "iat": base64.b64encode(NONCE_IAT).decode(),
                               "signature": base64.b64encode(b"not checked").decode()},
            "policy_ids_matched": [], "policy_ids_unmatched": [],
            "ver": "2.0.0" if nested else "1.0.0", "iss": ISSUER,
            "iat": int(self.now.timestamp()) - 60, "nbf": int(self.now.timestamp()) - 60,
            "exp": int(self.now.timestamp()) + 240, "jti": "ita-test-token",
        }
        if nested:
            claims = {**top, "tdx": tdx}
            section = tdx
        else:
            claims = {**tdx, **top}
            section = claims
        for name, value in overrides.items():
            target = section if name in section else claims
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
        return claims

    def token(self, claims: Mapping[str, Any] | None = None, *, key: Any = None,
              kid: str | None = None, algorithm: str = JWS_ALGORITHM,
              headers: Mapping[str, Any] | None = None) -> str:
        header = {"kid": kid or self.kid, "jku": "https://ita.test.invalid/certs",
                  **(headers or {})}
        return jwt.encode(dict(claims if claims is not None else self.claims()),
                          key or self.keys.leaf, algorithm=algorithm, headers=header)

    def evidence(self, token: str | None = None) -> Evidence:
        return Evidence(platform=PLATFORM, report=(token or self.token()).encode("ascii"),
                        attester=TEST_ATTESTER)

    def verifier(self, jwks: Mapping[str, Any] | None = None, **options: Any) -> ItaVerifier:
        return ItaVerifier(jwks or self.jwks(), roots=[self.root], **options)

    # --- broken variants ---

    def broken_cases(self) -> list[ItaBrokenCase]:
        return [*self._token_cases(), *self._claim_cases(), *self._jwk_cases(),
                *self._chain_cases()]

    def _case(self, name: str, error: type, token: str | bytes | None = None, *,
              jwks: Mapping[str, Any] | None = None, report_data: bytes | None = None,
              platform: str = PLATFORM, **extra: Any) -> ItaBrokenCase:
        report = token if isinstance(token, bytes) else (token or self.token()).encode()
        return ItaBrokenCase(
            name=name, error=error, at=self.now,
            evidence=Evidence(platform=platform, report=report),
            report_data=self.report_data if report_data is None else report_data,
            jwks=jwks or self.jwks(), roots=extra.pop("roots", (self.root,)), **extra)

    def signed(self, header: Mapping[str, Any], payload: Mapping[str, Any] | bytes) -> str:
        return compact(header, payload,
                       lambda data: self.keys.leaf.sign(data, PSS, hashes.SHA384()))

    def _token_cases(self) -> list[ItaBrokenCase]:
        claims, kid = self.claims(), self.kid
        public_pem = self.keys.leaf.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        hs384 = compact({"alg": "HS384", "kid": kid}, claims,
                        lambda data: hmac.new(public_pem, data, hashlib.sha384).digest())
        good = self.token()
        head, body, signature = good.split(".")
        forged_body = _b64url(json.dumps({**claims, "tdx_mrtd": "00" * 48}).encode())
        return [
            self._case("alg_none", VerificationFailed,
                       compact({"alg": "none", "kid": kid}, claims, lambda _: b"")),
            self._case("alg_hs384_with_public_key", VerificationFailed, hs384),
            self._case("alg_rs384", VerificationFailed, self.token(algorithm="RS384")),
            self._case("alg_es384", VerificationFailed,
                       self.token(algorithm="ES384", key=ec.generate_private_key(ec.SECP384R1()))),
            self._case("unknown_kid", VerificationFailed, self.token(kid="0" * 96)),
            self._case("no_kid", VerificationFailed,
                       self.signed({"alg": JWS_ALGORITHM}, claims)),
            self._case("crit_header", VerificationFailed,
                       self.token(headers={"crit": ["exp"], "exp": 1})),
            self._case("signed_by_rogue_key", VerificationFailed,
                       self.token(key=self.keys.rogue)),
            self._case("payload_tampered", VerificationFailed,
                       f"{head}.{forged_body}.{signature}"),
            self._case("signature_truncated", VerificationFailed,
                       f"{head}.{body}.{_b64url(_unb64url(signature)[:-3])}"),
            self._case("payload_not_an_object", MalformedEvidence,
                       self.signed({"alg": JWS_ALGORITHM, "kid": kid}, b"[1, 2]")),
            self._case("not_a_jwt", MalformedEvidence, b"not a token"),
            self._case("not_ascii", MalformedEvidence, b"\xff\xfe" + good.encode()),
            self._case("other_platform", MalformedEvidence, platform="tdx"),
        ]

    def _claim_cases(self) -> list[ItaBrokenCase]:
        now = int(self.now.timestamp())
        other = bind(hashlib.sha256(b"another challenge").digest(), TEST_ATTESTER)
        wrong_quote = "ab" * 64
        return [
            self._case("expired", StaleEvidence, self.token(self.claims(exp=now - 1))),
            self._case("iat_in_future", StaleEvidence, self.token(self.claims(iat=now + 60))),
            self._case("nbf_in_future", StaleEvidence, self.token(self.claims(nbf=now + 60))),
            self._case("no_exp", VerificationFailed, self.token(self.claims(exp=None))),
            self._case("exp_not_a_number", VerificationFailed,
                       self.token(self.claims(exp="tomorrow"))),
            self._case("other_report_data", VerificationFailed, report_data=other),
            self._case("other_report_data_direct", VerificationFailed,
                       self.token(self.claims(mode="report_data")), report_data=other),
            self._case("held_data_not_in_quote", VerificationFailed,
                       self.token(self.claims(tdx_report_data=wrong_quote))),
            self._case("nonce_not_in_quote_hash", VerificationFailed,
                       self.token(self.claims(verifier_nonce={"val": "AAAA", "iat": "AAAA"}))),
            self._case("no_quote_report_data", VerificationFailed,
                       self.token(self.claims(tdx_report_data=None))),
            self._case("mrtd_not_hex", MalformedEvidence,
                       self.token(self.claims(mode="report_data", tdx_mrtd="zz" * 48))),
            self._case("held_data_not_base64", MalformedEvidence,
                       self.token(self.claims(attester_held_data="%%%"))),
            self._case("debug_flag_not_bool", MalformedEvidence,
                       self.token(self.claims(mode="report_data", tdx_is_debuggable="no"))),
            self._case("other_issuer", VerificationFailed, self.token(self.claims(iss="evil")),
                       options={"issuer": ISSUER}),
            self._case("other_audience", VerificationFailed, options={"audience": "relying"}),
            self._case("other_verifier_nonce", StaleEvidence, nonce=b"another nonce"),
        ]

    def _jwk_cases(self) -> list[ItaBrokenCase]:
        leaf_der = base64.b64encode(der(self.leaf)).decode()
        corrupted = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()

        def broken_x5c(position: int) -> dict[str, Any]:
            entries = x5c(self.leaf, self.intermediate, self.root)
            entries[position] = corrupted
            return self.jwks(self.jwk(x5c=entries))

        return [
            self._case("jwk_kty_ec", VerificationFailed, jwks=self.jwks(self.jwk(kty="EC"))),
            self._case("jwk_alg_rs256", VerificationFailed,
                       jwks=self.jwks(self.jwk(alg="RS256"))),
            self._case("jwk_use_enc", VerificationFailed, jwks=self.jwks(self.jwk(use="enc"))),
            self._case("jwk_key_ops_sign_only", VerificationFailed,
                       jwks=self.jwks(self.jwk(key_ops=["sign"]))),
            self._case("jwk_n_of_another_key", VerificationFailed,
                       jwks=self.jwks(self.jwk(key=self.keys.rogue.public_key()))),
            self._case("jwk_n_malformed", VerificationFailed,
                       jwks=self.jwks(self.jwk(n="not+base64url"))),
            self._case("jwk_x5t_mismatch", VerificationFailed,
                       jwks=self.jwks(self.jwk(**{"x5t#S256": _b64url(bytes(32))}))),
            self._case("jwk_no_x5c", VerificationFailed, jwks=self.jwks(self.jwk(x5c=None))),
            self._case("jwk_x5c_too_long", VerificationFailed,
                       jwks=self.jwks(self.jwk(x5c=[leaf_der] * 9))),
            self._case("x5c_entry_not_string", VerificationFailed,
                       jwks=self.jwks(self.jwk(x5c=[7]))),
            self._case("x5c_entry_not_base64", VerificationFailed,
                       jwks=self.jwks(self.jwk(x5c=["%%%"]))),
            self._case("leaf_does_not_parse", VerificationFailed, jwks=broken_x5c(0)),
            self._case("intermediate_does_not_parse", VerificationFailed, jwks=broken_x5c(1)),
            self._case("root_does_not_parse", VerificationFailed, jwks=broken_x5c(2)),
        ]

    def _chain_cases(self) -> list[ItaBrokenCase]:
        keys, ica = self.keys, self.intermediate
        leaf_key = keys.leaf.public_key()

        def leaf_case(name: str, spec: CertSpec, *, key: Any = None,
                      issuer_key: Any = None) -> ItaBrokenCase:
            public = leaf_key if key is None else key.public_key()
            cert = self.issue(spec, public, issuer=ica,
                              issuer_key=issuer_key or keys.intermediate)
            rsa_key = public if isinstance(public, rsa.RSAPublicKey) else None
            jwk = self.jwk((cert, ica, self.root), key=rsa_key)
            return self._case(name, VerificationFailed, jwks=self.jwks(jwk))

        def ica_case(name: str, spec: CertSpec, *, issuer_key: Any = None,
                     root: x509.Certificate | None = None) -> ItaBrokenCase:
            cert = self.issue(spec, keys.intermediate.public_key(), issuer=root or self.root,
                              issuer_key=issuer_key or keys.root)
            return self._case(name, VerificationFailed,
                              jwks=self.jwks(self.jwk((self.leaf, cert, root or self.root))))

        rogue_root = issue(ROOT, keys.rogue.public_key(), ita_name(ROOT.name), keys.rogue,
                           self.now)
        return [
            leaf_case("leaf_signed_by_rogue", LEAF, issuer_key=keys.rogue),
            leaf_case("leaf_expired", dataclasses.replace(LEAF, not_after=timedelta(days=-1))),
            leaf_case("leaf_is_ca", dataclasses.replace(LEAF, ca=True)),
            leaf_case("leaf_may_not_sign", dataclasses.replace(LEAF, usage=CA_USAGE)),
            leaf_case("leaf_unknown_critical_extension",
                      dataclasses.replace(LEAF, unknown_critical=True)),
            leaf_case("leaf_signed_with_sha224",
                      dataclasses.replace(LEAF, hash_algorithm=hashes.SHA224(), pss=False)),
            leaf_case("leaf_key_is_ec", LEAF, key=ec.generate_private_key(ec.SECP384R1())),
            leaf_case("leaf_key_too_short", LEAF,
                      key=_short_rsa_key()),
            ica_case("intermediate_signed_by_rogue", INTERMEDIATE, issuer_key=keys.rogue),
            ica_case("intermediate_not_yet_valid",
                     dataclasses.replace(INTERMEDIATE, not_before=timedelta(days=1))),
            ica_case("intermediate_not_ca",
                     dataclasses.replace(INTERMEDIATE, ca=False, path_length=None)),
            ica_case("intermediate_no_constraints",
                     dataclasses.replace(INTERMEDIATE, ca=None, path_length=None)),
            ica_case("intermediate_may_not_certify",
                     dataclasses.replace(INTERMEDIATE, usage=LEAF_USAGE)),
            ica_case("root_not_configured", INTERMEDIATE, issuer_key=keys.rogue, root=rogue_root),
            self._case("path_length_exceeded", VerificationFailed,
                       roots=(issue(dataclasses.replace(ROOT, path_length=0),
                                    keys.root.public_key(), ita_name(ROOT.name), keys.root,
                                    self.now),)),
            self._case("chain_in_wrong_order", VerificationFailed,
                       jwks=self.jwks(self.jwk((self.leaf, self.root, ica)))),
            self._case("no_root_and_unknown_issuer", VerificationFailed,
                       jwks=self.jwks(self.jwk((self.leaf, ica))), roots=(rogue_root,)),
            self._case("no_root_configured", ConfigError, roots=()),
        ]


def _short_rsa_key() -> rsa.RSAPrivateKey:
    """A key the verifier must refuse for being too short."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


def _tdx_section(report_data: bytes, mode: str) -> dict[str, Any]:
    def measurement(label: str, size: int = 48) -> str:
        return hashlib.shake_256(label.encode()).hexdigest(size)

    section: dict[str, Any] = {
        "attester_type": "TDX",
        "attester_tcb_status": "UpToDate",
        "attester_tcb_date": "2024-03-13T00:00:00Z",
        "attester_advisory_ids": ["INTEL-SA-00837"],
        "tdx_mrseam": measurement("mrseam"),
        "tdx_mrsignerseam": "00" * 48,
        "tdx_seam_attributes": "00" * 8,
        "tdx_tee_tcb_svn": "03000500000000000000000000000000",
        "tdx_td_attributes": "0000001000000000",  # SEPT_VE_DISABLE, not debug
        "tdx_is_debuggable": False,
        "tdx_xfam": "e702060000000000",
        "tdx_mrtd": measurement("mrtd"),
        "tdx_mrconfigid": "00" * 48,
        "tdx_mrowner": "00" * 48,
        "tdx_mrownerconfig": "00" * 48,
        **{f"tdx_rtmr{index}": measurement(f"rtmr{index}") for index in range(4)},
    }
    if mode == "report_data":
        section["tdx_report_data"] = report_data.hex()
    else:
        section["attester_held_data"] = base64.b64encode(report_data).decode()
        section["tdx_report_data"] = hashlib.sha512(NONCE_VAL + NONCE_IAT
                                                    + report_data).hexdigest()
    return section


__all__ = [
    "CA_USAGE",
    "INTERMEDIATE",
    "ISSUER",
    "LEAF",
    "LEAF_USAGE",
    "ROOT",
    "CertSpec",
    "ItaBrokenCase",
    "ItaFixture",
    "ItaKeys",
    "compact",
    "der",
    "issue",
    "ita_name",
    "x5c",
]
