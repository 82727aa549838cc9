"""The NVIDIA evidence list JSON (the attestation SDK's serialised evidence: arch, PEM chain,
report, nonce per GPU): platforms.nvgpu.abi.parse_evidence_list, then each entry's report
and certificate chain (platforms.nvgpu.certs.load_chain)."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.nvgpu.abi import parse_evidence_list, parse_report
    from ccattest.platforms.nvgpu.certs import load_chain
    from ccattest.testing.nvgpu import NvgpuFixture, multi_evidence


def entry(data: bytes) -> None:
    for item in parse_evidence_list(data):
        parse_report(item.evidence)
        load_chain(item.certificate)


def seeds() -> list[bytes]:
    real = common.vectors("gpu/nvattest-sdk/common-test-data/serialized_test_evidence/*.json",
                          "gpu/nvattest-sdk/**/evidence_hopper_*.json")
    fixtures = [NvgpuFixture.create("HOPPER"), NvgpuFixture.create("BLACKWELL")]
    return [*real, multi_evidence(fixtures, bytes(32)).report]


if __name__ == "__main__":
    common.main("nvgpu_evidence", entry, seeds())
