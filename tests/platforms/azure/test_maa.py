"""MAA token verification: synthetic instance, local JWKS server, and the Azure-Samples token."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from ccattest.collateral.cache import CollateralCache, make_item
from ccattest.errors import (
    CCAttestError,
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    StaleEvidence,
    VerificationFailed,
)
from ccattest.evidence import Evidence
from ccattest.platforms.azure import maa as maa_module
from ccattest.platforms.azure.maa import (
    JWKS_KIND,
    JwksClient,
    MaaVerifier,
    binding_of,
    check_jwks_item,
    load_maa_jwks,
    map_claims,
    normalize_instance,
    runtime_data_for,
    snp_report_data_for,
)
from ccattest.platforms.snp.abi import parse_report
from ccattest.platforms.snp.verify import SnpVerifier
from ccattest.testing.azure_servers import MaaInstanceServer
from ccattest.testing.cases import FIXED_NOW
from ccattest.testing.maa import (
    MaaFixture,
    MaaKeys,
    default_report,
    jwk_for,
    runtime_json,
    signing_certificate,
)
from ccattest.testing.snp import SnpFixture

SAMPLES = Path("azure/azure-attestation-samples")
SAMPLE_TOKEN = SAMPLES / "maa.jwt.verifier.dotnet/sev-snp-jwt.txt"
SAMPLE_DIR = SAMPLES / "extracted/get-sevsnp-jwt"
SAMPLE_INSTANCE = "https://sharedweu.weu.test.attest.azure.net"
SAMPLE_AT = datetime(2025, 4, 8, 6, 0, tzinfo=UTC)  # inside the token's iat..exp


@pytest.fixture(scope="module")
def keys() -> MaaKeys:
    return MaaKeys.generate()


@pytest.fixture(scope="module")
def maa(keys: MaaKeys) -> MaaFixture:
    return MaaFixture.create(keys=keys)


def _payload(token: str) -> dict:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


# --- valid tokens ---------------------------------------------------------------------------

def test_valid_token_verifies_and_maps_claims(maa: MaaFixture) -> None:
    evidence, report_data = maa.evidence()
    result = maa.verifier().verify(evidence, report_data=report_data, at=FIXED_NOW)
    claims = result.claims
    report = default_report(report_data)
    assert result.platform == "maa"
    assert claims["binding"] == "runtime_data"
    assert claims["attestation_type"] == "sevsnpvm"
    assert claims["isolation_tee"] == "sevsnpvm"
    assert claims["compliance_status"] == "azure-compliant-uvm"
    assert claims["debuggable"] is False
    assert claims["secure_boot"] is None
    assert claims["measurement"] == claims["launch_measurement"] == report.measurement.hex()
    assert claims["host_data"] == report.host_data.hex()
    assert claims["report_data"] == snp_report_data_for(report_data).hex()
    assert claims["runtime_digest_match"] is True
    assert claims["reported_tcb"] == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
    assert claims["policy"] == {"debug": False, "migrate_ma": False, "smt": True}
    assert claims["guest_svn"] == 2 and claims["vmpl"] == 0
    assert claims["token"]["iss"] == maa.instance
    assert claims["verified_at"] == FIXED_NOW.isoformat()
    assert [check.check for check in result.checks] == [
        "jku", "algorithm", "signature", "freshness", "issuer", "binding"]
    assert all(check.passed for check in result.checks)
    assert result.collateral["jwks_source"] == "offline"
    assert result.collateral["signing_key"]["source"] == "jwk x5c"


def test_runtime_data_convention_is_compact_json() -> None:
    report_data = bytes(range(64))
    assert runtime_data_for(report_data) == runtime_json(report_data)
    with pytest.raises(ConfigError):
        runtime_data_for(b"")


def test_binding_through_snp_report_data(maa: MaaFixture) -> None:
    report_data = bytes(range(64))
    token = maa.token(report_data, report=default_report(report_data, report_data=report_data),
                      **{"x-ms-runtime": None})
    claims = maa.verifier().verify_token(token, report_data=report_data, at=FIXED_NOW)
    assert claims["binding"] == "report_data"
    assert claims["runtime_digest_match"] is False


def test_client_payload_nonce_and_audience(maa: MaaFixture) -> None:
    report_data = bytes(64)
    token = maa.token(report_data, aud="relying-party",
                      **{"x-ms-runtime": {"client-payload": {"nonce": report_data.hex()}}})
    verifier = maa.verifier(audience="relying-party")
    result = verifier.verify(Evidence("maa", token.encode()), report_data=report_data,
                             at=FIXED_NOW)
    assert result.claims["binding"] == "runtime_data"
    assert "audience" in [check.check for check in result.checks]
    with pytest.raises(VerificationFailed, match="audience"):
        maa.verifier(audience="someone-else").verify_token(token, report_data=report_data,
                                                           at=FIXED_NOW)


def test_unbound_needs_explicit_permission(maa: MaaFixture) -> None:
    evidence, _ = maa.evidence()
    with pytest.raises(ConfigError, match="report_data"):
        maa.verifier().verify(evidence, report_data=None, at=FIXED_NOW)
    result = maa.verifier().verify(evidence, report_data=None, at=FIXED_NOW, allow_unbound=True)
    assert result.claims["binding"] == "not_checked"
    assert result.claims["runtime_digest_match"] is None
    assert not result.checks[-1].passed
    assert maa.verifier(allow_unbound=True).verify(
        evidence, report_data=None, at=FIXED_NOW).claims["binding"] == "not_checked"
    with pytest.raises(ConfigError):
        binding_of({}, b"", False)


def test_jwks_with_numbers_and_without_x5c(maa: MaaFixture) -> None:
    evidence, report_data = maa.evidence()
    for jwks in (maa.jwks(numbers=True), {"keys": [jwk_for(maa.keys.signing, maa.kid)]}):
        result = maa.verifier(jwks=jwks).verify(evidence, report_data=report_data,
                                                at=FIXED_NOW)
        assert result.claims["binding"] == "runtime_data"
    bare = maa.verifier(jwks={"keys": [jwk_for(maa.keys.signing, maa.kid)]})
    assert bare.verify(evidence, report_data=report_data, at=FIXED_NOW).collateral[
        "signing_key"] == {"kid": maa.kid, "source": "jwk n/e"}
    assert maa.verifier(jwks=json.dumps(maa.jwks()).encode()).verify(
        evidence, report_data=report_data, at=FIXED_NOW)


def test_matches_snp_verifier_claims_for_the_same_report(maa: MaaFixture) -> None:
    snp = SnpFixture.create("Milan")
    report_data = bytes(range(64))
    raw = snp.sign(snp.report(report_data, guest_svn=7, vmpl=1, policy=0x30000 | 1 << 19))
    native = snp.verifier().verify(Evidence("snp", raw, snp.endorsements()),
                                   report_data=report_data, at=snp.now).claims
    token = maa.token(report_data, report=parse_report(raw), **{"x-ms-runtime": None})
    mapped = maa.verifier().verify_token(token, report_data=report_data, at=FIXED_NOW)
    assert mapped["binding"] == "report_data"
    for name in ("measurement", "host_data", "report_data", "guest_svn", "vmpl",
                 "id_key_digest", "author_key_digest", "report_id", "family_id", "image_id"):
        assert mapped[name] == native[name], name
    assert mapped["reported_tcb"] == {k: v for k, v in native["reported_tcb"].items()
                                      if k != "fmc"}
    for name, value in mapped["policy"].items():
        assert value == native["policy"][name], name
    assert mapped["debuggable"] is True


def test_azurevm_token_maps_isolation_tee(vectors: Path) -> None:
    sample = vectors / "azure/cvm-guest-attestation/cvm-attestation-sample-app"
    claims = json.loads((sample / "sampleAttestationToken.json").read_text())
    at = datetime(2022, 5, 19, 21, 0, tzinfo=UTC)
    mapped = map_claims(claims, binding="not_checked", at=at)
    assert mapped["attestation_type"] == "azurevm"
    assert mapped["isolation_tee"] == "sevsnpvm"
    assert mapped["compliance_status"] == "azure-compliant-cvm"
    assert mapped["secure_boot"] is True
    assert mapped["debuggable"] is False
    assert mapped["launch_measurement"].startswith("fe353d30")
    assert mapped["reported_tcb"] == {"bootloader": 2, "tee": 0, "snp": 2, "microcode": 55}
    assert mapped["issued_at"] == "2022-05-19T20:44:54+00:00"


# --- broken tokens --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def broken(maa: MaaFixture) -> dict:
    return {case.name: case for case in maa.broken_cases()}


@pytest.mark.parametrize("name", [
    "alg_none", "hmac_public_key", "rs384", "unknown_kid", "foreign_jku", "no_jku",
    "rogue_key", "expired", "not_yet_valid", "wrong_issuer", "no_exp", "wrong_nonce",
    "bad_hex_claim", "runtime_not_object"])
def test_broken_tokens_are_rejected(maa: MaaFixture, broken: dict, name: str) -> None:
    case = broken[name]
    with pytest.raises(case.error):
        maa.verifier().verify(case.evidence, report_data=case.report_data, at=case.at)


def test_specific_rejection_reasons(maa: MaaFixture, broken: dict) -> None:
    def error(name: str) -> CCAttestError:
        case = broken[name]
        with pytest.raises(CCAttestError) as caught:
            maa.verifier().verify(case.evidence, report_data=case.report_data, at=case.at)
        return caught.value

    assert "unsigned" in error("alg_none").message
    assert "not accepted" in error("hmac_public_key").message
    assert "not in the MAA JWKS" in error("unknown_kid").message
    assert "jku" in error("foreign_jku").message
    assert isinstance(error("expired"), StaleEvidence)
    assert "issuer" in error("wrong_issuer").message
    assert "signature" in error("rogue_key").message


def test_header_and_envelope_errors(maa: MaaFixture) -> None:
    report_data = bytes(64)
    claims = maa.claims(report_data)
    verifier = maa.verifier()
    for header, message in (({"crit": ["x"]}, "extensions"), ({"kid": ""}, "names no key")):
        with pytest.raises(VerificationFailed, match=message):
            verifier.verify_token(maa.sign(claims, header=header), report_data=report_data,
                                  at=FIXED_NOW)
    with pytest.raises(MalformedEvidence, match="another platform"):
        verifier.verify(Evidence("snp", b"x"), report_data=report_data, at=FIXED_NOW)
    with pytest.raises(MalformedEvidence, match="JWT text"):
        verifier.verify(Evidence("maa", b"\xff\xfe"), report_data=report_data, at=FIXED_NOW)
    with pytest.raises(MalformedEvidence):
        verifier.verify(Evidence("maa", b"a.b"), report_data=report_data, at=FIXED_NOW)
    with pytest.raises(ConfigError, match="naive"):
        verifier.verify_token(maa.token(report_data), report_data=report_data,
                              at=datetime(2026, 11, 26))


def test_signing_certificate_must_be_valid_at_the_time(keys: MaaKeys) -> None:
    maa = MaaFixture.create(keys=keys)
    evidence, report_data = maa.evidence()
    with pytest.raises(VerificationFailed, match="certificate"):
        maa.verifier().verify(evidence, report_data=report_data,
                              at=FIXED_NOW + timedelta(days=400))


@pytest.mark.parametrize(("claim", "value"), [
    ("x-ms-sevsnpvm-guestsvn", True), ("x-ms-sevsnpvm-vmpl", -1),
    ("x-ms-sevsnpvm-is-debuggable", "no"), ("x-ms-attestation-type", 5),
    ("x-ms-isolation-tee", [1]), ("x-ms-runtime", {"nonce": 5}),
    ("x-ms-sevsnpvm-launchmeasurement", "ab"),
])
def test_malformed_claims(maa: MaaFixture, claim: str, value: object) -> None:
    report_data = bytes(64)
    token = maa.sign({**maa.claims(report_data), claim: value})
    with pytest.raises(MalformedEvidence):
        maa.verifier().verify_token(token, report_data=report_data, at=FIXED_NOW)


def test_time_claim_types(maa: MaaFixture) -> None:
    report_data = bytes(64)
    token = maa.sign({**maa.claims(report_data), "iat": "yesterday"})
    with pytest.raises(VerificationFailed, match="NumericDate"):
        maa.verifier().verify_token(token, report_data=report_data, at=FIXED_NOW)
    mapped = map_claims({"iat": "x"}, binding="not_checked", at=FIXED_NOW)
    assert mapped["issued_at"] is None and mapped["expires_at"] is None


@given(position=st.integers(min_value=0, max_value=10_000),
       replacement=st.sampled_from("AZaz09-_.=+/ \x00é"))
def test_mutated_tokens_never_escape_typed_errors(maa: MaaFixture, position: int,
                                                  replacement: str) -> None:
    report_data = bytes(range(64))
    token = _TOKENS.setdefault(maa.kid, maa.token(report_data))
    index = position % len(token)
    mutated = token[:index] + replacement + token[index + 1:]
    try:
        claims = maa.verifier().verify_token(mutated, report_data=report_data, at=FIXED_NOW)
    except CCAttestError:
        return
    assert mutated == token or claims == maa.verifier().verify_token(
        token, report_data=report_data, at=FIXED_NOW)


_TOKENS: dict[str, str] = {}


# --- JWKS loading -----------------------------------------------------------------------------

def test_jwks_loading_rejects_bad_keys(keys: MaaKeys, maa: MaaFixture) -> None:
    good = jwk_for(keys.signing, "a", maa.certificate)
    small = maa_module.rsa.generate_private_key(public_exponent=65537, key_size=1024)
    rogue_numbers = jwk_for(keys.rogue, "a")
    bad = [
        ({"keys": "x"}, "malformed"),
        ({"keys": [5]}, "malformed"),
        ({"keys": [{**good, "kid": 5}]}, "non-string kid"),
        ({"keys": [good, good]}, "duplicate"),
        ({"keys": [{"kty": "RSA"}]}, "no usable keys"),
        ({"keys": [{**good, "kty": "EC"}]}, "not an RSA key"),
        ({"keys": [{**good, "d": "AQAB"}]}, "private"),
        ({"keys": [{**good, "alg": "HS256"}]}, "restricted"),
        ({"keys": [{**good, "use": "enc"}]}, "restricted"),
        ({"keys": [{**good, "x5c": "abc"}]}, "x5c"),
        ({"keys": [{**good, "x5c": ["!!!"]}]}, "does not parse"),
        ({"keys": [{**good, "n": rogue_numbers["n"], "e": rogue_numbers["e"]}]}, "n/e"),
        ({"keys": [{"kid": "a", "kty": "RSA"}]}, "neither"),
        ({"keys": [{"kid": "a", "kty": "RSA", "n": "", "e": "AQAB"}]}, "base64url"),
        ({"keys": [{"kid": "a", "kty": "RSA", "n": "A=A", "e": "AQAB"}]}, "base64url"),
        ({"keys": [{"kid": "a", "kty": "RSA", "n": "AQAB", "e": "AA"}]}, "valid RSA"),
        ({"keys": [jwk_for(small, "a")]}, "too short"),
        (b"not json", "not JSON"),
        (b"x" * (maa_module.MAX_JWKS_BYTES + 1), "too large"),
        (Path("/nonexistent/ccattest/jwks.json"), "cannot read"),
    ]
    for source, message in bad:
        with pytest.raises(ConfigError, match=message):
            load_maa_jwks(source)
    ec_cert = SnpFixture.create("Milan").leaf  # an EC certificate
    with pytest.raises(ConfigError, match="RSA key"):
        load_maa_jwks({"keys": [{"kid": "a", "kty": "RSA", "x5c": [base64.b64encode(
            ec_cert.public_bytes(Encoding.DER)).decode()]}]})
    assert list(load_maa_jwks({"keys": [{"kty": "RSA"}, good]})) == ["a"]


def test_instances_are_normalized() -> None:
    assert normalize_instance("SharedWeu.weu.attest.azure.net/") == \
        "https://sharedweu.weu.attest.azure.net"
    assert normalize_instance("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalize_instance("http://[::1]:8080") == "http://[::1]:8080"
    for bad in ("", 5, "http://example.com", "https://a.example/path", "https://a?x=1",
                "https://a:xx", "https://a b", "https://[bad"):
        with pytest.raises(ConfigError):
            normalize_instance(bad)  # type: ignore[arg-type]


def test_verifier_configuration_errors(maa: MaaFixture) -> None:
    with pytest.raises(ConfigError, match="no MAA instances"):
        MaaVerifier(instances=[], jwks=maa.jwks())
    with pytest.raises(ConfigError, match="no MAA instances"):
        MaaVerifier(instances="https://a.attest.azure.net", jwks=maa.jwks())
    with pytest.raises(ConfigError, match="no MAA signing keys"):
        MaaVerifier(instances=[maa.instance])
    with pytest.raises(ConfigError, match="leeway"):
        maa.verifier(leeway=timedelta(seconds=-1))
    with pytest.raises(ConfigError, match="JwksClient"):
        MaaVerifier(instances=[maa.instance], client=["x"])  # type: ignore[list-item]
    with JwksClient("https://other.attest.azure.net") as other, \
            pytest.raises(ConfigError, match="not allow-listed"):
        MaaVerifier(instances=[maa.instance], client=other)


# --- fetching the JWKS from a local MAA instance ------------------------------------------------

def test_jwks_client_fetches_caches_and_expires(keys: MaaKeys) -> None:
    base = MaaFixture.create(keys=keys)
    with MaaInstanceServer(base.jwks()) as server:
        maa = base.at_instance(server.url)
        sleeps: list[float] = []
        with JwksClient(server.url, ttl=timedelta(minutes=10), sleep=sleeps.append) as client:
            verifier = MaaVerifier(instances=[server.url], client=client)
            evidence, report_data = maa.evidence()
            result = verifier.verify(evidence, report_data=report_data, at=FIXED_NOW)
            assert result.collateral["jwks_source"] == server.url + "/certs"
            verifier.verify(evidence, report_data=report_data, at=FIXED_NOW)
            assert [r.path for r in server.requests] == ["/certs"]
            verifier.verify(evidence, report_data=report_data,
                            at=FIXED_NOW + timedelta(minutes=11))
            assert len(server.requests) == 2
            # a jku outside the allow list is refused before any fetch
            foreign = maa.sign(maa.claims(report_data),
                               header={"jku": "http://127.0.0.1:1/certs"})
            with pytest.raises(VerificationFailed, match="jku"):
                verifier.verify_token(foreign, report_data=report_data, at=FIXED_NOW)
            assert len(server.requests) == 2
            # unknown kid with a fresh cached JWKS: no fetch, typed failure
            with pytest.raises(VerificationFailed, match="not in the MAA JWKS"):
                verifier.verify_token(maa.sign(maa.claims(report_data),
                                               header={"kid": "rotated"}),
                                      report_data=report_data, at=FIXED_NOW)
            assert sleeps == []


def test_jwks_client_retries_and_gives_up(maa: MaaFixture) -> None:
    at = FIXED_NOW
    with MaaInstanceServer(maa.jwks()) as server:
        url = server.url
        sleeps: list[float] = []
        with JwksClient(server.url, retries=2, backoff=0.5, sleep=sleeps.append) as client:
            server.fail(503)
            server.drop()
            assert maa.kid in client.keys(at=at)
            assert sleeps == [0.5, 1.0]
        with JwksClient(server.url, retries=1, sleep=sleeps.append) as client:
            server.fail(404)
            with pytest.raises(CollateralUnavailable, match="HTTP 404"):
                client.keys(at=at)
            server.fail(500, times=2)
            with pytest.raises(CollateralUnavailable, match="HTTP 500; HTTP 500"):
                client.keys(at=at)
            server.garble()
            with pytest.raises(CollateralUnavailable, match="unusable JWKS"):
                client.keys(at=at)
            server.serve_jwks({"keys": []})
            with pytest.raises(CollateralUnavailable, match="unusable JWKS"):
                client.keys(at=at)
            server.fail(200, body=b"x" * (maa_module.MAX_JWKS_BYTES + 10))
            with pytest.raises(CollateralUnavailable, match="larger"):
                client.keys(at=at)
    with JwksClient(url, retries=0, timeout=0.5) as client, \
            pytest.raises(CollateralUnavailable, match="connection error"):
        client.keys(at=at)


def test_jwks_client_timeout(maa: MaaFixture) -> None:
    import httpx

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with JwksClient(maa.instance, retries=0, transport=httpx.MockTransport(slow)) as client, \
            pytest.raises(CollateralUnavailable, match="timeout"):
        client.keys(at=FIXED_NOW)


def test_jwks_client_settings_and_cache_items(maa: MaaFixture) -> None:
    for kwargs in ({"retries": -1}, {"timeout": 0}, {"ttl": timedelta(0)}):
        with pytest.raises(ConfigError, match="settings"):
            JwksClient(maa.instance, **kwargs)  # type: ignore[arg-type]
    envelope = maa_module._envelope(maa.instance, maa.jwks(), FIXED_NOW, timedelta(hours=1))
    window = check_jwks_item((maa.instance,), envelope)
    assert window.not_after - window.not_before == timedelta(hours=1)
    cache = CollateralCache()
    cache.put(JWKS_KIND, (maa.instance,), envelope, source="test", fetched_at=FIXED_NOW)
    with JwksClient(maa.instance, cache=cache) as client:
        assert maa.kid in client.keys(at=FIXED_NOW)  # served from the cache, no network
    with pytest.raises(CollateralUnavailable, match="another instance"):
        make_item(JWKS_KIND, ("https://x.attest.azure.net",), envelope, source="t",
                  fetched_at=FIXED_NOW)
    for data in (b"{}", b"not json",
                 json.dumps({"instance": "i", "fetched_at": FIXED_NOW.isoformat(),
                             "ttl_seconds": 0, "jwks": {}}).encode()):
        with pytest.raises(MalformedEvidence):
            check_jwks_item(("i",), data)


def test_offline_jwks_client_never_connects(maa: MaaFixture) -> None:
    """--offline: served from the cache, or refused at once with where to get a JWKS."""
    with MaaInstanceServer(maa.jwks()) as server:
        with JwksClient(server.url, offline=True, retries=2) as client, \
                pytest.raises(CollateralUnavailable, match="offline") as raised:
            client.keys(at=FIXED_NOW)
        assert server.requests == []  # not one connection, let alone three tries
        assert raised.value.hint is not None and "--jwks FILE" in raised.value.hint
        assert "ccattest collateral export" in raised.value.hint
        assert server.url in raised.value.message

    import httpx

    def loud(request: httpx.Request) -> httpx.Response:
        raise AssertionError("offline JwksClient used the network")

    cache = CollateralCache()
    cache.put(JWKS_KIND, (maa.instance,),
              maa_module._envelope(maa.instance, maa.jwks(), FIXED_NOW, timedelta(hours=1)),
              source="bundle", fetched_at=FIXED_NOW)
    with JwksClient(maa.instance, cache=cache, offline=True,
                    transport=httpx.MockTransport(loud)) as client:
        verifier = MaaVerifier(instances=[maa.instance], client=client)
        evidence, report_data = maa.evidence()
        verified = verifier.verify(evidence, report_data=report_data, at=FIXED_NOW)
        assert verified.collateral["jwks_source"] == maa.instance + "/certs"
        exp = verified.claims["token"]["exp"]
        assert verified.valid_until == datetime.fromtimestamp(exp, UTC) > FIXED_NOW
        assert verified.valid_until_source == "MAA token exp"
        # once the cached copy is past its TTL, offline refuses rather than fetching
        with pytest.raises(CollateralUnavailable, match="offline"):
            client.keys(at=FIXED_NOW + timedelta(hours=2))


# --- the Azure-Samples token and the report it was issued for ------------------------------------

@pytest.fixture
def sample_token(vectors: Path) -> str:
    return (vectors / SAMPLE_TOKEN).read_text().strip()


def test_sample_token_claims_equal_its_snp_report(vectors: Path, sample_token: str) -> None:
    """The signature cannot be checked offline (no JWKS in the source), so the claims are
    mapped from the decoded payload and compared with the report field by field."""
    report = parse_report((vectors / SAMPLE_DIR / "snp_report.bin").read_bytes())
    mapped = map_claims(_payload(sample_token), binding="not_checked", at=SAMPLE_AT)
    assert mapped["attestation_type"] == mapped["isolation_tee"] == "sevsnpvm"
    expected = {
        "measurement": report.measurement.hex(), "host_data": report.host_data.hex(),
        "report_data": report.report_data.hex(), "id_key_digest": report.id_key_digest.hex(),
        "author_key_digest": report.author_key_digest.hex(),
        "report_id": report.report_id.hex(), "family_id": report.family_id.hex(),
        "image_id": report.image_id.hex(), "guest_svn": report.guest_svn,
        "vmpl": report.vmpl, "reported_tcb": report.tcb("reported_tcb", "Milan"),
    }
    for name, value in expected.items():
        assert mapped[name] == value, name
    policy = report.guest_policy.to_dict()
    assert mapped["policy"] == {name: policy[name] for name in ("debug", "migrate_ma", "smt")}
    assert mapped["debuggable"] is policy["debug"] is False
    assert mapped["issuer"] == SAMPLE_INSTANCE
    assert mapped["compliance_status"] is None  # not in this token


def test_sample_report_verifies_natively(vectors: Path) -> None:
    raw = (vectors / SAMPLE_DIR / "snp_report.bin").read_bytes()
    chain = (vectors / SAMPLE_DIR / "vcek_cert_chain.pem").read_bytes()
    report = parse_report(raw)
    result = SnpVerifier().verify(Evidence("snp", raw, {"vcek": chain}),
                                  report_data=report.report_data, at=SAMPLE_AT)
    assert result.claims["product"] == "Milan"
    assert result.claims["measurement"] == report.measurement.hex()


def test_sample_token_goes_through_every_check_but_the_signature(sample_token: str,
                                                                 keys: MaaKeys) -> None:
    kid = "jNolL7YTrRkDIukgm3on/fz5uMi9kjxhfUBTh6Or8No="
    now = datetime(2025, 1, 1, tzinfo=UTC)
    stand_in = {"keys": [jwk_for(keys.signing, kid, signing_certificate(keys.signing, now))]}
    verifier = MaaVerifier(instances=[SAMPLE_INSTANCE], jwks=stand_in)
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        verifier.verify(Evidence("maa", sample_token.encode()), report_data=None,
                        at=SAMPLE_AT, allow_unbound=True)
    production = MaaVerifier(instances=["https://sharedweu.weu.attest.azure.net"],
                             jwks=stand_in)
    with pytest.raises(VerificationFailed, match="jku"):
        production.verify_token(sample_token, report_data=None, at=SAMPLE_AT,
                                allow_unbound=True)
