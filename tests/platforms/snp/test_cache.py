"""The SNP verifier's caches (certificates, chain signatures, CRLs and their signatures, all
keyed by exact bytes) never let a different input through, never remember a failure, and
leave every validity window to be checked on each call."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from ccattest.errors import CCAttestError, VerificationFailed
from ccattest.platforms.snp import abi
from ccattest.platforms.snp import verify as snp_verify
from tests.platforms.cache_checks import clear_caches, flip, outcome
from tests.platforms.snp.test_verify import CASES, FIXTURES, KEYS, MESSAGES, MILAN

DER = serialization.Encoding.DER


def _with_crl(evidence, crl):
    data = crl if isinstance(crl, bytes) else crl.public_bytes(DER)
    return dataclasses.replace(evidence, endorsements={**evidence.endorsements, "crl": data})


def _warm(fixture, crl=None):
    evidence, report_data, _ = fixture.evidence()
    if crl is not None:
        evidence = _with_crl(evidence, crl)
    verifier = fixture.verifier(allow_missing_crl=crl is None)
    for _ in range(2):
        verifier.verify(evidence, report_data=report_data, at=fixture.now)
    return evidence, report_data, verifier


@pytest.mark.parametrize(("fixture_name", "case"), CASES,
                         ids=[f"{name}-{case.name}" for name, case in CASES])
def test_broken_cases_fail_with_warm_caches(fixture_name, case):
    fixture = FIXTURES[fixture_name]
    evidence, report_data, verifier = _warm(fixture)
    for _ in range(2):
        with pytest.raises(CCAttestError) as info:
            verifier.verify(case.evidence, report_data=case.report_data, at=case.at)
        assert type(info.value) is case.error, str(info.value)
        assert MESSAGES.get(case.name, "") in str(info.value)
        verifier.verify(evidence, report_data=report_data, at=fixture.now)


def test_changed_crl_bytes_meet_the_same_outcome_warm_and_cold():
    """Flip bytes across the CRL (its signature included): each changed CRL is parsed and
    its signature checked afresh; warm and cold outcomes agree, and none is trusted unless
    its signature still verifies."""
    crl = MILAN.crl().public_bytes(DER)
    evidence, report_data, verifier = _warm(MILAN, crl)
    flipped = [_with_crl(evidence, flip(crl, offset)) for offset in range(0, len(crl), 3)]
    warm = [outcome(verifier, each, report_data, MILAN.now) for each in flipped]
    cold = []
    for each in flipped:
        clear_caches(abi, snp_verify)
        cold.append(outcome(verifier, each, report_data, MILAN.now))
    assert warm == cold
    assert warm.count("verified") < len(warm) // 10  # only bytes outside what is signed
    signature_at = len(crl) - 8  # inside the signature BIT STRING, the last element
    with pytest.raises(VerificationFailed, match="CRL is not signed"):
        verifier.verify(_with_crl(evidence, flip(crl, signature_at)),
                        report_data=report_data, at=MILAN.now)


def test_a_revoking_crl_is_applied_after_a_clean_one_was_cached():
    evidence, report_data, verifier = _warm(MILAN, MILAN.crl())
    revoked = _with_crl(evidence, MILAN.crl(revoked=(MILAN.intermediate.serial_number,)))
    for _ in range(2):
        with pytest.raises(VerificationFailed, match="revoked"):
            verifier.verify(revoked, report_data=report_data, at=MILAN.now)


def test_a_forged_crl_is_never_cached_as_signed():
    evidence, report_data, verifier = _warm(MILAN, MILAN.crl())
    forged = _with_crl(evidence, MILAN.crl(key=KEYS.rogue))
    for _ in range(3):
        with pytest.raises(VerificationFailed, match="CRL is not signed"):
            verifier.verify(forged, report_data=report_data, at=MILAN.now)


@pytest.mark.parametrize("days", [-3, 31, 400])
def test_the_crl_window_is_checked_on_every_call(days):
    evidence, report_data, verifier = _warm(MILAN, MILAN.crl())
    with pytest.raises(VerificationFailed, match=r"not current|not valid"):
        verifier.verify(evidence, report_data=report_data, at=MILAN.now + timedelta(days=days))
    verifier.verify(evidence, report_data=report_data, at=MILAN.now)


def test_configured_crls_are_checked_like_endorsed_ones():
    evidence, report_data, _ = MILAN.evidence()
    crl = MILAN.crl(revoked=(MILAN.intermediate.serial_number,))
    verifier = MILAN.verifier(crls=[crl])
    with pytest.raises(VerificationFailed, match="revoked"):
        verifier.verify(evidence, report_data=report_data, at=MILAN.now)
    clean = MILAN.verifier(crls=[MILAN.crl()], allow_missing_crl=False)
    verified = clean.verify(evidence, report_data=report_data, at=MILAN.now)
    assert verified.claims["revocation"] == "checked"
    assert verified.collateral["crl"][0]["issuer"].startswith("CN=ARK-Milan")
    assert verified.valid_until_source in ("CRL from ARK-Milan nextUpdate", "VCEK notAfter")


def test_claims_decoded_once_are_copies():
    """Bit fields are decoded once per raw value; each result gets its own dicts."""
    evidence, report_data, verifier = _warm(MILAN)
    first = verifier.verify(evidence, report_data=report_data, at=MILAN.now).claims
    first["policy"]["debug"] = True
    first["reported_tcb"]["snp"] = 99
    second = verifier.verify(evidence, report_data=report_data, at=MILAN.now).claims
    assert second["policy"]["debug"] is False and second["reported_tcb"]["snp"] != 99


def test_every_report_byte_is_checked_after_warming():
    evidence, report_data, verifier = _warm(MILAN)
    raw = bytes(evidence.report)
    for offset in range(0, abi.SIGNED_SIZE, 5):
        with pytest.raises(CCAttestError):
            verifier.verify(dataclasses.replace(evidence, report=flip(raw, offset)),
                            report_data=report_data, at=MILAN.now)
