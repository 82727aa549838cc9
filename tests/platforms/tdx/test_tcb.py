import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence, VerificationFailed
from ccattest.platforms.tdx.abi import EnclaveReport, TdQuoteBody
from ccattest.platforms.tdx.tcb import (
    NO_MATCH,
    converge,
    match_qe,
    match_tcb,
    parse_qe_identity,
    parse_tcb_info,
    split_signed,
)
from ccattest.testing.tdx import (
    QE_ATTRIBUTES,
    QE_MRSIGNER,
    TdxFixture,
    isv_level,
    module_identity,
    tcb_level,
)

DAY = datetime(2025, 1, 1, tzinfo=UTC)
OLD = datetime(2020, 1, 1, tzinfo=UTC)


def test_inner_bytes_are_the_served_bytes():
    served = b'  {"tcbInfo" : {"a": 1,  "b":[1, 2]} ,\n "signature":"' + b"ab" * 64 + b'"}\n'
    signed = split_signed(served, "tcbInfo", "TCB Info")
    assert signed.body == b'{"a": 1,  "b":[1, 2]}'
    assert signed.data == {"a": 1, "b": [1, 2]}
    assert signed.signature == bytes([0xAB]) * 64


def test_non_ascii_text_keeps_its_bytes():
    served = '{"tcbInfo":{"note":"Zürich ☃"},"signature":"'.encode() + b"00" * 64 + b'"}'
    assert split_signed(served, "tcbInfo", "x").body == '{"note":"Zürich ☃"}'.encode()


@pytest.mark.parametrize(("served", "message"), [
    (b"\xff", "not UTF-8"),
    (b"[]", "not a JSON object as served"),
    (b"{}", "has no 'tcbInfo'"),
    (b'{"tcbInfo":{}}', "has no 'signature'"),
    (b'{"tcbInfo":{},"tcbInfo":{},"signature":""}', "repeated key"),
    (b'{"tcbInfo":{} "signature":""}', "not a JSON object as served"),
    (b'{"tcbInfo":{},"signature":"00"} x', "data after"),
    (b'{"tcbInfo":[],"signature":"00"}', "is not an object"),
    (b'{"tcbInfo":{"a":1,"a":2},"signature":"00"}', "not valid JSON"),
    (b'{"tcbInfo":{"a":NaN},"signature":"00"}', "not valid JSON"),
    (b'{"tcbInfo":{},"signature":"00"}', "signature is not 64 bytes"),
    (b'{"tcbInfo":{},"signature":"zz"}', "signature is not 64 bytes"),
    (b'{"tcbInfo":{},"signature":7}', "signature is not 64 bytes"),
    (b'{"tcbInfo":{,"signature":"00"}', "not valid JSON"),
    (b'{1:2}', "bad or repeated key"),
    (b'{"tcbInfo"', "not a JSON object as served"),
])
def test_malformed_envelopes(served, message):
    with pytest.raises(MalformedEvidence, match=message):
        split_signed(served, "tcbInfo", "TCB Info")


@settings(max_examples=200)
@given(text=st.text(max_size=80))
def test_arbitrary_text_is_only_malformed(text):
    with contextlib.suppress(MalformedEvidence):
        split_signed(text.encode(), "tcbInfo", "TCB Info")


def _served(name: str, inner: dict) -> bytes:
    return json.dumps({name: inner, "signature": "00" * 64}).encode()


def _tcb_info(**changes) -> dict:
    inner = {"id": "TDX", "version": 3, "issueDate": "2025-01-01T00:00:00Z",
             "nextUpdate": "2025-02-01T00:00:00Z", "fmspc": "B0C06F000000", "pceId": "0000",
             "tcbType": 0, "tcbEvaluationDataNumber": 17,
             "tcbLevels": [tcb_level("UpToDate", sgx=[2] * 16, pce_svn=11, tdx=[0, 0, 3] + [0] * 13,
                                     date=DAY)]}
    inner.update(changes)
    return inner


def test_tcb_info_parses():
    info = parse_tcb_info(_served("tcbInfo", _tcb_info()))
    assert info.fmspc.hex() == "b0c06f000000" and info.evaluation_number == 17
    assert info.tdx_module is None and info.module_identities == ()
    assert info.levels[0].verdict.status == "UpToDate"


@pytest.mark.parametrize(("changes", "message"), [
    ({"id": "SGX"}, "not the TDX kind"),
    ({"version": 2}, "not the TDX kind"),
    ({"tcbType": 1}, "tcbType"),
    ({"tcbType": -1}, "out of range"),
    ({"tcbType": True}, "not int"),
    ({"fmspc": "zz"}, "6 bytes of hex"),
    ({"issueDate": "yesterday"}, "ISO 8601"),
    ({"tcbLevels": {}}, "not list"),
    ({"tcbLevels": [7]}, r"tcbLevels\[0\] is not an object"),
    ({"tcbLevels": [{"tcb": {"sgxtcbcomponents": [], "pcesvn": 1, "tdxtcbcomponents": []},
                     "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"}]},
     "must list 16 components"),
    ({"tcbLevels": [dict(tcb_level("UpToDate", sgx=[0] * 16, pce_svn=0, tdx=[0] * 16,
                                   date=DAY), advisoryIDs=[1])]}, "advisoryIDs must be strings"),
    ({"tdxModule": []}, "not dict"),
    ({"tdxModuleIdentities": [dict(module_identity(1, []), id=5)]}, "'id' is not a string"),
])
def test_malformed_tcb_info(changes, message):
    with pytest.raises(MalformedEvidence, match=message):
        parse_tcb_info(_served("tcbInfo", _tcb_info(**changes)))


def _qe_identity(**changes) -> dict:
    inner = {"id": "TD_QE", "version": 2, "issueDate": "2025-01-01T00:00:00Z",
             "nextUpdate": "2025-02-01T00:00:00Z", "tcbEvaluationDataNumber": 17,
             "miscselect": "00000001", "miscselectMask": "FFFFFFFF",
             "attributes": QE_ATTRIBUTES.hex(), "attributesMask": "FF" * 16,
             "mrsigner": QE_MRSIGNER.hex(), "isvprodid": 2,
             "tcbLevels": [isv_level("UpToDate", 6, DAY),
                           isv_level("OutOfDate", 2, OLD, ["INTEL-SA-1"])]}
    inner.update(changes)
    return inner


def _qe_report(**changes) -> EnclaveReport:
    values = {"misc_select": 1, "attributes": QE_ATTRIBUTES, "mr_signer": QE_MRSIGNER,
              "isv_prod_id": 2, "isv_svn": 6}
    values.update(changes)
    return EnclaveReport(**values)


def test_qe_identity_matching():
    identity = parse_qe_identity(_served("enclaveIdentity", _qe_identity()))
    assert identity.miscselect == 1
    assert match_qe(identity, _qe_report()).status == "UpToDate"  # type: ignore[union-attr]
    old = match_qe(identity, _qe_report(isv_svn=3))
    assert old is not None and old.status == "OutOfDate" and old.advisory_ids == ("INTEL-SA-1",)
    assert match_qe(identity, _qe_report(isv_svn=1)) is None
    for changes, name in (({"mr_signer": bytes(32)}, "MRSIGNER"), ({"isv_prod_id": 1}, "ISVPRODID"),
                          ({"misc_select": 0}, "MISCSELECT"),
                          ({"attributes": bytes(16)}, "ATTRIBUTES")):
        with pytest.raises(VerificationFailed, match=name):
            match_qe(identity, _qe_report(**changes))


def test_qe_identity_masks_apply():
    identity = parse_qe_identity(_served("enclaveIdentity", _qe_identity(
        miscselectMask="00000000", attributesMask="00" * 16)))
    assert match_qe(identity, _qe_report(misc_select=7, attributes=bytes(16))) is not None


def test_qe_identity_must_be_a_td_qe():
    with pytest.raises(MalformedEvidence, match="not the TDX kind"):
        parse_qe_identity(_served("enclaveIdentity", _qe_identity(id="QE")))


SGX = (3, 3, 2, 2, 4, 1, 0, 5) + (0,) * 8


def _body(tee_tcb_svn: bytes, **changes) -> TdQuoteBody:
    return TdQuoteBody(tee_tcb_svn=tee_tcb_svn + bytes(16 - len(tee_tcb_svn)), **changes)


def _info(levels, modules=None, **changes):
    inner = _tcb_info(tcbLevels=levels, **changes)
    if modules is not None:
        inner["tdxModuleIdentities"] = modules
    return parse_tcb_info(_served("tcbInfo", inner))


def _levels():
    return [
        tcb_level("UpToDate", sgx=SGX, pce_svn=13, tdx=[0, 0, 3] + [0] * 13, date=DAY),
        tcb_level("SWHardeningNeeded", sgx=SGX, pce_svn=11, tdx=[0, 0, 3] + [0] * 13, date=DAY,
                  advisories=["INTEL-SA-2"]),
        tcb_level("OutOfDate", sgx=[0] * 16, pce_svn=5, tdx=[0, 0, 2] + [0] * 13, date=OLD,
                  advisories=["INTEL-SA-1"]),
    ]


def _modules():
    return [module_identity(1, [isv_level("UpToDate", 6, DAY),
                                isv_level("OutOfDate", 2, OLD, ["INTEL-SA-3"])])]


def test_first_matching_level_wins():
    info = _info(_levels(), _modules())
    assert match_tcb(info, SGX, 13, _body(bytes([6, 1, 3]))).status == "UpToDate"
    result = match_tcb(info, SGX, 11, _body(bytes([6, 1, 3])))
    assert result.status == "SWHardeningNeeded" and result.advisory_ids == ("INTEL-SA-2",)
    result = match_tcb(info, SGX, 11, _body(bytes([6, 1, 2])))
    assert result.status == "OutOfDate" and result.tcb_date == OLD
    assert result.module is not None and result.module.id == "TDX_01"


def test_no_level_is_a_status_of_its_own():
    info = _info(_levels(), _modules())
    result = match_tcb(info, SGX, 4, _body(bytes([6, 1, 3])))
    assert result.status == NO_MATCH and result.tcb_date is None


def test_module_version_decides_through_its_identity():
    info = _info(_levels(), _modules())
    result = match_tcb(info, SGX, 13, _body(bytes([3, 1, 3])))  # module 1.3: OutOfDate
    assert result.status == "OutOfDate" and result.tcb_date == OLD
    assert result.advisory_ids == ("INTEL-SA-3",)
    result = match_tcb(info, SGX, 13, _body(bytes([1, 1, 3])))  # below every module level
    assert result.status == NO_MATCH and result.module is not None
    assert result.module.verdict is None
    with pytest.raises(VerificationFailed, match="no identity for TDX module TDX_02"):
        match_tcb(info, SGX, 13, _body(bytes([6, 2, 3])))
    with pytest.raises(VerificationFailed, match="not signed by the signer"):
        match_tcb(info, SGX, 13, _body(bytes([6, 1, 3]), mr_signer_seam=bytes([1]) * 48))
    with pytest.raises(VerificationFailed, match="attributes differ"):
        match_tcb(info, SGX, 13, _body(bytes([6, 1, 3]), seam_attributes=bytes([1]) * 8))


def test_module_major_zero_compares_every_byte():
    module = {"mrsigner": "00" * 48, "attributes": "00" * 8, "attributesMask": "FF" * 8}
    levels = [tcb_level("UpToDate", sgx=SGX, pce_svn=11, tdx=[3, 0, 4] + [0] * 13, date=DAY)]
    info = _info(levels, tdxModule=module)
    assert match_tcb(info, SGX, 11, _body(bytes([3, 0, 4]))).status == "UpToDate"
    assert match_tcb(info, SGX, 11, _body(bytes([2, 0, 4]))).status == NO_MATCH
    with pytest.raises(VerificationFailed, match="tdxModule"):
        match_tcb(info, SGX, 11, _body(bytes([3, 0, 4]), mr_signer_seam=bytes([1]) * 48))
    assert match_tcb(_info(levels), SGX, 11, _body(bytes([3, 0, 4]))).module is None


@pytest.mark.parametrize(("platform", "module", "expected"), [
    ("UpToDate", "UpToDate", "UpToDate"),
    ("UpToDate", "OutOfDate", "OutOfDate"),
    ("SWHardeningNeeded", "OutOfDate", "OutOfDate"),
    ("ConfigurationNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
    ("ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
    ("OutOfDate", "OutOfDate", "OutOfDate"),
    ("UpToDate", "Revoked", "Revoked"),
    ("Revoked", "UpToDate", "Revoked"),
    (NO_MATCH, "UpToDate", NO_MATCH),
    ("ConfigurationNeeded", "UpToDate", "ConfigurationNeeded"),
])
def test_module_status_converges_with_the_platform(platform, module, expected):
    assert converge(platform, module) == expected


SERVED = TdxFixture.create().tcb_info()  # once: signatures differ on every call


@settings(max_examples=200)
@given(data=st.data())
def test_mutated_served_tcb_info_is_only_malformed(data):
    body = bytearray(SERVED)
    for _ in range(data.draw(st.integers(1, 3))):
        body[data.draw(st.integers(0, len(body) - 1))] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(MalformedEvidence):
        parse_tcb_info(bytes(body[:data.draw(st.integers(0, len(body)))]))
