"""Azure CVM results are judged by their TEE's own section, one level down."""

from ccattest.policy import Policy, SnpPolicy, TdxPolicy, appraise
from ccattest.result import TrustClaim
from ccattest.testing.azure import AzureFixture


def _verified(platform):
    fixture = AzureFixture.create(platform)
    evidence, nonce = fixture.evidence()
    return fixture, fixture.verifier().verify(evidence, report_data=nonce, at=fixture.now)


def test_azure_snp_by_the_snp_section():
    fixture, verified = _verified("azure-snp")
    measurement = verified.claims["snp"]["measurement"]
    result = appraise(Policy(snp=SnpPolicy(measurements=[measurement])), verified, fixture.now)
    assert result.trust_vector.get(TrustClaim.EXECUTABLES) == 2
    assert appraise(Policy(), verified, fixture.now).trust_vector.get(TrustClaim.HARDWARE) == 96


def test_azure_tdx_by_the_tdx_section_and_chain_only_results_are_refused():
    fixture, verified = _verified("azure-tdx")
    tdx = verified.claims["tdx"]
    policy = Policy(tdx=TdxPolicy(accepted_tcb_statuses=[tdx["tcb_status"]],
                                  accepted_qe_tcb_statuses=[tdx["qe_tcb_status"]],
                                  mrtd=[tdx["mr_td"]]))
    result = appraise(policy, verified, fixture.now)
    assert result.trust_vector.get(TrustClaim.EXECUTABLES) == 2
    unevaluated = type(verified)(platform="azure-tdx",
                                 claims={**verified.claims, "tdx": {**tdx, "tcb_status": None}})
    refused = appraise(policy, unevaluated, fixture.now)
    assert [r.check for r in refused.failures()] == ["tdx_tcb"]
