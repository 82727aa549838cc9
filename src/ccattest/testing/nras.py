"""Synthetic NRAS results: an ES384 key made at run time, its JWKS, detached EATs shaped like
NRAS's (an overall token whose submods digest each per-GPU token, claims version 3.0), and
broken variants.

The key is not NVIDIA's: NrasVerifier accepts these results only because the fixture's JWKS
is passed to it. The "local verifier" variants are HS256 tokens keyed with a constant of our
own, the way NVIDIA's local GPU verifier keys its tokens with a constant of its own.

    fixture = NrasFixture.create()
    text = fixture.eat(gpus=2)                        # JSON text, answering fixture.nonce
    result = verify_nras(text, fixture.jwks(), at=fixture.now, nonce=fixture.nonce)
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..errors import MalformedEvidence, StaleEvidence, VerificationFailed
from ..evidence import Evidence
from ..platforms.nvgpu.nras import (
    ALGORITHM,
    LOCAL_VERIFIER_ISSUER,
    PLATFORM,
    RESULT_CLAIM,
    NrasVerifier,
    nras_evidence,
)
from ..tokens import SigningKey
from .cases import FIXED_NOW, BrokenCase

TEST_ISSUER = "https://nras.test.invalid"
TEST_NONCE = hashlib.sha256(b"ccattest nras test nonce").digest()
LOCAL_VERIFIER_KEY = b"ccattest-test-constant-hs256-key"  # ours; stands for NVIDIA's constant
HWMODEL = "GH100 A01 GSP BROM"
DRIVER_VERSION = "570.124.06"
VBIOS_VERSION = "96.00.9F.00.04"

Signer = Callable[[bytes], bytes]
Claims = dict[str, Any]


# --- compact JWS -----------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, sign: Signer) -> str:
    """A compact JWS over exactly these bytes (payload may be raw, e.g. with duplicates)."""
    body = payload if isinstance(payload, bytes) else json.dumps(dict(payload)).encode()
    signing_input = f"{b64url(json.dumps(dict(header)).encode())}.{b64url(body)}"
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


def es384_signer(key: ec.EllipticCurvePrivateKey) -> Signer:
    """ES384 as JWS wants it: raw r || s, 48 bytes each."""
    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA384())))
        return r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return sign


def hs256_signer(secret: bytes = LOCAL_VERIFIER_KEY) -> Signer:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def unverified_claims(token: str) -> Claims:
    """A token's payload, NOT verified. For tests that look at real NRAS results whose
    signing key is not available (see tests/platforms/nvgpu/test_nras.py); never used
    by verification."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def submod_digest(token: str, algorithm: str = "SHA-256") -> list[Any]:
    return ["DIGEST", [algorithm, hashlib.sha256(token.encode("ascii")).hexdigest()]]


def detached(overall: str, gpus: Mapping[str, str]) -> str:
    return json.dumps([["JWT", overall], dict(gpus)])


def _jti(*parts: object) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(repr(parts).encode()).digest()[:16]))


# --- the fixture -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NrasBrokenCase(BrokenCase):
    """A broken NRAS result, with the JWKS it is checked against."""

    jwks: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class NrasFixture:
    """Keys and factories for NRAS-shaped results, all issued at `now`."""

    key: ec.EllipticCurvePrivateKey
    rogue: ec.EllipticCurvePrivateKey  # same curve, not in the JWKS: what a forger signs with
    kid: str
    now: datetime = FIXED_NOW
    issuer: str = TEST_ISSUER
    lifetime: timedelta = timedelta(hours=1)
    nonce: bytes = TEST_NONCE

    @classmethod
    def create(cls, **options: Any) -> NrasFixture:
        key = ec.generate_private_key(ec.SECP384R1())
        kid = "nv-eat-kid-test-" + SigningKey(key).kid[:16]
        return cls(key=key, rogue=ec.generate_private_key(ec.SECP384R1()), kid=kid, **options)

    # --- keys ---------------------------------------------------------------------------------

    def jwk(self, **changes: Any) -> dict[str, Any]:
        jwk: dict[str, Any] = {**SigningKey(self.key).public_jwk(), "kid": self.kid}
        jwk.update(changes)
        return {name: value for name, value in jwk.items() if value is not None}

    def jwks(self, *extra: Mapping[str, Any]) -> dict[str, Any]:
        return {"keys": [self.jwk(), *(dict(item) for item in extra)]}

    def verifier(self, **options: Any) -> NrasVerifier:
        return NrasVerifier(self.jwks(), **options)

    # --- claims -------------------------------------------------------------------------------

    def times(self, *, at: datetime | None = None) -> Claims:
        issued = int((at or self.now).timestamp()) - 60
        return {"iat": issued, "nbf": issued, "exp": issued + int(self.lifetime.total_seconds())}

    def gpu_claims(self, index: int = 0, *, nonce: bytes | None = None,
                   passed: bool = True) -> Claims:
        """One GPU's claims as NRAS (claims version 3.0) words them."""
        chain = {"x-nvidia-cert-status": "valid", "x-nvidia-cert-ocsp-status": "good",
                 "x-nvidia-cert-expiration-date": "2027-06-01T00:00:00Z",
                 "x-nvidia-cert-revocation-reason": None}
        claims: Claims = {
            "iss": self.issuer, "eat_nonce": (self.nonce if nonce is None else nonce).hex(),
            **self.times(), "jti": _jti("gpu", index, self.now), "ueid": str(10 ** 47 + index),
            "hwmodel": HWMODEL, "oemid": "5703", "secboot": True, "dbgstat": "disabled",
            "measres": "success", "x-nvidia-attestation-warning": None,
            "x-nvidia-gpu-arch-check": True,
            "x-nvidia-gpu-driver-version": DRIVER_VERSION,
            "x-nvidia-gpu-vbios-version": VBIOS_VERSION,
            "x-nvidia-gpu-attestation-report-parsed": True,
            "x-nvidia-gpu-attestation-report-nonce-match": True,
            "x-nvidia-gpu-attestation-report-signature-verified": True,
            "x-nvidia-gpu-attestation-report-cert-chain": {
                **chain, "x-nvidia-cert-expiration-date": "9999-12-31T23:59:59Z"},
            "x-nvidia-gpu-attestation-report-cert-chain-fwid-match": True,
        }
        for kind in ("driver", "vbios"):
            for check in ("fetched", "schema-validated", "signature-verified", "version-match",
                          "measurements-available"):
                claims[f"x-nvidia-gpu-{kind}-rim-{check}"] = True
            claims[f"x-nvidia-gpu-{kind}-rim-cert-chain"] = dict(chain)
        claims["x-nvidia-gpu-vbios-index-no-conflict"] = True
        if not passed:
            claims["measres"] = "fail"
            claims["x-nvidia-mismatch-measurement-records"] = [{
                "index": 9, "measurementSource": "firmware", "goldenSize": 48,
                "goldenValue": "ab" * 48, "runtimeSize": 48, "runtimeValue": "cd" * 48}]
        return claims

    def overall_claims(self, gpus: Mapping[str, str], *, nonce: bytes | None = None,
                       result: bool = True) -> Claims:
        return {"sub": "NVIDIA-PLATFORM-ATTESTATION", "x-nvidia-ver": "3.0",
                "iss": self.issuer, RESULT_CLAIM: result,
                "submods": {name: submod_digest(token) for name, token in gpus.items()},
                "eat_nonce": (self.nonce if nonce is None else nonce).hex(),
                **self.times(), "jti": _jti("overall", sorted(gpus), self.now)}

    # --- tokens and results -------------------------------------------------------------------

    def sign(self, claims: Mapping[str, Any] | bytes, *,
             key: ec.EllipticCurvePrivateKey | None = None, kid: str | None = None,
             header: Mapping[str, Any] | None = None) -> str:
        """An ES384 token; `header` replaces the default {"kid", "alg"} entirely."""
        head = dict(header) if header is not None else {"kid": kid or self.kid,
                                                        "alg": ALGORITHM}
        return compact(head, claims, es384_signer(key or self.key))

    def gpu_tokens(self, gpus: int = 1, *, nonce: bytes | None = None,
                   failing: Iterable[int] = (),
                   changes: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Signed per-GPU tokens; `changes` (None deletes a claim) apply to every GPU."""
        failed = set(failing)
        tokens = {}
        for index in range(gpus):
            claims = self.gpu_claims(index, nonce=nonce, passed=index not in failed)
            tokens[f"GPU-{index}"] = self.sign(_changed(claims, changes))
        return tokens

    def eat(self, gpus: int = 1, *, nonce: bytes | None = None, failing: Iterable[int] = (),
            result: bool | None = None, gpu_changes: Mapping[str, Any] | None = None,
            overall_changes: Mapping[str, Any] | None = None) -> str:
        """A detached EAT, JSON text. `result` defaults to "no GPU failed"."""
        failed = tuple(failing)
        tokens = self.gpu_tokens(gpus, nonce=nonce, failing=failed, changes=gpu_changes)
        verdict = not failed if result is None else result
        overall = self.overall_claims(tokens, nonce=nonce, result=verdict)
        return detached(self.sign(_changed(overall, overall_changes)), tokens)

    def evidence(self, eat: str | bytes | None = None, header_result: str | None = None,
                 ) -> Evidence:
        return nras_evidence(self.eat() if eat is None else eat, header_result)

    # --- broken variants ----------------------------------------------------------------------

    def broken_cases(self) -> list[NrasBrokenCase]:
        return [*self._shape_cases(), *self._algorithm_cases(), *self._key_cases(),
                *self._time_cases(), *self._binding_cases(), *self._claim_cases()]

    def _case(self, name: str, error: type, eat: str | bytes, *, header: str | None = None,
              jwks: Mapping[str, Any] | None = None, at: datetime | None = None,
              report_data: bytes | None = None, platform: str = PLATFORM) -> NrasBrokenCase:
        evidence = dataclasses.replace(nras_evidence(eat, header), platform=platform)
        return NrasBrokenCase(name=name, evidence=evidence, error=error, at=at or self.now,
                              report_data=self.nonce if report_data is None else report_data,
                              jwks=self.jwks() if jwks is None else jwks)

    def _pair(self) -> tuple[str, dict[str, str]]:
        tokens = self.gpu_tokens(2)
        return self.sign(self.overall_claims(tokens)), tokens

    def _shape_cases(self) -> list[NrasBrokenCase]:
        overall, tokens = self._pair()
        token = tokens["GPU-0"]
        head, body, signature = token.split(".")
        shapes: dict[str, Any] = {
            "not_a_list": {"JWT": overall},
            "one_element": [["JWT", overall]],
            "three_elements": [["JWT", overall], tokens, {}],
            "head_not_jwt": [["JWS", overall], tokens],
            "head_too_long": [["JWT", overall, "x"], tokens],
            "head_token_not_string": [["JWT", 7], tokens],
            "no_gpus": [["JWT", overall], {}],
            "gpus_not_object": [["JWT", overall], list(tokens.values())],
            "switch_device": [["JWT", overall], {"SWITCH-0": token}],
            "gpu_name_padded": [["JWT", overall], {"GPU-01": token}],
            "gpu_token_not_string": [["JWT", overall], {"GPU-0": 1}],
            "gpu_token_two_segments": [["JWT", overall], {"GPU-0": f"{head}.{body}"}],
            "gpu_token_padded": [["JWT", overall], {"GPU-0": f"{head}=.{body}.{signature}"}],
            "gpu_token_header_not_json": [["JWT", overall],
                                          {"GPU-0": f"{b64url(b'{')}.{body}.{signature}"}],
        }
        cases = [self._case(name, MalformedEvidence, json.dumps(value))
                 for name, value in shapes.items()]
        duplicate = (f'[["JWT", "{overall}"], '
                     f'{{"GPU-0": "{tokens["GPU-0"]}", "GPU-0": "{tokens["GPU-1"]}"}}]')
        return [*cases,
                self._case("not_json", MalformedEvidence, "this is not an EAT"),
                self._case("not_utf8", MalformedEvidence, b"\xff\xfe[]"),
                self._case("nan", MalformedEvidence, '[["JWT", NaN], {}]'),
                self._case("duplicate_gpu", MalformedEvidence, duplicate)]

    def _algorithm_cases(self) -> list[NrasBrokenCase]:
        tokens = self.gpu_tokens(1)
        claims = self.overall_claims(tokens)
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        es256 = ec.generate_private_key(ec.SECP256R1())

        def overall(token: str) -> str:
            return detached(token, tokens)

        local = {**self.gpu_claims(), "iss": LOCAL_VERIFIER_ISSUER}
        local_token = compact({"alg": "HS256", "typ": "JWT"}, local, hs256_signer())
        local_overall = compact({"alg": "HS256", "typ": "JWT"},
                                {**self.overall_claims({"GPU-0": local_token}),
                                 "iss": LOCAL_VERIFIER_ISSUER}, hs256_signer())
        return [
            self._case("alg_none", VerificationFailed,
                       overall(compact({"alg": "none", "kid": self.kid}, claims, lambda _: b""))),
            self._case("local_verifier_hs256", VerificationFailed,
                       detached(local_overall, {"GPU-0": local_token})),
            self._case("gpu_token_hs256", VerificationFailed,
                       self._with_gpu(compact({"alg": "HS256", "kid": self.kid},
                                              self.gpu_claims(), hs256_signer()))),
            self._case("alg_rs256", VerificationFailed,
                       overall(jwt.encode(claims, rsa_key, algorithm="RS256",
                                          headers={"kid": self.kid}))),
            self._case("alg_es256", VerificationFailed,
                       overall(jwt.encode(claims, es256, algorithm="ES256",
                                          headers={"kid": self.kid}))),
            self._case("alg_es384_lowercase", VerificationFailed,
                       overall(self.sign(claims, header={"kid": self.kid, "alg": "es384"}))),
            self._case("crit_header", VerificationFailed,
                       overall(self.sign(claims, header={"kid": self.kid, "alg": ALGORITHM,
                                                         "crit": ["x"], "x": 1}))),
            self._case("no_kid", VerificationFailed,
                       overall(self.sign(claims, header={"alg": ALGORITHM}))),
            self._case("unknown_kid", VerificationFailed,
                       overall(self.sign(claims, kid="nv-eat-kid-unknown"))),
        ]

    def _with_gpu(self, token: str, name: str = "GPU-0") -> str:
        """A detached EAT whose overall token (validly signed) covers `token` as `name`."""
        tokens = {name: token}
        return detached(self.sign(self.overall_claims(tokens)), tokens)

    def _key_cases(self) -> list[NrasBrokenCase]:
        tokens = self.gpu_tokens(1)
        claims = self.overall_claims(tokens)
        good = self.sign(claims)
        head, body, signature = good.split(".")
        forged = b64url(json.dumps({**claims, RESULT_CLAIM: not claims[RESULT_CLAIM]}).encode())
        p256 = SigningKey(ec.generate_private_key(ec.SECP256R1())).public_jwk()
        return [
            self._case("signed_by_rogue_key", VerificationFailed,
                       detached(self.sign(claims, key=self.rogue), tokens)),
            self._case("gpu_signed_by_rogue_key", VerificationFailed,
                       self._with_gpu(self.sign(self.gpu_claims(), key=self.rogue))),
            self._case("tampered_payload", VerificationFailed,
                       detached(f"{head}.{forged}.{signature}", tokens)),
            self._case("short_signature", VerificationFailed,
                       detached(f"{head}.{body}.{b64url(bytes(64))}", tokens)),
            self._case("zero_signature", VerificationFailed,
                       detached(f"{head}.{body}.{b64url(bytes(96))}", tokens)),
            self._case("jwk_is_p256", VerificationFailed, detached(good, tokens),
                       jwks={"keys": [{**p256, "kid": self.kid, "alg": ALGORITHM}]}),
            self._case("jwk_use_enc", VerificationFailed, detached(good, tokens),
                       jwks={"keys": [self.jwk(use="enc")]}),
            self._case("jwk_key_ops_sign", VerificationFailed, detached(good, tokens),
                       jwks={"keys": [self.jwk(key_ops=["sign"])]}),
            self._case("jwk_alg_other", VerificationFailed, detached(good, tokens),
                       jwks={"keys": [self.jwk(alg="ES512")]}),
        ]

    def _time_cases(self) -> list[NrasBrokenCase]:
        times = self.times()
        exp = datetime.fromtimestamp(times["exp"], self.now.tzinfo)
        iat = datetime.fromtimestamp(times["iat"], self.now.tzinfo)
        future = times["exp"] + 10
        return [
            self._case("expired", StaleEvidence, self.eat(), at=exp),
            self._case("not_yet_issued", StaleEvidence, self.eat(), at=iat - timedelta(1)),
            self._case("nbf_in_future", StaleEvidence,
                       self.eat(overall_changes={"nbf": future})),
            self._case("gpu_expired", StaleEvidence,
                       self.eat(gpu_changes={"exp": times["iat"]})),
            self._case("no_exp", VerificationFailed, self.eat(overall_changes={"exp": None})),
            self._case("no_iat", VerificationFailed, self.eat(gpu_changes={"iat": None})),
            self._case("exp_not_a_number", VerificationFailed,
                       self.eat(overall_changes={"exp": "tomorrow"})),
            self._case("exp_is_bool", VerificationFailed,
                       self.eat(overall_changes={"exp": True})),
        ]

    def _binding_cases(self) -> list[NrasBrokenCase]:
        tokens = self.gpu_tokens(2)
        other = self.gpu_tokens(1, nonce=bytes(32))["GPU-0"]

        def covering(submods: Mapping[str, Any], carried: Mapping[str, str] = tokens) -> str:
            return detached(self.sign({**self.overall_claims(tokens), "submods": submods}),
                            carried)

        digests = {name: submod_digest(token) for name, token in tokens.items()}
        return [
            self._case("gpu_token_swapped", VerificationFailed,
                       detached(self.sign(self.overall_claims(tokens)),
                                {**tokens, "GPU-1": self.gpu_tokens(2)["GPU-1"]})),
            self._case("gpu_missing_from_submods", VerificationFailed,
                       covering({"GPU-0": digests["GPU-0"]})),
            self._case("gpu_missing_from_result", VerificationFailed,
                       covering(digests, {"GPU-0": tokens["GPU-0"]})),
            self._case("digest_labelled_sha256", VerificationFailed,
                       covering({**digests, "GPU-1": submod_digest(tokens["GPU-1"], "SHA256")})),
            self._case("digest_not_hex", MalformedEvidence,
                       covering({**digests, "GPU-1": ["DIGEST", ["SHA-256", "zz" * 32]]})),
            self._case("digest_not_a_digest", MalformedEvidence,
                       covering({**digests, "GPU-1": ["HASH", "x"]})),
            self._case("no_submods", MalformedEvidence, self.eat(overall_changes={
                "submods": None})),
            self._case("wrong_nonce", StaleEvidence, self.eat(), report_data=bytes(32)),
            self._case("replayed_result", StaleEvidence, self.eat(nonce=bytes(32))),
            self._case("no_nonce_claim", StaleEvidence,
                       self.eat(overall_changes={"eat_nonce": None},
                                gpu_changes={"eat_nonce": None})),
            self._case("gpu_answers_other_nonce", VerificationFailed, self._mixed(other)),
            self._case("nonce_not_hex", MalformedEvidence,
                       self.eat(overall_changes={"eat_nonce": "not hex"})),
            self._case("header_disagrees", VerificationFailed,
                       self.eat(failing=[0]), header="true"),
            self._case("header_garbage", MalformedEvidence, self.eat(), header="yes"),
            self._case("wrong_platform", MalformedEvidence, self.eat(), platform="nvgpu"),
        ]

    def _mixed(self, gpu_token: str) -> str:
        tokens = {"GPU-0": gpu_token}
        return detached(self.sign(self.overall_claims(tokens)), tokens)

    def _claim_cases(self) -> list[NrasBrokenCase]:
        claims = self.gpu_claims()
        payload = json.dumps(claims)[:-1] + ', "measres": "success"}'
        return [
            self._case("result_not_bool", MalformedEvidence,
                       self.eat(overall_changes={RESULT_CLAIM: "true"})),
            self._case("no_result", MalformedEvidence,
                       self.eat(overall_changes={RESULT_CLAIM: None})),
            self._case("issuer_local_verifier_es384", VerificationFailed,
                       self.eat(gpu_changes={"iss": LOCAL_VERIFIER_ISSUER})),
            self._case("duplicate_claim", MalformedEvidence,
                       self._with_gpu(self.sign(payload.encode()))),
            self._case("payload_not_object", MalformedEvidence,
                       self._with_gpu(self.sign(b"[1, 2]"))),
            self._case("driver_version_not_string", MalformedEvidence,
                       self.eat(gpu_changes={"x-nvidia-gpu-driver-version": 570})),
            self._case("check_claim_not_bool", MalformedEvidence,
                       self.eat(gpu_changes={"secboot": "true"})),
            self._case("cert_chain_not_object", MalformedEvidence,
                       self.eat(gpu_changes={"x-nvidia-gpu-driver-rim-cert-chain": "valid"})),
            self._case("mismatch_record_not_object", MalformedEvidence,
                       self.eat(gpu_changes={"x-nvidia-mismatch-measurement-records": [1]})),
        ]


def _changed(claims: Mapping[str, Any], changes: Mapping[str, Any] | None) -> Claims:
    result = dict(claims)
    for name, value in (changes or {}).items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


__all__ = [
    "LOCAL_VERIFIER_KEY",
    "TEST_ISSUER",
    "TEST_NONCE",
    "NrasBrokenCase",
    "NrasFixture",
    "b64url",
    "compact",
    "detached",
    "es384_signer",
    "hs256_signer",
    "submod_digest",
    "unverified_claims",
]
