"""NVIDIA NRAS results (detached EAT: an overall JWT and one JWT per GPU):
platforms.nvgpu.nras.verify_nras against a test JWKS. Mode 0 feeds the detached EAT JSON
as is (parse_detached_eat and the token headers); mode 1 signs the fuzzed per-GPU claims
JSON and an overall token covering it, so the claim mapping (map_gpu_claims, gpu_failures,
submods, nonces) sees arbitrary values; mode 2 feeds the result header
(parse_header_result)."""

from __future__ import annotations

import json
from datetime import datetime

import common

with common.instrumented():
    from ccattest.platforms.nvgpu.nras import parse_header_result, verify_nras
    from ccattest.testing.nras import NrasFixture, detached

FIXTURE = NrasFixture.create()
JWKS = FIXTURE.jwks()
AT: datetime = FIXTURE.now


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 3)
    if mode == 0:
        eat = rest
    elif mode == 1:
        claims = common.json_object(rest)
        if claims is None:
            return
        gpus = {"GPU-0": FIXTURE.sign(claims)}
        eat = detached(FIXTURE.sign(FIXTURE.overall_claims(gpus)), gpus).encode()
    else:
        parse_header_result(rest)
        return
    verify_nras(eat, JWKS, at=AT, nonce=FIXTURE.nonce, header_result="true")


def seeds() -> list[bytes]:
    real = common.vectors("gpu/nvattest-sdk/**/*detached_eat.json",
                          "gpu/nvtrust-sdk/attestation_sdk/tests/pytests/data/*/detached_*.json")
    eats = [*real, FIXTURE.eat(2).encode(), FIXTURE.eat(1, failing=[0]).encode()]
    claims = [json.dumps(FIXTURE.gpu_claims(0)).encode(),
              json.dumps(FIXTURE.gpu_claims(1, passed=False)).encode()]
    return (common.with_mode(0, eats) + common.with_mode(1, claims)
            + common.with_mode(2, [b"true", b"false"]))


if __name__ == "__main__":
    common.main("nras_token", entry, seeds())
