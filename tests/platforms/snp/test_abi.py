import contextlib
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence
from ccattest.platforms.snp.abi import (
    MAX_TRAILING,
    REPORT_SIZE,
    SIGNED_SIZE,
    GuestPolicy,
    SnpReport,
    decode_platform_info,
    decode_tcb,
    encode_tcb,
    parse_report,
    product_from_cpuid,
    split_report,
)

VALID = SnpReport(version=3, cpuid_family=0x19, cpuid_model=0x11, cpuid_stepping=1,
                  policy=0x3001F, key_info=0x4, signature_r=5, signature_s=7).to_bytes()


def _byte_strings(size: int):
    return st.binary(min_size=size, max_size=size)


REPORTS = st.builds(
    SnpReport,
    version=st.sampled_from([1, 2, 3, 5]),
    guest_svn=st.integers(0, 2**32 - 1), policy=st.integers(0, 2**64 - 1),
    family_id=_byte_strings(16), image_id=_byte_strings(16), vmpl=st.integers(0, 3),
    signature_algo=st.integers(0, 2**32 - 1), current_tcb=st.integers(0, 2**64 - 1),
    platform_info=st.integers(0, 2**64 - 1), key_info=st.integers(0, 2**32 - 1),
    report_data=_byte_strings(64), measurement=_byte_strings(48), host_data=_byte_strings(32),
    id_key_digest=_byte_strings(48), author_key_digest=_byte_strings(48),
    report_id=_byte_strings(32), report_id_ma=_byte_strings(32),
    reported_tcb=st.integers(0, 2**64 - 1), cpuid_family=st.integers(0, 255),
    cpuid_model=st.integers(0, 255), cpuid_stepping=st.integers(0, 255),
    chip_id=_byte_strings(64), committed_tcb=st.integers(0, 2**64 - 1),
    current_build=st.integers(0, 255), current_minor=st.integers(0, 255),
    current_major=st.integers(0, 255), committed_build=st.integers(0, 255),
    committed_minor=st.integers(0, 255), committed_major=st.integers(0, 255),
    launch_tcb=st.integers(0, 2**64 - 1), launch_mit_vector=st.integers(0, 2**64 - 1),
    current_mit_vector=st.integers(0, 2**64 - 1),
    signature_r=st.integers(0, 2**576 - 1), signature_s=st.integers(0, 2**576 - 1),
)


@given(REPORTS)
def test_round_trip(report):
    data = report.to_bytes()
    assert len(data) == REPORT_SIZE
    assert parse_report(data) == report
    assert report.signed_bytes() == data[:SIGNED_SIZE]


@given(st.one_of(st.binary(max_size=2 * REPORT_SIZE), _byte_strings(REPORT_SIZE)),
       st.sampled_from([None, 1, 2, 3, 5]))
def test_arbitrary_bytes_give_only_malformed_evidence(data, version):
    if version is not None and len(data) >= 4:
        data = version.to_bytes(4, "little") + data[4:]
    with contextlib.suppress(MalformedEvidence):
        parse_report(data)


@given(st.integers(0, REPORT_SIZE - 1), st.integers(1, 255))
def test_single_byte_mutations_parse_or_are_malformed(offset, xor):
    mutated = bytearray(VALID)
    mutated[offset] ^= xor
    try:
        report = parse_report(bytes(mutated))
    except MalformedEvidence:
        return
    assert report.to_bytes() == bytes(mutated)


def test_every_truncation_and_oversize_is_rejected():
    for size in [*range(REPORT_SIZE), REPORT_SIZE + MAX_TRAILING + 1, 100 * REPORT_SIZE]:
        data = (VALID * 100)[:size]
        with pytest.raises(MalformedEvidence, match="wrong size"):
            parse_report(data)


@pytest.mark.parametrize("extra", [1, 32, REPORT_SIZE, MAX_TRAILING])
def test_trailing_bytes_are_split_off_and_never_read(extra):
    trailing = bytes([0xA5]) * extra  # not zero: reserved-byte checks must not see them
    report, rest = split_report(VALID + trailing)
    assert (report, rest) == (VALID, trailing)
    assert parse_report(VALID + trailing) == parse_report(VALID)


def test_non_bytes_are_malformed():
    with pytest.raises(MalformedEvidence, match="must be bytes"):
        parse_report("not bytes")  # type: ignore[arg-type]
    assert parse_report(bytearray(VALID)).version == 3
    assert parse_report(memoryview(VALID)).version == 3


@pytest.mark.parametrize("version", [0, 4, 6, 0xFFFFFFFF])
def test_unknown_versions_are_malformed(version):
    data = dataclasses.replace(parse_report(VALID), version=version).to_bytes()
    with pytest.raises(MalformedEvidence, match="unsupported SNP report version"):
        parse_report(data)


@pytest.mark.parametrize("offset", [0x04C, 0x18B, 0x19F, 0x1EB, 0x1EF, 0x208, 0x29F, 0x330,
                                    0x49F])
def test_reserved_bytes_must_be_zero(offset):
    data = bytearray(VALID)
    data[offset] = 1
    with pytest.raises(MalformedEvidence, match=f"reserved byte at {offset:#05x}"):
        parse_report(bytes(data))


def test_fields_sit_at_their_offsets():
    report = SnpReport(version=5, guest_svn=0x11223344, vmpl=2, report_data=b"\x50" * 64,
                       measurement=b"\x90" * 48, host_data=b"\xc0" * 32, chip_id=b"\xa0" * 64,
                       reported_tcb=0x0102030405060708, launch_mit_vector=9,
                       current_mit_vector=10, current_major=1, current_minor=57,
                       current_build=3, signature_r=1 << 8, signature_s=2)
    data = report.to_bytes()
    assert data[0x004:0x008] == bytes.fromhex("44332211")
    assert data[0x030] == 2 and data[0x034] == 1
    assert data[0x050:0x090] == b"\x50" * 64 and data[0x090:0x0C0] == b"\x90" * 48
    assert data[0x0C0:0x0E0] == b"\xc0" * 32 and data[0x1A0:0x1E0] == b"\xa0" * 64
    assert data[0x180:0x188] == bytes.fromhex("0807060504030201")
    assert data[0x1E8:0x1EB] == bytes([3, 57, 1])
    assert data[0x1F8] == 9 and data[0x200] == 10
    assert data[0x2A0:0x2A2] == b"\x00\x01" and data[0x2E8] == 2  # r, s little-endian
    assert report.current_firmware == "1.57.3"


def test_guest_policy_flags():
    policy = GuestPolicy(0x3001F | 1 << 19 | 1 << 18 | 1 << 25 | 1 << 40)
    decoded = policy.to_dict()
    assert decoded["abi_minor"] == 0x1F and decoded["abi_major"] == 0
    assert decoded["smt"] and decoded["reserved_bit17"] and decoded["debug"]
    assert decoded["migrate_ma"] and decoded["page_swap_disable"]
    assert not decoded["single_socket"] and not decoded["ciphertext_hiding"]
    assert decoded["unknown_bits"] == 1 << 40
    old = GuestPolicy(0x10000)  # a report whose bit 17 is clear is recorded, not rejected
    assert old.to_dict()["reserved_bit17"] is False


def test_key_info_decoding():
    assert SnpReport(key_info=0).signing_key == "vcek"
    assert SnpReport(key_info=1 << 2).signing_key == "vlek"
    assert SnpReport(key_info=7 << 2).signing_key == "none"
    assert SnpReport(key_info=3 << 2).signing_key == "reserved(3)"
    flags = SnpReport(key_info=0b11)
    assert flags.author_key_en and flags.mask_chip_key
    assert not SnpReport().author_key_en


def test_tcb_layouts():
    raw = int.from_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8]), "little")
    assert decode_tcb(raw, "Milan") == {"bootloader": 1, "tee": 2, "snp": 7, "microcode": 8}
    assert decode_tcb(raw, None) == decode_tcb(raw, "Genoa")
    assert decode_tcb(raw, "Turin") == {"fmc": 1, "bootloader": 2, "tee": 3, "snp": 4,
                                        "microcode": 8}
    parts = {"fmc": 9, "bootloader": 1, "tee": 2, "snp": 3, "microcode": 4}
    assert decode_tcb(encode_tcb(parts, "Turin"), "Turin") == parts
    assert encode_tcb({"bootloader": 3, "snp": 8, "microcode": 115}, "Milan") == 0x7308000000000003


@pytest.mark.parametrize(("family", "model", "product"), [
    (0x19, 0x00, "Milan"), (0x19, 0x01, "Milan"), (0x19, 0x0F, "Milan"),
    (0x19, 0x10, "Genoa"), (0x19, 0x11, "Genoa"), (0x19, 0x1F, "Genoa"),
    (0x19, 0xA0, "Genoa"), (0x19, 0xAF, "Genoa"), (0x1A, 0x00, "Turin"),
    (0x1A, 0x1F, "Turin"), (0x19, 0x20, None), (0x19, 0xB0, None), (0x1A, 0x20, None),
    (0x17, 0x01, None), (0, 0, None),
])
def test_product_from_cpuid(family, model, product):
    assert product_from_cpuid(family, model) == product


def test_product_only_from_v3_cpuid():
    assert SnpReport(version=2, cpuid_family=0x19, cpuid_model=1).product is None
    assert SnpReport(version=3, cpuid_family=0x19, cpuid_model=1).product == "Milan"
    assert not SnpReport(version=2).has_cpuid


def test_platform_info_decoding():
    decoded = decode_platform_info(0x25 | 1 << 7)
    assert decoded["raw"] == 0xA5
    assert decoded["smt_enabled"] and decoded["ecc_enabled"] and decoded["alias_check_complete"]
    assert not decoded["tsme_enabled"] and not decoded["rapl_disabled"]


@pytest.mark.parametrize("changes", [{"report_data": b"short"}, {"chip_id": bytes(63)},
                                     {"vmpl": -1}, {"policy": 2**64}, {"cpuid_model": 256},
                                     {"signature_r": 2**576}])
def test_building_an_invalid_record_is_a_value_error(changes):
    with pytest.raises(ValueError):  # noqa: PT011 - programming error, any message
        dataclasses.replace(SnpReport(), **changes).to_bytes()


def test_with_signature_and_tcb_views():
    report = SnpReport(current_tcb=encode_tcb({"bootloader": 4, "snp": 24}, "Milan"))
    assert report.tcb("current_tcb", "Milan")["snp"] == 24
    signed = report.with_signature(11, 12)
    assert (signed.signature_r, signed.signature_s) == (11, 12)
    assert signed.committed_firmware == "0.0.0"
