"""What a reader is told about an error: the check that failed and what to do."""

from __future__ import annotations

import pytest

from ccattest.errors import (
    EXPIRED_COLLATERAL_HINT,
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    PlatformUnavailable,
    StaleEvidence,
    VerificationFailed,
    failed_check,
    hint_for,
)


@pytest.mark.parametrize(("error", "check"), [
    (MalformedEvidence("report too short"), "format"),
    (StaleEvidence("challenge expired"), "freshness"),
    (CollateralUnavailable("no VCEK cached"), "collateral"),
    (ConfigError("no --nonce"), "input"),
    (PlatformUnavailable("no /dev/sev-guest"), "input"),
    (VerificationFailed("report_data does not bind the challenge"), "binding"),
    (VerificationFailed("the VCEK is revoked"), "revocation"),
    (VerificationFailed("PCK CRL is not current"), "collateral"),
    (VerificationFailed("VCEK is for another chip"), "certificate chain"),
    (VerificationFailed("report signature does not verify"), "signature"),
    (VerificationFailed("token expired"), "validity"),
    (VerificationFailed("something else entirely"), "verification"),
])
def test_failed_check_names_what_failed(error, check):
    assert failed_check(error) == check


def test_hint_for_keeps_its_own_and_adds_one_for_expired_collateral():
    assert hint_for(VerificationFailed("x", hint="do y")) == "do y"
    assert hint_for(VerificationFailed("TCB Info expired", hint="fetch https://...")) \
        == EXPIRED_COLLATERAL_HINT
    assert hint_for(VerificationFailed("TCB Info expired")) == EXPIRED_COLLATERAL_HINT
    assert hint_for(VerificationFailed("certificate chain", found="not valid at 2030")) \
        == EXPIRED_COLLATERAL_HINT
    assert hint_for(VerificationFailed("report signature does not verify")) is None
    assert hint_for(VerificationFailed("TCB Info is for another platform")) is None
