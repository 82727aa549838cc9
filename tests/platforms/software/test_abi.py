import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence
from ccattest.platforms.software.abi import REPORT_SIZE, SoftwareReport, parse_report

identities = st.text(
    alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
    min_size=1, max_size=16)

reports = st.builds(
    SoftwareReport,
    version=st.just(1),
    debug=st.booleans(),
    svn=st.integers(0, 2**32 - 1),
    measurement=st.binary(min_size=48, max_size=48),
    report_data=st.binary(min_size=64, max_size=64),
    identity=identities,
    key_id=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=64, max_size=64),
)


@given(reports)
def test_round_trip(report):
    data = report.to_bytes()
    assert len(data) == REPORT_SIZE
    assert parse_report(data) == report


@given(reports, st.integers(0, REPORT_SIZE - 1))
def test_every_truncation_is_malformed(report, cut):
    with pytest.raises(MalformedEvidence, match="wrong size"):
        parse_report(report.to_bytes()[:cut])


@given(reports, st.binary(min_size=1, max_size=64))
def test_trailing_bytes_are_malformed(report, extra):
    with pytest.raises(MalformedEvidence, match="wrong size"):
        parse_report(report.to_bytes() + extra)


@given(st.binary(min_size=REPORT_SIZE, max_size=REPORT_SIZE))
def test_arbitrary_bytes_parse_or_raise_malformed(data):
    with contextlib.suppress(MalformedEvidence):
        parse_report(b"CCSW" + data[4:])


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [(0x04, 2, "unsupported software report version"), (0x06, 0x02, "reserved bits"),
     (0x80, 0, "identity field is empty"), (0x80, 0xFF, "not UTF-8")],
)
def test_field_errors(offset, value, message):
    good = SoftwareReport(1, False, 0, bytes(48), bytes(64), "site-1", bytes(32)).to_bytes()
    bad = bytearray(good)
    bad[offset] = value
    with pytest.raises(MalformedEvidence, match=message):
        parse_report(bytes(bad))


def test_junk_after_identity_terminator():
    good = bytearray(SoftwareReport(1, False, 0, bytes(48), bytes(64), "s", bytes(32)).to_bytes())
    good[0x80 + 10] = ord("x")
    with pytest.raises(MalformedEvidence, match="bytes after its end"):
        parse_report(bytes(good))


@pytest.mark.parametrize(
    "changes",
    [{"measurement": bytes(47)}, {"identity": ""}, {"identity": "x" * 65},
     {"identity": "a\0b"}, {"svn": -1}, {"svn": 2**32}],
)
def test_serialiser_refuses_invalid_fields(changes):
    fields = {"version": 1, "debug": False, "svn": 0, "measurement": bytes(48),
              "report_data": bytes(64), "identity": "site", "key_id": bytes(32)}
    with pytest.raises(ValueError, match="must"):
        SoftwareReport(**{**fields, **changes}).to_bytes()
