import dataclasses
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from ccattest.errors import (
    CCAttestError,
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    VerificationFailed,
)
from ccattest.platforms.base import Verifier
from ccattest.platforms.snp.verify import SnpVerifier, _pss_valid
from ccattest.policy import CommonPolicy, Policy, appraise
from ccattest.testing.snp import SnpFixture, SnpKeys, der, make_leaf, pem

KEYS = SnpKeys.generate()  # once per module: RSA keys are slow to make
FIXTURES = {
    "milan-v3-vcek": SnpFixture.create("Milan", keys=KEYS),
    "milan-v2-vcek": SnpFixture.create("Milan", version=2, keys=KEYS),
    "genoa-v3-vlek": SnpFixture.create("Genoa", signing_key="vlek", keys=KEYS),
    "turin-v5-vcek": SnpFixture.create("Turin", version=5, keys=KEYS),
    "turin-v3-vlek": SnpFixture.create("Turin", signing_key="vlek", keys=KEYS),
}
CASES = [(name, case) for name, fixture in FIXTURES.items() for case in fixture.broken_cases()]
MILAN = FIXTURES["milan-v3-vcek"]
# The check each broken case must trip, by message: a case failing for another reason would
# hide a missing check.
MESSAGES = {
    "bad_signature": "report signature does not verify",
    "signature_algo_not_1": "signature algorithm",
    "signing_key_mismatch": "the evidence carries none",
    "signing_key_none": "not signed by a VCEK or VLEK",
    "mask_chip_key": "not signed by a VCEK or VLEK",
    "tcb_differs_from_certificate": "reported TCB differs",
    "product_mismatch": "different products",
    "chip_id_differs": "another chip",
    "tcb_extension_mismatch": "reported TCB differs",
    "leaf_not_signed_by_intermediate": "is not signed by SEV-",
    "ask_not_signed_by_ark": "is not signed by the pinned ARK",
    "unpinned_ark": "not the pinned",
    "vcek_for_another_chip": "another chip",
    "missing_leaf": "no VCEK or VLEK",
    "missing_intermediate": "no AS",
    "expired_vcek": "not valid at the verification time",
    "expired_vlek": "not valid at the verification time",
    "not_yet_valid": "not valid at the verification time",
    "wrong_report_data": "report_data does not bind",
    "unknown_version": "unsupported SNP report version",
    "reserved_nonzero": "reserved byte",
    "truncated": "wrong size",
}


def _verify(fixture, evidence, report_data, **kwargs):
    return fixture.verifier(**kwargs).verify(evidence, report_data=report_data, at=fixture.now)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_valid_evidence_verifies(name):
    fixture = FIXTURES[name]
    evidence, report_data, _ = fixture.evidence()
    verified = _verify(fixture, evidence, report_data)
    claims = verified.claims
    assert claims["product"] == fixture.product
    assert claims["signing_key"] == fixture.kind
    assert claims["reported_tcb"] == fixture.tcb
    assert claims["report_data"] == report_data.hex()
    assert claims["chip_id"] == fixture.chip_id.hex()
    assert claims["version"] == fixture.version
    assert (claims["cpuid"] is None) == (fixture.version < 3)
    assert ("launch_mit_vector" in claims) == (fixture.version >= 5)
    assert ("csp_id" in claims) == (fixture.kind == "vlek")
    assert verified.attester is None
    assert all(check.passed for check in verified.checks)
    assert verified.collateral["ark"]["source"] == "pinned"


def test_claims_shape():
    evidence, report_data, _ = MILAN.evidence()
    claims = _verify(MILAN, evidence, report_data).claims
    assert claims["policy"]["smt"] is True and claims["policy"]["debug"] is False
    assert claims["policy"]["abi_major"] == 0 and claims["policy"]["raw"] == 0x30000
    assert claims["platform_info"] == {
        "raw": 0x25, "smt_enabled": True, "tsme_enabled": False, "ecc_enabled": True,
        "rapl_disabled": False, "ciphertext_hiding_enabled": False,
        "alias_check_complete": True}
    assert claims["firmware"] == {"current": "1.55.40", "committed": "1.55.40"}
    assert claims["measurement"] == bytes(range(48)).hex()
    assert claims["host_data"] == "00" * 32 and claims["vmpl"] == 0 and claims["guest_svn"] == 1
    assert claims["revocation"] == "not_checked"
    assert claims["cpuid"] == {"family": 0x19, "model": 0x01, "stepping": 1}
    for name in ("current_tcb", "committed_tcb", "launch_tcb"):
        assert claims[name] == MILAN.tcb
    for name in ("id_key_digest", "author_key_digest", "family_id", "image_id", "report_id",
                 "report_id_ma"):
        assert claims[name] == claims[name].lower()
    assert isinstance(SnpVerifier(), Verifier)


@pytest.mark.parametrize(("fixture_name", "case"), CASES,
                         ids=[f"{name}-{case.name}" for name, case in CASES])
def test_broken_evidence_fails_with_the_right_kind(fixture_name, case):
    fixture = FIXTURES[fixture_name]
    with pytest.raises(CCAttestError) as info:
        fixture.verifier().verify(case.evidence, report_data=case.report_data, at=case.at)
    assert type(info.value) is case.error, str(info.value)
    assert case.name not in MESSAGES or MESSAGES[case.name] in str(info.value), str(info.value)


def test_broken_cases_cover_the_issue_list():
    names = {case.name for _, case in CASES}
    assert {"bad_signature", "mutated_measurement", "mutated_report_data",
            "mutated_policy_debug", "mutated_reported_tcb", "truncated", "vcek_for_another_chip",
            "tcb_extension_mismatch", "ask_not_signed_by_ark", "unpinned_ark", "expired_vcek",
            "wrong_report_data", "signing_key_mismatch", "signature_algo_not_1"} <= names


def test_every_endorsement_shape_is_accepted():
    evidence, report_data, _ = MILAN.evidence()
    leaf, chain = der(MILAN.leaf), pem(MILAN.intermediate, MILAN.ark)
    shapes = {
        "der + chain": {"vcek": leaf, "cert_chain": chain},
        "pem leaf": {"vcek": pem(MILAN.leaf), "cert_chain": chain},
        "separate": {"vcek": leaf, "ask": der(MILAN.intermediate), "ark": der(MILAN.ark)},
        "bundle": {"cert_chain": pem(MILAN.leaf, MILAN.intermediate, MILAN.ark)},
        "auxblob": {"auxblob": MILAN.auxblob()},
        "no ark": {"vcek": leaf, "ask": pem(MILAN.intermediate)},
        "empty extras": {"vcek": leaf, "cert_chain": chain, "ark": b"", "other": b"junk"},
    }
    for name, endorsements in shapes.items():
        verified = _verify(MILAN, dataclasses.replace(evidence, endorsements=endorsements),
                           report_data)
        assert verified.claims["signing_key"] == "vcek", name


def test_collateral_names_sources():
    evidence, report_data, _ = MILAN.evidence()
    collateral = _verify(MILAN, dataclasses.replace(
        evidence, endorsements={"auxblob": MILAN.auxblob()}), report_data).collateral
    assert collateral["ark"]["source"] == "pinned"
    assert collateral["ask"]["source"] == "evidence:auxblob/ask"
    assert collateral["vcek"]["source"] == "evidence:auxblob/vcek"
    assert collateral["vcek"]["sha256"] == MILAN.leaf.fingerprint(hashes.SHA256()).hex()


def test_the_test_ark_is_not_trusted_by_default():
    evidence, report_data, _ = MILAN.evidence()
    with pytest.raises(VerificationFailed, match="not the pinned Milan ARK"):
        SnpVerifier().verify(evidence, report_data=report_data, at=MILAN.now)
    bare = dataclasses.replace(evidence, endorsements={"vcek": der(MILAN.leaf)})
    with pytest.raises(VerificationFailed, match="VCEK is not signed by SEV-Milan"):
        SnpVerifier().verify(bare, report_data=report_data, at=MILAN.now)


def test_roots_accept_pem_der_and_objects():
    evidence, report_data, _ = MILAN.evidence()
    for root in (MILAN.ark, der(MILAN.ark), pem(MILAN.ark)):
        SnpVerifier(roots={"Milan": root}).verify(evidence, report_data=report_data,
                                                  at=MILAN.now)


@pytest.mark.parametrize(("roots", "message"), [
    ({}, "no ARK configured"),
    ({"Venice": b""}, "unknown SNP product"),
    ({"Milan": b"garbage"}, "does not parse"),
    ({"Milan": None}, "does not parse"),
])
def test_root_configuration_errors(roots, message):
    with pytest.raises(ConfigError, match=message):
        SnpVerifier(roots=roots)


def test_a_root_must_be_a_self_signed_rsa_ca():
    with pytest.raises(ConfigError, match="self-signed RSA"):
        SnpVerifier(roots={"Milan": MILAN.intermediate})


def test_no_root_for_the_product():
    genoa = SnpFixture.create("Genoa", keys=KEYS)
    evidence, report_data, _ = genoa.evidence()
    with pytest.raises(VerificationFailed, match="no pinned ARK for Genoa"):
        MILAN.verifier().verify(evidence, report_data=report_data, at=genoa.now)


def test_other_platform_bad_report_data_and_naive_time():
    evidence, report_data, _ = MILAN.evidence()
    verifier = MILAN.verifier()
    with pytest.raises(MalformedEvidence, match="another platform"):
        verifier.verify(dataclasses.replace(evidence, platform="tdx"), report_data=report_data,
                        at=MILAN.now)
    with pytest.raises(ConfigError, match="64 bytes"):
        verifier.verify(evidence, report_data=report_data[:32], at=MILAN.now)
    with pytest.raises(ConfigError, match="naive"):
        verifier.verify(evidence, report_data=report_data, at=datetime(2026, 1, 1))


def test_missing_leaf_hint_names_the_kds_url():
    evidence, report_data, _ = MILAN.evidence()
    with pytest.raises(CollateralUnavailable) as info:
        _verify(MILAN, dataclasses.replace(evidence, endorsements={}), report_data)
    assert "kdsintf.amd.com/vcek/v1/Milan/" + MILAN.chip_id.hex() in info.value.hint
    assert "blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115" in info.value.hint


def test_turin_hint_uses_the_short_hwid_and_fmc():
    turin = FIXTURES["turin-v5-vcek"]
    evidence, report_data, _ = turin.evidence()
    with pytest.raises(CollateralUnavailable) as info:
        _verify(turin, dataclasses.replace(evidence, endorsements={}), report_data)
    assert f"/Turin/{turin.chip_id[:8].hex()}?fmcSPL=1" in info.value.hint


def test_masked_chip_id_is_accepted_with_a_note():
    evidence, report_data, _ = MILAN.evidence(chip_id=bytes(64))
    verified = _verify(MILAN, evidence, report_data)
    chip = next(check for check in verified.checks if check.check == "chip")
    assert "masked" in chip.message and verified.claims["chip_id"] == "00" * 64


def test_several_leaves_prefer_the_one_for_this_chip():
    other = MILAN.issue_leaf(hwid=b"\x01" * 64)
    evidence, report_data, _ = MILAN.evidence()
    endorsements = {"vcek": der(other), "cert_chain": pem(MILAN.leaf, MILAN.intermediate)}
    verified = _verify(MILAN, dataclasses.replace(evidence, endorsements=endorsements),
                       report_data)
    assert verified.collateral["vcek"]["sha256"] == MILAN.leaf.fingerprint(
        hashes.SHA256()).hex()


def _leaf_variant(fixture, **kwargs):
    return make_leaf(kwargs.pop("key", fixture.keys.leaf.public_key()), fixture.keys.intermediate,
                     fixture.intermediate, now=fixture.now, **kwargs)


def _with_leaf(fixture, leaf, evidence):
    return dataclasses.replace(evidence, endorsements=fixture.endorsements(leaf))


def test_vcek_without_hwid_is_rejected():
    evidence, report_data, _ = MILAN.evidence()
    leaf = _leaf_variant(MILAN, kind="vcek", product_name="Milan-B0", spls=MILAN.tcb, hwid=None)
    with pytest.raises(VerificationFailed, match="VCEK carries no hwID"):
        _verify(MILAN, _with_leaf(MILAN, leaf, evidence), report_data)


def test_vlek_with_hwid_is_rejected():
    genoa = FIXTURES["genoa-v3-vlek"]
    evidence, report_data, _ = genoa.evidence()
    leaf = _leaf_variant(genoa, kind="vlek", product_name="Genoa", spls=genoa.tcb,
                         hwid=bytes(64))
    with pytest.raises(VerificationFailed, match="VLEK carries a hwID"):
        _verify(genoa, _with_leaf(genoa, leaf, evidence), report_data)


def test_leaf_must_be_issued_by_the_matching_kind_of_intermediate():
    genoa = FIXTURES["genoa-v3-vlek"]
    evidence, report_data, _ = genoa.evidence()
    ask = SnpFixture.create("Genoa", keys=KEYS).intermediate  # SEV-Genoa, same key and ARK key
    leaf = make_leaf(genoa.keys.leaf.public_key(), genoa.keys.intermediate, ask, kind="vlek",
                     product_name="Genoa", spls=genoa.tcb, hwid=None, now=genoa.now)
    endorsements = {"vlek": der(leaf), "ask": der(ask)}
    with pytest.raises(VerificationFailed, match="wrong kind of intermediate"):
        _verify(genoa, dataclasses.replace(evidence, endorsements=endorsements), report_data)


def test_leaf_key_must_be_p384():
    key = ec.generate_private_key(ec.SECP256R1())
    evidence, report_data, _ = MILAN.evidence()
    leaf = _leaf_variant(MILAN, key=key.public_key(), kind="vcek", product_name="Milan-B0",
                         spls=MILAN.tcb, hwid=MILAN.chip_id)
    with pytest.raises(VerificationFailed, match="not on P-384"):
        _verify(MILAN, _with_leaf(MILAN, leaf, evidence), report_data)


def test_unknown_product_everywhere_is_rejected():
    fixture = FIXTURES["milan-v2-vcek"]
    evidence, report_data, _ = fixture.evidence()
    leaf = _leaf_variant(fixture, kind="vcek", product_name="Venice-A0", spls=fixture.tcb,
                         hwid=fixture.chip_id)
    with pytest.raises(VerificationFailed, match="cannot tell the product"):
        _verify(fixture, _with_leaf(fixture, leaf, evidence), report_data)


def test_unknown_cpuid_falls_back_to_the_certificate():
    evidence, report_data, _ = MILAN.evidence(cpuid_family=0x1B, cpuid_model=0x40)
    assert _verify(MILAN, evidence, report_data).claims["product"] == "Milan"


def test_rsa_leaf_is_not_a_vcek():
    evidence, report_data, _ = MILAN.evidence()
    endorsements = {"vcek": der(MILAN.intermediate), "ark": der(MILAN.ark)}
    with pytest.raises(CollateralUnavailable, match="no VCEK or VLEK"):
        _verify(MILAN, dataclasses.replace(evidence, endorsements=endorsements), report_data)


def test_certificate_with_unparseable_key_is_malformed():
    evidence, report_data, _ = MILAN.evidence()
    cert = bytearray(der(MILAN.leaf))
    point = cert.find(bytes(MILAN.keys.leaf.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)))
    cert[point + 5] ^= 0xFF  # the point is no longer on the curve
    with pytest.raises(MalformedEvidence):
        _verify(MILAN, dataclasses.replace(evidence, endorsements={
            "vcek": bytes(cert), "cert_chain": pem(MILAN.intermediate)}), report_data)


# --- revocation -----------------------------------------------------------------------------

def test_crl_checked_when_given_as_object_der_or_pem():
    evidence, report_data, _ = MILAN.evidence()
    crl = MILAN.crl()
    for given_crl in (crl, crl.public_bytes(serialization.Encoding.DER),
                      crl.public_bytes(serialization.Encoding.PEM)):
        verified = _verify(MILAN, evidence, report_data, crls=[given_crl],
                           allow_missing_crl=False)
        assert verified.claims["revocation"] == "checked"
        assert verified.collateral["crl"][0]["source"] == "configured"


def test_crl_carried_as_an_endorsement():
    evidence, report_data, _ = MILAN.evidence()
    with_crl = dataclasses.replace(evidence, endorsements={
        **evidence.endorsements, "crl": MILAN.crl().public_bytes(serialization.Encoding.DER)})
    verified = _verify(MILAN, with_crl, report_data, allow_missing_crl=False)
    assert verified.claims["revocation"] == "checked"
    revoked = MILAN.crl(revoked=(MILAN.intermediate.serial_number,))
    with pytest.raises(VerificationFailed, match="SEV-Milan is revoked"):
        _verify(MILAN, dataclasses.replace(evidence, endorsements={
            **evidence.endorsements, "crl": revoked.public_bytes(serialization.Encoding.PEM)}),
            report_data)
    forged = MILAN.crl(key=KEYS.rogue)  # signed by someone else: never trusted
    with pytest.raises(VerificationFailed):
        _verify(MILAN, dataclasses.replace(evidence, endorsements={
            **evidence.endorsements, "crl": forged.public_bytes(serialization.Encoding.DER)}),
            report_data)
    with pytest.raises(MalformedEvidence, match="CRL endorsement"):
        _verify(MILAN, dataclasses.replace(evidence, endorsements={
            **evidence.endorsements, "crl": b"garbage"}), report_data)


def test_revoked_ask_is_rejected():
    evidence, report_data, _ = MILAN.evidence()
    crl = MILAN.crl(revoked=(MILAN.intermediate.serial_number,))
    with pytest.raises(VerificationFailed, match="SEV-Milan is revoked"):
        _verify(MILAN, evidence, report_data, crls=[crl])


def test_leaf_crl_from_the_intermediate_is_applied():
    evidence, report_data, _ = MILAN.evidence()
    crl = MILAN.crl(revoked=(MILAN.leaf.serial_number,), key=MILAN.keys.intermediate,
                    issuer=MILAN.intermediate)
    with pytest.raises(VerificationFailed, match="SEV-VCEK is revoked"):
        _verify(MILAN, evidence, report_data, crls=[MILAN.crl(), crl])
    # An intermediate's CRL alone does not make revocation "checked": the ARK's is missing.
    clean = MILAN.crl(key=MILAN.keys.intermediate, issuer=MILAN.intermediate)
    verified = _verify(MILAN, evidence, report_data, crls=[clean])
    assert verified.claims["revocation"] == "not_checked"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"key": KEYS.rogue}, "not signed by ARK-Milan"),
    ({"this_update": MILAN.now - timedelta(days=60)}, "not current"),
    ({"this_update": MILAN.now + timedelta(days=1)}, "not current"),
])
def test_bad_crls_are_rejected(kwargs, message):
    evidence, report_data, _ = MILAN.evidence()
    with pytest.raises(VerificationFailed, match=message):
        _verify(MILAN, evidence, report_data, crls=[MILAN.crl(**kwargs)])


def test_missing_crl_can_be_required():
    evidence, report_data, _ = MILAN.evidence()
    with pytest.raises(VerificationFailed, match="no CRL from ARK-Milan"):
        _verify(MILAN, evidence, report_data, allow_missing_crl=False)
    genoa_crl = SnpFixture.create("Genoa", keys=KEYS).crl()  # another issuer: does not apply
    with pytest.raises(VerificationFailed, match="vcek/v1/Milan/crl"):
        _verify(MILAN, evidence, report_data, crls=[genoa_crl], allow_missing_crl=False)


def test_bad_crl_bytes_are_a_config_error():
    with pytest.raises(ConfigError, match="CRL does not parse"):
        SnpVerifier(crls=[b"not a crl"])
    with pytest.raises(ConfigError, match="CRL does not parse"):
        SnpVerifier(crls=[b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"])


# --- properties -------------------------------------------------------------------------------

_EVIDENCE, _REPORT_DATA, _ = MILAN.evidence(nonce=b"n" * 32)


@settings(max_examples=200)
@given(st.integers(0, 0x49F), st.integers(1, 255))
def test_any_single_byte_mutation_is_rejected(offset, xor):
    mutated = bytearray(_EVIDENCE.report)
    mutated[offset] ^= xor
    with pytest.raises((MalformedEvidence, VerificationFailed)):
        MILAN.verifier().verify(dataclasses.replace(_EVIDENCE, report=bytes(mutated)),
                                report_data=_REPORT_DATA, at=MILAN.now)


@settings(max_examples=100)
@given(st.sampled_from(["vcek", "cert_chain", "auxblob"]), st.binary(max_size=200),
       st.integers(0, 4000))
def test_garbage_endorsements_give_only_ccattest_errors(key, junk, cut):
    base = {"vcek": der(MILAN.leaf), "cert_chain": pem(MILAN.intermediate, MILAN.ark),
            "auxblob": MILAN.auxblob()}[key]
    spliced = base[:cut] + junk + base[cut + len(junk):]
    evidence = dataclasses.replace(_EVIDENCE, endorsements={key: spliced})
    try:
        MILAN.verifier().verify(evidence, report_data=_REPORT_DATA, at=MILAN.now)
    except CCAttestError as exc:
        assert type(exc) in (MalformedEvidence, VerificationFailed, CollateralUnavailable)


def test_endorsements_must_be_bytes():
    evidence, report_data, _ = MILAN.evidence()
    with pytest.raises(MalformedEvidence, match="must be bytes"):
        _verify(MILAN, dataclasses.replace(evidence, endorsements={"vcek": "PEM text"}),
                report_data)


def test_pss_check_refuses_non_rsa_issuers():
    key = ec.generate_private_key(ec.SECP384R1())
    assert not _pss_valid(key.public_key(), b"sig", b"data")


def test_several_turin_leaves_prefer_the_short_hwid_match():
    turin = FIXTURES["turin-v5-vcek"]
    evidence, report_data, _ = turin.evidence()
    other = turin.issue_leaf(hwid=b"\x01" * 8)
    endorsements = {"vcek": der(other), "cert_chain": pem(turin.leaf, turin.intermediate)}
    verified = _verify(turin, dataclasses.replace(evidence, endorsements=endorsements),
                       report_data)
    assert verified.collateral["vcek"]["sha256"] == turin.leaf.fingerprint(
        hashes.SHA256()).hex()


# --- how long the verdict may last ----------------------------------------------------------

WEEK = Policy(common=CommonPolicy(result_lifetime_seconds=7 * 24 * 3600))


def test_valid_until_is_the_first_end_of_the_chain_without_a_crl():
    evidence, report_data, _ = MILAN.evidence()
    verified = _verify(MILAN, evidence, report_data)
    ends = {"VCEK notAfter": MILAN.leaf.not_valid_after_utc,
            "SEV-Milan notAfter": MILAN.intermediate.not_valid_after_utc,
            "ARK-Milan notAfter": MILAN.ark.not_valid_after_utc}
    assert verified.valid_until == min(ends.values())
    assert ends[verified.valid_until_source] == verified.valid_until


def test_a_crl_used_bounds_the_verdict_and_its_result():
    evidence, report_data, _ = MILAN.evidence()
    crl = MILAN.crl(days=2)  # nextUpdate a day after `now`: earlier than every certificate
    verified = _verify(MILAN, evidence, report_data, crls=[crl])
    assert verified.valid_until == crl.next_update_utc
    assert verified.valid_until_source == "CRL from ARK-Milan nextUpdate"
    result = appraise(WEEK, verified, MILAN.now)
    assert result.expires_at == crl.next_update_utc < MILAN.now + timedelta(days=7)
    assert result.expiry_source == "CRL from ARK-Milan nextUpdate"
    # a lifetime shorter than the collateral still wins
    hour = appraise(Policy(), verified, MILAN.now)
    assert hour.expires_at == MILAN.now + timedelta(hours=1)
    assert hour.expiry_source == "the policy's 3600 s result lifetime"


def test_trailing_bytes_are_ignored_and_noted():
    evidence, report_data, _ = MILAN.evidence()
    plain = _verify(MILAN, evidence, report_data)
    longer = dataclasses.replace(evidence, report=evidence.report + b"\xff" * 40)
    verified = _verify(MILAN, longer, report_data)
    assert verified.claims == plain.claims
    note = next(r for r in verified.checks if r.check == "trailing_bytes")
    assert note.passed and note.message.startswith("40 unsigned bytes")
    assert "trailing_bytes" not in {r.check for r in plain.checks}
