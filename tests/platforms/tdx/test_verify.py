import dataclasses
from datetime import timedelta

import pytest
from cryptography import x509

from ccattest.errors import (
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    VerificationFailed,
)
from ccattest.platforms.base import Verifier
from ccattest.platforms.tdx.certs import pinned_root
from ccattest.platforms.tdx.collateral_json import collateral_to_json
from ccattest.platforms.tdx.verify import (
    TdxVerifier,
    _cert,
    _ecdsa_valid,
    collateral_request,
    verify_quote_chain,
)
from ccattest.testing.tdx import (
    TdxFixture,
    TdxKeys,
    der,
    isv_level,
    make_cert,
    module_identity,
    pem,
    tcb_level,
)

KEYS = TdxKeys.generate()
FIXTURES = {
    "v4-module1": TdxFixture.create(keys=KEYS),
    "v4-module0": TdxFixture.create(keys=KEYS, tee_tcb_svn=bytes([3, 0, 4]) + bytes(13)),
    "v5-tdx10": TdxFixture.create(keys=KEYS, version=5),
    "v5-tdx15": TdxFixture.create(keys=KEYS, version=5, tdx15=True),
}
V4 = FIXTURES["v4-module1"]
CASES = [(name, case) for name, fixture in FIXTURES.items() for case in fixture.broken_cases()]
# The check each broken case must trip, by message: a case failing for another reason would
# hide a missing check.
MESSAGES = {
    "bad_signature": "quote signature does not verify",
    "mutated_td_attributes_debug": "quote signature does not verify",
    "mutated_mr_td": "quote signature does not verify",
    "mutated_rtmr0": "quote signature does not verify",
    "mutated_report_data": "quote signature does not verify",
    "mutated_tee_tcb_svn": "quote signature does not verify",
    "mutated_qe_report": "QE report signature does not verify",
    "mutated_qe_report_signature": "QE report signature does not verify",
    "truncated": "truncated",
    "empty": "truncated",
    "unknown_version": "unsupported quote version",
    "not_tdx": "not a TDX quote",
    "signature_data_too_long": "truncated in signature data",
    "signed_by_another_key": "quote signature does not verify",
    "qe_vouches_for_another_key": "does not vouch for the attestation key",
    "qe_report_data_wrong": "does not vouch for the attestation key",
    "qe_report_signed_by_rogue": "QE report signature does not verify",
    "non_intel_qe_vendor": "non-Intel quoting enclave",
    "qe_mrsigner_differs": "MRSIGNER does not match",
    "qe_prod_id_differs": "ISVPRODID does not match",
    "qe_attributes_differ": "ATTRIBUTES does not match",
    "qe_miscselect_differs": "MISCSELECT does not match",
    "module_signer_differs": "TDX module is not signed by the signer",
    "pck_not_signed_by_ca": "PCK certificate is not signed by",
    "ca_not_signed_by_root": "is not signed by the pinned",
    "unpinned_root": "not the pinned",
    "missing_pck_ca": "no PCK CA",
    "missing_pck": "has no PCK certificate",
    "garbage_chain": "does not parse",
    "no_pck_chain": "carries no PCK certificate chain",
    "tcb_info_signed_by_rogue": "TCB Info signature does not verify",
    "tcb_info_reserialised": "TCB Info signature does not verify",
    "tcb_info_pretty_printed": "TCB Info signature does not verify",
    "qe_identity_signed_by_rogue": "QE Identity signature does not verify",
    "tcb_info_for_another_fmspc": "another platform",
    "pck_revoked": r"is revoked \(PCK CRL\)",
    "pck_ca_revoked": r"is revoked \(root CA CRL\)",
    "pck_crl_signed_by_rogue": "PCK CRL is not signed",
    "tcb_info_issued_later": "issued after the verification time",
    "tcb_signer_not_from_root": "does not lead to the pinned",
    "no_collateral": "no TDX collateral",
    "collateral_not_json": "not JSON",
    "tcb_info_not_tdx": "not the TDX kind",
    "module_identity_missing": "no identity for TDX module",
    "wrong_report_data": "report_data does not bind",
    "expired_pck": "not valid at the verification time",
    "not_yet_valid": "not valid at the verification time",
    "expired_collateral": "collateral has expired",
}


def _verify(fixture, evidence, report_data, **kwargs):
    return fixture.verifier(**kwargs).verify(evidence, report_data=report_data, at=fixture.now)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_valid_evidence_verifies(name):
    fixture = FIXTURES[name]
    evidence, report_data, _ = fixture.evidence()
    verifier = fixture.verifier()
    assert isinstance(verifier, Verifier) and verifier.platform == "tdx"
    verified = verifier.verify(evidence, report_data=report_data, at=fixture.now)
    claims = verified.claims
    assert verified.platform == "tdx" and verified.attester is None
    assert claims["report_data"] == report_data.hex()
    assert claims["quote_version"] == fixture.version
    assert claims["tcb_status"] == "UpToDate" and claims["qe_tcb_status"] == "UpToDate"
    assert claims["fmspc"] == fixture.fmspc.hex() and claims["pce_svn"] == fixture.pce_svn
    assert claims["cpu_svn"] == fixture.cpu_svn.hex()
    assert claims["collateral_expired"] is False
    assert claims["verified_at"] == fixture.now.isoformat()
    assert claims["td_attributes"]["sept_ve_disable"] and not claims["td_attributes"]["debug"]
    assert claims["mr_td"] == "11" * 48 and claims["rtmr2"] == "22" * 48
    assert (claims["tdx_module"] is None) is (fixture.tee_tcb_svn[1] == 0)
    assert ("tee_tcb_svn_2" in claims) is fixture.tdx15
    assert verified.collateral["root"]["source"] == "configured"
    assert verified.collateral["tcb_info"]["source"] == "evidence:collateral"
    assert all(check.passed for check in verified.checks)


@pytest.mark.parametrize(("fixture_name", "case"), CASES,
                         ids=[f"{name}-{case.name}" for name, case in CASES])
def test_broken_evidence_is_rejected(fixture_name, case):
    fixture = FIXTURES[fixture_name]
    with pytest.raises(case.error, match=MESSAGES[case.name]):
        fixture.verifier().verify(case.evidence, report_data=case.report_data, at=case.at)


def test_every_case_has_a_message():
    assert {case.name for _, case in CASES} == set(MESSAGES)


def test_pinned_root_rejects_the_test_pki():
    evidence, report_data, _ = V4.evidence()
    with pytest.raises(VerificationFailed, match="not the pinned Intel SGX Root CA"):
        TdxVerifier().verify(evidence, report_data=report_data, at=V4.now)
    chain = pem(V4.pck, V4.ca)  # no root in the quote: the CA must chain to Intel's
    quote = V4.quote(report_data, qe=V4.qe_certification(chain=chain))
    with pytest.raises(VerificationFailed, match="is not signed by the pinned Intel SGX Root"):
        TdxVerifier().verify(dataclasses.replace(evidence, report=quote.to_bytes()),
                             report_data=report_data, at=V4.now)


def test_collateral_given_to_the_verifier_wins():
    evidence, report_data, _ = V4.evidence(collateral=b"ignored")
    verified = _verify(V4, evidence, report_data, collateral=V4.collateral())
    assert verified.collateral["tcb_info"]["source"] == "test"


def test_missing_collateral_says_where_to_get_it():
    evidence, report_data, _ = V4.evidence()
    evidence = dataclasses.replace(evidence, endorsements={})
    with pytest.raises(CollateralUnavailable) as error:
        _verify(V4, evidence, report_data)
    assert f"tcb?fmspc={V4.fmspc.hex()}" in str(error.value.hint)
    assert "--collateral" in str(error.value.hint)


def test_der_root_first_chain_verifies():
    evidence, report_data, _ = V4.evidence()
    chain = der(V4.root) + der(V4.ca) + der(V4.pck)
    quote = V4.quote(report_data, qe=V4.qe_certification(chain=chain))
    verified = _verify(V4, dataclasses.replace(evidence, report=quote.to_bytes()), report_data)
    assert verified.claims["tcb_status"] == "UpToDate"


def test_trailing_bytes_are_reported_not_trusted():
    evidence, report_data, _ = V4.evidence()
    padded = dataclasses.replace(evidence, report=evidence.report + b"padding")
    verified = _verify(V4, padded, report_data)
    assert [c.check for c in verified.checks if c.check == "trailing_bytes"] == ["trailing_bytes"]


def test_expired_collateral_can_be_allowed():
    evidence, report_data, _ = V4.evidence()
    late = V4.now + timedelta(days=40)
    verified = V4.verifier(allow_expired_collateral=True).verify(
        evidence, report_data=report_data, at=late)
    assert verified.claims["collateral_expired"] is True
    expiry = [c for c in verified.checks if c.check == "collateral_expiry"]
    assert expiry and "TCB Info" in str(expiry[0].found)


def test_expired_tcb_signing_certificate_counts_as_expired_collateral():
    signer = make_cert("Test SGX TCB Signing", V4.root.subject, KEYS.tcb_signer.public_key(),
                       KEYS.root, V4.now - timedelta(days=100), days=10, ca=False)
    chain = pem(signer, V4.root)
    collateral = V4.collateral(tcb_info_issuer_chain=chain, qe_identity_issuer_chain=chain)
    evidence, report_data, _ = V4.evidence(collateral=collateral_to_json(collateral))
    with pytest.raises(VerificationFailed, match="signing certificate"):
        _verify(V4, evidence, report_data)


def test_tcb_statuses_come_from_the_levels():
    day = timedelta(days=1)
    levels = [tcb_level("UpToDate", sgx=[9] * 16, pce_svn=99, tdx=[0] * 16, date=V4.now),
              tcb_level("ConfigurationNeeded", sgx=V4.sgx_svns, pce_svn=V4.pce_svn,
                        tdx=V4.tdx_components(), date=V4.now - 60 * day,
                        advisories=["INTEL-SA-00615"])]
    modules = [module_identity(1, [isv_level("OutOfDate", 0, V4.now - 90 * day,
                                             ["INTEL-SA-00960"])])]
    qe = [isv_level("SWHardeningNeeded", 0, V4.now - 10 * day, ["INTEL-SA-00999"])]
    collateral = V4.collateral(tcb_info=V4.tcb_info(levels=levels, modules=modules),
                               qe_identity=V4.qe_identity(levels=qe))
    evidence, report_data, _ = V4.evidence()
    claims = _verify(V4, evidence, report_data, collateral=collateral).claims
    assert claims["tcb_status"] == "OutOfDateConfigurationNeeded"
    assert claims["advisory_ids"] == ["INTEL-SA-00615", "INTEL-SA-00960"]
    assert claims["tcb_date"] == (V4.now - 90 * day).isoformat()
    assert claims["tdx_module"] == {"id": "TDX_01", "status": "OutOfDate",
                                    "tcb_date": (V4.now - 90 * day).isoformat()}
    assert claims["qe_tcb_status"] == "SWHardeningNeeded"
    assert claims["qe_advisory_ids"] == ["INTEL-SA-00999"]


def test_no_matching_level_is_a_claim_not_an_error():
    levels = [tcb_level("UpToDate", sgx=[9] * 16, pce_svn=99, tdx=[0] * 16, date=V4.now)]
    collateral = V4.collateral(tcb_info=V4.tcb_info(levels=levels, modules=[module_identity(
        1, [isv_level("UpToDate", 99, V4.now)])]),
        qe_identity=V4.qe_identity(levels=[isv_level("UpToDate", 99, V4.now)]))
    evidence, report_data, _ = V4.evidence()
    verified = _verify(V4, evidence, report_data, collateral=collateral)
    claims = verified.claims
    assert claims["tcb_status"] == "NoMatchingTcbLevel" and claims["tcb_date"] is None
    assert claims["tdx_module"]["status"] == "NoMatchingTcbLevel"
    assert claims["qe_tcb_status"] == "NoMatchingTcbLevel" and claims["qe_tcb_date"] is None
    assert "no matching level" in verified.checks[-1].message


def test_tcb_info_for_another_pce():
    collateral = V4.collateral(tcb_info=V4.tcb_info(pceId="0001"))
    evidence, report_data, _ = V4.evidence()
    with pytest.raises(VerificationFailed, match="another PCE"):
        _verify(V4, evidence, report_data, collateral=collateral)


def test_processor_ca_hint():
    processor = make_cert("Test SGX PCK Processor CA", V4.root.subject, KEYS.ca.public_key(),
                          KEYS.root, V4.now, days=3650, ca=True)
    pck = V4.issue_pck(issuer=processor)
    evidence, report_data, _ = V4.evidence()
    quote = V4.quote(report_data, qe=V4.qe_certification(chain=pem(pck, processor, V4.root)))
    collateral = V4.collateral(tcb_info=V4.tcb_info(fmspc=bytes(6)),
                               pck_crl=V4.crl(issuer=processor))
    with pytest.raises(VerificationFailed, match="another platform") as error:
        _verify(V4, dataclasses.replace(evidence, report=quote.to_bytes()), report_data,
                collateral=collateral)
    assert "ca=processor" in str(error.value.hint)


def test_certification_type_other_than_6_is_refused():
    evidence, report_data, _ = V4.evidence()
    quote = dataclasses.replace(V4.quote(report_data), certification_type=3, qe=None,
                                certification=b"ppid")
    with pytest.raises(VerificationFailed, match="unsupported certification data"):
        _verify(V4, dataclasses.replace(evidence, report=quote.to_bytes()), report_data)


def test_attestation_key_off_the_curve():
    evidence, report_data, _ = V4.evidence()
    quote = V4.quote(report_data)
    bad_key = bytes(64)
    qe = V4.qe_certification(attestation_key=bad_key)
    broken = dataclasses.replace(quote, attestation_key=bad_key, qe=qe)
    with pytest.raises(VerificationFailed, match="not a P-256 point"):
        _verify(V4, dataclasses.replace(evidence, report=broken.to_bytes()), report_data)


def test_pck_with_a_broken_extension_is_malformed():
    pck = V4.issue_pck(extension=b"\x30\x03\x02\x01")
    evidence, report_data, _ = V4.evidence()
    quote = V4.quote(report_data, qe=V4.qe_certification(chain=pem(pck, V4.ca, V4.root)))
    with pytest.raises(MalformedEvidence, match="truncated DER"):
        _verify(V4, dataclasses.replace(evidence, report=quote.to_bytes()), report_data)


def test_verifier_arguments_are_checked():
    evidence, report_data, _ = V4.evidence()
    with pytest.raises(ConfigError, match="64 bytes"):
        V4.verifier().verify(evidence, report_data=b"short", at=V4.now)
    with pytest.raises(ConfigError, match="64 bytes"):
        V4.verifier().verify(evidence, report_data="a" * 64, at=V4.now)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="length \\?"):
        V4.verifier().verify(evidence, report_data=None, at=V4.now)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="naive"):
        V4.verifier().verify(evidence, report_data=report_data, at=V4.now.replace(tzinfo=None))
    with pytest.raises(MalformedEvidence, match="another platform"):
        V4.verifier().verify(dataclasses.replace(evidence, platform="snp"),
                             report_data=report_data, at=V4.now)
    with pytest.raises(MalformedEvidence, match="must be bytes"):
        V4.verifier().verify(dataclasses.replace(evidence, endorsements={"collateral": "text"}),
                             report_data=report_data, at=V4.now)


def test_roots_and_collateral_are_checked_at_construction():
    assert TdxVerifier().root.der == der(pinned_root())
    assert TdxVerifier(root=pem(V4.root)).root.der == der(V4.root)
    assert TdxVerifier(root=V4.root).root.der == der(V4.root)
    for root, message in ((b"junk", "does not parse"), (pem(V4.ca), "self-signed ECDSA"),
                          ("text", "does not parse")):
        with pytest.raises(ConfigError, match=message):
            TdxVerifier(root=root)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="TdxCollateral"):
        TdxVerifier({"tcb_info": b""})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not parse"):
        TdxVerifier(V4.collateral(tcb_info=b"{}"))


def test_quote_chain_alone():
    evidence, report_data, _ = V4.evidence()
    found = verify_quote_chain(evidence.report, at=V4.now, root=V4.root)
    assert found["fmspc"] == V4.fmspc.hex() and found["report_data"] == report_data.hex()
    assert isinstance(V4.root, x509.Certificate)


def test_cached_verification_still_checks_time():
    evidence, report_data, _ = V4.evidence()
    verifier = V4.verifier(collateral=V4.collateral())
    for _ in range(3):
        verifier.verify(evidence, report_data=report_data, at=V4.now)
    with pytest.raises(VerificationFailed):
        verifier.verify(evidence, report_data=report_data, at=V4.now + timedelta(days=40))


def test_pck_crl_from_another_ca():
    collateral = V4.collateral(pck_crl=V4.crl(issuer=V4.root, key=KEYS.ca))
    evidence, report_data, _ = V4.evidence()
    with pytest.raises(VerificationFailed, match="PCK CRL is not signed by"):
        _verify(V4, evidence, report_data, collateral=collateral)


def test_signature_helpers_refuse_what_they_cannot_check():
    assert not _ecdsa_valid(None, bytes(64), b"data")
    assert not _ecdsa_valid(KEYS.pck.public_key(), bytes(63), b"data")
    with pytest.raises(MalformedEvidence, match="certificate does not parse"):
        _cert(b"\x30\x03abc")


def test_fixture_refuses_tdx15_in_a_v4_quote():
    with pytest.raises(ValueError, match="version 5"):
        TdxFixture.create(keys=KEYS, tdx15=True)


def test_collateral_request_names_what_to_fetch():
    evidence, report_data, _ = V4.evidence()
    assert collateral_request(evidence.report) == (V4.fmspc.hex(), "platform")
    processor = make_cert("Test SGX PCK Processor CA", V4.root.subject, KEYS.ca.public_key(),
                          KEYS.root, V4.now, days=3650, ca=True)
    quote = V4.quote(report_data, qe=V4.qe_certification(
        chain=pem(V4.issue_pck(issuer=processor), processor)))
    assert collateral_request(quote.to_bytes()) == (V4.fmspc.hex(), "processor")
    bare = V4.quote(report_data, qe=V4.qe_certification(chain=pem(V4.ca)))
    with pytest.raises(VerificationFailed, match="no PCK certificate"):
        collateral_request(bare.to_bytes())
