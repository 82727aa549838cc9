"""Shared SNP test material: one set of test keys per session (RSA keys are slow to make)
and loaders for the real vectors, with the facts MANIFEST.md states for each sample."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from ccattest.testing.snp import SnpFixture, SnpKeys


@pytest.fixture(scope="session")
def snp_keys() -> SnpKeys:
    return SnpKeys.generate()


@pytest.fixture(scope="session")
def milan(snp_keys: SnpKeys) -> SnpFixture:
    return SnpFixture.create("Milan", keys=snp_keys)


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def manifest_facts(vectors: Path, relative: str) -> dict[str, object]:
    """The facts MANIFEST.md states for one sample row, parsed from its last column."""
    for line in (vectors / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = line.split(" | ")
        if len(cells) > 2 and cells[1] == relative:
            return _facts(cells[-1])
    raise AssertionError(f"no MANIFEST row for {relative}")


def _facts(text: str) -> dict[str, object]:
    def hex_of(name: str) -> str:
        match = re.search(rf"\b{name}=([0-9a-f]+)", text)
        assert match, name
        return match.group(1)

    tcb = re.search(r"reported_tcb bl/tee/snp/ucode=(\d+)/(\d+)/(\d+)/(\d+)", text)
    policy = re.search(r"policy=(0x[0-9a-f]+) \(DEBUG=(\d)", text)
    product = re.search(r"product: ([A-Za-z]+)", text)
    assert tcb and policy and product
    return {
        "report_data": hex_of("report_data"), "measurement": hex_of("measurement"),
        "host_data": hex_of("host_data"), "chip_id": hex_of("chip_id"),
        "reported_tcb": dict(zip(("bootloader", "tee", "snp", "microcode"),
                                 map(int, tcb.groups()), strict=True)),
        "policy": int(policy.group(1), 16), "debug": policy.group(2) == "1",
        "vmpl": int(re.search(r"vmpl=(\d+)", text).group(1)),  # type: ignore[union-attr]
        "guest_svn": int(re.search(r"guest_svn=(\d+)", text).group(1)),  # type: ignore[union-attr]
        "product": product.group(1),
        "signing_key": "vlek" if "signed by VLEK" in text else "vcek",
        "version": int(re.search(r"REPORT v(\d)", text).group(1)),  # type: ignore[union-attr]
    }


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
