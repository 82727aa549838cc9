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


def test_vtpm_rules_from_the_azure_section():
    from ccattest.policy import AzurePolicy

    fixture, verified = _verified("azure-snp")
    pcr0 = verified.claims["pcrs"]["0"]
    snp = SnpPolicy(measurements=[verified.claims["snp"]["measurement"]])
    good = Policy(snp=snp, azure=AzurePolicy(pcrs={0: [pcr0]}, require_secure_boot=True,
                                             allow_console=False))
    result = appraise(good, verified, fixture.now)
    assert {"pcr0", "vm_secure_boot", "vm_console"} <= {r.check for r in result.reasons}
    assert not [r.check for r in result.failures() if r.check.startswith(("pcr", "vm_"))]
    bad = Policy(snp=snp, azure=AzurePolicy(pcrs={0: ["00" * 32], 23: ["11" * 32]}))
    failed = {r.check for r in appraise(bad, verified, fixture.now).failures()}
    assert {"pcr0", "pcr23"} <= failed
    unsafe = {**verified.claims, "vm_configuration": {"secure-boot": False,
                                                      "console-enabled": True}}
    strict = Policy(snp=snp, azure=AzurePolicy(require_secure_boot=True, allow_console=False))
    failed = {r.check for r in appraise(strict, type(verified)(platform="azure-snp",
                                                               claims=unsafe),
                                        fixture.now).failures()}
    assert {"vm_secure_boot", "vm_console"} <= failed
