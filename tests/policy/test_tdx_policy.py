import pytest
from pydantic import ValidationError

from ccattest.errors import ConfigError
from ccattest.policy.tdx import TdxPolicy, appraise_tdx
from ccattest.result import Tier, TrustClaim
from ccattest.testing.tdx import TdxFixture

MRTD = "11" * 48
RTMR0 = "20" * 48
OWNER = "ab" * 48


def _claims(**changes):
    claims = {
        "quote_version": 4, "tee_tcb_svn": "06010300000000000000000000000000",
        "mr_seam": "01" * 48, "mr_signer_seam": "00" * 48, "seam_attributes": "00" * 8,
        "mr_td": MRTD, "mr_config_id": "00" * 48, "mr_owner": OWNER,
        "mr_owner_config": "00" * 48, "rtmr0": RTMR0, "rtmr1": "21" * 48, "rtmr2": "22" * 48,
        "rtmr3": "00" * 48, "report_data": "00" * 64,
        "td_attributes": {"raw": "0000001000000000", "value": 1 << 28, "debug": False,
                          "sept_ve_disable": True},
        "xfam": "e702060000000000", "fmspc": "b0c06f000000", "pce_svn": 11,
        "cpu_svn": "03" * 16, "tcb_status": "UpToDate", "tcb_date": "2026-01-01T00:00:00+00:00",
        "advisory_ids": [], "tdx_module": None, "qe_tcb_status": "UpToDate",
        "qe_tcb_date": "2026-01-01T00:00:00+00:00", "qe_advisory_ids": [],
        "collateral_expired": False, "verified_at": "2026-03-01T00:00:00+00:00",
    }
    claims.update(changes)
    return claims


STRICT = TdxPolicy(
    mrtd=[MRTD], rtmrs={0: [RTMR0], 3: []}, mr_owner=[OWNER], mr_config_id=["00" * 48],
    mr_owner_config=["00" * 48], mr_seam=["01" * 48], xfam=["e702060000000000"],
    xfam_forbidden_bits=1 << 63, td_attributes_allowed_bits=(1 << 28) | 1,
    td_attributes_required_bits=1 << 28, min_tee_tcb_svn="05010300000000000000000000000000",
    forbidden_advisory_ids=["INTEL-SA-00615"],
)


def _outcome(section, **changes):
    appraisal = appraise_tdx(section, _claims(**changes))
    failed = {reason.check for reason in appraisal.reasons if not reason.passed}
    return appraisal, failed


def test_strict_policy_affirms_matching_claims():
    appraisal, failed = _outcome(STRICT)
    assert failed == set()
    assert appraisal.vector.status is Tier.AFFIRMING
    assert appraisal.vector.to_dict() == {"hardware": 2, "executables": 2, "configuration": 2,
                                          "runtime-opaque": 2}
    checks = {reason.check for reason in appraisal.reasons}
    assert {"platform_allowed", "tcb_status", "qe_tcb_status", "advisories", "min_tee_tcb_svn",
            "mr_seam", "collateral_current", "measurement", "rtmr0", "debug", "td_attributes",
            "xfam", "xfam_bits", "mr_config_id", "mr_owner", "mr_owner_config",
            "memory_encryption"} == checks


def test_every_reason_says_expected_and_found():
    for section in (STRICT, TdxPolicy(), None):
        for changes in ({}, {"tcb_status": "OutOfDate", "collateral_expired": True}):
            appraisal, _ = _outcome(section, **changes)
            for reason in appraisal.reasons:
                assert reason.expected is not None and reason.found is not None, reason


def test_default_section_warns_about_unknown_mrtd():
    appraisal, failed = _outcome(TdxPolicy())
    assert failed == {"measurement"}
    assert appraisal.vector.get(TrustClaim.EXECUTABLES) == 33
    assert appraisal.vector.status is Tier.WARNING


def test_no_section_rejects():
    appraisal, failed = _outcome(None)
    assert "platform_allowed" in failed
    assert appraisal.vector.status is Tier.CONTRAINDICATED
    appraisal, failed = _outcome(TdxPolicy(allow=False))
    assert "platform_allowed" in failed


@pytest.mark.parametrize("status", ["OutOfDate", "NoMatchingTcbLevel", "Revoked",
                                    "SWHardeningNeeded", "ConfigurationNeeded"])
def test_only_accepted_statuses_pass(status):
    appraisal, failed = _outcome(STRICT, tcb_status=status)
    assert failed == {"tcb_status"}
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 96
    _, failed = _outcome(STRICT, qe_tcb_status=status)
    assert failed == {"qe_tcb_status"}


def test_accepting_more_statuses():
    section = STRICT.model_copy(update={"accepted_tcb_statuses": ["UpToDate",
                                                                  "SWHardeningNeeded"]})
    _, failed = _outcome(section, tcb_status="SWHardeningNeeded")
    assert failed == set()


def test_out_of_date_grace_period():
    section = STRICT.model_copy(update={"out_of_date_grace_days": 90})
    appraisal, failed = _outcome(section, tcb_status="OutOfDate")  # 59 days after tcbDate
    assert failed == {"tcb_status"}  # a note: warning, not failure
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 32
    assert appraisal.vector.status is Tier.WARNING
    note = next(r for r in appraisal.reasons if r.check == "tcb_status")
    assert "grace" in note.message and note.found == "OutOfDate, 59 days"
    appraisal, _ = _outcome(section, tcb_status="OutOfDate",
                            verified_at="2026-06-01T00:00:00+00:00")
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 96
    appraisal, _ = _outcome(section, tcb_status="OutOfDate", tcb_date=None)
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 96
    appraisal, _ = _outcome(section, tcb_status="OutOfDateConfigurationNeeded")
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 96
    appraisal, _ = _outcome(section, qe_tcb_status="OutOfDate")
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 32


def test_forbidden_advisories():
    _, failed = _outcome(STRICT, advisory_ids=["INTEL-SA-00615", "INTEL-SA-1"])
    assert failed == {"advisories"}
    _, failed = _outcome(STRICT, qe_advisory_ids=["INTEL-SA-00615"])
    assert failed == {"advisories"}
    _, failed = _outcome(STRICT, advisory_ids=["INTEL-SA-1"])
    assert failed == set()


def test_minimum_tee_tcb_svn_per_component():
    _, failed = _outcome(STRICT, tee_tcb_svn="06010200000000000000000000000000")
    assert failed == {"min_tee_tcb_svn"}
    _, failed = _outcome(STRICT, tee_tcb_svn="05010300000000000000000000000000")
    assert failed == set()


def test_expired_collateral_reject_or_warn():
    appraisal, failed = _outcome(STRICT, collateral_expired=True)
    assert failed == {"collateral_current"}
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 96
    section = STRICT.model_copy(update={"expired_collateral": "warn"})
    appraisal, failed = _outcome(section, collateral_expired=True)
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 32
    assert appraisal.vector.status is Tier.WARNING


def test_measurements_and_rtmrs():
    appraisal, failed = _outcome(STRICT, mr_td="99" * 48)
    assert failed == {"measurement"}
    assert appraisal.vector.get(TrustClaim.EXECUTABLES) == 96
    appraisal, failed = _outcome(STRICT, rtmr0="99" * 48)
    assert failed == {"rtmr0"}
    assert appraisal.vector.get(TrustClaim.EXECUTABLES) == 96
    _, failed = _outcome(STRICT, rtmr3="99" * 48)  # an empty list for an index: no rule
    assert failed == set()


def test_debug_and_attribute_bits():
    debug = {"raw": "0100001000000000", "value": (1 << 28) | 1, "debug": True}
    appraisal, failed = _outcome(STRICT, td_attributes=debug)
    assert failed == {"debug"}
    assert appraisal.vector.get(TrustClaim.CONFIGURATION) == 96
    section = STRICT.model_copy(update={"allow_debug": True})
    _, failed = _outcome(section, td_attributes=debug)
    assert failed == set()
    pks = {"raw": "0000005000000000", "value": (1 << 28) | (1 << 30), "debug": False}
    _, failed = _outcome(STRICT, td_attributes=pks)
    assert failed == {"td_attributes"}
    bare = {"raw": "0000000000000000", "value": 0, "debug": False}
    _, failed = _outcome(STRICT, td_attributes=bare)
    assert failed == {"td_attributes"}


def test_xfam_values_and_bits():
    _, failed = _outcome(STRICT, xfam="e702060000000080")
    assert failed == {"xfam", "xfam_bits"}
    _, failed = _outcome(TdxPolicy(mrtd=[MRTD]), xfam="ffffffffffffffff")
    assert failed == set()


@pytest.mark.parametrize("check", ["mr_config_id", "mr_owner", "mr_owner_config", "mr_seam"])
def test_identity_values(check):
    _, failed = _outcome(STRICT, **{check: "77" * 48})
    assert failed == {check}


def test_policy_model_rejects_nonsense():
    for bad in ({"accepted_tcb_statuses": ["NoMatchingTcbLevel"]},
                {"accepted_tcb_statuses": ["Revoked"]}, {"mrtd": ["00"]},
                {"rtmrs": {4: ["00" * 48]}}, {"min_tee_tcb_svn": "00"},
                {"expired_collateral": "ignore"}, {"xfam": ["00"]}, {"unknown": 1},
                {"out_of_date_grace_days": -1}, {"td_attributes_allowed_bits": 2**64}):
        with pytest.raises(ValidationError):
            TdxPolicy(**bad)
    assert TdxPolicy(rtmrs={"2": ["AA" * 48]}).rtmrs == {2: ["aa" * 48]}  # type: ignore[dict-item]


def test_mrtd_file(tmp_path):
    (tmp_path / "mrtd.txt").write_text(f"# reference TDs\n{'22' * 48}\n\n")
    section = TdxPolicy(mrtd=[MRTD], mrtd_file="mrtd.txt").resolve_files(tmp_path)
    assert section.mrtd == [MRTD, "22" * 48]
    assert TdxPolicy().resolve_files(tmp_path) == TdxPolicy()
    with pytest.raises(ConfigError):
        TdxPolicy(mrtd_file="absent.txt").resolve_files(tmp_path)


def test_real_verifier_claims_are_appraised():
    fixture = TdxFixture.create()
    evidence, report_data, _ = fixture.evidence()
    claims = fixture.verifier().verify(evidence, report_data=report_data, at=fixture.now).claims
    section = TdxPolicy(mrtd=[claims["mr_td"]], rtmrs={1: [claims["rtmr1"]]})
    appraisal = appraise_tdx(section, claims)
    assert appraisal.vector.status is Tier.AFFIRMING, [
        r for r in appraisal.reasons if not r.passed]
