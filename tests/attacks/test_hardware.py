"""Attacks on hardware evidence: SEV-SNP and TDX chains, TCB, debug guests and collateral,
checked through the same verify-then-appraise pipeline every site uses. Synthetic PKIs from
ccattest.testing; the real Intel QVL sample (a fake 'Intel SGX Root CA') from the vectors."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from ccattest.errors import CCAttestError, VerificationFailed
from ccattest.evidence import bind
from ccattest.mesh.agent import SiteAgent
from ccattest.mesh.roster import Roster, SiteSpec
from ccattest.pipeline import verify_and_appraise
from ccattest.platforms.snp.verify import SnpVerifier
from ccattest.platforms.tdx.collateral_json import collateral_to_json
from ccattest.policy import Policy, SnpPolicy, TdxPolicy
from ccattest.policy.snp import TcbMinimum
from ccattest.testing.snp import SnpFixture, der, pem
from ccattest.testing.tdx import TdxFixture

from .catalog import attack

MEASUREMENT = bytes(range(48)).hex()  # what SnpFixture guests measure
SNP_POLICY = Policy(id="attacks", snp=SnpPolicy(measurements=[MEASUREMENT]))
TDX_POLICY = Policy(id="attacks", tdx=TdxPolicy(mrtd=["11" * 48]))
DEBUG = 1 << 19  # SNP guest policy bit 19


def _appraise(fixture, evidence, report_data, policy, **verifier):
    return verify_and_appraise(evidence, fixture.verifier(**verifier), policy,
                               report_data=report_data, at=fixture.now)


def _failed(result) -> set[str]:
    return {reason.check for reason in result.failures()}


def _verify_fails(fixture, evidence, report_data, match, **verifier) -> CCAttestError:
    with pytest.raises(VerificationFailed, match=match) as caught:
        fixture.verifier(**verifier).verify(evidence, report_data=report_data, at=fixture.now)
    return caught.value


# --- SEV-SNP ------------------------------------------------------------------------------------

@attack("SNP debug guest",
        does="runs the workload in an SEV-SNP guest launched with the DEBUG policy bit, so "
             "the host can read and change its memory, with otherwise genuine evidence",
        stopped_by="the snp policy's allow_debug (false unless set): the verdict is "
                   "contraindicated on the 'debug' rule")
def test_snp_debug_guest(milan):
    good, report_data, _ = milan.evidence()
    assert _appraise(milan, good, report_data, SNP_POLICY).affirming
    evidence, report_data, _ = milan.evidence(policy=0x30000 | DEBUG)
    result = _appraise(milan, evidence, report_data, SNP_POLICY)
    assert result.verified and result.status.value == "contraindicated"
    assert _failed(result) == {"debug"}


@attack("SNP TCB rollback",
        does="runs on a platform whose firmware was rolled back (or never updated) below the "
             "TCB the policy requires, with a genuine VCEK for that old TCB",
        stopped_by="the snp policy's min_tcb floor, judged on the reported TCB that the VCEK "
                   "certifies: contraindicated on 'min_tcb'")
def test_snp_tcb_rollback(snp_keys):
    old = SnpFixture.create("Milan", keys=snp_keys,
                            tcb={"bootloader": 3, "tee": 0, "snp": 7, "microcode": 115})
    evidence, report_data, _ = old.evidence()
    floor = Policy(snp=SnpPolicy(measurements=[MEASUREMENT],
                                 min_tcb=TcbMinimum(bootloader=3, snp=8, microcode=115)))
    result = _appraise(old, evidence, report_data, floor)
    assert result.verified and not result.affirming
    assert _failed(result) == {"min_tcb"}


@attack("SNP report under another product's AMD root",
        does="presents a Milan report with a VCEK chain from the Genoa ARK (genuine for "
             "Genoa), hoping the verifier accepts any pinned AMD root",
        stopped_by="the verifier takes the product from the report (CPUID) and demands the "
                   "chain of that product's pinned ARK")
def test_snp_wrong_product_root(milan, genoa):
    evidence, report_data, _ = milan.evidence()
    leaf = milan.issue_leaf(issuer=genoa.intermediate, issuer_key=genoa.keys.intermediate)
    # and a genuine Genoa VCEK (productName Genoa) is refused for a Milan report outright
    genuine = dataclasses.replace(evidence, endorsements=genoa.endorsements())
    with pytest.raises(VerificationFailed, match="different products"):
        milan.verifier().verify(genuine, report_data=report_data, at=milan.now)
    endorsed = dataclasses.replace(evidence, endorsements={
        "vcek": der(leaf),
        "cert_chain": pem(genoa.intermediate, genoa.ark)})
    verifier = SnpVerifier(roots={"Milan": milan.ark, "Genoa": genoa.ark})
    with pytest.raises(VerificationFailed, match="ARK is not the pinned Milan ARK"):
        verifier.verify(endorsed, report_data=report_data, at=milan.now)
    unrooted = dataclasses.replace(endorsed, endorsements={
        "vcek": der(leaf), "cert_chain": pem(genoa.intermediate)})  # no ARK supplied at all
    with pytest.raises(VerificationFailed, match="SEV-Genoa is not signed by the pinned ARK-Milan"):
        verifier.verify(unrooted, report_data=report_data, at=milan.now)


@attack("another chip's VCEK",
        does="endorses a report from one chip with the (genuine) VCEK of another chip",
        stopped_by="the VCEK's hwID must equal the report's CHIP_ID, and the report "
                   "signature must verify with that VCEK")
def test_another_chips_vcek(milan, snp_keys):
    other = SnpFixture.create("Milan", keys=snp_keys)  # same product, another chip
    evidence, report_data, _ = milan.evidence()
    foreign = dataclasses.replace(evidence, endorsements=other.endorsements())
    _verify_fails(milan, foreign, report_data, "another chip")


@attack("VLEK where the policy demands a VCEK",
        does="presents a report signed by a cloud provider's VLEK to a verifier whose policy "
             "accepts only chip-unique VCEKs",
        stopped_by="the snp policy's signing_keys: contraindicated on 'signing_key'")
def test_vlek_where_vcek_required(genoa_vlek):
    evidence, report_data, _ = genoa_vlek.evidence()
    policy = Policy(snp=SnpPolicy(measurements=[MEASUREMENT], signing_keys=["vcek"]))
    result = _appraise(genoa_vlek, evidence, report_data, policy)
    assert result.verified and not result.affirming
    assert _failed(result) == {"signing_key"}


@attack("SNP evidence relayed from another TEE",
        does="an attacker without a TEE (or in another TEE) forwards the challenge to a "
             "genuine SNP guest elsewhere and presents that guest's evidence as its own",
        stopped_by="the genuine guest binds its own name: report_data = bind(nonce, site, "
                   "context), so the relayed report does not bind the attacker's name")
def test_snp_evidence_relayed_from_another_tee(milan):
    roster = Roster([SiteSpec("genuine", platforms=("snp",)),
                     SiteSpec("attacker", platforms=("snp",))])

    class Guest:
        platform = "snp"

        def __init__(self, fixture):
            self.fixture = fixture

        def collect(self, report_data):
            raw = self.fixture.sign(self.fixture.report(report_data))
            from ccattest.evidence import Evidence
            return Evidence("snp", raw, self.fixture.endorsements())

    genuine = SiteAgent("genuine", [Guest(milan)], {}, Policy(), roster)
    judge = SiteAgent("judge", [], {"snp": milan.verifier()}, SNP_POLICY, roster)
    nonce, context = b"n" * 32, "ccattest/round/relay"
    relayed = genuine.collect(nonce, context)  # the attacker forwarded our challenge
    verdict = judge.judge("attacker", relayed, nonce=nonce, context=context, at=milan.now)
    assert verdict.status == "contraindicated"
    assert any("report_data does not bind" in f for f in verdict.failures()), verdict.failures()
    honest = judge.judge("genuine", relayed, nonce=nonce, context=context, at=milan.now)
    assert honest.affirming  # the same evidence is good for the site that made it
    assert bind(nonce, "genuine", context) != bind(nonce, "attacker", context)


# --- TDX -----------------------------------------------------------------------------------------

@attack("TDX debug guest",
        does="runs the workload in a TD with the DEBUG attribute set (the host can read its "
             "state), with otherwise genuine evidence",
        stopped_by="the tdx policy's allow_debug (false unless set): contraindicated on "
                   "'debug'")
def test_tdx_debug_guest(tdx):
    good, report_data, _ = tdx.evidence()
    assert _appraise(tdx, good, report_data, TDX_POLICY).affirming
    evidence, report_data, _ = tdx.evidence(td_attributes=bytes.fromhex("0100001000000000"))
    result = _appraise(tdx, evidence, report_data, TDX_POLICY)
    assert result.verified and result.status.value == "contraindicated"
    assert "debug" in _failed(result)


@attack("TDX TCB rollback",
        does="runs on a platform whose TDX module or microcode SVN is below the policy's "
             "floor",
        stopped_by="the tdx policy's min_tee_tcb_svn, compared per component: contraindicated "
                   "on 'min_tee_tcb_svn'")
def test_tdx_tcb_rollback(tdx):
    evidence, report_data, _ = tdx.evidence()
    floor = Policy(tdx=TdxPolicy(mrtd=["11" * 48],
                                 min_tee_tcb_svn="07010300000000000000000000000000"))
    result = _appraise(tdx, evidence, report_data, floor)
    assert result.verified and not result.affirming
    assert _failed(result) == {"min_tee_tcb_svn"}


@attack("fake Intel root",
        does="presents a quote whose PCK chain ends in a self-made 'Intel SGX Root CA' (the "
             "names are right, the key is not Intel's)",
        stopped_by="the verifier pins Intel's SGX Root CA by key: 'not the pinned Intel SGX "
                   "Root CA'")
def test_fake_intel_root(tdx):
    evidence, report_data, _ = tdx.evidence()
    with pytest.raises(VerificationFailed, match="pinned Intel SGX Root CA"):
        type(tdx.verifier())().verify(evidence, report_data=report_data, at=tdx.now)


def _stale(tdx: TdxFixture, **items: bytes):
    evidence, report_data, _ = tdx.evidence(collateral=collateral_to_json(
        tdx.collateral(**items)))
    return evidence, report_data


@attack("stale TCB Info",
        does="serves TCB Info past its nextUpdate (from before an advisory downgraded the "
             "platform), still correctly signed by Intel",
        stopped_by="collateral is used only inside its validity: VerificationFailed "
                   "'collateral has expired' (accepted only by explicit configuration)")
def test_stale_tcb_info(tdx):
    old = tdx.now - timedelta(days=60)
    evidence, report_data = _stale(tdx, tcb_info=tdx.tcb_info(issued=old))
    _verify_fails(tdx, evidence, report_data, "collateral has expired")


@attack("stale QE Identity",
        does="serves a QE Identity past its nextUpdate",
        stopped_by="collateral is used only inside its validity: 'collateral has expired'")
def test_stale_qe_identity(tdx):
    old = tdx.now - timedelta(days=60)
    evidence, report_data = _stale(tdx, qe_identity=tdx.qe_identity(issued=old))
    _verify_fails(tdx, evidence, report_data, "collateral has expired")


@attack("stale CRL",
        does="serves an old PCK CRL (from before the PCK was revoked), past its nextUpdate",
        stopped_by="CRLs are used only inside their validity: 'collateral has expired'")
def test_stale_crl(tdx):
    old = tdx.now - timedelta(days=60)
    evidence, report_data = _stale(tdx, pck_crl=tdx.crl(this_update=old))
    _verify_fails(tdx, evidence, report_data, "collateral has expired")


@attack("revoked PCK",
        does="presents a quote from a platform whose PCK certificate Intel revoked",
        stopped_by="the PCK CRL (signed by the PCK CA, itself checked): 'is revoked (PCK CRL)'")
def test_revoked_pck(tdx):
    evidence, report_data = _stale(tdx, pck_crl=tdx.crl(revoked=[tdx.pck.serial_number]))
    _verify_fails(tdx, evidence, report_data, r"is revoked \(PCK CRL\)")
