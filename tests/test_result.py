from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.result import (
    AttestationResult,
    Reason,
    Tier,
    TrustClaim,
    TrustVector,
    is_standard,
    tier_of,
)


@pytest.mark.parametrize(
    ("value", "tier"),
    [(0, Tier.NONE), (1, Tier.NONE), (-1, Tier.NONE), (2, Tier.AFFIRMING), (31, Tier.AFFIRMING),
     (-2, Tier.AFFIRMING), (-32, Tier.AFFIRMING), (32, Tier.WARNING), (95, Tier.WARNING),
     (-33, Tier.WARNING), (-96, Tier.WARNING), (96, Tier.CONTRAINDICATED),
     (127, Tier.CONTRAINDICATED), (-97, Tier.CONTRAINDICATED), (-128, Tier.CONTRAINDICATED)],
)
def test_ear_value_ranges(value, tier):
    assert tier_of(value) is tier


@pytest.mark.parametrize("value", [128, -129])
def test_out_of_range(value):
    with pytest.raises(ValueError, match="outside"):
        tier_of(value)


def test_standard_values():
    assert is_standard(TrustClaim.HARDWARE, 97)
    assert not is_standard(TrustClaim.FILE_SYSTEM, 97)
    assert is_standard(TrustClaim.FILE_SYSTEM, 99)
    with pytest.raises(ValueError, match="not a standard value"):
        TrustVector({TrustClaim.FILE_SYSTEM: 97})
    with pytest.raises(ValueError, match="unknown trustworthiness claim"):
        TrustVector({"hardware": 2})  # type: ignore[dict-item]
    TrustVector({TrustClaim.FILE_SYSTEM: -50})  # private values are allowed


def test_assignment_keeps_the_worst_value():
    vector = TrustVector().with_value(TrustClaim.EXECUTABLES, 2)
    vector = vector.with_value(TrustClaim.EXECUTABLES, 96)
    vector = vector.with_value(TrustClaim.EXECUTABLES, 2)
    assert vector.get(TrustClaim.EXECUTABLES) == 96
    # same tier: a standard value wins over a private one
    assert TrustVector().with_value(TrustClaim.HARDWARE, -40).with_value(
        TrustClaim.HARDWARE, 32).get(TrustClaim.HARDWARE) == 32
    assert TrustVector().with_value(TrustClaim.HARDWARE, 32).with_value(
        TrustClaim.HARDWARE, -40).get(TrustClaim.HARDWARE) == 32


claims = st.sampled_from(list(TrustClaim))
values = st.sampled_from([0, 1, -1, 2, 32, 96, 99, -5, -50, -100])


@given(st.lists(st.tuples(claims, values), max_size=12))
def test_status_is_worst_tier_whatever_the_order(assignments):
    vector = TrustVector()
    for claim, value in assignments:
        if value >= 0 and not is_standard(claim, value):
            continue
        vector = vector.with_value(claim, value)
    expected = max((tier_of(v) for v in vector.values.values()), key=lambda t: t.severity,
                   default=Tier.NONE)
    assert vector.status is expected
    assert TrustVector.from_dict(vector.to_dict()).to_dict() == vector.to_dict()


def test_merged_and_dict_forms():
    a = TrustVector({TrustClaim.HARDWARE: 2, TrustClaim.CONFIGURATION: 0})
    b = TrustVector({TrustClaim.HARDWARE: 97})
    merged = a.merged(b)
    assert merged.to_dict() == {"hardware": 97}
    assert merged.status is Tier.CONTRAINDICATED


def test_result_json_and_freshness():
    now = datetime(2026, 11, 26, tzinfo=UTC)
    result = AttestationResult(
        platform="software", trust_vector=TrustVector({TrustClaim.EXECUTABLES: 33}),
        verified=True, issued_at=now, expires_at=now + timedelta(hours=1),
        claims={"svn": 1}, reasons=(Reason("measurement", False, "unknown", "a", "b"),),
        attester="site-1", policy_id="p",
    )
    data = result.to_json_dict()
    assert data["status"] == "warning"
    assert set(data) >= {"platform", "status", "verified", "claims", "reasons", "collateral"}
    assert data["reasons"][0] == {"check": "measurement", "passed": False, "message": "unknown",
                                  "expected": "a", "found": "b"}
    assert not result.affirming
    assert result.failures() == result.reasons
    assert result.is_fresh(now) and not result.is_fresh(now + timedelta(hours=1))
