"""Intel Trust Authority tokens: the real sample, synthetic tokens, broken variants, fuzzing.

Real vectors: intel/trustauthority-client-for-java (BSD-3-Clause), TrustAuthorityConnectorTest
validToken / validJwks / {leaf,intermediate,root}VerificationFailureJWKS, extracted as listed
in vectors/MANIFEST.md. The token was issued 2023-12-21T05:31:08Z and lives 5 minutes; its
signing certificate expired 2024-07-18, so checks pin the time inside the token's life.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import (
    ConfigError,
    MalformedEvidence,
    StaleEvidence,
    VerificationFailed,
)
from ccattest.evidence import Evidence
from ccattest.platforms.ita import PLATFORM
from ccattest.platforms.ita.verify import (
    ItaVerifier,
    expected_quote_report_data,
    load_ita_jwks,
    load_roots,
    map_claims,
    verify_ita_token,
)
from ccattest.platforms.tdx.abi import decode_td_attributes
from ccattest.testing.ita import (
    INTERMEDIATE,
    ISSUER,
    LEAF,
    ROOT,
    ItaFixture,
    compact,
    der,
    issue,
    ita_name,
)

TYPED = (MalformedEvidence, VerificationFailed, ConfigError, StaleEvidence)
FIXTURE = ItaFixture.create()
CASES = FIXTURE.broken_cases()
NOW = FIXTURE.now

SAMPLE = "ita/trustauthority-client-for-java/extracted/"
SAMPLE_AT = datetime(2023, 12, 21, 5, 33, tzinfo=UTC)  # iat 05:31:08Z, exp 05:36:08Z


# --- the real sample -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Sample:
    token: str
    jwks: dict[str, Any]
    root: x509.Certificate
    folder: Path

    def claims(self) -> dict[str, Any]:
        payload = self.token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    def verifier(self, name: str = "validJwks.json", **options: Any) -> ItaVerifier:
        return ItaVerifier(self.folder / name, roots=[self.root], **options)

    def evidence(self) -> Evidence:
        return Evidence(platform=PLATFORM, report=self.token.encode() + b"\n")


@pytest.fixture
def sample(vectors: Path) -> Sample:
    folder = vectors / SAMPLE
    jwks = json.loads((folder / "validJwks.json").read_text())
    # The development root the sample chains to, configured explicitly (ccattest pins none).
    root = load_roots(base64.b64decode(jwks["keys"][0]["x5c"][-1]))[0]
    return Sample((folder / "validToken.jwt").read_text().strip(), jwks, root, folder)


def test_real_token_verifies_unbound_with_its_claims(sample):
    verified = sample.verifier(issuer=ISSUER).verify(sample.evidence(), report_data=None,
                                                      at=SAMPLE_AT, allow_unbound=True)
    claims = verified.claims
    assert verified.platform == "ita"
    assert claims["attester_type"] == "SGX"
    assert claims["mr_enclave"] == ("0a756a653b9a92b13dbd624a5a596815"
                                    "895b130820c55f3b1b7cafb3046965bc")
    assert claims["mr_signer"].startswith("d412a4f07ef83892")
    assert (claims["isv_prod_id"], claims["isv_svn"], claims["debug"]) == (0, 0, False)
    assert claims["tcb_status"] == "OutOfDate"
    assert claims["tcb_date"] == "2021-11-10T00:00:00Z"
    assert len(claims["advisory_ids"]) == 9
    assert claims["binding"] == "not_checked"
    assert claims["issued_at"] == "2023-12-21T05:31:08+00:00"
    assert claims["token"]["verifier_instance_ids"]
    binding = {reason.check: reason for reason in verified.checks}["binding"]
    assert not binding.passed
    assert verified.collateral["root"]["subject"].endswith("CN=Development Amber Root CA")
    assert verified.collateral["signing_certificate"]["sha256"].startswith("04632c7afe2577ef")
    # the verdict rests on the token, which ends at its exp
    assert verified.valid_until == datetime.fromtimestamp(claims["token"]["exp"], UTC)
    assert verified.valid_until > SAMPLE_AT and verified.valid_until_source == "ITA token exp"


def test_real_token_binds_its_held_data_through_the_quote(sample):
    claims = sample.claims()
    held = base64.b64decode(claims["attester_held_data"])
    # sgx_report_data = SHA-256(nonce val || nonce iat || held data), zero-padded.
    assert expected_quote_report_data(claims).hex() == claims["sgx_report_data"]
    verified = sample.verifier().verify(sample.evidence(), report_data=held, at=SAMPLE_AT)
    assert verified.claims["binding"] == "user_data"
    quoted = bytes.fromhex(claims["sgx_report_data"])
    direct = verify_ita_token(sample.token, sample.jwks, at=SAMPLE_AT, roots=[sample.root],
                              report_data=quoted)
    assert direct["binding"] == "report_data"


def test_real_token_checks_the_ita_verifier_nonce(sample):
    val = base64.b64decode(sample.claims()["verifier_nonce"]["val"])
    verify_ita_token(sample.token, sample.jwks, at=SAMPLE_AT, roots=[sample.root], nonce=val,
                     allow_unbound=True)
    with pytest.raises(StaleEvidence, match="verifier nonce"):
        verify_ita_token(sample.token, sample.jwks, at=SAMPLE_AT, roots=[sample.root],
                         nonce=b"x" + val, allow_unbound=True)


def test_real_token_needs_report_data_or_an_explicit_opt_out(sample):
    with pytest.raises(ConfigError, match="allow_unbound"):
        sample.verifier().verify(sample.evidence(), report_data=None, at=SAMPLE_AT)
    with pytest.raises(VerificationFailed, match="does not bind"):
        sample.verifier().verify(sample.evidence(), report_data=bytes(64), at=SAMPLE_AT)


@pytest.mark.parametrize("role", ["leaf", "intermediate", "root"])
def test_real_failure_jwks_name_the_certificate(sample, role):
    verifier = sample.verifier(f"{role}VerificationFailureJWKS.json")
    with pytest.raises(VerificationFailed) as info:
        verifier.verify(sample.evidence(), report_data=None, at=SAMPLE_AT, allow_unbound=True)
    assert info.value.message.startswith(f"{role} certificate (x5c[")


def test_real_token_times(sample):
    verifier = sample.verifier()
    with pytest.raises(StaleEvidence, match="expired"):
        verifier.verify(sample.evidence(), report_data=None, allow_unbound=True,
                        at=datetime(2023, 12, 21, 5, 36, 8, tzinfo=UTC))
    with pytest.raises(StaleEvidence, match="not yet valid"):
        verifier.verify(sample.evidence(), report_data=None, allow_unbound=True,
                        at=datetime(2023, 12, 21, 5, 31, tzinfo=UTC))
    with pytest.raises(VerificationFailed, match=r"leaf certificate .* not valid"):
        verifier.verify(sample.evidence(), report_data=None, allow_unbound=True,
                        at=datetime(2024, 8, 1, tzinfo=UTC))


def test_real_token_is_refused_under_another_root(sample):
    with pytest.raises(VerificationFailed, match="not a configured Intel Trust Authority root"):
        verify_ita_token(sample.token, sample.jwks, at=SAMPLE_AT, roots=[FIXTURE.root],
                         allow_unbound=True)
    with pytest.raises(VerificationFailed, match="another issuer"):
        sample.verifier(issuer="https://example.invalid").verify(
            sample.evidence(), report_data=None, at=SAMPLE_AT, allow_unbound=True)


# --- synthetic tokens ------------------------------------------------------------------------

def _verify(token: str, report_data: bytes | None = None, **options: Any) -> dict[str, Any]:
    at = options.pop("at", NOW)
    verifier = FIXTURE.verifier(options.pop("jwks", None), **options)
    data = FIXTURE.report_data if report_data is None else report_data
    return verifier.verify(FIXTURE.evidence(token), report_data=data, at=at).claims


def test_tdx_token_maps_onto_the_tdx_claim_names():
    claims = _verify(FIXTURE.token())
    source = FIXTURE.claims()
    assert claims["attester_type"] == "TDX"
    assert claims["mr_td"] == source["tdx_mrtd"]
    assert claims["mr_seam"] == source["tdx_mrseam"]
    assert claims["rtmr3"] == source["tdx_rtmr3"]
    assert claims["tee_tcb_svn"] == "03000500000000000000000000000000"
    assert claims["xfam"] == "e702060000000000"
    attributes = claims["td_attributes"]  # decoded exactly like a quote's
    assert attributes == decode_td_attributes(bytes.fromhex("0000001000000000"))
    assert attributes["sept_ve_disable"] and not attributes["debug"]
    assert claims["report_data"] == source["tdx_report_data"]
    assert claims["tcb_status"] == "UpToDate"
    assert claims["advisory_ids"] == ["INTEL-SA-00837"]
    assert claims["binding"] == "user_data"
    assert claims["verified_at"] == NOW.isoformat()
    assert {claims[name] for name in ("quote_version", "fmspc", "qe_tcb_status",
                                      "collateral_expired")} == {None}
    assert claims["token"]["tdx_mrtd"] == source["tdx_mrtd"]


def test_nested_token_maps_the_same_way():
    flat = _verify(FIXTURE.token())
    nested = _verify(FIXTURE.token(FIXTURE.claims(nested=True, attester_type=None)))
    assert "tdx" in nested["token"]
    for name in ("mr_td", "rtmr0", "td_attributes", "tcb_status", "advisory_ids", "binding"):
        assert nested[name] == flat[name], name


def test_report_data_may_be_bound_directly():
    claims = _verify(FIXTURE.token(FIXTURE.claims(mode="report_data")))
    assert claims["binding"] == "report_data"
    assert claims["report_data"] == FIXTURE.report_data.hex()


def test_token_without_verifier_nonce_binds_held_data_alone():
    data = FIXTURE.report_data
    quote = hashlib.sha512(data).hexdigest()
    token = FIXTURE.token(FIXTURE.claims(verifier_nonce=None, tdx_report_data=quote))
    assert _verify(token)["binding"] == "user_data"


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"tdx_td_attributes": "0100000000000000"}, {"debug": True, "raw": "0100000000000000"}),
    ({"tdx_td_attributes": "0000000000000080"}, {"debug": False, "perfmon": True}),
    ({"tdx_is_debuggable": True}, {"debug": True, "sept_ve_disable": True}),
    ({"tdx_td_attributes": None, "tdx_td_attributes_debug": True}, {"raw": None, "debug": True}),
])
def test_td_attributes_decode_and_any_debug_flag_wins(overrides, expected):
    claims = _verify(FIXTURE.token(FIXTURE.claims(mode="report_data", **overrides)))
    assert expected.items() <= claims["td_attributes"].items()


def test_td_attributes_absent_is_none():
    token = FIXTURE.token(FIXTURE.claims(mode="report_data", tdx_td_attributes=None,
                                         tdx_is_debuggable=None))
    assert _verify(token)["td_attributes"] is None


def _sgx_claims(report_data: bytes, **extra: Any) -> dict[str, Any]:
    tdx_only = [name for name in FIXTURE.claims() if name.startswith("tdx_")]
    claims = FIXTURE.claims(attester_type="SGX", **dict.fromkeys(tdx_only))
    val = base64.b64decode(claims["verifier_nonce"]["val"])
    iat = base64.b64decode(claims["verifier_nonce"]["iat"])
    digest = hashlib.sha256(val + iat + report_data).digest() + bytes(32)
    claims.update(sgx_mrenclave="11" * 32, sgx_mrsigner="22" * 32, sgx_isvprodid=1,
                  sgx_isvsvn=2, sgx_is_debuggable=False, sgx_report_data=digest.hex())
    claims.update(extra)
    return claims


def test_sgx_token_binds_held_data_with_sha256():
    claims = _verify(FIXTURE.token(_sgx_claims(FIXTURE.report_data)))
    assert claims["attester_type"] == "SGX"
    assert (claims["mr_enclave"], claims["isv_svn"], claims["debug"]) == ("11" * 32, 2, False)
    assert claims["binding"] == "user_data"


@pytest.mark.parametrize("extra", [{"sgx_isvsvn": "2"}, {"sgx_isvprodid": True},
                                   {"sgx_is_debuggable": 0}, {"sgx_mrenclave": "11"}])
def test_malformed_sgx_claims(extra):
    with pytest.raises(MalformedEvidence, match="token claim sgx_"):
        _verify(FIXTURE.token(_sgx_claims(FIXTURE.report_data, **extra)))


def test_unknown_attester_type_binds_only_directly():
    claims = FIXTURE.claims(mode="report_data", attester_type="AZURE-TDX")
    mapped = _verify(FIXTURE.token(claims))
    assert mapped["attester_type"] == "AZURE-TDX"
    assert mapped["report_data"] == FIXTURE.report_data.hex()
    held = FIXTURE.claims(attester_type="AZURE-TDX")
    with pytest.raises(VerificationFailed, match="does not bind the token's held data"):
        _verify(FIXTURE.token(held))
    assert map_claims({**held, "tdx_report_data": None}, binding="x", at=NOW)["report_data"] is None


@pytest.mark.parametrize(("overrides", "match"), [
    ({"attester_type": 5}, "attester_type"),
    ({"verifier_nonce": "abc"}, "verifier_nonce"),
    ({"verifier_nonce": {"val": 1, "iat": "AAAA"}}, "verifier_nonce.val"),
    ({"attester_advisory_ids": "INTEL-SA-1"}, "attester_advisory_ids"),
    ({"attester_advisory_ids": [1]}, "attester_advisory_ids"),
    ({"attester_tcb_status": ["UpToDate"]}, "attester_tcb_status"),
    ({"attester_held_data": 12}, "attester_held_data"),
])
def test_malformed_claims_are_malformed_evidence(overrides, match):
    with pytest.raises(MalformedEvidence, match=match):
        _verify(FIXTURE.token(FIXTURE.claims(**overrides)))


def test_map_claims_without_times():
    mapped = map_claims({"attester_type": "TDX", "iat": "soon"}, binding="not_checked", at=NOW)
    assert (mapped["issued_at"], mapped["expires_at"], mapped["mr_td"]) == (None, None, None)
    assert mapped["advisory_ids"] == []


def test_chain_without_root_in_x5c_ends_at_the_configured_root():
    jwks = FIXTURE.jwks(FIXTURE.jwk((FIXTURE.leaf, FIXTURE.intermediate)))
    verified = FIXTURE.verifier(jwks).verify(FIXTURE.evidence(), report_data=FIXTURE.report_data,
                                             at=NOW)
    assert verified.collateral["root"]["source"] == "configured"
    assert len(verified.collateral["intermediates"]) == 1


def test_reissued_root_with_the_same_key_and_name_is_accepted():
    reissued = issue(dataclasses.replace(ROOT, not_after=timedelta(days=5000)),
                     FIXTURE.keys.root.public_key(), ita_name(ROOT.name), FIXTURE.keys.root, NOW)
    assert der(reissued) != der(FIXTURE.root)
    verifier = ItaVerifier(FIXTURE.jwks(), roots=[reissued])
    assert verifier.verify_token(FIXTURE.token(), at=NOW, report_data=FIXTURE.report_data)


def test_any_of_several_roots_and_keys():
    other_root = issue(ROOT, FIXTURE.keys.rogue.public_key(), ita_name("Other"),
                       FIXTURE.keys.rogue, NOW)
    spare = FIXTURE.jwk(kid="spare", x5c=["%%%"])
    unnamed = {key: value for key, value in FIXTURE.jwk().items() if key != "kid"}
    jwks = FIXTURE.jwks(spare, unnamed, FIXTURE.jwk())
    verifier = ItaVerifier(jwks, roots=[other_root, FIXTURE.root])
    assert verifier.verify_token(FIXTURE.token(), at=NOW, report_data=FIXTURE.report_data)


def test_jwks_sources(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(FIXTURE.jwks()))
    for source in (path, path.read_bytes(), FIXTURE.jwks()):
        claims = verify_ita_token(FIXTURE.token(), source, at=NOW, roots=[FIXTURE.root],
                                  report_data=FIXTURE.report_data)
        assert claims["binding"] == "user_data"


def test_issuer_audience_and_nonce_when_configured():
    token = FIXTURE.token(FIXTURE.claims(aud=["relying", "other"]))
    claims = _verify(token, issuer=ISSUER, audience="relying")
    assert claims["issuer"] == ISSUER
    verifier = FIXTURE.verifier(issuer=ISSUER, audience="relying")
    verified = verifier.verify(FIXTURE.evidence(token), report_data=FIXTURE.report_data, at=NOW,
                               nonce=base64.b64decode(FIXTURE.claims()["verifier_nonce"]["val"]))
    assert {"issuer", "audience", "binding"} <= {reason.check for reason in verified.checks}
    assert all(reason.passed for reason in verified.checks)


def test_leeway():
    late = NOW + timedelta(minutes=5)
    with pytest.raises(StaleEvidence):
        _verify(FIXTURE.token(), at=late)
    assert _verify(FIXTURE.token(), at=late, leeway=timedelta(minutes=2))
    with pytest.raises(ConfigError, match="leeway"):
        _verify(FIXTURE.token(), leeway=timedelta(seconds=-1))


def test_unbound_synthetic_token_is_flagged():
    verified = FIXTURE.verifier().verify(FIXTURE.evidence(), report_data=None, at=NOW,
                                         allow_unbound=True)
    assert verified.claims["binding"] == "not_checked"
    assert [r.check for r in verified.checks if not r.passed] == ["binding"]


def test_verifier_wide_opt_out_and_per_call_override():
    verifier = FIXTURE.verifier(allow_unbound=True)
    assert verifier.verify_token(FIXTURE.token(), at=NOW)["binding"] == "not_checked"
    with pytest.raises(ConfigError, match="allow_unbound"):
        verifier.verify_token(FIXTURE.token(), at=NOW, allow_unbound=False)


@pytest.mark.parametrize("report_data", [b"", "00" * 64])
def test_expected_report_data_must_be_bytes(report_data):
    with pytest.raises(ConfigError, match="non-empty bytes"):
        FIXTURE.verifier().verify_token(FIXTURE.token(), at=NOW, report_data=report_data)


def test_naive_time_is_a_config_error():
    with pytest.raises(ConfigError, match="naive"):
        FIXTURE.verifier().verify_token(FIXTURE.token(), at=datetime(2026, 11, 26),
                                        report_data=FIXTURE.report_data)


def test_token_text_may_be_a_string_report():
    evidence = Evidence(platform=PLATFORM, report=FIXTURE.token())  # type: ignore[arg-type]
    verified = FIXTURE.verifier().verify(evidence, report_data=FIXTURE.report_data, at=NOW)
    assert verified.claims["binding"] == "user_data"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_broken_tokens_fail_with_the_right_kind(case):
    with pytest.raises(TYPED) as info:
        case.run()
    assert type(info.value) is case.error, str(info.value)
    assert info.value.message


def test_chain_failures_name_the_certificate():
    named = {case.name: case for case in CASES}
    for name, role in (("leaf_signed_by_rogue", "leaf"),
                       ("intermediate_signed_by_rogue", "intermediate"),
                       ("root_not_configured", "root"), ("root_does_not_parse", "root")):
        with pytest.raises(VerificationFailed) as info:
            named[name].run()
        assert info.value.message.startswith(f"{role} certificate"), name


def test_header_algorithms_are_refused_before_any_key_use():
    for alg in ("none", "None", "HS256", "HS384", "RS384", "ES384", "PS256", "PS512"):
        token = compact({"alg": alg, "kid": FIXTURE.kid}, FIXTURE.claims(), lambda _: b"sig")
        with pytest.raises(VerificationFailed, match=r"algorithm|unsigned"):
            _verify(token)


# --- configuration -----------------------------------------------------------------------------

@pytest.mark.parametrize(("jwks", "match"), [
    (b"{not json", "not valid JSON"),
    (b"x" * ((1 << 20) + 1), "too large"),
    ({"keys": {}}, "malformed JWKS"),
    ([], "malformed JWKS"),
    ({"keys": []}, "no key with a kid"),
    ({"keys": ["key"]}, "malformed JWKS key 0"),
    ({"keys": [{"kid": "a", "d": "secret"}]}, "private key"),
    ({"keys": [{"kid": 5}]}, "non-string kid"),
    ({"keys": [{"kid": "a"}, {"kid": "a"}]}, "duplicate kid"),
    ("/path/as/text", "malformed JWKS"),
])
def test_jwks_configuration_errors(jwks, match):
    with pytest.raises(ConfigError, match=match):
        load_ita_jwks(jwks)


def test_jwks_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read JWKS"):
        load_ita_jwks(tmp_path / "absent.json")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * ((1 << 20) + 1))
    with pytest.raises(ConfigError, match="too large"):
        load_ita_jwks(big)


@pytest.mark.parametrize(("roots", "match"), [
    (None, "no Intel Trust Authority root"),
    ([], "no Intel Trust Authority root"),
    (FIXTURE.root, "sequence of certificates"),
    (b"PEM", "sequence of certificates"),
    (["not a certificate"], "not a certificate"),
    ([FIXTURE.leaf], "must be a CA"),
])
def test_root_configuration_errors(roots, match):
    with pytest.raises(ConfigError, match=match):
        ItaVerifier(FIXTURE.jwks(), roots=roots)


def test_load_roots(tmp_path):
    pem = b"".join(cert.public_bytes(serialization.Encoding.PEM)
                   for cert in (FIXTURE.root, FIXTURE.intermediate))
    assert len(load_roots(pem)) == 2
    path = tmp_path / "root.der"
    path.write_bytes(der(FIXTURE.root))
    assert load_roots(path) == [FIXTURE.root]
    with pytest.raises(ConfigError, match="does not parse"):
        load_roots(b"garbage")
    with pytest.raises(ConfigError, match="cannot read ITA root"):
        load_roots(tmp_path / "absent.pem")


def test_intermediate_as_trust_anchor_with_path_length():
    anchor = issue(INTERMEDIATE, FIXTURE.keys.intermediate.public_key(), FIXTURE.root.subject,
                   FIXTURE.keys.root, NOW)
    jwks = FIXTURE.jwks(FIXTURE.jwk((FIXTURE.leaf,)))
    verifier = ItaVerifier(jwks, roots=[anchor])
    assert verifier.verify_token(FIXTURE.token(), at=NOW, report_data=FIXTURE.report_data)


# --- properties -----------------------------------------------------------------------------

VERIFIER = FIXTURE.verifier()
TOKEN = FIXTURE.token()
JWKS_TEXT = json.dumps(FIXTURE.jwks())
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)


def _outcome(call: Any) -> None:
    """Run `call`: success or a typed ccattest error are both fine, anything else is not."""
    with contextlib.suppress(*TYPED):
        call()


@given(st.text(max_size=300))
def test_arbitrary_text_gives_only_typed_errors(text):
    _outcome(lambda: VERIFIER.verify_token(text, at=NOW, report_data=FIXTURE.report_data))


@given(st.binary(max_size=300))
def test_arbitrary_evidence_bytes_give_only_typed_errors(data):
    evidence = Evidence(platform=PLATFORM, report=data)
    _outcome(lambda: VERIFIER.verify(evidence, report_data=FIXTURE.report_data, at=NOW))


@given(st.integers(0, len(TOKEN) - 1),
       st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "))
def test_mutated_tokens_are_rejected(position, char):
    mutated = TOKEN[:position] + char + TOKEN[position + 1:]
    if mutated == TOKEN:
        return
    with pytest.raises(TYPED):
        VERIFIER.verify_token(mutated, at=NOW, report_data=FIXTURE.report_data)


@given(st.integers(0, len(JWKS_TEXT) - 1), st.characters(codec="ascii"))
def test_mutated_jwks_text_gives_only_typed_errors(position, char):
    mutated = (JWKS_TEXT[:position] + char + JWKS_TEXT[position + 1:]).encode()
    _outcome(lambda: verify_ita_token(TOKEN, mutated, at=NOW, roots=[FIXTURE.root],
                                      report_data=FIXTURE.report_data))


@given(st.sampled_from(sorted(FIXTURE.jwk())), JSON_VALUES)
def test_mutated_jwk_members_give_only_typed_errors(member, value):
    jwks = FIXTURE.jwks({**FIXTURE.jwk(), member: value})
    _outcome(lambda: verify_ita_token(TOKEN, jwks, at=NOW, roots=[FIXTURE.root],
                                      report_data=FIXTURE.report_data))


@given(st.integers(0, 2), st.data())
def test_mutated_certificates_give_only_typed_errors(index, data):
    chain = [FIXTURE.leaf, FIXTURE.intermediate, FIXTURE.root]
    raw = bytearray(der(chain[index]))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    entries = [base64.b64encode(der(cert)).decode() for cert in chain]
    entries[index] = base64.b64encode(bytes(raw)).decode()
    jwks = FIXTURE.jwks(FIXTURE.jwk(x5c=entries))

    def run() -> None:
        verify_ita_token(TOKEN, jwks, at=NOW, roots=[FIXTURE.root],
                         report_data=FIXTURE.report_data)

    if index == 2:  # a root with the configured name and key is trusted whatever else differs
        _outcome(run)
    else:
        with pytest.raises(TYPED):
            run()


@given(st.sampled_from(sorted(FIXTURE.claims())), JSON_VALUES)
def test_signed_tokens_with_odd_claims_give_only_typed_errors(name, value):
    token = FIXTURE.signed({"alg": "PS384", "kid": FIXTURE.kid}, {**FIXTURE.claims(), name: value})
    _outcome(lambda: VERIFIER.verify_token(token, at=NOW, report_data=FIXTURE.report_data))


# --- rarely met branches ---------------------------------------------------------------------

def test_certificate_with_an_unknown_signature_algorithm_is_refused():
    leaf = der(FIXTURE.leaf)
    pss_oid = bytes.fromhex("06092a864886f70d01010a")  # RSASSA-PSS, as the outer algorithm
    position = leaf.rfind(pss_oid)
    unknown = leaf[:position] + bytes.fromhex("06092a864886f70d01017f") + leaf[position + 11:]
    entries = [base64.b64encode(unknown).decode(),
               *(base64.b64encode(der(cert)).decode() for cert in (FIXTURE.intermediate,
                                                                   FIXTURE.root))]
    with pytest.raises(VerificationFailed, match="leaf certificate"):
        _verify(FIXTURE.token(), jwks=FIXTURE.jwks(FIXTURE.jwk(x5c=entries)))


def test_root_whose_extensions_do_not_parse_is_a_config_error():
    builder = (x509.CertificateBuilder().subject_name(ita_name("bad root"))
               .issuer_name(ita_name("bad root")).public_key(FIXTURE.keys.root.public_key())
               .serial_number(7).not_valid_before(NOW - timedelta(days=1))
               .not_valid_after(NOW + timedelta(days=1))
               .add_extension(x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, b"\x05\x00"),
                              critical=False))
    root = builder.sign(FIXTURE.keys.root, hashes.SHA256())
    with pytest.raises(ConfigError, match="does not parse"):
        ItaVerifier(FIXTURE.jwks(), roots=[root])
    entries = [base64.b64encode(der(cert)).decode() for cert in (FIXTURE.leaf, root)]
    with pytest.raises(VerificationFailed, match=r"certificate \(x5c\[1\]\) does not parse"):
        _verify(FIXTURE.token(), jwks=FIXTURE.jwks(FIXTURE.jwk(x5c=entries)))


def test_leaf_without_constraints_or_key_usage_verifies():
    spec = dataclasses.replace(LEAF, ca=None, usage=None)
    leaf = FIXTURE.issue(spec, FIXTURE.keys.leaf.public_key(), issuer=FIXTURE.intermediate,
                         issuer_key=FIXTURE.keys.intermediate)
    jwks = FIXTURE.jwks(FIXTURE.jwk((leaf, FIXTURE.intermediate, FIXTURE.root)))
    assert _verify(FIXTURE.token(), jwks=jwks)["binding"] == "user_data"


def test_other_jwt_library_errors_are_verification_failures(monkeypatch):
    def refuse(*_: Any, **__: Any) -> None:
        raise jwt.InvalidKeyError("refused")

    monkeypatch.setattr(jwt, "decode", refuse)
    with pytest.raises(VerificationFailed, match="token rejected"):
        _verify(FIXTURE.token())
