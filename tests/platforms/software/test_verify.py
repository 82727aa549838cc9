import dataclasses
from datetime import datetime

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import CCAttestError, ConfigError, MalformedEvidence, VerificationFailed
from ccattest.platforms.software.pki import create_root
from ccattest.platforms.software.verify import SoftwareVerifier
from ccattest.testing import SoftwareFixture
from ccattest.testing.cases import FIXED_NOW

FIXTURE = SoftwareFixture.create()
CASES = FIXTURE.broken_cases()


def test_valid_evidence_verifies_with_claims(software):
    evidence, report_data, _ = software.evidence()
    verified = software.verifier().verify(evidence, report_data=report_data, at=software.now)
    assert verified.attester == "site-1"
    claims = verified.claims
    assert claims["measurement"] == software.measurement
    assert claims["report_data"] == report_data.hex()
    assert claims["debug"] is False
    assert claims["svn"] == 1
    assert claims["hardware_guarantee"] is False
    assert [item["name"] for item in claims["measured_items"]] == ["app", "python"]
    assert all(check.passed for check in verified.checks)
    assert verified.collateral["software_root"]["source"] == "configured"


def test_evidence_without_log_still_verifies(software):
    evidence, report_data, _ = software.evidence()
    bare = dataclasses.replace(evidence, log=(), attester=None)
    verified = software.verifier().verify(bare, report_data=report_data, at=software.now)
    assert verified.claims["measured_items"] == []


def test_pem_certificate_is_accepted(software):
    evidence, report_data, _ = software.evidence()
    pem = software.site.certificate.public_bytes(serialization.Encoding.PEM)
    evidence = dataclasses.replace(evidence, endorsements={"site_cert": pem})
    software.verifier().verify(evidence, report_data=report_data, at=software.now)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_broken_evidence_fails_with_the_right_kind(case):
    with pytest.raises(CCAttestError) as info:
        FIXTURE.verifier().verify(case.evidence, report_data=case.report_data, at=case.at)
    assert type(info.value) is case.error, str(info.value)
    assert info.value.message


def test_broken_cases_cover_the_issue_list():
    names = {case.name for case in CASES}
    assert {"bad_signature", "wrong_root", "wrong_nonce", "truncated",
            "mutated_measurement"} <= names


def test_other_platform_is_refused(software):
    evidence, report_data, _ = software.evidence()
    with pytest.raises(MalformedEvidence, match="another platform"):
        software.verifier().verify(dataclasses.replace(evidence, platform="snp"),
                                   report_data=report_data, at=software.now)


def test_naive_time_is_a_config_error(software):
    evidence, report_data, _ = software.evidence()
    with pytest.raises(ConfigError, match="naive datetime"):
        software.verifier().verify(evidence, report_data=report_data, at=datetime(2026, 1, 1))


def test_verifier_configuration_errors(software):
    with pytest.raises(ConfigError, match="no software root"):
        SoftwareVerifier([])
    with pytest.raises(ConfigError, match="must be a CA"):
        SoftwareVerifier([software.site.certificate])


def test_any_of_several_roots(software):
    other = create_root(FIXED_NOW)
    evidence, report_data, _ = software.evidence()
    verifier = SoftwareVerifier([other.certificate, software.root.certificate])
    assert verifier.verify(evidence, report_data=report_data, at=software.now).attester


def test_root_with_another_name_is_not_found(software):
    evidence, report_data, _ = software.evidence()
    verifier = SoftwareVerifier([create_root(FIXED_NOW, name="another root").certificate])
    with pytest.raises(VerificationFailed, match="not issued by a configured software root"):
        verifier.verify(evidence, report_data=report_data, at=software.now)


@given(st.integers(0, 0x11F), st.integers(1, 255))
def test_any_single_byte_mutation_is_rejected(offset, xor):
    evidence, report_data, _ = FIXTURE.evidence(nonce=b"n" * 32)
    mutated = bytearray(evidence.report)
    mutated[offset] ^= xor
    with pytest.raises((MalformedEvidence, VerificationFailed)):
        FIXTURE.verifier().verify(dataclasses.replace(evidence, report=bytes(mutated)),
                                  report_data=report_data, at=FIXTURE.now)
