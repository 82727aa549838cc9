"""SPDM GET_MEASUREMENTS request + response and the multi-GPU JSON: bytes <-> records.

Oracles: NVIDIA's own parser output for one sample (spdm_parsed_output.json and
spdm_req_parsed_output.json, NVIDIA/attestation-sdk, Apache-2.0) and the claims trustee
derives from another (hopperAttestationReport-claims.txt, confidential-containers/trustee,
Apache-2.0).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence
from ccattest.platforms.nvgpu import abi
from ccattest.platforms.nvgpu.abi import (
    GpuEvidence,
    GpuReport,
    MeasurementBlock,
    MeasurementRequest,
    MeasurementResponse,
    OpaqueEntry,
    decode_opaque,
    dump_evidence_list,
    format_vbios,
    is_evidence_list,
    parse_evidence_list,
    parse_report,
    report_bytes,
    vbios_bytes,
)
from ccattest.testing.nvgpu import NvgpuFixture

from .conftest import SAMPLES, SDK, SERIALIZED, TRUSTEE, manifest_facts, read

REPORTS = [
    "nvtrust-lgv/samples/hopperAttestationReport.txt",
    "nvtrust-lgv-2023/samples/attestationReport.txt",
    SDK + "hopperAttestationReport.txt",
    SAMPLES + "hopperAttestationReport.txt",
    SAMPLES + "hopperAttestationReportExpired.txt",
    SAMPLES + "hopperAttestationReportInvalidSignature.txt",
    SAMPLES + "blackwellAttestationReport.txt",
    TRUSTEE + "hopperAttestationReport.txt",
    TRUSTEE + "hopper_coco_report1.txt",
    "go-nvtrust/pkg/gonvtrust/mocks/attestationReport.txt",
]


@pytest.mark.parametrize("relative", REPORTS)
def test_every_sample_parses_with_the_manifest_facts(vectors: Path, relative: str) -> None:
    facts = manifest_facts(vectors, relative)
    report = parse_report(read(vectors, relative))
    fields = report.fields
    assert report.nonce.hex() == facts.nonce
    assert fields.driver_version == facts.driver
    assert fields.vbios_version == facts.vbios
    project, project_sku, chip_sku = facts.project.split("_")
    assert (fields.project, fields.project_sku, fields.chip_sku) == (project, project_sku,
                                                                     chip_sku)
    assert len(report.response.blocks) == 64
    assert report.to_bytes() == report_bytes(read(vectors, relative))


def test_parser_matches_nvidias_parsed_output(vectors: Path) -> None:
    report = parse_report(read(vectors, SDK + "hopperAttestationReport.txt"))
    oracle = json.loads(read(vectors, SDK + "spdm_parsed_output.json"))
    request = json.loads(read(vectors, SDK + "spdm_req_parsed_output.json"))
    response = report.response
    assert int(request["SPDMVersion"], 16) == report.request.version
    assert int(request["Param1"], 16) == report.request.param1
    assert int(request["Param2"], 16) == report.request.param2
    assert int(request["SlotIDParam"], 16) == report.request.slot_id
    assert request["Nonce"] == "0x" + report.nonce.hex()
    assert int(oracle["SPDMVersion"], 16) == response.version
    assert (int(oracle["Param1"], 16), int(oracle["Param2"], 16)) == (response.param1,
                                                                      response.param2)
    assert oracle["NumberOfBlocks"] == len(response.blocks)
    assert oracle["MeasurementRecordLength"] == sum(len(b.to_bytes()) for b in response.blocks)
    assert oracle["Nonce"] == "0x" + response.nonce.hex()
    assert oracle["OpaqueLength"] == sum(len(e.to_bytes()) for e in response.opaque)
    assert oracle["Signature"] == "0x" + response.signature.hex()
    blocks = oracle["MeasurementRecord"]["MeasurementBlocks"]
    for block in response.blocks:
        expected = blocks[str(block.index)]
        assert expected["DMTFSpecMeasurementValueType"] == block.dmtf_type
        assert expected["DMTFSpecMeasurementValue"] == "0x" + block.value.hex()
    fields = oracle["OpaqueData"]["OpaqueDataField"]
    raw = {entry.type: entry.value for entry in response.opaque}
    named = {"VBIOS_VERSION": abi.VBIOS_VERSION, "BOARD_ID": abi.BOARD_ID,
             "CHIP_SKU": abi.CHIP_SKU, "CHIP_SKU_MOD": abi.CHIP_SKU_MOD,
             "PROJECT": abi.PROJECT, "PROJECT_SKU": abi.PROJECT_SKU,
             "PROJECT_SKU_MOD": abi.PROJECT_SKU_MOD, "DRIVER_VERSION": abi.DRIVER_VERSION,
             "GPU_INFO": abi.GPU_INFO, "CPRINFO": abi.CPR_INFO,
             "NVDEC0_STATUS": abi.NVDEC0_STATUS, "FWID": abi.FWID,
             "PROTECTED_PCIE_STATUS": abi.PROTECTED_PCIE_STATUS}
    for name, kind in named.items():
        assert fields[f"OPAQUE_FIELD_ID_{name}"] == "0x" + raw[kind].hex(), name
    assert list(report.fields.msrscnt or ()) == fields["OPAQUE_FIELD_ID_MSRSCNT"]


def test_fields_match_trustees_claims(vectors: Path) -> None:
    report = parse_report(read(vectors, TRUSTEE + "hopperAttestationReport.txt"))
    claims = json.loads(read(vectors, TRUSTEE + "hopperAttestationReport-claims.txt"))
    config, fields = claims["config"], report.fields
    assert claims["arch"] == "Hopper"
    assert fields.driver_version == config["driver_version"]
    assert fields.vbios_version == config["vbios_version"].upper()
    assert (fields.fwid or b"").hex() == config["fwid"]
    assert (fields.chip_sku, fields.chip_sku_mod) == (config["chip_sku"], config["chip_sku_mod"])
    assert (fields.project, fields.project_sku) == (config["project"], config["project_sku"])
    assert (fields.gpu_info or b"").hex() == config["gpu_info"]
    assert (fields.board_id or b"").hex() == config["board_id"]
    assert (fields.cpr_info or b"").hex() == config["cpr_info"]
    assert fields.nvdec0_enabled is False and fields.ppcie_enabled is False
    measured = {str(index): value.hex() for index, value in report.measurements().items()}
    assert measured == claims["measurements"]
    counts = {str(index + 1): count for index, count in enumerate(fields.msrscnt or ())}
    assert counts == config["measurement_count"]


def test_blackwell_and_sdk_fields(vectors: Path) -> None:
    blackwell = parse_report(read(vectors, SAMPLES + "blackwellAttestationReport.txt")).fields
    assert blackwell.opaque_data_version == 0 and blackwell.chip_info is None
    sdk = parse_report(read(vectors, SDK + "hopperAttestationReport.txt")).fields
    assert (sdk.opaque_data_version, sdk.feature_flag, sdk.feature_name) == (1, 0, "SPT")
    padded = parse_report(read(vectors, TRUSTEE + "hopper_coco_report1.txt"))
    assert padded.padding == 1  # trustee's copy keeps one byte of NVML's buffer


def test_switch_reports_are_not_gpu_reports(vectors: Path) -> None:
    with pytest.raises(MalformedEvidence, match="vbios"):
        parse_report(read(vectors, SDK + "switchAttestationReport.txt"))


# --- round trips and mutations ------------------------------------------------------------------

def _blocks() -> st.SearchStrategy[tuple[MeasurementBlock, ...]]:
    block = st.builds(MeasurementBlock, index=st.integers(0, 255),
                      value=st.binary(max_size=64), dmtf_type=st.integers(0, 255))
    return st.lists(block, max_size=12, unique_by=lambda b: b.index).map(tuple)


UNKNOWN_TYPES = st.integers(0, 0xFFFF).filter(lambda kind: kind not in abi._DECODERS)
OPAQUE = st.lists(st.builds(OpaqueEntry, type=UNKNOWN_TYPES, value=st.binary(max_size=40)),
                  max_size=6, unique_by=lambda e: e.type).map(tuple)
REPORTS_STRATEGY = st.builds(
    GpuReport,
    request=st.builds(MeasurementRequest, nonce=st.binary(min_size=32, max_size=32),
                      slot_id=st.integers(0, 255)),
    response=st.builds(MeasurementResponse, blocks=_blocks(),
                       nonce=st.binary(min_size=32, max_size=32), opaque=OPAQUE,
                       signature=st.binary(min_size=96, max_size=96),
                       param1=st.integers(0, 255), param2=st.integers(0, 255)),
    padding=st.integers(0, 8),
)


@given(REPORTS_STRATEGY)
def test_round_trip(report: GpuReport) -> None:
    data = report.to_bytes()
    assert parse_report(data) == report
    assert parse_report(data.hex()) == report
    assert report.signed_bytes() == data[:len(data) - 96 - report.padding]


def test_typed_fields_round_trip(hopper: NvgpuFixture, blackwell: NvgpuFixture) -> None:
    for fixture in (hopper, blackwell):
        report = fixture.report(bytes(32))
        assert parse_report(report.with_signature(bytes(96)).to_bytes()) == report.with_signature(
            bytes(96))
        assert report.fields.fwid == fixture.fwid
        assert report.fields.vbios_version in ("96.00.9F.00.01", "97.00.88.00.0F")


@given(st.binary(max_size=600))
def test_random_bytes_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        parse_report(b"\x11\xe0\x01\xff" + data)


@given(st.data())
def test_mutations_only_malformed(hopper: NvgpuFixture, data: st.DataObject) -> None:
    raw = bytearray(hopper.sign(hopper.report(bytes(range(32)))))
    cut = data.draw(st.integers(0, len(raw)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(MalformedEvidence):
        parse_report(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))


# --- precise rejections ----------------------------------------------------------------------

def _valid(hopper: NvgpuFixture) -> bytes:
    return hopper.sign(hopper.report(bytes(32)))


def test_hex_text_forms(hopper: NvgpuFixture) -> None:
    raw = _valid(hopper)
    assert report_bytes(raw) == raw
    assert report_bytes(raw.hex()) == raw
    assert report_bytes(("0x" + raw.hex().upper()).encode()) == raw
    assert report_bytes(" \n".join([raw.hex()[:100], raw.hex()[100:]])) == raw
    with pytest.raises(MalformedEvidence, match="odd"):
        report_bytes(raw.hex()[:-1])
    with pytest.raises(MalformedEvidence, match="bytes or hex"):
        report_bytes(12)  # type: ignore[arg-type]
    with pytest.raises(MalformedEvidence, match="too large"):
        report_bytes(bytes(5 * abi.MAX_REPORT_SIZE))
    with pytest.raises(MalformedEvidence, match="too large"):
        parse_report(raw + bytes(abi.MAX_REPORT_SIZE))


def test_padding_must_be_zero(hopper: NvgpuFixture) -> None:
    raw = _valid(hopper)
    assert parse_report(raw + bytes(3)).padding == 3
    with pytest.raises(MalformedEvidence, match="after the report's signature"):
        parse_report(raw + b"\0\x07")


def _with(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value):]


def test_request_checks(hopper: NvgpuFixture) -> None:
    raw = _valid(hopper)
    with pytest.raises(MalformedEvidence, match="GET_MEASUREMENTS"):
        parse_report(_with(raw, 1, b"\xe1"))
    with pytest.raises(MalformedEvidence, match="all measurements"):
        parse_report(_with(raw, 3, b"\x01"))
    with pytest.raises(ValueError, match="32 bytes"):
        MeasurementRequest(bytes(31)).to_bytes()


def _response(**changes: object) -> MeasurementResponse:
    base = MeasurementResponse(blocks=(MeasurementBlock(1, bytes(48)),), nonce=bytes(32),
                               opaque=())
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _report_bytes(response: MeasurementResponse) -> bytes:
    return MeasurementRequest(bytes(32)).to_bytes() + response.unsigned_bytes() + bytes(96)


def test_block_checks() -> None:
    raw = bytearray(_report_bytes(_response()))
    header = abi.REQUEST_SIZE
    raw[header + 4] = 2  # the header claims two blocks, the record holds one
    with pytest.raises(MalformedEvidence, match="block count"):
        parse_report(bytes(raw))
    twice = _response(blocks=(MeasurementBlock(1, b"a"), MeasurementBlock(1, b"b")))
    with pytest.raises(MalformedEvidence, match="block count"):
        parse_report(_report_bytes(twice))
    not_dmtf = _response(blocks=(MeasurementBlock(1, bytes(48), spec=2),))
    with pytest.raises(MalformedEvidence, match="not a DMTF block"):
        parse_report(_report_bytes(not_dmtf))
    raw = bytearray(_report_bytes(_response()))
    struct.pack_into("<H", raw, header + 8 + 2, 40)  # measurement size != 3 + value size
    with pytest.raises(MalformedEvidence, match="not a DMTF block"):
        parse_report(bytes(raw))


def test_opaque_checks() -> None:
    truncated = _response(opaque=(OpaqueEntry(99, b"abc"),))
    raw = bytearray(_report_bytes(truncated))
    offset = len(raw) - 96 - 7  # the entry's header: type, then a length past the end
    struct.pack_into("<H", raw, offset + 2, 9)
    with pytest.raises(MalformedEvidence, match="truncated"):
        parse_report(bytes(raw))
    with pytest.raises(MalformedEvidence, match="repeats"):
        decode_opaque([OpaqueEntry(99, b""), OpaqueEntry(99, b"")])


@pytest.mark.parametrize(("kind", "value", "message"), [
    (abi.DRIVER_VERSION, b"550.90\0x", "NUL-terminated"),
    (abi.PROJECT, b"\xff10\0", "ASCII"),
    (abi.NVDEC0_STATUS, b"\xaa\xaa", "neither"),
    (abi.PROTECTED_PCIE_STATUS, b"\x00", "neither"),
    (abi.MSRSCNT, b"\0\0\0", "u32"),
    (abi.OPAQUE_DATA_VERSION, b"\x01", "wrong size"),
    (abi.FEATURE_FLAG, b"\x01\x00\x00", "wrong size"),
    (abi.FWID, bytes(47), "wrong size"),
    (abi.VBIOS_VERSION, bytes(9), "wrong size"),
])
def test_opaque_field_checks(kind: int, value: bytes, message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        decode_opaque([OpaqueEntry(kind, value)])


def test_opaque_decoding() -> None:
    fields = decode_opaque([
        OpaqueEntry(abi.DRIVER_VERSION, b"580.95.05\0"), OpaqueEntry(abi.PROJECT_SKU_MOD, bytes(2)),
        OpaqueEntry(abi.NVDEC0_STATUS, b"\xaa"), OpaqueEntry(abi.PROTECTED_PCIE_STATUS, b"\xaa"),
        OpaqueEntry(abi.FEATURE_FLAG, b"\x02\x00"), OpaqueEntry(abi.CHIP_INFO, b"GB100\0\0"),
        OpaqueEntry(abi.MSRSCNT, struct.pack("<3I", 0, 1, 130)), OpaqueEntry(777, b"kept raw"),
    ])
    assert fields.driver_version == "580.95.05" and fields.project_sku_mod == ""
    assert fields.nvdec0_enabled is True and fields.ppcie_enabled is True
    assert (fields.feature_flag, fields.feature_name) == (2, "PPCIE")
    assert fields.chip_info == "GB100" and fields.msrscnt == (0, 1, 130)
    assert decode_opaque([OpaqueEntry(abi.FEATURE_FLAG, b"\x09\x00")]).feature_name == \
        "unknown(9)"
    assert decode_opaque([]).feature_name is None


def test_vbios_notation() -> None:
    assert format_vbios(bytes.fromhex("009f009601000000")) == "96.00.9F.00.01"
    assert format_vbios(bytes.fromhex("008800970f000000")) == "97.00.88.00.0F"
    assert vbios_bytes("96.00.74.00.1A") == bytes.fromhex("007400961a000000")
    for bad in ("96.00.74.00", "96.00.74.00.100"):
        with pytest.raises(ValueError, match="VBIOS"):
            vbios_bytes(bad)


def test_record_builders_refuse_bad_sizes(hopper: NvgpuFixture) -> None:
    report = hopper.report(bytes(32))
    with pytest.raises(ValueError, match="signature"):
        report.with_signature(bytes(95)).to_bytes()
    with pytest.raises(ValueError, match="responder nonce"):
        _response(nonce=bytes(3)).unsigned_bytes()


# --- the multi-GPU JSON ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hopper_evidence.json", "hopper_evidence_cert_hold.json"])
def test_sdk_evidence_lists_parse(vectors: Path, name: str) -> None:
    data = read(vectors, SERIALIZED + name)
    facts = manifest_facts(vectors, SERIALIZED + name)
    assert is_evidence_list(data)
    (entry,) = parse_evidence_list(data)
    assert entry.arch == "HOPPER" and entry.nonce.hex() == facts.nonce
    assert parse_report(entry.evidence).nonce == entry.nonce
    assert entry.certificate.startswith(b"-----BEGIN CERTIFICATE-----")
    assert parse_evidence_list(dump_evidence_list([entry])) == (entry,)


ENTRIES = st.builds(GpuEvidence, arch=st.sampled_from(["HOPPER", "BLACKWELL"]),
                    certificate=st.binary(max_size=64), evidence=st.binary(max_size=64),
                    nonce=st.binary(max_size=32))


@given(st.lists(ENTRIES, min_size=1, max_size=4))
def test_evidence_list_round_trip(entries: list[GpuEvidence]) -> None:
    assert parse_evidence_list(dump_evidence_list(entries)) == tuple(entries)
    assert parse_evidence_list(dump_evidence_list(entries).decode()) == tuple(entries)


@given(st.binary(max_size=200))
def test_evidence_list_garbage_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        parse_evidence_list(b"[" + data)


GOOD = {"arch": "HOPPER", "certificate": "", "evidence": "", "nonce": "00"}


@pytest.mark.parametrize(("document", "message"), [
    ("{}", "list"), ("[]", "list"), ("[1]", "not an object"), ("not json", "JSON"),
    (json.dumps([GOOD] * 65), "list"),
    (json.dumps([{**GOOD, "arch": ""}]), "architecture"),
    (json.dumps([{**GOOD, "arch": 7}]), "'arch' must be a string"),
    (json.dumps([{**GOOD, "nonce": "xyz"}]), "not hex"),
    (json.dumps([{**GOOD, "evidence": "@@"}]), "not base64"),
    (json.dumps([{k: v for k, v in GOOD.items() if k != "certificate"}]), "'certificate'"),
])
def test_evidence_list_rejections(document: str, message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        parse_evidence_list(document)


def test_evidence_list_size_limit() -> None:
    with pytest.raises(MalformedEvidence, match="too large"):
        parse_evidence_list(b"[" + b" " * abi.MAX_LIST_BYTES + b"]")
    assert not is_evidence_list(b"\x11\xe0") and is_evidence_list(" [")
