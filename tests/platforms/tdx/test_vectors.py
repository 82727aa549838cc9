"""Real TDX quotes (vectors/MANIFEST.md): each gives the outcome MANIFEST records at its pinned
time, with the claims MANIFEST states. Where MANIFEST's outcome rests on collateral that is not
in the vectors (its 'COMPOSITE' rows), the quote, QE report and PCK chain are verified and the
claims checked; the TCB outcome then needs that collateral.

Sources: Phala-Network/dcap-qvl (MIT), google/go-tdx-guest and confidential-containers/trustee
(Apache-2.0), intel/SGXDataCenterAttestationPrimitives (BSD-3-Clause).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccattest.errors import CCAttestError, MalformedEvidence, VerificationFailed
from ccattest.evidence import Evidence
from ccattest.platforms.tdx.abi import parse_quote, parse_tdreport
from ccattest.platforms.tdx.certs import load_certificates, pck_extensions
from ccattest.platforms.tdx.collateral_json import collateral_to_json
from ccattest.platforms.tdx.verify import TdxVerifier, collateral_request, verify_quote_chain
from ccattest.policy import Policy, TdxPolicy, appraise

from .conftest import (
    AZURE,
    DCAP,
    GTG,
    SYNTHETIC,
    TRUSTEE,
    dcap_collateral,
    go_tdx_guest_collateral,
    reissued_tcb_chain,
    synthetic_collateral,
    trustee_collateral,
)

DCAP_AT = datetime(2025, 7, 19, 10, 0, 34, tzinfo=UTC)  # dcap-qvl's clock: min(nextUpdate)-1s
GTG_AT = datetime(2023, 7, 1, 1, 0, tzinfo=UTC)  # go-tdx-guest's currentTime
V5_AT = datetime(2026, 2, 3, 1, 0, tzinfo=UTC)  # go-tdx-guest's clock for quote_v5_sample
TRUSTEE_AT = datetime(2025, 11, 1, tzinfo=UTC)
COMPOSITE_AT = datetime(2025, 10, 1, tzinfo=UTC)
SPR = GTG + "testing/testdata/tdx_prod_quote_SPR_E4.dat"
V5 = GTG + "testing/testdata/quote_v5_sample.dat"


def manifest_facts(vectors: Path, relative: str) -> dict[str, object]:
    """The facts MANIFEST.md states for one TDX sample row, parsed from its last column."""
    for line in (vectors / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = line.split(" | ")
        if len(cells) > 2 and cells[1] == relative:
            return _facts(cells[-1])
    raise AssertionError(f"no MANIFEST row for {relative}")


def _facts(text: str) -> dict[str, object]:
    def value(pattern: str) -> str:
        match = re.search(pattern, text)
        assert match, pattern
        return match.group(1)

    facts: dict[str, object] = {
        "report_data": value(r"report_data=([0-9a-f]+)"),
        "mr_td": value(r"mrtd=([0-9a-f]+)"),
        "rtmrs": value(r"rtmr0..3=([0-9a-f /]+)<").split(" / "),
        "mr_seam": value(r"mrseam=([0-9a-f]+)"),
        "tee_tcb_svn": value(r"tee_tcb_svn=([0-9a-f]+)"),
        "td_attributes": value(r"td_attributes=([0-9a-f]+)"),
        "debug": value(r"\(DEBUG=(\d)\)") == "1",
        "xfam": value(r"xfam=([0-9a-f]+)"),
        "version": int(value(r"TDX quote v(\d)")),
    }
    if "FMSPC=None" not in text:
        facts.update(fmspc=value(r"FMSPC=([0-9a-f]+)"), pce_id=value(r"PCE-ID=([0-9a-f]+)"),
                     pce_svn=int(value(r"PCESVN=(\d+)")), cpu_svn=value(r"CPUSVN=([0-9a-f]+)"),
                     qe_isv_svn=int(value(r"QE isvsvn=(\d+)")))
    status = re.search(r"TCB status \(my implementation[^)]*\): (\{.*?\})<br>", text)
    if status:
        facts["outcome"] = ast.literal_eval(status.group(1))
    return facts


def _quote(vectors: Path, relative: str) -> bytes:
    return (vectors / relative).read_bytes()


def _verify(vectors: Path, relative: str, collateral, at: datetime, **kwargs):
    quote = _quote(vectors, relative)
    verifier = TdxVerifier(collateral, **kwargs)
    return verifier.verify(Evidence("tdx", quote),
                           report_data=parse_quote(quote).body.report_data, at=at)


def _assert_facts(claims, facts) -> None:
    for key in ("report_data", "mr_td", "mr_seam", "tee_tcb_svn", "xfam", "fmspc", "pce_id",
                "pce_svn", "cpu_svn"):
        assert claims[key] == facts[key], key
    assert [claims[f"rtmr{i}"] for i in range(4)] == facts["rtmrs"]
    assert claims["td_attributes"]["raw"] == facts["td_attributes"]
    assert claims["td_attributes"]["debug"] is facts["debug"]
    assert claims["quote_version"] == facts["version"]


def _assert_outcome(claims, outcome) -> None:
    status = outcome["platform"]
    assert claims["tcb_status"] == ("NoMatchingTcbLevel" if status == "NoMatch" else status)
    assert claims["advisory_ids"] == outcome["advisories"]
    date = outcome["tcbDate"]
    assert claims["tcb_date"] == (None if date is None else date.replace("Z", "+00:00"))
    module = outcome["tdx_module"]
    assert (claims["tdx_module"] is None) is (module is None)
    if module is not None:
        assert [claims["tdx_module"]["id"], claims["tdx_module"]["status"]] == module
    assert claims["qe_tcb_status"] == outcome["qe"]


@pytest.mark.vectors
def test_dcap_qvl_sample_is_up_to_date(vectors):
    facts = manifest_facts(vectors, DCAP + "tdx_quote")
    verified = _verify(vectors, DCAP + "tdx_quote", dcap_collateral(vectors), DCAP_AT)
    _assert_facts(verified.claims, facts)
    _assert_outcome(verified.claims, facts["outcome"])
    assert verified.claims["tcb_status"] == "UpToDate"
    assert verified.claims["collateral_expired"] is False
    assert verified.collateral["root"]["source"] == "pinned"
    assert verified.collateral["tcb_info"]["source"] == "dcap-qvl sample"


@pytest.mark.vectors
def test_dcap_qvl_sample_expires_with_its_pck_crl(vectors):
    late = datetime(2025, 7, 19, 10, 0, 36, tzinfo=UTC)  # PCK CRL nextUpdate + 1 s
    with pytest.raises(VerificationFailed, match="PCK CRL"):
        _verify(vectors, DCAP + "tdx_quote", dcap_collateral(vectors), late)
    verified = _verify(vectors, DCAP + "tdx_quote", dcap_collateral(vectors), late,
                       allow_expired_collateral=True)
    assert verified.claims["collateral_expired"] is True


@pytest.mark.vectors
def test_dcap_qvl_result_lasts_only_until_its_pck_crl(vectors):
    """At dcap-qvl's clock the PCK CRL has one second left (TCB Info until 10:16:03): the
    result must not claim the policy's hour."""
    verified = _verify(vectors, DCAP + "tdx_quote", dcap_collateral(vectors), DCAP_AT)
    next_update = datetime(2025, 7, 19, 10, 0, 35, tzinfo=UTC)
    assert (verified.valid_until, verified.valid_until_source) == (next_update,
                                                                   "PCK CRL nextUpdate")
    result = appraise(Policy(tdx=TdxPolicy()), verified, DCAP_AT)
    assert result.expires_at == next_update
    assert result.expiry_source == "PCK CRL nextUpdate"
    assert result.to_json_dict()["expires_at"] == "2025-07-19T10:00:35+00:00"
    assert result.is_fresh(DCAP_AT) and not result.is_fresh(next_update)


@pytest.mark.vectors
def test_accepted_expired_collateral_does_not_give_a_result_born_expired(vectors):
    late = datetime(2025, 7, 19, 10, 0, 36, tzinfo=UTC)  # PCK CRL nextUpdate + 1 s
    verified = _verify(vectors, DCAP + "tdx_quote", dcap_collateral(vectors), late,
                       allow_expired_collateral=True)
    assert verified.valid_until == datetime(2025, 7, 19, 10, 0, 35, tzinfo=UTC)
    result = appraise(Policy(tdx=TdxPolicy(expired_collateral="warn")), verified, late)
    assert result.expires_at == late + timedelta(hours=1)
    assert result.expiry_source == ("the policy's 3600 s result lifetime; PCK CRL nextUpdate "
                                    "had already "
                                    "expired at 2025-07-19T10:00:35+00:00")
    assert not result.affirming  # the warning the verdict carries is what speaks


@pytest.mark.vectors
def test_collateral_may_travel_with_the_evidence(vectors):
    quote = _quote(vectors, DCAP + "tdx_quote")
    endorsement = (vectors / DCAP / "tdx_quote_collateral.json").read_bytes()
    verified = TdxVerifier().verify(Evidence("tdx", quote, {"collateral": endorsement}),
                                    report_data=parse_quote(quote).body.report_data,
                                    at=DCAP_AT)
    assert verified.claims["tcb_status"] == "UpToDate"
    assert verified.collateral["tcb_info"]["source"] == "evidence:collateral"
    again = collateral_to_json(dcap_collateral(vectors))
    assert TdxVerifier().verify(Evidence("tdx", quote, {"collateral": again}),
                                report_data=parse_quote(quote).body.report_data,
                                at=DCAP_AT).claims == verified.claims


@pytest.mark.vectors
def test_go_tdx_guest_quote_has_no_matching_tcb_level(vectors):
    facts = manifest_facts(vectors, SPR)
    verified = _verify(vectors, SPR, go_tdx_guest_collateral(vectors), GTG_AT)
    _assert_facts(verified.claims, facts)
    _assert_outcome(verified.claims, facts["outcome"])
    assert verified.claims["tcb_status"] == "NoMatchingTcbLevel"
    assert any(check.check == "trailing_bytes" for check in verified.checks)


@pytest.mark.vectors
def test_go_tdx_guest_quote_fails_in_2053(vectors):
    with pytest.raises(VerificationFailed, match="not valid at the verification time"):
        _verify(vectors, SPR, go_tdx_guest_collateral(vectors),
                datetime(2053, 7, 1, tzinfo=UTC))


@pytest.mark.vectors
@pytest.mark.parametrize("chain", ["2018", "reissued"])
def test_quote_v5_is_up_to_date_but_its_collateral_is_stale(vectors, chain):
    tcb_chain = reissued_tcb_chain(vectors) if chain == "reissued" else None
    collateral = go_tdx_guest_collateral(vectors, tcb_info="sample_tcbinfo_response_v5",
                                         tcb_chain=tcb_chain)
    with pytest.raises(VerificationFailed, match="expired") as error:
        _verify(vectors, V5, collateral, V5_AT)
    assert ("TCB Info signing certificate" in str(error.value)) is (chain == "2018")
    facts = manifest_facts(vectors, V5)
    verified = _verify(vectors, V5, collateral, V5_AT, allow_expired_collateral=True)
    _assert_facts(verified.claims, facts)
    _assert_outcome(verified.claims, facts["outcome"])
    assert verified.claims["collateral_expired"] is True
    assert verified.claims["tee_tcb_svn_2"] == "0d010400000000000000000000000000"
    assert verified.claims["body_type"] == 3


@pytest.mark.vectors
def test_trustee_quote_6_is_out_of_date_with_an_up_to_date_module(vectors):
    relative = TRUSTEE + "tdx_quote_6.dat"
    facts = manifest_facts(vectors, relative)
    with pytest.raises(VerificationFailed, match="PCK CRL"):  # the stand-in CRLs are stale
        _verify(vectors, relative, trustee_collateral(vectors), TRUSTEE_AT)
    verified = _verify(vectors, relative, trustee_collateral(vectors), TRUSTEE_AT,
                       allow_expired_collateral=True)
    _assert_facts(verified.claims, facts)
    _assert_outcome(verified.claims, facts["outcome"])
    assert verified.claims["tdx_module"]["id"] == "TDX_03"


@pytest.mark.vectors
def test_trustee_quote_4_with_2023_collateral(vectors):
    """Not a MANIFEST outcome (MANIFEST pairs quote 4 with 2025 collateral, not in vectors):
    with go-tdx-guest's 2023 TCB Info for the same FMSPC this debug TD is UpToDate."""
    verified = _verify(vectors, TRUSTEE + "tdx_quote_4.dat", go_tdx_guest_collateral(vectors),
                       GTG_AT)
    assert verified.claims["tcb_status"] == "UpToDate"
    assert verified.claims["td_attributes"]["debug"] is True


COMPOSITE = [AZURE + "td-quote.bin", GTG + "testing/testdata/ccel/cos-113-tdx-quote.dat",
             TRUSTEE + "tdx_quote_4.dat", TRUSTEE + "tdx_quote_5.dat"]


@pytest.mark.vectors
@pytest.mark.parametrize("relative", COMPOSITE)
def test_composite_samples_verify_up_to_their_chain(vectors, relative):
    facts = manifest_facts(vectors, relative)
    quote = _quote(vectors, relative)
    found = verify_quote_chain(quote, at=COMPOSITE_AT)
    assert found["fmspc"] == facts["fmspc"]
    assert found["pce_svn"] == facts["pce_svn"]
    assert found["cpu_svn"] == facts["cpu_svn"]
    assert found["qe_isv_svn"] == facts["qe_isv_svn"]
    assert found["report_data"] == facts["report_data"]
    body = parse_quote(quote).body
    assert body.mr_td.hex() == facts["mr_td"]
    assert [value.hex() for value in body.rtmrs] == facts["rtmrs"]
    # dcap-qvl's collateral is for another FMSPC: the TCB step must notice.
    with pytest.raises(VerificationFailed, match="FMSPC"):
        TdxVerifier(dcap_collateral(vectors), allow_expired_collateral=True).verify(
            Evidence("tdx", quote), report_data=body.report_data, at=COMPOSITE_AT)


@pytest.mark.vectors
def test_azure_tdx_forms_carry_the_same_quote_as_the_tdreport(vectors):
    quote = _quote(vectors, AZURE + "td-quote.bin")
    v0 = json.loads((vectors / AZURE / "evidence-v0.json").read_bytes())
    v1 = json.loads((vectors / AZURE / "evidence-v1.json").read_bytes())
    text = v1["td_quote"]
    assert bytes(v0["td_quote"]) == quote
    assert base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)) == quote
    hcl = (vectors / AZURE / "hcl-report.bin").read_bytes()
    report = parse_tdreport(hcl[0x20:0x20 + 1024])
    body = parse_quote(quote).body
    assert report.report_data == body.report_data
    assert report.mr_td == body.mr_td
    assert report.tee_tcb_svn == body.tee_tcb_svn and report.xfam == body.xfam
    assert report.to_bytes() == hcl[0x20:0x20 + 1024]


@pytest.mark.vectors
def test_go_tdx_guest_mock_tdreport_is_not_a_tdreport(vectors):
    with pytest.raises(MalformedEvidence):
        parse_tdreport((vectors / GTG / "testing/testdata/report.dat").read_bytes())


@pytest.mark.vectors
def test_intel_synthetic_sample_is_rejected_at_the_root(vectors):
    facts = manifest_facts(vectors, SYNTHETIC + "quote.dat")
    quote = _quote(vectors, SYNTHETIC + "quote.dat")
    assert parse_quote(quote).body.tee_tcb_svn.hex() == facts["tee_tcb_svn"]
    with pytest.raises(VerificationFailed, match="not the pinned Intel SGX Root CA"):
        _verify(vectors, SYNTHETIC + "quote.dat", synthetic_collateral(vectors), COMPOSITE_AT)
    with pytest.raises(VerificationFailed, match="not the pinned"):
        verify_quote_chain(quote, at=COMPOSITE_AT)


@pytest.mark.vectors
def test_intel_synthetic_sample_with_its_test_root(vectors):
    """Trusting Intel's test root on purpose: the DER root-first chain, QE report, quote, TCB
    Info and QE Identity signatures all verify; its TCB Info has no module identity."""
    root = (vectors / SYNTHETIC / "trustedRootCaCert.pem").read_bytes()
    quote = _quote(vectors, SYNTHETIC + "quote.dat")
    certs = load_certificates(parse_quote(quote).qe.certification)  # type: ignore[union-attr]
    assert [cert.subject.rfc4514_string().split("CN=")[1] for cert in certs] == [
        "Intel SGX Root CA", "Intel SGX PCK Processor CA", "Intel SGX PCK Certificate"]
    assert pck_extensions(certs[2]).fmspc.hex() == "ed742af8adf5"
    with pytest.raises(VerificationFailed, match="no identity for TDX module TDX_C1"):
        _verify(vectors, SYNTHETIC + "quote.dat", synthetic_collateral(vectors), COMPOSITE_AT,
                root=root)


@pytest.mark.vectors
def test_every_real_quote_round_trips(vectors):
    for relative in [DCAP + "tdx_quote", SPR, V5, SYNTHETIC + "quote.dat",
                     TRUSTEE + "tdx_quote_6.dat", *COMPOSITE]:
        quote = _quote(vectors, relative)
        assert parse_quote(quote).to_bytes() == quote, relative


@pytest.mark.vectors
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(0, 5005), xor=st.integers(1, 255))
def test_any_mutation_of_a_real_quote_gives_only_ccattest_errors(vectors, offset, xor):
    original = _quote(vectors, DCAP + "tdx_quote")
    quote = bytearray(original)
    report_data = bytes(quote[568:632])
    quote[offset] ^= xor
    verifier = TdxVerifier(dcap_collateral(vectors))
    try:
        verified = verifier.verify(Evidence("tdx", bytes(quote)), report_data=report_data,
                                   at=DCAP_AT)
    except (MalformedEvidence, VerificationFailed):
        return
    except CCAttestError as error:  # e.g. a broken PCK chain: typed, but name it
        assert type(error).__name__ == "CollateralUnavailable", error
        return
    # Only unsigned bytes that mean nothing may change: PEM whitespace, padding.
    assert offset >= original.index(b"-----BEGIN CERTIFICATE-----")
    baseline = verifier.verify(Evidence("tdx", original), report_data=report_data, at=DCAP_AT)
    assert verified.claims == baseline.claims


@pytest.mark.vectors
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_real_collateral_gives_only_ccattest_errors(vectors, data):
    quote = _quote(vectors, DCAP + "tdx_quote")
    document = bytearray((vectors / DCAP / "tdx_quote_collateral.json").read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        document[data.draw(st.integers(0, len(document) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(1, len(document)))
    evidence = Evidence("tdx", quote, {"collateral": bytes(document[:cut])})
    with contextlib.suppress(CCAttestError):
        TdxVerifier().verify(evidence, report_data=parse_quote(quote).body.report_data,
                             at=DCAP_AT)


@pytest.mark.vectors
def test_collateral_request_of_real_quotes(vectors):
    assert collateral_request(_quote(vectors, DCAP + "tdx_quote")) == ("b0c06f000000",
                                                                         "platform")
    assert collateral_request(_quote(vectors, SYNTHETIC + "quote.dat")) == ("ed742af8adf5",
                                                                             "processor")


@pytest.mark.vectors
def test_trustee_quote_5_has_no_matching_level_in_2026_either(vectors):
    """MANIFEST's NoMatch for quote 5 rests on 2025 TCB Info (not in vectors); go-tdx-guest's
    2026 TCB Info for the same FMSPC gives the same outcome (stale QE Identity and CRLs)."""
    collateral = go_tdx_guest_collateral(vectors, tcb_info="sample_tcbinfo_response_v5",
                                         tcb_chain=reissued_tcb_chain(vectors))
    facts = manifest_facts(vectors, TRUSTEE + "tdx_quote_5.dat")
    verified = _verify(vectors, TRUSTEE + "tdx_quote_5.dat", collateral, V5_AT,
                       allow_expired_collateral=True)
    assert verified.claims["tcb_status"] == "NoMatchingTcbLevel"
    assert facts["outcome"]["platform"] == "NoMatch"  # type: ignore[index]
    assert verified.claims["quote_version"] == 5 and verified.claims["body_type"] == 3
