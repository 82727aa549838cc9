import copy

import pytest
from pydantic import ValidationError

from ccattest.errors import ConfigError
from ccattest.policy.snp import SnpPolicy, TcbMinimum, appraise_snp
from ccattest.result import Tier, TrustClaim
from ccattest.testing.snp import SnpFixture

MEASUREMENT = bytes(range(48)).hex()
CHIP = "ab" * 64


def _claims(**changes):
    claims = {
        "version": 3, "guest_svn": 2, "vmpl": 0, "measurement": MEASUREMENT,
        "report_data": "00" * 64, "host_data": "11" * 32, "chip_id": CHIP,
        "product": "Milan", "product_name": "Milan-B0", "signing_key": "vcek",
        "id_key_digest": "22" * 48, "author_key_digest": "33" * 48,
        "policy": {"raw": 0x30000, "abi_major": 0, "abi_minor": 0, "smt": True,
                   "reserved_bit17": True, "migrate_ma": False, "debug": False,
                   "single_socket": False, "cxl_allow": False, "mem_aes_256_xts": False,
                   "rapl_dis": False, "ciphertext_hiding": False, "page_swap_disable": False,
                   "unknown_bits": 0},
        "platform_info": {"raw": 0x25},
        "firmware": {"current": "1.55.40", "committed": "1.55.40"},
        "revocation": "not_checked",
        "reported_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115},
    }
    for key, value in changes.items():
        if key in ("debug", "smt", "migrate_ma"):
            claims["policy"] = {**claims["policy"], key: value}
        else:
            claims[key] = value
    return claims


STRICT = SnpPolicy(
    measurements=[MEASUREMENT], min_tcb=TcbMinimum(bootloader=3, snp=8, microcode=100),
    host_data=["11" * 32], id_key_digests=["22" * 48], author_key_digests=["33" * 48],
    chip_ids=[CHIP], products=["Milan"], signing_keys=["vcek"], min_firmware="1.55",
    platform_info_required_bits=0x1, platform_info_forbidden_bits=0x2, min_guest_svn=2,
)


def _outcome(section, **changes):
    appraisal = appraise_snp(section, _claims(**changes))
    failed = {reason.check for reason in appraisal.reasons if not reason.passed}
    return appraisal, failed


def test_strict_policy_affirms_matching_claims():
    appraisal, failed = _outcome(STRICT)
    assert failed == set()
    assert appraisal.vector.status is Tier.AFFIRMING
    assert appraisal.vector.to_dict() == {"hardware": 2, "executables": 2, "configuration": 2,
                                          "instance-identity": 2, "runtime-opaque": 2}
    assert appraisal.vector.get(TrustClaim.STORAGE_OPAQUE) == 0
    checks = {reason.check for reason in appraisal.reasons}
    assert {"platform_allowed", "product", "signing_key", "min_tcb", "measurement", "debug",
            "migrate_ma", "smt", "vmpl", "min_guest_svn", "host_data", "id_key_digest",
            "author_key_digest", "min_firmware", "platform_info", "revocation", "chip_id",
            "memory_encryption"} == checks


def test_every_reason_says_expected_and_found():
    for section in (STRICT, SnpPolicy(), None):
        for changes in ({}, {"debug": True, "vmpl": 2, "revocation": "checked"}):
            appraisal, _ = _outcome(section, **changes)
            for reason in appraisal.reasons:
                assert reason.expected is not None and reason.found is not None, reason


def test_default_section_warns_about_unknown_measurement():
    appraisal, failed = _outcome(SnpPolicy())
    assert failed == {"measurement"}
    assert appraisal.vector.get(TrustClaim.EXECUTABLES) == 33
    assert appraisal.vector.status is Tier.WARNING


@pytest.mark.parametrize("section", [None, SnpPolicy(allow=False)])
def test_snp_must_be_accepted_by_policy(section):
    appraisal, failed = _outcome(section)
    assert "platform_allowed" in failed
    assert appraisal.vector.get(TrustClaim.HARDWARE) == 96


@pytest.mark.parametrize(("changes", "check", "claim", "value"), [
    ({"product": "Genoa", "reported_tcb": {"bootloader": 9, "tee": 0, "snp": 30,
                                           "microcode": 200}},
     "product", TrustClaim.HARDWARE, 96),
    ({"signing_key": "vlek"}, "signing_key", TrustClaim.HARDWARE, 96),
    ({"reported_tcb": {"bootloader": 3, "tee": 0, "snp": 7, "microcode": 115}}, "min_tcb",
     TrustClaim.HARDWARE, 96),
    ({"measurement": "ff" * 48}, "measurement", TrustClaim.EXECUTABLES, 96),
    ({"debug": True}, "debug", TrustClaim.CONFIGURATION, 96),
    ({"migrate_ma": True}, "migrate_ma", TrustClaim.CONFIGURATION, 96),
    ({"vmpl": 1}, "vmpl", TrustClaim.CONFIGURATION, 96),
    ({"guest_svn": 1}, "min_guest_svn", TrustClaim.CONFIGURATION, 96),
    ({"host_data": "00" * 32}, "host_data", TrustClaim.CONFIGURATION, 96),
    ({"id_key_digest": "00" * 48}, "id_key_digest", TrustClaim.CONFIGURATION, 96),
    ({"author_key_digest": "00" * 48}, "author_key_digest", TrustClaim.CONFIGURATION, 96),
    ({"firmware": {"current": "1.54.99"}}, "min_firmware", TrustClaim.CONFIGURATION, 96),
    ({"platform_info": {"raw": 0x27}}, "platform_info", TrustClaim.CONFIGURATION, 96),
    ({"platform_info": {"raw": 0x24}}, "platform_info", TrustClaim.CONFIGURATION, 96),
    ({"chip_id": "cd" * 64}, "chip_id", TrustClaim.INSTANCE_IDENTITY, 97),
])
def test_each_rule_fails_alone(changes, check, claim, value):
    appraisal, failed = _outcome(STRICT, **changes)
    assert failed == {check}
    assert appraisal.vector.get(claim) == value
    assert appraisal.vector.status is Tier.CONTRAINDICATED
    reason = next(r for r in appraisal.reasons if r.check == check)
    assert reason.expected and reason.found


@pytest.mark.parametrize(("section", "changes"), [
    (SnpPolicy(allow_debug=True), {"debug": True}),
    (SnpPolicy(allow_migrate_ma=True), {"migrate_ma": True}),
    (SnpPolicy(vmpl=[0, 1]), {"vmpl": 1}),
    (SnpPolicy(require_smt_disabled=True), {"smt": False}),
    (SnpPolicy(require_revocation_check=True), {"revocation": "checked"}),
    (SnpPolicy(min_firmware="1.55"), {"firmware": {"current": "1.55.0"}}),
    (SnpPolicy(min_firmware="1.9"), {"firmware": {"current": "1.55.0"}}),
])
def test_settings_that_allow(section, changes):
    _, failed = _outcome(section, **changes)
    assert failed == {"measurement"}


@pytest.mark.parametrize(("section", "changes", "check"), [
    (SnpPolicy(require_smt_disabled=True), {}, "smt"),
    (SnpPolicy(require_revocation_check=True), {}, "revocation"),
    (SnpPolicy(min_firmware="2.0"), {}, "min_firmware"),
])
def test_settings_that_reject(section, changes, check):
    appraisal, failed = _outcome(section, **changes)
    assert failed == {"measurement", check}
    assert appraisal.vector.get(TrustClaim.CONFIGURATION) == 96


def test_min_tcb_by_product_and_fmc():
    section = SnpPolicy(min_tcb=TcbMinimum(snp=50, fmc=9),
                        min_tcb_by_product={"Turin": TcbMinimum(fmc=2, snp=4)})
    turin = {"fmc": 2, "bootloader": 0, "tee": 0, "snp": 4, "microcode": 9}
    _, failed = _outcome(section, product="Turin", reported_tcb=turin)
    assert "min_tcb" not in failed
    _, failed = _outcome(section, product="Turin", reported_tcb={**turin, "fmc": 1})
    assert "min_tcb" in failed
    appraisal, failed = _outcome(section)  # Milan: the default minimum, fmc does not apply
    assert "min_tcb" in failed
    reason = next(r for r in appraisal.reasons if r.check == "min_tcb")
    assert "FMC" not in reason.expected and "SNP" in reason.message


def test_policy_model_validation():
    with pytest.raises(ValidationError):
        SnpPolicy(chip_ids=["ab" * 8])
    with pytest.raises(ValidationError):
        SnpPolicy(vmpl=[4])
    with pytest.raises(ValidationError):
        SnpPolicy(min_firmware="1.55.2")
    with pytest.raises(ValidationError):
        SnpPolicy(products=["Venice"])
    with pytest.raises(ValidationError):
        SnpPolicy(min_tcb={"bootloader": 256})
    with pytest.raises(ValidationError):
        SnpPolicy(allow_debugging=True)
    assert SnpPolicy(host_data=["0X" + "AB" * 32]).host_data == ["ab" * 32]
    assert SnpPolicy(min_firmware=" 1.55 ").min_firmware == "1.55"


def test_measurements_file(tmp_path):
    (tmp_path / "refs.txt").write_text(f"# launch digests\n{'cd' * 48}\n\n")
    section = SnpPolicy(measurements=[MEASUREMENT], measurements_file="refs.txt")
    resolved = section.resolve_files(tmp_path)
    assert resolved.measurements == [MEASUREMENT, "cd" * 48]
    assert SnpPolicy().resolve_files(tmp_path) == SnpPolicy()
    with pytest.raises(ConfigError):
        SnpPolicy(measurements_file="missing.txt").resolve_files(tmp_path)


def test_real_verified_claims_feed_the_appraisal():
    fixture = SnpFixture.create("Turin", version=5)
    evidence, report_data, _ = fixture.evidence()
    claims = fixture.verifier().verify(evidence, report_data=report_data, at=fixture.now).claims
    section = SnpPolicy(measurements=[claims["measurement"]], chip_ids=[claims["chip_id"]],
                        products=["Turin"], min_tcb=TcbMinimum(fmc=1, microcode=9),
                        min_firmware="1.55")
    appraisal = appraise_snp(section, copy.deepcopy(claims))
    assert appraisal.vector.status is Tier.AFFIRMING, appraisal.reasons
