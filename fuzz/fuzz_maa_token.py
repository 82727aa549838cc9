"""Microsoft Azure Attestation tokens: platforms.azure.maa.MaaVerifier.verify_token against
a test instance's JWKS. Mode 0 feeds the token text as is; mode 1 signs the fuzzed payload
(claims JSON) with the instance key, so claim mapping (x-ms-* sections, SNP claims, runtime data,
binding) sees arbitrary values. Mode 2 feeds JWKS documents (load_maa_jwks)."""

from __future__ import annotations

import json
from datetime import datetime

import common
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

with common.instrumented():
    from ccattest.evidence import bind
    from ccattest.platforms.azure.maa import load_maa_jwks
    from ccattest.testing.ita import compact
    from ccattest.testing.maa import TEST_ATTESTER, MaaFixture

FIXTURE = MaaFixture.create()
VERIFIER = FIXTURE.verifier()
REPORT_DATA = bind(b"maa-fuzz-nonce-0123456789", TEST_ATTESTER)
AT: datetime = FIXTURE.now


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 3)
    if mode == 0:
        token = rest.decode("latin-1")  # any text: tokens reach ccattest as str
    elif mode == 1:
        token = compact({"alg": "RS256", "jku": FIXTURE.jku, "kid": FIXTURE.kid, "typ": "JWT"},
                        rest, lambda data: FIXTURE.keys.signing.sign(data, PKCS1v15(), SHA256()))
    else:
        load_maa_jwks(rest)
        return
    VERIFIER.verify_token(token, report_data=REPORT_DATA, at=AT)


def seeds() -> list[bytes]:
    real = common.vectors("azure/azure-attestation-samples/maa.jwt.verifier.dotnet/*.txt")
    claims = [json.dumps(FIXTURE.claims(REPORT_DATA)).encode()]
    claims += common.vectors("azure/cvm-guest-attestation/**/sampleAttestationToken.json")
    jwks = [json.dumps(FIXTURE.jwks()).encode(), json.dumps(FIXTURE.jwks(numbers=True)).encode()]
    return (common.with_mode(0, [*real, FIXTURE.token(REPORT_DATA).encode()])
            + common.with_mode(1, claims) + common.with_mode(2, jwks))


if __name__ == "__main__":
    common.main("maa_token", entry, seeds())
