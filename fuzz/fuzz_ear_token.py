"""EAR result tokens (JWTs ccattest signs and relying parties verify): tokens.verify_token
and jws.parse_header. Mode 0 feeds the token text as is (header, segments, signature);
mode 1 signs the fuzzed payload (claims JSON) with the JWKS key, so the claim checks after the
signature (profile, times, audience, nonce) see arbitrary values."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import common
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

with common.instrumented():
    from ccattest.jws import parse_header
    from ccattest.result import AttestationResult, Reason, TrustClaim, TrustVector
    from ccattest.testing.cases import FIXED_NOW
    from ccattest.testing.ita import compact
    from ccattest.tokens import SigningKey, jwks, sign_results, verify_token

KEY = SigningKey.generate("ES256")
JWKS = jwks([KEY])
NONCE = b"0123456789abcdef"
AT: datetime = FIXED_NOW + timedelta(minutes=1)


def _es256(data: bytes) -> bytes:
    r, s = decode_dss_signature(KEY.private_key.sign(data, ECDSA(SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    if mode == 0:
        token = rest.decode("latin-1")  # any text: tokens reach ccattest as str
        parse_header(token)
    else:
        token = compact({"alg": KEY.alg, "kid": KEY.kid, "typ": "JWT"}, rest, _es256)
    verify_token(token, JWKS, at=AT, audience="fl-server", nonce=NONCE)


def seeds() -> list[bytes]:
    result = AttestationResult(
        platform="software",
        trust_vector=TrustVector({TrustClaim.INSTANCE_IDENTITY: 2, TrustClaim.HARDWARE: 2}),
        verified=True, issued_at=FIXED_NOW, expires_at=FIXED_NOW + timedelta(hours=1),
        reasons=(Reason("debug", False, "debug mode is on", expected="off", found="on"),))
    token = sign_results([result], KEY, issued_at=FIXED_NOW, nonce=NONCE, audience="fl-server")
    claims = jwt.decode(token, options={"verify_signature": False})
    return common.with_mode(0, [token.encode()]) + common.with_mode(1, [json.dumps(claims)
                                                                       .encode()])


if __name__ == "__main__":
    common.main("ear_token", entry, seeds())
