import contextlib
import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence
from ccattest.platforms.tdx.abi import (
    BODY_TDX10,
    BODY_TDX15,
    ENCLAVE_REPORT_SIZE,
    MAX_QUOTE_SIZE,
    TDREPORT_SIZE,
    EnclaveReport,
    QeCertification,
    Quote,
    QuoteHeader,
    TdQuoteBody,
    TdReport,
    decode_td_attributes,
    parse_enclave_report,
    parse_qe_certification,
    parse_quote,
    parse_tdreport,
)
from ccattest.testing.tdx import TdxFixture, TdxKeys

KEYS = TdxKeys.generate()
V4 = TdxFixture.create(keys=KEYS)
V5 = TdxFixture.create(keys=KEYS, version=5, tdx15=True)


def _bytes(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


BODIES = st.builds(
    TdQuoteBody, tee_tcb_svn=_bytes(16), mr_seam=_bytes(48), mr_signer_seam=_bytes(48),
    seam_attributes=_bytes(8), td_attributes=_bytes(8), xfam=_bytes(8), mr_td=_bytes(48),
    mr_config_id=_bytes(48), mr_owner=_bytes(48), mr_owner_config=_bytes(48),
    rtmr0=_bytes(48), rtmr1=_bytes(48), rtmr2=_bytes(48), rtmr3=_bytes(48),
    report_data=_bytes(64))
REPORTS = st.builds(
    EnclaveReport, cpu_svn=_bytes(16), misc_select=st.integers(0, 2**32 - 1),
    attributes=_bytes(16), mr_enclave=_bytes(32), mr_signer=_bytes(32),
    isv_prod_id=st.integers(0, 65535), isv_svn=st.integers(0, 65535),
    report_data=_bytes(64))


@settings(max_examples=60)
@given(body=BODIES, report=REPORTS, tdx15=st.booleans(), auth=st.binary(max_size=64),
       chain=st.binary(max_size=200), trailing=st.binary(max_size=16),
       user_data=_bytes(20))
def test_quotes_round_trip(body, report, tdx15, auth, chain, trailing, user_data):
    if tdx15:
        body = dataclasses.replace(body, tee_tcb_svn_2=bytes(range(16)), mr_servicetd=bytes(48))
    header = QuoteHeader(version=5 if tdx15 else 4, user_data=user_data)
    qe = QeCertification(report, bytes(64), auth, 5, chain)
    quote = Quote(header, body, bytes(range(64)), bytes(64), qe=qe, trailing=trailing)
    data = quote.to_bytes()
    assert parse_quote(data) == quote
    assert data.startswith(quote.signed_bytes())
    assert len(quote.signed_bytes()) == quote.signed_size


@given(report=REPORTS)
def test_enclave_reports_round_trip(report):
    assert parse_enclave_report(report.to_bytes()) == report


TDREPORTS = st.builds(
    TdReport, report_subtype=st.integers(0, 255), report_version=st.integers(0, 255),
    cpu_svn=_bytes(16), report_data=_bytes(64), mac=_bytes(32), tee_tcb_svn=_bytes(16),
    mr_seam=_bytes(48), tee_tcb_svn_2=_bytes(16), tcb_info_reserved=_bytes(95),
    td_attributes=_bytes(8), xfam=_bytes(8), mr_td=_bytes(48), rtmr2=_bytes(48),
    servtd_hash=_bytes(48), td_info_reserved=_bytes(64))


@settings(max_examples=40)
@given(report=TDREPORTS)
def test_tdreports_round_trip(report):
    assert parse_tdreport(report.to_bytes()) == report


def test_tdreport_fields():
    report = TdReport(report_data=bytes([7]) * 64, mr_td=bytes([9]) * 48, rtmr3=bytes([3]) * 48)
    data = report.to_bytes()
    assert len(data) == TDREPORT_SIZE
    assert data[128:192] == bytes([7]) * 64  # REPORTMACSTRUCT.reportdata
    assert data[512 + 16:512 + 64] == bytes([9]) * 48  # TDINFO.mrtd
    parsed = parse_tdreport(data)
    assert parsed.rtmrs[3] == bytes([3]) * 48 and parsed == report
    with pytest.raises(MalformedEvidence, match="wrong size"):
        parse_tdreport(data[:-1])
    with pytest.raises(MalformedEvidence, match="not a TDX TDREPORT"):
        parse_tdreport(b"\x00" + data[1:])
    with pytest.raises(MalformedEvidence, match="reserved"):
        parse_tdreport(data[:3] + b"\x01" + data[4:])


@pytest.mark.parametrize("fixture", [V4, V5], ids=["v4", "v5-tdx15"])
def test_fixture_quotes_parse(fixture):
    quote = fixture.quote(bytes(64))
    data = quote.to_bytes()
    parsed = parse_quote(data)
    assert parsed == quote
    assert parsed.body.body_type == (BODY_TDX15 if fixture.tdx15 else BODY_TDX10)
    assert len(parsed.signed_bytes()) == (48 + 6 + 648 if fixture.tdx15 else 48 + 584)


@settings(max_examples=100)
@given(cut=st.integers(0, 5000))
def test_every_truncation_is_malformed(cut):
    data = V5.quote(bytes(64)).to_bytes()
    if cut >= len(data):
        return
    with pytest.raises(MalformedEvidence):
        parse_quote(data[:cut])


@settings(max_examples=200)
@given(offset=st.integers(0, 4000), xor=st.integers(1, 255))
def test_mutations_parse_or_are_malformed(offset, xor):
    data = bytearray(V4.quote(bytes(64)).to_bytes())
    if offset >= len(data):
        return
    data[offset] ^= xor
    with contextlib.suppress(MalformedEvidence):
        parse_quote(bytes(data))


def test_header_checks():
    data = V4.quote(bytes(64)).to_bytes()
    for offset, value, message in ((0, 3, "unsupported quote version"),
                                   (2, 3, "attestation key type"), (4, 0, "not a TDX quote")):
        mutated = bytearray(data)
        mutated[offset] = value
        with pytest.raises(MalformedEvidence, match=message):
            parse_quote(bytes(mutated))


def test_v5_body_descriptor_must_agree():
    data = bytearray(V5.quote(bytes(64)).to_bytes())
    data[48:54] = struct.pack("<HI", BODY_TDX15, 584)
    with pytest.raises(MalformedEvidence, match="unsupported TD quote body"):
        parse_quote(bytes(data))
    data[48:54] = struct.pack("<HI", 1, 384)  # an SGX enclave report body
    with pytest.raises(MalformedEvidence, match="unsupported TD quote body"):
        parse_quote(bytes(data))


def test_oversize_and_wrong_types():
    with pytest.raises(MalformedEvidence, match="too large"):
        parse_quote(bytes(MAX_QUOTE_SIZE + 1))
    with pytest.raises(MalformedEvidence, match="must be bytes"):
        parse_quote("not bytes")  # type: ignore[arg-type]
    with pytest.raises(MalformedEvidence, match="wrong size"):
        parse_enclave_report(bytes(ENCLAVE_REPORT_SIZE - 1))


def test_signature_data_must_be_exact():
    quote = V4.quote(bytes(64))
    qe_bytes = quote.qe.to_bytes()  # type: ignore[union-attr]
    with pytest.raises(MalformedEvidence, match="after the PCK certification data"):
        parse_qe_certification(qe_bytes + b"\0")
    data = quote.to_bytes()
    start = 48 + 584
    size = struct.unpack_from("<I", data, start)[0]
    padded = (data[:start] + struct.pack("<I", size + 1) + data[start + 4:start + 4 + size]
              + b"\0")
    with pytest.raises(MalformedEvidence, match="after the quote signature data"):
        parse_quote(padded)


def test_other_certification_types_are_kept_raw():
    quote = Quote(QuoteHeader(), TdQuoteBody(), certification_type=3,
                  certification=b"encrypted ppid")
    parsed = parse_quote(quote.to_bytes())
    assert parsed.qe is None and parsed.certification == b"encrypted ppid"


def test_records_refuse_wrong_sizes():
    with pytest.raises(ValueError, match="mr_td must be 48 bytes"):
        TdQuoteBody(mr_td=b"short").to_bytes()
    with pytest.raises(ValueError, match="go together"):
        TdQuoteBody(tee_tcb_svn_2=bytes(16)).to_bytes()
    with pytest.raises(ValueError, match="version 4 quote"):
        Quote(QuoteHeader(), TdQuoteBody(tee_tcb_svn_2=bytes(16), mr_servicetd=bytes(48))
              ).signed_bytes()
    with pytest.raises(ValueError, match="64 bytes"):
        Quote(QuoteHeader(), TdQuoteBody(), signature=b"x").to_bytes()
    with pytest.raises(ValueError, match="report_signature"):
        QeCertification(EnclaveReport(), b"x").to_bytes()
    with pytest.raises(ValueError, match="format requires"):
        EnclaveReport(isv_svn=70000).to_bytes()


def test_td_attributes_decode():
    decoded = decode_td_attributes(bytes.fromhex("0100001000000080"))
    assert decoded["raw"] == "0100001000000080"
    assert decoded["debug"] and decoded["sept_ve_disable"] and decoded["perfmon"]
    assert not decoded["pks"] and not decoded["kl"] and not decoded["migratable"]
    assert decoded["unknown_bits"] == 0
    assert decode_td_attributes(bytes.fromhex("0200000000000000"))["unknown_bits"] == 2
