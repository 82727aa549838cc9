from datetime import timedelta

from ccattest.policy import Policy, TdxPolicy, appraise
from ccattest.result import Tier, TrustClaim
from ccattest.testing.ita import ItaFixture


def _verified(fixture, **kwargs):
    verifier = fixture.verifier(allow_unbound=True)
    from ccattest.evidence import Evidence

    token = fixture.token(**kwargs)
    return verifier.verify(Evidence("ita", token.encode()), report_data=None,
                           at=fixture.now + timedelta(seconds=1))


def test_tdx_tokens_are_judged_by_the_tdx_section():
    fixture = ItaFixture.create()
    verified = _verified(fixture)
    assert verified.claims["attester_type"] == "TDX"
    policy = Policy(tdx=TdxPolicy(accepted_tcb_statuses=[verified.claims["tcb_status"]],
                                  accepted_qe_tcb_statuses=[verified.claims["tcb_status"]],
                                  mrtd=[verified.claims["mr_td"]]))
    result = appraise(policy, verified, fixture.now)
    failed = [r.check for r in result.failures()]
    assert result.status in (Tier.AFFIRMING, Tier.WARNING), failed
    assert appraise(Policy(), verified, fixture.now).status is Tier.CONTRAINDICATED


def test_non_tdx_tokens_are_not_appraised():
    fixture = ItaFixture.create()
    verified = _verified(fixture)
    sgx = type(verified)(platform="ita", claims={**verified.claims, "attester_type": "SGX"})
    result = appraise(Policy(tdx=TdxPolicy()), sgx, fixture.now)
    assert result.trust_vector.get(TrustClaim.HARDWARE) == 97


def test_tokens_lacking_tdx_claims_are_contraindicated():
    fixture = ItaFixture.create()
    verified = _verified(fixture)
    bare = type(verified)(platform="ita", claims={**verified.claims, "mr_td": None})
    result = appraise(Policy(tdx=TdxPolicy()), bare, fixture.now)
    assert result.status is Tier.CONTRAINDICATED
    assert "missing mr_td" in result.failures()[0].found
