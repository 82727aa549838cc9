import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.encoding import decode_blob, load_evidence
from ccattest.errors import MalformedEvidence

REPORT = bytes(range(256)) * 2


def test_raw_bytes_pass_through():
    assert decode_blob(REPORT) == REPORT


@pytest.mark.parametrize(
    "text",
    [REPORT.hex().encode(), b"0x" + REPORT.hex().encode(), REPORT.hex().upper().encode(),
     base64.b64encode(REPORT), base64.urlsafe_b64encode(REPORT).rstrip(b"="),
     b"\n".join(base64.encodebytes(REPORT).split(b"\n"))],
)
def test_text_encodings_decode(text):
    assert decode_blob(text) == REPORT


def test_odd_hex_and_bad_base64():
    with pytest.raises(MalformedEvidence, match="odd number"):
        decode_blob(b"abc")
    with pytest.raises(MalformedEvidence, match="base64"):
        decode_blob(b"QUJDR")


def test_too_large():
    with pytest.raises(MalformedEvidence, match="too large"):
        decode_blob(b"\0" * (4 * 1024 * 1024 + 1))


@given(st.binary(max_size=300))
def test_decode_never_raises_other_errors(data):
    with contextlib.suppress(MalformedEvidence):
        decode_blob(data)


def test_load_evidence_detects_software(software):
    evidence, _, _ = software.evidence()
    for blob in (evidence.report, evidence.report.hex().encode(),
                 base64.b64encode(evidence.report)):
        loaded = load_evidence(blob)
        assert loaded.platform == "software"
        assert loaded.report == evidence.report
    assert load_evidence(evidence.to_json().encode()) == evidence


def test_load_evidence_platform_mismatch(software):
    evidence, _, _ = software.evidence()
    with pytest.raises(MalformedEvidence, match="another platform"):
        load_evidence(evidence.to_json().encode(), platform="snp")


def test_unknown_bare_report_asks_for_platform():
    with pytest.raises(MalformedEvidence, match="cannot tell the platform") as info:
        load_evidence(b"\x02\x00\x00\x00" + bytes(100))
    assert info.value.hint == "pass --platform"


@pytest.mark.vectors
def test_real_hex_report_from_vectors_decodes(vectors):
    # virtee/sev's Milan report is stored as hex text: 1184 bytes once decoded, version 2.
    text = (vectors / "sev-snp/virtee-sev/tests/certs_data/report_milan.hex").read_bytes()
    report = decode_blob(text)
    assert len(report) == 0x4A0
    assert int.from_bytes(report[:4], "little") == 2
    assert load_evidence(text, platform="snp").report == report
