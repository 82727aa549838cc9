import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from ccattest.errors import ConfigError, MalformedEvidence, VerificationFailed
from ccattest.pipeline import verify_and_appraise
from ccattest.platforms.base import VerifiedClaims, earliest
from ccattest.policy import (
    Policy,
    SoftwarePolicy,
    appraise,
    appraise_failure,
    check_required_platforms,
)
from ccattest.result import Tier, TrustClaim
from ccattest.testing import SoftwareFixture


def _result(fixture, policy):
    evidence, report_data, _ = fixture.evidence()
    return verify_and_appraise(evidence, fixture.verifier(), policy, report_data=report_data,
                               at=fixture.now)


def _failed(result):
    return {reason.check for reason in result.failures()}


def test_affirming_when_every_rule_holds(software):
    policy = Policy(id="p", software=SoftwarePolicy(allow=True, measurements=[
        software.measurement], identities=["site-1"], min_svn=1))
    result = _result(software, policy)
    assert result.status is Tier.AFFIRMING and result.affirming
    assert result.expires_at - result.issued_at == timedelta(hours=1)
    assert result.policy_id == "p"
    assert result.trust_vector.to_dict() == {"instance-identity": 2, "executables": 2,
                                             "configuration": 2}
    assert {"chain", "signature", "binding", "platform_allowed", "measurement"} <= {
        reason.check for reason in result.reasons}


@pytest.mark.parametrize("policy", [Policy(), Policy(software=SoftwarePolicy(allow=False))])
def test_software_is_rejected_unless_allowed_by_name(software, policy):
    result = _result(software, policy)
    assert result.verified
    assert result.status is Tier.CONTRAINDICATED
    assert result.trust_vector.get(TrustClaim.HARDWARE) == 96
    reason = next(r for r in result.reasons if r.check == "platform_allowed")
    assert not reason.passed and reason.expected == "software.allow: true"


def test_unknown_measurement_is_contraindicated(software):
    result = _result(software, Policy(software=SoftwarePolicy(allow=True,
                                                              measurements=["00" * 48])))
    assert result.status is Tier.CONTRAINDICATED
    assert _failed(result) == {"measurement"}
    reason = result.failures()[0]
    assert reason.found == software.measurement


def test_no_reference_measurements_is_only_a_warning(software):
    result = _result(software, Policy(software=SoftwarePolicy(allow=True)))
    assert result.status is Tier.WARNING
    assert result.trust_vector.get(TrustClaim.EXECUTABLES) == 33


def test_debug_svn_and_identity_rules():
    fixture = SoftwareFixture.create("site-7", debug=True, svn=2)
    strict = SoftwarePolicy(allow=True, measurements=[fixture.measurement], min_svn=3,
                            identities=["site-1"])
    result = _result(fixture, Policy(software=strict))
    assert _failed(result) == {"debug", "min_svn", "identity"}
    assert result.trust_vector.get(TrustClaim.INSTANCE_IDENTITY) == 97
    assert result.trust_vector.get(TrustClaim.CONFIGURATION) == 96
    lenient = strict.model_copy(update={"allow_debug": True, "min_svn": 2,
                                        "identities": ["site-7"]})
    assert _result(fixture, Policy(software=lenient)).affirming


def test_unknown_platform_claims_are_not_affirmed(software):
    verified = VerifiedClaims(platform="quantum", claims={})
    result = appraise(Policy(), verified, software.now)
    assert result.status is Tier.CONTRAINDICATED
    assert result.failures()[0].found == "quantum"


def test_failures_become_results(software):
    verified_error = VerificationFailed("bad", expected="x", found="y")
    result = appraise_failure("software", verified_error, software.now, policy=Policy(id="p"))
    assert not result.verified and result.status is Tier.CONTRAINDICATED
    assert result.trust_vector.get(TrustClaim.INSTANCE_IDENTITY) == 99
    assert not result.is_fresh(software.now)
    assert result.reasons[0].check == "verification"  # what failed, not the exception class
    malformed = appraise_failure("software", MalformedEvidence("short"), software.now)
    assert malformed.status is Tier.NONE and malformed.policy_id is None
    assert malformed.reasons[0].check == "format"


def test_failure_reasons_name_the_check_and_the_fix(software):
    expired = appraise_failure("tdx", VerificationFailed(
        "TDX collateral has expired at the verification time", found=["TCB Info", "PCK CRL"]),
        software.now)
    (reason,) = expired.reasons
    assert reason.check == "collateral" and reason.found == "TCB Info, PCK CRL"
    assert reason.hint is not None and "ccattest collateral fetch" in reason.hint
    assert "--at" in reason.hint and reason.to_dict()["hint"] == reason.hint
    signature = appraise_failure("snp", VerificationFailed("report signature does not verify"),
                                 software.now)
    assert signature.reasons[0].check == "signature" and signature.reasons[0].hint is None
    assert "hint" not in signature.reasons[0].to_dict()


def test_pipeline_turns_broken_evidence_into_results(software):
    policy = Policy(software=SoftwarePolicy(allow=True))
    evidence, report_data, _ = software.evidence()
    # Flip the signature's last byte (setting it to 0 left it unchanged 1 time in 256).
    flipped = bytes([evidence.report[-1] ^ 1])
    tampered = dataclasses.replace(evidence, report=evidence.report[:-1] + flipped)
    result = verify_and_appraise(tampered, software.verifier(), policy,
                                 report_data=report_data, at=software.now)
    assert not result.verified and result.attester == "site-1"
    truncated = dataclasses.replace(evidence, report=evidence.report[:10])
    result = verify_and_appraise(truncated, software.verifier(), policy,
                                 report_data=report_data, at=software.now)
    assert result.status is Tier.NONE


def test_required_platforms(software):
    policy = Policy(software=SoftwarePolicy(allow=True, measurements=[software.measurement]),
                    common={"required_platforms": ["software", "snp"]})
    reasons = check_required_platforms(policy, [_result(software, policy)])
    assert [(r.check, r.passed, r.found) for r in reasons] == [
        ("required:software", True, "affirming"), ("required:snp", False, "absent")]


# --- expiry: the policy's lifetime, bounded by the collateral the verdict rested on ---------

def _bounded(software, valid_until, source="TCB Info nextUpdate"):
    verified = VerifiedClaims(platform="quantum", claims={}, valid_until=valid_until,
                              valid_until_source=source)
    return appraise(Policy(), verified, software.now)


def test_collateral_ending_first_bounds_the_result(software):
    end = software.now + timedelta(minutes=20)
    result = _bounded(software, end)
    assert (result.expires_at, result.expiry_source) == (end, "TCB Info nextUpdate")
    assert result.to_json_dict()["expiry_source"] == "TCB Info nextUpdate"
    unnamed = _bounded(software, end, source=None)
    assert unnamed.expiry_source == "collateral"


def test_lifetime_ending_first_bounds_the_result(software):
    result = _bounded(software, software.now + timedelta(days=30))
    assert result.expires_at == software.now + timedelta(hours=1)
    assert result.expiry_source == "the policy's 3600 s result lifetime"
    unbounded = _bounded(software, None, source=None)
    assert unbounded.expires_at == software.now + timedelta(hours=1)


@pytest.mark.parametrize("ago", [timedelta(0), timedelta(days=1)])
def test_collateral_already_expired_falls_back_to_the_lifetime(software, ago):
    # Only a verifier told to accept expired collateral hands these over; a result born
    # expired could not be handed on, and its warning already says what is wrong.
    end = software.now - ago
    result = _bounded(software, end, source="PCK CRL nextUpdate")
    assert result.expires_at == software.now + timedelta(hours=1)
    assert result.expiry_source == ("the policy's 3600 s result lifetime; PCK CRL nextUpdate "
                                    "had already "
                                    f"expired at {end.isoformat()}")


def test_naive_collateral_end_is_refused(software):
    with pytest.raises(ConfigError, match="naive"):
        _bounded(software, software.now.replace(tzinfo=None) + timedelta(minutes=1))


def test_earliest_names_the_first_end():
    t = datetime(2025, 1, 1, tzinfo=UTC)
    assert earliest([]) == (None, None)
    assert earliest([("a", None)]) == (None, None)
    bounds = [("a", t + timedelta(2)), ("b", None), ("c", t + timedelta(1)),
              ("d", t + timedelta(1))]  # a tie: the first named wins
    assert earliest(bounds) == (t + timedelta(1), "c")
