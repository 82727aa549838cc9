"""EAR tokens: signing, JWKS export, and every way verification must say no."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ccattest import __version__, tokens
from ccattest.errors import (
    CCAttestError,
    ConfigError,
    MalformedEvidence,
    StaleEvidence,
    VerificationFailed,
)
from ccattest.jws import expiry as jws_expiry
from ccattest.result import AttestationResult, Reason, TrustClaim, TrustVector
from ccattest.tokens import (
    EAR_PROFILE,
    SigningKey,
    jwks,
    load_jwks,
    load_or_create_signing_key,
    sign_results,
    verify_token,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def craft(header: Any, payload: Any, signature: bytes = b"") -> str:
    return f"{b64json(header)}.{b64json(payload)}.{b64(signature)}"


def make_result(
    platform: str = "software",
    *,
    expires_at: datetime = NOW + timedelta(hours=1),
    attester: str | None = "node-1",
    policy_id: str | None = "policy-v1",
) -> AttestationResult:
    return AttestationResult(
        platform=platform,
        trust_vector=TrustVector(
            {
                TrustClaim.INSTANCE_IDENTITY: 2,
                TrustClaim.HARDWARE: 2,
                TrustClaim.EXECUTABLES: 3,
            }
        ),
        verified=True,
        issued_at=NOW,
        expires_at=expires_at,
        reasons=(
            Reason("signature", True, "report signature verifies"),
            Reason("debug", False, "debug mode is on", expected="off", found="on"),
        ),
        attester=attester,
        policy_id=policy_id,
    )


def valid_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "eat_profile": EAR_PROFILE,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
        "ear.verifier-id": {"developer": "test", "build": "test"},
        "submods": {"software": {"ear.status": "affirming"}},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign_claims(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    headers = {"kid": key.kid, **header}
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers=headers)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def key384() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture(scope="module")
def keyset(key: SigningKey) -> dict[str, Any]:
    return jwks([key])


# --- signing and round trips ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384"])
def test_round_trip(alg: str) -> None:
    signer = SigningKey.generate(alg)
    result = make_result()
    token = sign_results(
        [result], signer, issued_at=NOW, nonce=b"0123456789abcdef", audience="fl-server"
    )
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": signer.kid, "typ": "JWT"}

    claims = verify_token(
        token, jwks([signer]), at=LATER, audience="fl-server", nonce=b"0123456789abcdef"
    )
    assert claims["eat_profile"] == EAR_PROFILE
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == int(result.expires_at.timestamp())
    assert claims["eat_nonce"] == b64(b"0123456789abcdef")
    assert claims["aud"] == "fl-server"
    assert claims["sub"] == "node-1"
    assert claims["ear.verifier-id"] == {
        "developer": "ccattest",
        "build": f"ccattest {__version__}",
    }
    submod = claims["submods"]["software"]
    assert submod["ear.status"] == "affirming"
    assert submod["ear.trustworthiness-vector"] == {
        "instance-identity": 2,
        "hardware": 2,
        "executables": 3,
    }
    assert submod["ear.appraisal-policy-id"] == "policy-v1"
    assert submod["ccattest.verified"] is True
    assert submod["ccattest.reasons"] == [
        {
            "check": "debug",
            "passed": False,
            "message": "debug mode is on",
            "expected": "off",
            "found": "on",
        }
    ]


def test_several_results_expire_with_the_first_and_omit_shared_subject(key: SigningKey) -> None:
    soon = NOW + timedelta(minutes=10)
    results = [
        make_result("software", attester="a"),
        make_result("nvidia-gpu", expires_at=soon, attester="b", policy_id=None),
    ]
    claims = verify_token(sign_results(results, key, issued_at=NOW), jwks([key]), at=LATER)
    assert claims["exp"] == int(soon.timestamp())
    assert "sub" not in claims
    assert "aud" not in claims
    assert "eat_nonce" not in claims
    assert set(claims["submods"]) == {"software", "nvidia-gpu"}
    assert "ear.appraisal-policy-id" not in claims["submods"]["nvidia-gpu"]


def test_explicit_claims_override_defaults(key: SigningKey) -> None:
    until = NOW + timedelta(minutes=2, seconds=30)
    token = sign_results(
        [make_result()],
        key,
        issued_at=NOW,
        expires_at=until,
        verifier_id={"developer": "acme", "build": "acme 1.2"},
        subject="site-7",
    )
    claims = verify_token(token, jwks([key]), at=NOW)
    assert claims["exp"] == int(until.timestamp())
    assert claims["sub"] == "site-7"
    assert claims["ear.verifier-id"] == {"developer": "acme", "build": "acme 1.2"}


def test_duplicate_platforms_are_rejected(key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="same platform"):
        sign_results([make_result(), make_result()], key, issued_at=NOW)


def test_signing_needs_results(key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="no attestation results"):
        sign_results([], key, issued_at=NOW)


def test_signing_rejects_naive_times(key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="naive"):
        sign_results([make_result()], key, issued_at=NOW.replace(tzinfo=None))
    with pytest.raises(ConfigError, match="naive"):
        sign_results(
            [make_result(expires_at=(NOW + timedelta(hours=1)).replace(tzinfo=None))],
            key,
            issued_at=NOW,
        )


def test_signing_rejects_a_token_born_expired(key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="expired when issued"):
        sign_results([make_result()], key, issued_at=NOW, expires_at=NOW)


def test_signing_rejects_incomplete_verifier_id(key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="verifier-id"):
        sign_results([make_result()], key, issued_at=NOW, verifier_id={"developer": "x"})


# --- keys ----------------------------------------------------------------------------------


def _independent_thumbprint(jwk: dict[str, str]) -> str:
    text = '{"crv":"%s","kty":"%s","x":"%s","y":"%s"}' % (  # noqa: UP031
        jwk["crv"],
        jwk["kty"],
        jwk["x"],
        jwk["y"],
    )
    return b64(hashlib.sha256(text.encode()).digest())


@pytest.mark.parametrize(("alg", "crv", "size"), [("ES256", "P-256", 32), ("ES384", "P-384", 48)])
def test_kid_is_the_rfc7638_thumbprint(alg: str, crv: str, size: int) -> None:
    signer = SigningKey.generate(alg)
    jwk = signer.public_jwk()
    numbers = signer.private_key.public_key().public_numbers()
    assert jwk == {
        "kty": "EC",
        "crv": crv,
        "x": b64(numbers.x.to_bytes(size, "big")),
        "y": b64(numbers.y.to_bytes(size, "big")),
        "kid": signer.kid,
        "alg": alg,
        "use": "sig",
    }
    assert signer.kid == _independent_thumbprint(jwk)
    assert signer.alg == alg


def test_known_key_vector_rfc7515_a3() -> None:
    # RFC 7515 Appendix A.3: the ES256 example key, with its published x and y.
    d = base64.urlsafe_b64decode("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI=")
    signer = SigningKey(ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1()))
    jwk = signer.public_jwk()
    assert jwk["x"] == "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
    assert jwk["y"] == "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    assert signer.kid == _independent_thumbprint(jwk)


def test_pem_round_trip_keeps_the_key(key384: SigningKey) -> None:
    pem = key384.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = SigningKey.from_pem(pem)
    assert again.kid == key384.kid
    assert again.alg == "ES384"
    assert again.public_key.public_numbers() == key384.public_key.public_numbers()


def test_repr_shows_no_key_material(key: SigningKey) -> None:
    assert repr(key) == f"SigningKey(alg='ES256', kid='{key.kid}')"


def test_generate_rejects_unknown_alg() -> None:
    with pytest.raises(ConfigError, match="unsupported signing algorithm"):
        SigningKey.generate("RS256")


def test_from_pem_rejects_non_ec_and_other_curves() -> None:
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="not an EC private key"):
        SigningKey.from_pem(ed)
    p521 = ec.generate_private_key(ec.SECP521R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="unsupported EC curve"):
        SigningKey.from_pem(p521)
    with pytest.raises(ConfigError, match="not an EC private key"):
        SigningKey(ed25519.Ed25519PrivateKey.generate())  # type: ignore[arg-type]


def test_from_pem_rejects_garbage_and_encrypted_keys(key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="unencrypted PEM"):
        SigningKey.from_pem(b"not a key")
    encrypted = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ConfigError, match="unencrypted PEM"):
        SigningKey.from_pem(encrypted)


def test_load_or_create_writes_0600_then_loads_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    created = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = load_or_create_signing_key(path)
    assert loaded.kid == created.kid
    assert (
        loaded.private_key.private_numbers().private_value
        == created.private_key.private_numbers().private_value
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["signing.pem"]


def test_load_or_create_es384(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    assert load_or_create_signing_key(path, "ES384").alg == "ES384"
    with pytest.raises(ConfigError, match="requested algorithm"):
        load_or_create_signing_key(path, "ES256")


def test_load_or_create_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"bad\.pem"):
        load_or_create_signing_key(bad)
    with pytest.raises(ConfigError, match="cannot read signing key"):
        load_or_create_signing_key(tmp_path)  # a directory
    with pytest.raises(ConfigError, match="Not a directory"):
        load_or_create_signing_key(bad / "key.pem")  # parent is a file
    with pytest.raises(ConfigError, match="unsupported signing algorithm"):
        load_or_create_signing_key(tmp_path / "new.pem", "HS256")
    assert not (tmp_path / "new.pem").exists()


def test_load_or_create_removes_a_half_written_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    path = tmp_path / "key.pem"
    with pytest.raises(ConfigError, match="cannot write signing key"):
        load_or_create_signing_key(path)
    assert not path.exists()


def test_load_or_create_uses_the_key_a_racing_process_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: SigningKey
) -> None:
    def lose_the_race(path: Path, pem: bytes) -> None:
        path.write_bytes(key.to_pem())
        raise FileExistsError(path)

    monkeypatch.setattr(tokens, "_write_new_key", lose_the_race)
    assert load_or_create_signing_key(tmp_path / "key.pem").kid == key.kid


# --- JWKS ----------------------------------------------------------------------------------


def test_jwks_export_and_import(tmp_path: Path, key: SigningKey, key384: SigningKey) -> None:
    exported = jwks([key, key384])
    assert exported == {"keys": [key.public_jwk(), key384.public_jwk()]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(exported))
    loaded = load_jwks(path)
    assert loaded == exported
    for signer in (key, key384):
        token = sign_results([make_result()], signer, issued_at=NOW)
        assert verify_token(token, loaded, at=LATER)["submods"]["software"]


def test_load_jwks_failures(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read JWKS"):
        load_jwks(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_jwks(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_jwks(bad)
    bad.write_text('{"keys": {}}')
    with pytest.raises(ConfigError, match="malformed JWKS"):
        load_jwks(bad)


def test_jwks_keys_without_kid_are_ignored(key: SigningKey) -> None:
    anonymous = SigningKey.generate().public_jwk()
    del anonymous["kid"]
    token = sign_results([make_result()], key, issued_at=NOW)
    assert verify_token(token, {"keys": [anonymous, key.public_jwk()]}, at=LATER)


@pytest.mark.parametrize(
    ("keyset_factory", "match"),
    [
        (lambda k: [k], "malformed JWKS"),
        (lambda k: {"keys": "nope"}, "malformed JWKS"),
        (lambda k: {}, "malformed JWKS"),
        (lambda k: {"keys": []}, "no keys"),
        (lambda k: {"keys": [42]}, "malformed JWKS key 0"),
        (lambda k: {"keys": [{**k, "d": "AAAA"}]}, "private key material"),
        (lambda k: {"keys": [{**k, "x": "!!"}]}, "does not load"),
        (lambda k: {"keys": [{**k, "kty": "nope"}]}, "does not load"),
        (lambda k: {"keys": [{**k, "alg": ["ES256"]}]}, "does not load"),
        (lambda k: {"keys": [{"kid": "x"}]}, "does not load"),
        (lambda k: {"keys": [{**k, "kid": 7}]}, "non-string kid"),
        (lambda k: {"keys": [k, k]}, "duplicate kid"),
    ],
)
def test_malformed_jwks_is_a_config_error(key: SigningKey, keyset_factory: Any, match: str) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    with pytest.raises(ConfigError, match=match):
        verify_token(token, keyset_factory(key.public_jwk()), at=LATER)


# --- verification refusals -----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", None, 256])
def test_unsigned_tokens_are_rejected(key: SigningKey, keyset: dict[str, Any], alg: Any) -> None:
    header = {"alg": alg, "kid": key.kid} if alg is not None else {"kid": key.kid}
    token = craft(header, valid_claims())
    with pytest.raises(VerificationFailed, match="unsigned"):
        verify_token(token, keyset, at=LATER)


@pytest.mark.parametrize(
    ("alg", "digest"),
    [("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)],
)
@pytest.mark.parametrize("secret_form", ["pem", "jwk"])
def test_hmac_keyed_with_the_public_key_is_rejected(
    key: SigningKey, keyset: dict[str, Any], alg: str, digest: Any, secret_form: str
) -> None:
    if secret_form == "pem":
        secret = key.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        secret = json.dumps(key.public_jwk()).encode()
    signing_input = (
        f"{b64json({'alg': alg, 'kid': key.kid, 'typ': 'JWT'})}.{b64json(valid_claims())}"
    )
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    token = f"{signing_input}.{b64(mac)}"
    with pytest.raises(VerificationFailed, match="algorithm is not accepted") as info:
        verify_token(token, keyset, at=LATER)
    assert info.value.found == repr(alg)


@pytest.mark.parametrize("alg", ["RS256", "ES512", "PS256", "EdDSA"])
def test_other_algorithms_are_rejected(key: SigningKey, keyset: dict[str, Any], alg: str) -> None:
    token = craft({"alg": alg, "kid": key.kid}, valid_claims(), b"x" * 64)
    with pytest.raises(VerificationFailed, match="algorithm is not accepted"):
        verify_token(token, keyset, at=LATER)


def test_unknown_kid(keyset: dict[str, Any]) -> None:
    stranger = SigningKey.generate()
    token = sign_results([make_result()], stranger, issued_at=NOW)
    with pytest.raises(VerificationFailed, match="not in the JWKS") as info:
        verify_token(token, keyset, at=LATER)
    assert info.value.found == repr(stranger.kid)


def test_unknown_kid_in_a_large_set(key: SigningKey) -> None:
    big = jwks(SigningKey.generate() for _ in range(9))
    token = sign_results([make_result()], key, issued_at=NOW)
    with pytest.raises(VerificationFailed, match="not in the JWKS"):
        verify_token(token, big, at=LATER)


@pytest.mark.parametrize("kid", [None, 5, ["a"]])
def test_missing_or_odd_kid(key: SigningKey, keyset: dict[str, Any], kid: Any) -> None:
    header: dict[str, Any] = {"alg": "ES256"}
    if kid is not None:
        header["kid"] = kid
    token = craft(header, valid_claims(), b"\x00" * 64)
    with pytest.raises(VerificationFailed, match="names no key"):
        verify_token(token, keyset, at=LATER)


def test_key_with_the_same_kid_but_another_secret(key: SigningKey, keyset: dict[str, Any]) -> None:
    impostor = SigningKey.generate()
    token = jwt.encode(
        valid_claims(), impostor.private_key, algorithm="ES256", headers={"kid": key.kid}
    )
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        verify_token(token, keyset, at=LATER)


def test_tampered_payload(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["submods"]["software"]["ear.status"] = "contraindicated"
    forged = f"{header}.{b64json(claims)}.{signature}"
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        verify_token(forged, keyset, at=LATER)


def test_truncated_signature(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    header, payload, _ = token.split(".")
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        verify_token(f"{header}.{payload}.{b64(b'short')}", keyset, at=LATER)


def test_jwk_of_another_curve_under_the_tokens_kid(key: SigningKey, key384: SigningKey) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    wrong = {**key384.public_jwk(), "kid": key.kid}
    with pytest.raises(VerificationFailed, match="cannot verify ES256"):
        verify_token(token, {"keys": [wrong]}, at=LATER)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"alg": "ES384"}, "restricted to another algorithm"),
        ({"use": "enc"}, "not a signature key"),
        ({"key_ops": ["encrypt"]}, "may not verify"),
        ({"key_ops": "verify"}, "may not verify"),
    ],
)
def test_jwk_restrictions_are_honoured(key: SigningKey, change: dict[str, Any], match: str) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    jwk = {**key.public_jwk(), **change}
    with pytest.raises(VerificationFailed, match=match):
        verify_token(token, {"keys": [jwk]}, at=LATER)


def test_key_ops_with_verify_is_accepted(key: SigningKey) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    jwk = {**key.public_jwk(), "key_ops": ["verify"]}
    assert verify_token(token, {"keys": [jwk]}, at=LATER)


def test_expired(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    expiry = NOW + timedelta(hours=1)
    assert verify_token(token, keyset, at=expiry - timedelta(seconds=1))
    with pytest.raises(StaleEvidence, match="expired"):
        verify_token(token, keyset, at=expiry)
    assert verify_token(token, keyset, at=expiry, leeway=timedelta(seconds=1))
    with pytest.raises(StaleEvidence, match="expired"):
        verify_token(token, keyset, at=expiry + timedelta(seconds=1), leeway=timedelta(seconds=1))


def test_not_yet_valid(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    assert verify_token(token, keyset, at=NOW)
    with pytest.raises(StaleEvidence, match="iat is in the future"):
        verify_token(token, keyset, at=NOW - timedelta(seconds=1))
    assert verify_token(token, keyset, at=NOW - timedelta(seconds=1), leeway=timedelta(seconds=1))


def test_nbf_in_the_future(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_claims(key, valid_claims(nbf=int(LATER.timestamp())))
    with pytest.raises(StaleEvidence, match="nbf is in the future"):
        verify_token(token, keyset, at=NOW)
    assert verify_token(token, keyset, at=LATER)


def test_wrong_audience(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_results([make_result()], key, issued_at=NOW, audience="server-a")
    with pytest.raises(VerificationFailed, match="another audience"):
        verify_token(token, keyset, at=LATER, audience="server-b")
    unaddressed = sign_results([make_result()], key, issued_at=NOW)
    with pytest.raises(VerificationFailed, match="another audience"):
        verify_token(unaddressed, keyset, at=LATER, audience="server-a")


def test_audience_list(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_claims(key, valid_claims(aud=["server-a", "server-b"]))
    assert verify_token(token, keyset, at=LATER, audience="server-b")
    with pytest.raises(VerificationFailed, match="another audience"):
        verify_token(token, keyset, at=LATER, audience="server-c")


def test_wrong_nonce(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_results([make_result()], key, issued_at=NOW, nonce=b"nonce-one-000000")
    assert verify_token(token, keyset, at=LATER, nonce=b"nonce-one-000000")
    with pytest.raises(StaleEvidence, match="nonce"):
        verify_token(token, keyset, at=LATER, nonce=b"nonce-two-000000")
    without = sign_results([make_result()], key, issued_at=NOW)
    with pytest.raises(VerificationFailed, match="nonce"):
        verify_token(without, keyset, at=LATER, nonce=b"nonce-one-000000")


def test_nonce_list(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = sign_claims(key, valid_claims(eat_nonce=[b64(b"first-nonce"), b64(b"second-nonce")]))
    assert verify_token(token, keyset, at=LATER, nonce=b"second-nonce")
    with pytest.raises(VerificationFailed, match="nonce"):
        verify_token(token, keyset, at=LATER, nonce=b"third-nonce")


@pytest.mark.parametrize("missing", ["exp", "iat"])
def test_missing_time_claims(key: SigningKey, keyset: dict[str, Any], missing: str) -> None:
    claims = valid_claims()
    del claims[missing]
    with pytest.raises(VerificationFailed, match=f"no {missing} claim"):
        verify_token(sign_claims(key, claims), keyset, at=LATER)


@pytest.mark.parametrize("value", ["1700000000", True, None, float("nan"), float("inf"), [1]])
@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
def test_time_claims_must_be_numbers(
    key: SigningKey, keyset: dict[str, Any], name: str, value: Any
) -> None:
    claims = valid_claims()
    claims[name] = value
    with pytest.raises(VerificationFailed, match="not a NumericDate"):
        verify_token(sign_claims(key, claims), keyset, at=LATER)


def test_float_and_huge_time_claims(key: SigningKey, keyset: dict[str, Any]) -> None:
    claims = valid_claims(iat=NOW.timestamp() + 0.5, exp=10**30)
    assert verify_token(sign_claims(key, claims), keyset, at=LATER)
    claims = valid_claims(iat=10**30)
    with pytest.raises(StaleEvidence, match="not yet valid"):
        verify_token(sign_claims(key, claims), keyset, at=LATER)


@pytest.mark.parametrize("profile", [None, "tag:example.com,2024:other", 1])
def test_wrong_or_missing_profile(key: SigningKey, keyset: dict[str, Any], profile: Any) -> None:
    claims = valid_claims()
    if profile is None:
        del claims["eat_profile"]
    else:
        claims["eat_profile"] = profile
    with pytest.raises(VerificationFailed, match="not an EAR"):
        verify_token(sign_claims(key, claims), keyset, at=LATER)


def test_critical_header_extensions_are_rejected(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = craft({"alg": "ES256", "kid": key.kid, "crit": ["exp"], "exp": 1}, valid_claims())
    with pytest.raises(VerificationFailed, match="header extensions"):
        verify_token(token, keyset, at=LATER)


def test_unencoded_payload_is_rejected(key: SigningKey, keyset: dict[str, Any]) -> None:
    header = b64json({"alg": "ES256", "kid": key.kid, "b64": False})
    with pytest.raises(VerificationFailed, match="token rejected"):
        verify_token(f"{header}..{b64(b'x' * 64)}", keyset, at=LATER)


def test_signed_payload_that_is_not_json(key: SigningKey, keyset: dict[str, Any]) -> None:
    token = jwt.api_jws.encode(
        b"not json", key.private_key, algorithm="ES256", headers={"kid": key.kid}
    )
    with pytest.raises(MalformedEvidence, match="does not decode"):
        verify_token(token, keyset, at=LATER)


@pytest.mark.parametrize(
    ("token", "match"),
    [
        (b"a.b.c", "not a string"),
        ("", "3 dot-separated"),
        ("a.b", "3 dot-separated"),
        ("a.b.c.d", "3 dot-separated"),
        ("a+b.c.d", "not base64url"),
        ("abcde.AA.AA", "not base64url"),
        ("AB.AA.AA", "not canonical"),
        ("eyJh=.AA.AA", "not base64url"),
        (f"{b64(b'not json')}.AA.AA", "not JSON"),
        (f"{b64(b'[1]')}.AA.AA", "not a JSON object"),
        (f"{b64(b'[' * 5000 + b']' * 5000)}.AA.AA", "not JSON"),
        (f"{b64json({'alg': 'ES256'})}.{'A' * (1 << 20)}.AA", "too long"),
        (f"{b64json({'alg': 'ES256'})}.!.AA", "not base64url"),
        (f"{b64json({'alg': 'ES256'})}.AA.!", "not base64url"),
    ],
)
def test_malformed_tokens(keyset: dict[str, Any], token: Any, match: str) -> None:
    with pytest.raises(MalformedEvidence, match=match):
        verify_token(token, keyset, at=LATER)


def test_verify_rejects_naive_time_and_negative_leeway(
    key: SigningKey, keyset: dict[str, Any]
) -> None:
    token = sign_results([make_result()], key, issued_at=NOW)
    with pytest.raises(ConfigError, match="naive"):
        verify_token(token, keyset, at=LATER.replace(tzinfo=None))
    with pytest.raises(ConfigError, match="leeway"):
        verify_token(token, keyset, at=LATER, leeway=timedelta(seconds=-1))


# --- garbage in, CCAttestError out ---------------------------------------------------------

B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_raises_only_ccattest_errors(keyset: dict[str, Any], text: str) -> None:
    with pytest.raises(CCAttestError):
        verify_token(text, keyset, at=LATER)


@settings(max_examples=200, deadline=None)
@given(
    segments=st.lists(
        st.text(alphabet=B64URL_ALPHABET + "=+/.~ é", max_size=80), min_size=3, max_size=3
    )
)
def test_arbitrary_three_segment_strings_raise_only_ccattest_errors(
    keyset: dict[str, Any], segments: list[str]
) -> None:
    with pytest.raises(CCAttestError):
        verify_token(".".join(segments), keyset, at=LATER)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_arbitrary_headers_raise_only_ccattest_errors(
    key: SigningKey, keyset: dict[str, Any], data: st.DataObject
) -> None:
    header = data.draw(
        st.dictionaries(
            st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku", "x"]),
            st.sampled_from(["ES256", "ES384", "HS256", "none", key.kid]) | JSON,
        )
    )
    payload = data.draw(JSON)
    signature = data.draw(st.binary(max_size=100))
    with pytest.raises(CCAttestError):
        verify_token(craft(header, payload, signature), keyset, at=LATER)


@settings(max_examples=100, deadline=None)
@given(
    claims=st.dictionaries(
        st.sampled_from(["eat_profile", "iat", "exp", "nbf", "aud", "eat_nonce", "sub"]),
        st.sampled_from([EAR_PROFILE, int(NOW.timestamp()), "aud", b64(b"nonce-nonce")]) | JSON,
    )
)
def test_signed_arbitrary_claims_verify_or_raise_ccattest_errors(
    key: SigningKey, keyset: dict[str, Any], claims: dict[str, Any]
) -> None:
    token = sign_claims(key, claims)
    try:
        verified = verify_token(token, keyset, at=LATER, audience="aud", nonce=b"nonce-nonce")
    except CCAttestError:
        return
    assert verified["eat_profile"] == EAR_PROFILE
    assert verified["aud"] == "aud" or "aud" in verified["aud"]


def test_key_set_is_loaded_once_and_verifies_like_a_jwks() -> None:
    signer = SigningKey.generate("ES384")
    token = sign_results([make_result()], signer, issued_at=NOW)
    key_set = tokens.KeySet(jwks([signer]))
    assert verify_token(token, key_set, at=LATER) == verify_token(token, jwks([signer]), at=LATER)
    other = tokens.KeySet(jwks([SigningKey.generate("ES384")]))
    with pytest.raises(VerificationFailed, match="key not in the JWKS"):
        verify_token(token, other, at=LATER)
    with pytest.raises(ConfigError, match="JWKS holds no keys"):
        tokens.KeySet({"keys": []})


# --- expiry bounded by the collateral a result rested on -----------------------------------


def test_ear_exp_is_the_collateral_bound_of_the_result(key: SigningKey, software) -> None:
    from ccattest.policy import Policy, SoftwarePolicy, appraise

    evidence, report_data, _ = software.evidence()
    verified = software.verifier().verify(evidence, report_data=report_data, at=software.now)
    crl_end = software.now + timedelta(minutes=7)
    verified = dataclasses.replace(verified, valid_until=crl_end,
                                   valid_until_source="CRL nextUpdate")
    result = appraise(Policy(software=SoftwarePolicy(allow=True)), verified, software.now)
    assert result.expires_at == crl_end
    claims = verify_token(sign_results([result], key, issued_at=software.now), jwks([key]),
                          at=software.now)
    assert claims["exp"] == int(crl_end.timestamp())
    # nor may a caller stretch the token past it
    with pytest.raises(ConfigError, match="outlive its results") as raised:
        sign_results([result], key, issued_at=software.now, expires_at=crl_end + timedelta(1))
    assert "CRL nextUpdate" in str(raised.value.expected)


def test_token_expiry_for_valid_until() -> None:
    assert jws_expiry({"exp": 1748779200}) == datetime(2025, 6, 1, 12, tzinfo=UTC)
    for claims in ({}, {"exp": True}, {"exp": "soon"}, {"exp": 1e300}):
        assert jws_expiry(claims) is None
