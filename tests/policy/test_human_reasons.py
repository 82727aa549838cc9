"""What people read in reasons carries no Python reprs: no True/False/None, no [..] lists, no
{..} dicts, no quoted 'strings'."""

from __future__ import annotations

import re

import pytest

from ccattest.evidence import Evidence
from ccattest.policy import Policy, SnpPolicy, SoftwarePolicy, TdxPolicy, appraise
from ccattest.policy.azure import AzurePolicy, appraise_maa, appraise_vtpm
from ccattest.policy.snp import TcbMinimum
from ccattest.result import Reason
from ccattest.testing import SoftwareFixture

# A quote not between two letters (ARK's is English, 'vcek' is a repr).
_REPR = re.compile(r"\bTrue\b|\bFalse\b|\bNone\b|[\[\]{}]|(?<![A-Za-z])'|'(?![A-Za-z])")


def _reprs(reasons: tuple[Reason, ...] | list[Reason]) -> list[str]:
    return [f"{reason.check}: {text}" for reason in reasons
            for text in (reason.message, reason.expected, reason.found)
            if text is not None and _REPR.search(text)]


def test_the_pattern_finds_reprs():
    for text in ("True", "one of ['vcek']", ">= {'tee': 0}", "None", "'x'"):
        assert _REPR.search(text), text
    for text in ("VCEK or VLEK", "the ARK's CRL", "bootloader ≥ 0, TEE ≥ 0", "yes"):
        assert not _REPR.search(text), text


STRICT_SNP = SnpPolicy(
    measurements=["00" * 48], min_tcb=TcbMinimum(bootloader=200, tee=200, snp=200,
                                                 microcode=200),
    products=["Genoa", "Turin"], signing_keys=["vlek"], vmpl=[2, 3], min_guest_svn=9,
    host_data=["11" * 32], id_key_digests=["22" * 48], author_key_digests=["33" * 48],
    chip_ids=["44" * 64], min_firmware="9.99", platform_info_required_bits=0x80,
    require_revocation_check=True, require_smt_disabled=True,
)


@pytest.mark.vectors
@pytest.mark.filterwarnings("ignore:Parsed a serial number")
@pytest.mark.parametrize("section", [SnpPolicy(), STRICT_SNP], ids=["lenient", "strict"])
def test_real_snp_appraisal_reads_as_words(vectors, section):
    from tests.platforms.snp.test_vectors import AT, SAMPLES, VERIFIER

    report, endorsements = SAMPLES["virtee"][1](vectors)
    verified = VERIFIER.verify(Evidence("snp", report, endorsements),
                               report_data=report[0x50:0x90], at=AT)
    result = appraise(Policy(snp=section), verified, AT)
    assert _reprs(result.reasons) == []
    by_check = {reason.check: reason for reason in result.reasons}
    if section is STRICT_SNP:
        assert by_check["signing_key"].expected == "VLEK"
        assert by_check["signing_key"].found == "VCEK"
        assert by_check["product"].expected == "Genoa or Turin"
        assert by_check["vmpl"].expected == "2 or 3"
        assert by_check["min_tcb"].expected == ("bootloader ≥ 200, TEE ≥ 200, SNP ≥ 200, "
                                                "microcode ≥ 200")
        assert by_check["min_tcb"].found == "bootloader: 3, TEE: 0, SNP: 8, microcode: 115"
        assert "below the minimum in bootloader, TEE, SNP, microcode" in \
            by_check["min_tcb"].message
    else:
        assert by_check["signing_key"].expected == "VCEK or VLEK"
        assert by_check["min_tcb"].expected == "bootloader ≥ 0, TEE ≥ 0, SNP ≥ 0, microcode ≥ 0"


def test_failing_software_appraisal_reads_as_words():
    site = SoftwareFixture.create(svn=1, debug=True)
    evidence, report_data, _ = site.evidence()
    verified = site.verifier().verify(evidence, report_data=report_data, at=site.now)
    policy = Policy(software=SoftwarePolicy(allow=True, measurements=["00" * 48], min_svn=5,
                                            identities=["site-2", "site-3"]))
    result = appraise(policy, verified, site.now)
    assert {r.check for r in result.failures()} == {"identity", "measurement", "debug",
                                                     "min_svn"}
    assert _reprs(result.reasons) == []
    identity = next(r for r in result.failures() if r.check == "identity")
    assert identity.expected == "site-2 or site-3"
    assert _reprs(appraise(Policy(), verified, site.now).reasons) == []


def test_tdx_reasons_read_as_words():
    from ccattest.policy.tdx import appraise_tdx

    claims = {
        "tcb_status": "SWHardeningNeeded", "qe_tcb_status": "UpToDate", "tcb_date": None,
        "advisory_ids": ["INTEL-SA-00615"], "tee_tcb_svn": "00" * 16, "mr_seam": "aa" * 48,
        "collateral_expired": False, "mr_td": "bb" * 48, "td_attributes": {"debug": False,
                                                                          "value": 0},
        "xfam": "e702060000000000", "mr_config_id": "00" * 48, "mr_owner": "00" * 48,
        "mr_owner_config": "00" * 48, "fmspc": "00606a000000",
    }
    section = TdxPolicy(accepted_tcb_statuses=["UpToDate", "ConfigurationNeeded"],
                        forbidden_advisory_ids=["INTEL-SA-00615", "INTEL-SA-00837"],
                        min_tee_tcb_svn="01" * 16, mr_seam=["cc" * 48])
    reasons = appraise_tdx(section, claims).reasons
    assert _reprs(reasons) == []
    by_check = {reason.check: reason for reason in reasons}
    assert by_check["tcb_status"].expected == "UpToDate or ConfigurationNeeded"
    assert by_check["advisories"].expected == "none of INTEL-SA-00615, INTEL-SA-00837"
    assert by_check["advisories"].found == "INTEL-SA-00615"
    assert "components 0, 1, 2" in by_check["min_tee_tcb_svn"].message
    lenient = {r.check: r for r in appraise_tdx(TdxPolicy(), claims).reasons}
    assert lenient["advisories"].expected == "no advisory forbidden"


def test_azure_reasons_read_as_words():
    claims = {"attestation_type": "sevsnpvm", "isolation_tee": "sevsnpvm",
              "secure_boot": None, "debuggable": False, "policy": {"smt": True},
              "reported_tcb": {"bootloader": 1, "snp": 2}, "vmpl": None, "guest_svn": None,
              "launch_measurement": "aa" * 48}
    section = AzurePolicy(require_secure_boot=True, min_tcb=TcbMinimum(snp=7), vmpl=[0, 1],
                          min_guest_svn=2)
    reasons = appraise_maa(section, claims).reasons
    assert _reprs(reasons) == []
    by_check = {reason.check: reason for reason in reasons}
    assert (by_check["secure_boot"].expected, by_check["secure_boot"].found) == ("on",
                                                                                 "unstated")
    assert by_check["min_tcb"].expected == "SNP ≥ 7"
    assert by_check["min_tcb"].found == "bootloader: 1, SNP: 2"
    assert by_check["vmpl"].expected == "0 or 1" and by_check["vmpl"].found == "unstated"
    assert by_check["min_guest_svn"].found == "unstated"
    assert by_check["memory_encryption"].expected == "sevsnpvm or tdxvm"
    lenient = {r.check: r for r in appraise_maa(AzurePolicy(), {**claims, "reported_tcb": {}})
               .reasons}
    assert (lenient["min_tcb"].expected, lenient["min_tcb"].found) == ("any", "not reported")
    vtpm = appraise_vtpm(AzurePolicy(require_secure_boot=True, allow_console=False),
                         {"vm_configuration": {"secure-boot": False}}).reasons
    assert [(r.check, r.found) for r in vtpm] == [("vm_secure_boot", "off"),
                                                  ("vm_console", "unstated")]
