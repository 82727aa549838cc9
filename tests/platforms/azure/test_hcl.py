"""HCL report parsing: the trustee samples, round trips, and bounds on every length."""

from __future__ import annotations

import contextlib
import dataclasses
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence
from ccattest.platforms.azure.hcl import (
    IGVM_OFFSET,
    HashType,
    HclReport,
    ReportType,
    parse_hcl_report,
    parse_runtime_data,
)
from ccattest.testing.azure import AzureFixture

TRUSTEE = "azure/trustee/deps/verifier/test_data/"
SNP = AzureFixture.create("azure-snp")
SAMPLE = SNP.hcl().to_bytes()


@pytest.mark.parametrize(("folder", "kind", "var_size", "digest"), [
    ("az-snp-vtpm", ReportType.SNP, 1110, "b3fbad6514c83caeb0380882145e49f7"),
    ("az-tdx-vtpm", ReportType.TDX, 1201, "9734504f161d104c74e3165c15f779b0"),
])
def test_trustee_reports(vectors: Path, folder: str, kind: ReportType, var_size: int,
                         digest: str) -> None:
    raw = (vectors / TRUSTEE / folder / "hcl-report.bin").read_bytes()
    report = parse_hcl_report(raw)
    assert report.report_type == kind and report.hash_type == HashType.SHA256
    assert len(report.runtime_data) == var_size and report.nv_size == 2600
    assert report.expected_report_data().hex().startswith(digest)
    assert report.to_bytes() == raw
    runtime = parse_runtime_data(report.runtime_data)
    assert runtime.key()["kty"] == "RSA" and "HCLEkPub" in runtime.keys
    assert runtime.vm_configuration["secure-boot"] is True
    assert runtime.user_data == "00" * 64
    if kind == ReportType.SNP:
        assert report.snp_report == report.hardware_report
        with pytest.raises(MalformedEvidence):
            _ = report.tdreport
    else:
        assert len(report.tdreport) == 0x400
        with pytest.raises(MalformedEvidence):
            _ = report.snp_report


def test_round_trip_without_padding() -> None:
    report = dataclasses.replace(parse_hcl_report(SAMPLE), nv_size=None)
    raw = report.to_bytes()
    assert len(raw) == report.report_size and parse_hcl_report(raw) == report


@pytest.mark.parametrize("hash_type", [HashType.SHA384, HashType.SHA512])
def test_other_hash_types(hash_type: HashType) -> None:
    report = dataclasses.replace(parse_hcl_report(SAMPLE), hash_type=hash_type)
    again = parse_hcl_report(report.to_bytes())
    assert again.hash_type == hash_type and len(again.runtime_digest()) in (48, 64)
    assert len(again.expected_report_data()) == 64


def _patched(offset: int, value: int) -> bytes:
    data = bytearray(SAMPLE)
    struct.pack_into("<I", data, offset, value)
    return bytes(data)


@pytest.mark.parametrize("data", [
    b"", SAMPLE[:IGVM_OFFSET], SAMPLE[:0x600], b"XCLA" + SAMPLE[4:], SAMPLE + b"\x01",
    _patched(8, 0x9000), _patched(IGVM_OFFSET, 5), _patched(IGVM_OFFSET + 8, 3),
    _patched(IGVM_OFFSET + 8, 0), _patched(IGVM_OFFSET + 12, 0), _patched(IGVM_OFFSET + 12, 9),
    bytes(SAMPLE[:8]) + struct.pack("<I", 0x4D4 + 1130) + SAMPLE[12:0x4C0]
    + struct.pack("<5I", 1130, 1, 2, 1, 1110) + bytes(10),
    b"\0" * 0x20000,
])
def test_bad_reports(data: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        parse_hcl_report(data)


def test_not_bytes() -> None:
    with pytest.raises(MalformedEvidence):
        parse_hcl_report("HCLA")  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [b"[1]", b"{", b'{"keys": 3}', b'{"keys": [1]}',
                                  b'{"vm-configuration": []}', b"\xff"])
def test_bad_runtime_data(data: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        parse_runtime_data(data)


def test_runtime_without_ak() -> None:
    runtime = parse_runtime_data(b'{"keys": [{"kid": "HCLEkPub"}], "user-data": 1}\0\0')
    assert runtime.user_data is None and runtime.vm_configuration == {}
    with pytest.raises(MalformedEvidence, match="HCLAkPub"):
        runtime.key()


def test_report_type_names() -> None:
    report: HclReport = parse_hcl_report(SAMPLE)
    assert report.type_name == "2 (SNP)"


@given(st.integers(0, len(SAMPLE) - 1), st.integers(1, 255))
def test_mutations_only_malformed(offset: int, mask: int) -> None:
    data = bytearray(SAMPLE)
    data[offset] ^= mask
    try:
        report = parse_hcl_report(bytes(data))
    except MalformedEvidence:
        return
    with contextlib.suppress(MalformedEvidence):
        parse_runtime_data(report.runtime_data)


@given(st.integers(0, len(SAMPLE)), st.binary(max_size=64))
def test_truncated_or_oversized_only_malformed(cut: int, tail: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        parse_hcl_report(SAMPLE[:cut] + tail)
