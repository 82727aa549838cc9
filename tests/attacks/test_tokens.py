"""Attacks on signed tokens: EAR results (tokens.py) and Microsoft Azure Attestation tokens
(platforms/azure/maa.py), all through compact-JWS parsing in jws.py. Time is a parameter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import jwt
import pytest

from ccattest.errors import MalformedEvidence, StaleEvidence, VerificationFailed
from ccattest.evidence import Evidence
from ccattest.jws import MAX_TOKEN_LENGTH, b64url
from ccattest.pipeline import verify_and_appraise
from ccattest.platforms.azure.maa import PLATFORM as MAA
from ccattest.policy import Policy, SoftwarePolicy
from ccattest.testing.maa import MaaFixture
from ccattest.testing.software import SoftwareFixture
from ccattest.tokens import SigningKey, jwks, sign_results, verify_token

from .catalog import attack

AUDIENCE = "data-owner"
NONCE = b"relying-party-nonce-0001"


@pytest.fixture(scope="module")
def ear():
    """A verifier's key, its JWKS, and an EAR about site-1 answering our nonce."""
    fixture = SoftwareFixture.create("site-1")
    evidence, report_data, _ = fixture.evidence()
    policy = Policy(software=SoftwarePolicy(allow=True, measurements=[fixture.measurement]))
    result = verify_and_appraise(evidence, fixture.verifier(), policy, report_data=report_data,
                                 at=fixture.now)
    assert result.affirming
    key = SigningKey.generate()
    token = sign_results([result], key, issued_at=fixture.now, nonce=NONCE, audience=AUDIENCE,
                         subject="site-1")
    return {"key": key, "jwks": jwks([key]), "token": token, "at": fixture.now,
            "result": result}


@pytest.fixture(scope="module")
def maa() -> MaaFixture:
    return MaaFixture.create()


def _segments(token: str) -> tuple[dict, dict]:
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(head))),
            json.loads(base64.urlsafe_b64decode(pad(body))))


def _craft(header: dict, claims: dict, signature: bytes = b"") -> str:
    return ".".join(b64url(json.dumps(part).encode()) for part in (header, claims)) + \
        "." + b64url(signature)


def _check(ear, token: str, **kwargs):
    options = {"at": ear["at"], "audience": AUDIENCE, "nonce": NONCE, "subject": "site-1"}
    return verify_token(token, ear["jwks"], **{**options, **kwargs})


def _maa_case(maa: MaaFixture, name: str):
    case = {c.name: c for c in maa.broken_cases()}[name]
    return lambda: maa.verifier().verify(case.evidence, report_data=case.report_data,
                                         at=case.at)


@attack("unsigned token (alg none)",
        does="sends a result token with header alg 'none' and no signature",
        stopped_by="verifiers accept only their own algorithms (ES256/ES384 for EAR, RS256 for "
                   "MAA/ITA): 'token is unsigned or names no algorithm'")
def test_alg_none(ear, maa):
    assert _check(ear, ear["token"])["sub"] == "site-1"  # the genuine token passes
    header, claims = _segments(ear["token"])
    with pytest.raises(VerificationFailed, match="unsigned or names no algorithm"):
        _check(ear, _craft({**header, "alg": "none"}, claims))
    with pytest.raises(VerificationFailed, match="unsigned"):
        _maa_case(maa, "alg_none")()


@attack("HMAC keyed with the public key",
        does="signs a forged token with HS256 using the verifier's public key (which anyone "
             "has) as the HMAC secret: the classic algorithm confusion",
        stopped_by="HS* is never accepted, whatever the key: 'token algorithm is not accepted'")
def test_hmac_with_public_key(ear, maa):
    header, claims = _segments(ear["token"])
    secret = json.dumps(ear["key"].public_jwk()).encode()
    head = {"alg": "HS256", "kid": header["kid"], "typ": "JWT"}
    signing_input = _craft(head, claims).rsplit(".", 1)[0]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64url(mac)}"
    with pytest.raises(VerificationFailed, match="algorithm is not accepted"):
        _check(ear, forged)
    with pytest.raises(VerificationFailed, match="not accepted"):
        _maa_case(maa, "hmac_public_key")()


@attack("token signed by an unknown kid",
        does="signs a token with the attacker's own key and names it by a kid the verifier "
             "does not hold",
        stopped_by="keys come only from the configured JWKS, by kid: 'token signed by a key "
                   "not in the JWKS'")
def test_unknown_kid(ear):
    header, claims = _segments(ear["token"])
    rogue = SigningKey.generate()
    forged = jwt.encode(claims, rogue.private_key, algorithm="ES256",
                        headers={"kid": rogue.kid, "typ": "JWT"})
    with pytest.raises(VerificationFailed, match="key not in the JWKS"):
        _check(ear, forged)
    borrowed = jwt.encode(claims, rogue.private_key, algorithm="ES256",
                          headers={"kid": header["kid"], "typ": "JWT"})  # our kid, its key
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        _check(ear, borrowed)


@attack("jku outside the allow list",
        does="points an MAA token's jku header at the attacker's own JWKS URL and signs with "
             "the key published there",
        stopped_by="the jku must be exactly an allow-listed MAA instance's /certs: 'token jku "
                   "is not an allow-listed MAA instance's /certs'; EAR tokens never follow jku")
def test_jku_outside_allow_list(ear, maa):
    with pytest.raises(VerificationFailed, match="jku is not an allow-listed"):
        _maa_case(maa, "foreign_jku")()
    rogue = SigningKey.generate()
    _, claims = _segments(ear["token"])
    forged = jwt.encode(claims, rogue.private_key, algorithm="ES256",
                        headers={"kid": rogue.kid, "jku": "https://evil.example/jwks.json"})
    with pytest.raises(VerificationFailed, match="key not in the JWKS"):
        _check(ear, forged)


@attack("x5u or x5c outside the allow list",
        does="names the attacker's certificate in the token header (x5u URL or embedded x5c) "
             "and signs with its key, under the genuine kid",
        stopped_by="certificate headers are never followed: the key is the configured one "
                   "for that kid, so the signature does not verify")
def test_x5u_outside_allow_list(ear, maa):
    rogue_maa = MaaFixture.create(keys=None)
    report_data = bytes(64)
    claims = maa.claims(report_data)
    forged = rogue_maa.sign(claims, header={"kid": maa.kid, "jku": maa.jku,
                                            "x5u": "https://evil.example/cert.pem",
                                            "x5c": rogue_maa.jwks()["keys"][0]["x5c"]})
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        maa.verifier().verify(Evidence(MAA, forged.encode()), report_data=report_data,
                              at=maa.now)
    rogue = SigningKey.generate()
    header, ear_claims = _segments(ear["token"])
    forged_ear = jwt.encode(ear_claims, rogue.private_key, algorithm="ES256",
                            headers={"kid": header["kid"], "x5u": "https://evil.example/c"})
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        _check(ear, forged_ear)


@attack("expired token",
        does="presents a genuine result token after its exp (the result it carries has aged "
             "out, or its collateral has)",
        stopped_by="exp is required and checked against the verification time: StaleEvidence "
                   "'token has expired'")
def test_expired_token(ear, maa):
    after = ear["result"].expires_at + timedelta(seconds=1)
    with pytest.raises(StaleEvidence, match="token has expired"):
        _check(ear, ear["token"], at=after)
    with pytest.raises(StaleEvidence, match="expired"):
        _maa_case(maa, "expired")()


@attack("token not yet valid",
        does="presents a token whose iat or nbf is in the future (minted ahead of time to be "
             "used later, or with a skewed clock)",
        stopped_by="iat and nbf must be at or before the verification time: StaleEvidence "
                   "'token is not yet valid'")
def test_not_yet_valid_token(ear, maa):
    with pytest.raises(StaleEvidence, match="not yet valid"):
        _check(ear, ear["token"], at=ear["at"] - timedelta(minutes=5))
    with pytest.raises(StaleEvidence, match="not yet valid"):
        _maa_case(maa, "not_yet_valid")()


@attack("token for another audience",
        does="presents a genuine token issued to another relying party",
        stopped_by="aud must name this relying party: 'token is for another audience'")
def test_wrong_audience(ear):
    with pytest.raises(VerificationFailed, match="another audience"):
        _check(ear, ear["token"], audience="another-party")


@attack("token from another issuer",
        does="presents a token that names another issuer than the attestation service whose "
             "key signed it (e.g. another tenant's MAA instance)",
        stopped_by="iss must be the allow-listed instance that signed it: 'token issuer is "
                   "not the instance that signed it'")
def test_wrong_issuer(maa):
    with pytest.raises(VerificationFailed, match="issuer is not the instance"):
        _maa_case(maa, "wrong_issuer")()


@attack("oversized token header",
        does="sends a token with a multi-megabyte header to exhaust the verifier's memory or "
             "time before any signature is checked",
        stopped_by="jws.parse_header refuses any token over MAX_TOKEN_LENGTH (1 MiB) before "
                   "decoding: MalformedEvidence 'token is too long'")
def test_oversized_token_header(ear):
    header, claims = _segments(ear["token"])
    huge = _craft({**header, "pad": "A" * MAX_TOKEN_LENGTH}, claims, b"x" * 64)
    with pytest.raises(MalformedEvidence, match="token is too long"):
        _check(ear, huge)


@attack("replayed result token",
        does="replays a genuine, unexpired token from an earlier session to a relying party "
             "that issued a new nonce",
        stopped_by="eat_nonce must carry the relying party's nonce: StaleEvidence 'token does "
                   "not carry our nonce'")
def test_replayed_token(ear):
    with pytest.raises(StaleEvidence, match="does not carry our nonce"):
        _check(ear, ear["token"], nonce=b"a-fresh-nonce-for-today")


@attack("token relabelled to another site",
        does="site-2 forwards the relying party's nonce to site-1, which is attested, and "
             "hands back site-1's genuine token as its own; or rewrites the token's sub",
        stopped_by="verify_token(subject=...) checks sub names the site asked about ('token "
                   "is about another attester'); a rewritten sub breaks the signature")
def test_token_relabelled(ear):
    with pytest.raises(VerificationFailed, match="token is about another attester"):
        _check(ear, ear["token"], subject="site-2")
    head, _, signature = ear["token"].split(".")
    _, claims = _segments(ear["token"])
    relabelled = f"{head}.{b64url(json.dumps({**claims, 'sub': 'site-2'}).encode())}." \
                 f"{signature}"
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        _check(ear, relabelled, subject="site-2")
