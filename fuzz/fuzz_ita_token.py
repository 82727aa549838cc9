"""Intel Trust Authority tokens: platforms.ita.verify.ItaVerifier.verify_token (JWKS key
with its x5c chain to a test root). Mode 0 feeds the token text as is; mode 1 signs the
fuzzed payload (claims JSON) with the leaf key (claim mapping, nonce and held-data binding);
mode 2 feeds JWKS documents (load_ita_jwks, the x5c chains in them)."""

from __future__ import annotations

import json
from datetime import datetime

import common

with common.instrumented():
    from ccattest.platforms.ita.verify import JWS_ALGORITHM, load_ita_jwks
    from ccattest.testing.ita import ItaFixture

FIXTURE = ItaFixture.create()
VERIFIER = FIXTURE.verifier()
AT: datetime = FIXTURE.now


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 3)
    if mode == 0:
        token = rest.decode("latin-1")  # any text: tokens reach ccattest as str
    elif mode == 1:
        token = FIXTURE.signed({"alg": JWS_ALGORITHM, "kid": FIXTURE.kid, "typ": "JWT",
                                "jku": "https://ita.test.invalid/certs"}, rest)
    else:
        load_ita_jwks(rest)
        return
    VERIFIER.verify_token(token, at=AT, report_data=FIXTURE.report_data)


def seeds() -> list[bytes]:
    real_tokens = common.vectors("ita/**/validToken.jwt")
    real_jwks = common.vectors("ita/**/*JWKS.json", "ita/**/validJwks.json")
    claims = [json.dumps(FIXTURE.claims()).encode(),
              json.dumps(FIXTURE.claims(nested=True)).encode(),
              json.dumps(FIXTURE.claims(mode="report_data")).encode()]
    return (common.with_mode(0, [*real_tokens, FIXTURE.token().encode()])
            + common.with_mode(1, claims)
            + common.with_mode(2, [*real_jwks, json.dumps(FIXTURE.jwks()).encode()]))


if __name__ == "__main__":
    common.main("ita_token", entry, seeds())
