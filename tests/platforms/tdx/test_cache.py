"""The verifier's caches (keyed by exact bytes) never let a different input through: after
valid evidence has warmed every cache, each broken case and each changed byte still fails as
it does cold, a failure is never cached, and validity windows are checked on every call."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from ccattest.errors import CCAttestError, VerificationFailed
from ccattest.platforms.tdx import abi
from ccattest.platforms.tdx import verify as tdx_verify
from ccattest.platforms.tdx.collateral_json import collateral_to_json
from tests.platforms.cache_checks import clear_caches, flip, outcome
from tests.platforms.tdx.test_verify import CASES, FIXTURES, MESSAGES, V4


def _warm(fixture, verifier=None):
    evidence, report_data, _ = fixture.evidence()
    verifier = verifier or fixture.verifier()
    for _ in range(2):
        verifier.verify(evidence, report_data=report_data, at=fixture.now)
    return evidence, report_data, verifier


@pytest.mark.parametrize(("fixture_name", "case"), CASES,
                         ids=[f"{name}-{case.name}" for name, case in CASES])
def test_broken_cases_fail_with_warm_caches(fixture_name, case):
    fixture = FIXTURES[fixture_name]
    evidence, report_data, verifier = _warm(fixture)
    for _ in range(2):  # and a failure is not remembered as a success
        with pytest.raises(case.error, match=MESSAGES[case.name]):
            verifier.verify(case.evidence, report_data=case.report_data, at=case.at)
        verifier.verify(evidence, report_data=report_data, at=fixture.now)


def test_every_byte_of_the_qe_certification_is_checked_after_warming():
    """The QE certification data (QE report, its signature, auth data, PCK chain) is parsed
    and its signature checked once per exact bytes. Flip each byte of the QE report, its
    signature and auth data, and a sample of the PCK chain: with warm caches each quote
    meets the same outcome as with every cache cleared (the signed bytes: refused)."""
    evidence, report_data, verifier = _warm(V4)
    raw = bytes(evidence.report)
    quote = abi.parse_quote(raw)
    qe_bytes = quote.qe.to_bytes()
    start = raw.index(qe_bytes)
    signed = abi.ENCLAVE_REPORT_SIZE + abi.SIGNATURE_SIZE + 2 + len(quote.qe.auth_data)
    offsets = [*range(start, start + signed), *range(start + signed, len(raw), 13)]
    flipped = [dataclasses.replace(evidence, report=flip(raw, offset)) for offset in offsets]
    warm = [outcome(verifier, each, report_data, V4.now) for each in flipped]
    cold = []
    for each in flipped:
        clear_caches(abi, tdx_verify)
        cold.append(outcome(verifier, each, report_data, V4.now))
    assert warm == cold
    assert "verified" not in warm[:abi.ENCLAVE_REPORT_SIZE + abi.SIGNATURE_SIZE]
    verifier.verify(evidence, report_data=report_data, at=V4.now)


def test_changed_collateral_bytes_miss_the_cache():
    """Collateral the peer attaches is decoded once per exact bytes: any other bytes are
    decoded, and checked, afresh."""
    evidence, report_data, verifier = _warm(V4)
    document = json.loads(evidence.endorsements["collateral"])
    for field in ("tcb_info", "qe_identity"):
        changed = dict(document)
        text = changed[field]
        # one character of the signed body: the signature no longer verifies
        index = text.index('"version"') + 1
        changed[field] = text[:index] + text[index].upper() + text[index + 1:]
        endorsed = dataclasses.replace(
            evidence, endorsements={"collateral": json.dumps(changed).encode()})
        with pytest.raises(CCAttestError):
            verifier.verify(endorsed, report_data=report_data, at=V4.now)
    verifier.verify(evidence, report_data=report_data, at=V4.now)


def test_revocation_is_checked_for_each_collateral():
    """The same quote, warm, then collateral whose PCK CRL revokes its PCK: refused."""
    evidence, report_data, verifier = _warm(V4)
    revoked = V4.collateral(pck_crl=V4.crl(revoked=(V4.pck.serial_number,)))
    endorsed = dataclasses.replace(
        evidence, endorsements={"collateral": collateral_to_json(revoked)})
    for _ in range(2):
        with pytest.raises(VerificationFailed, match="is revoked"):
            verifier.verify(endorsed, report_data=report_data, at=V4.now)


def test_failures_are_not_cached():
    evidence, report_data, _ = _warm(V4)
    rogue = V4.collateral(pck_crl=V4.crl(issuer=V4.root, key=V4.keys.ca))
    verifier = V4.verifier(rogue)
    before = tdx_verify._collateral_windows.cache_info()
    for _ in range(3):
        with pytest.raises(VerificationFailed, match="PCK CRL is not signed"):
            verifier.verify(evidence, report_data=report_data, at=V4.now)
    after = tdx_verify._collateral_windows.cache_info()
    assert after.currsize == before.currsize and after.hits == before.hits


@pytest.mark.parametrize("days", [-400, -2, 31, 40, 400])
def test_time_is_checked_on_every_call(days):
    """Cached at a valid time, the same evidence and collateral at a time outside some
    validity window fails: issued after it, expired collateral, or certificates."""
    evidence, report_data, verifier = _warm(V4, V4.verifier(V4.collateral()))
    with pytest.raises(VerificationFailed):
        verifier.verify(evidence, report_data=report_data, at=V4.now + timedelta(days=days))
    verifier.verify(evidence, report_data=report_data, at=V4.now)


def test_tcb_matching_keys_on_the_fields_it_reads():
    """A quote of the same platform with another TEE_TCB_SVN gets its own TCB status."""
    fixture = FIXTURES["v4-module1"]
    _warm(fixture)
    lower = dataclasses.replace(fixture, tee_tcb_svn=bytes([0]) + fixture.tee_tcb_svn[1:])
    evidence, report_data, _ = lower.evidence()
    claims = lower.verifier().verify(evidence, report_data=report_data, at=lower.now).claims
    assert claims["tcb_status"] != "UpToDate"
