"""Shared GPU test material: one test PKI per architecture per session, and loaders for the
real vectors with the facts MANIFEST.md states for each sample."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ccattest.testing.nvgpu import NvgpuFixture

GPU = "gpu/"
SDK = "nvattest-sdk/nv-attestation-sdk-cpp/unit-tests/testdata/"
SAMPLES = SDK + "sample_attestation_data/gpu/"
SERIALIZED = "nvattest-sdk/common-test-data/serialized_test_evidence/"
TRUSTEE = "trustee/deps/verifier/test_data/nvidia/"
ROOT_SAMPLE = "nvtrust-lgv/certs/verifier_device_root.pem"
LGV_SAMPLES = "nvtrust-lgv/samples/"


@pytest.fixture(scope="session")
def hopper() -> NvgpuFixture:
    return NvgpuFixture.create("HOPPER")


@pytest.fixture(scope="session")
def blackwell() -> NvgpuFixture:
    return NvgpuFixture.create("BLACKWELL")


@dataclass(frozen=True)
class Facts:
    """A MANIFEST row of the GPU table: nonce, architecture, versions, expected outcome."""

    nonce: str
    arch: str
    driver: str
    vbios: str
    project: str
    outcome: str
    what: str


def manifest_facts(vectors: Path, relative: str) -> Facts:
    for line in (vectors / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) == 10 and cells[0] == relative:
            versions = cells[8]
            driver, _, rest = versions.partition(" / ")
            vbios, _, project = rest.partition(" ")
            return Facts(nonce=cells[6], arch=cells[7], driver=driver, vbios=vbios,
                         project=project.strip("()"), outcome=cells[9], what=cells[5])
    raise AssertionError(f"no MANIFEST row for {relative}")


def read(vectors: Path, relative: str) -> bytes:
    return (vectors / GPU / relative).read_bytes()
