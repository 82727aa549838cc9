"""NRAS results: the real NRAS sample, synthetic results, broken variants, the client against
a local NRAS, and fuzzing.

Real vectors (vectors/MANIFEST.md, "NVIDIA GPU"): NVIDIA/attestation-sdk (Apache-2.0)
nv-attestation-sdk-cpp/unit-tests/testdata/sample_attestation_data/hopperClaimsv3_detached_eat
.json is a real NRAS production answer (kid nv-eat-kid-prod-20250609211310110-..., issued
2025-06-11T00:30:58Z, lives one hour); NRAS's JWKS for that kid is not in the vectors, so its
signature cannot be checked offline. Its structure, submods digest and claim mapping are
checked through public pieces that verify nothing cryptographic (parse_detached_eat,
check_submods, map_gpu_claims, with testing.nras.unverified_claims to read payloads): there
is no flag that makes verify_nras skip signatures. NVIDIA/nvtrust (Apache-2.0)
attestation_sdk/tests/pytests/data/gpu/*claims*.json are decoded claims, remote (NRAS
staging/production) and local (iss LOCAL_GPU_VERIFIER, HS256 tokens).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import (
    CCAttestError,
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    StaleEvidence,
    VerificationFailed,
)
from ccattest.evidence import Evidence
from ccattest.platforms.base import Verifier
from ccattest.platforms.nvgpu.nras import (
    ATTEST_PATH,
    JWKS_PATH,
    LOCAL_VERIFIER_ISSUER,
    PLATFORM,
    RESULT_HEADER,
    NrasClient,
    NrasResult,
    NrasVerifier,
    check_submods,
    gpu_failures,
    load_keys,
    map_gpu_claims,
    nras_evidence,
    parse_detached_eat,
    parse_header_result,
    verify_nras,
)
from ccattest.testing.nras import (
    TEST_ISSUER,
    NrasFixture,
    compact,
    detached,
    hs256_signer,
    submod_digest,
    unverified_claims,
)
from ccattest.testing.nras_server import NrasServer
from ccattest.tokens import KeySet, SigningKey

FIXTURE = NrasFixture.create()
CASES = FIXTURE.broken_cases()
NOW = FIXTURE.now
NONCE = FIXTURE.nonce
JWKS = FIXTURE.jwks()
EAT1 = FIXTURE.eat()
EAT2 = FIXTURE.eat(gpus=2)
EVIDENCE = [{"evidence": "AAEC", "certificate": "LS0tLS1C"}]

SAMPLES = "gpu/nvattest-sdk/nv-attestation-sdk-cpp/unit-tests/testdata/sample_attestation_data/"
REAL_EAT = SAMPLES + "hopperClaimsv3_detached_eat.json"
REAL_DECODED = SAMPLES + "hopperClaimsv3_decoded.json"
SWITCH_EAT = SAMPLES + "switch_detached_eat.json"
SDK_CLAIMS = "gpu/nvtrust-sdk/attestation_sdk/tests/pytests/data/gpu/"
REAL_NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
REAL_KID = "nv-eat-kid-prod-20250609211310110-93b13aa1-17e4-4c14-9d33-dba2323329f2"
REAL_AT = datetime(2025, 6, 11, 1, 0, tzinfo=UTC)  # nbf/iat 00:30:58Z, exp 01:30:58Z


def outcome(eat: Any = EAT1, **options: Any) -> NrasResult:
    options.setdefault("nonce", NONCE)
    return verify_nras(eat, JWKS, at=NOW, **options)


def error_of(call: Any) -> CCAttestError:
    with pytest.raises(CCAttestError) as caught:
        call()
    return caught.value


# --- the real NRAS sample --------------------------------------------------------------------

@pytest.fixture
def real(vectors: Path) -> str:
    return (vectors / REAL_EAT).read_text()


def test_real_sample_has_the_detached_eat_shape(real: str) -> None:
    eat = parse_detached_eat(real)
    assert list(eat.gpus) == ["GPU-0"]
    header = json.loads(_segment(eat.overall, 0))
    assert header == {"kid": REAL_KID, "alg": "ES384"}
    assert json.loads(_segment(eat.gpus["GPU-0"], 0)) == header
    overall = unverified_claims(eat.overall)
    assert overall["iss"] == "https://nras.attestation.nvidia.com"
    assert overall["x-nvidia-ver"] == "3.0"
    assert overall["x-nvidia-overall-att-result"] is True
    assert overall["eat_nonce"] == REAL_NONCE.hex()
    assert overall["nbf"] <= REAL_AT.timestamp() < overall["exp"]
    check_submods(overall, eat)  # SHA-256 of the GPU-0 JWT string, as FORMATS.md says
    digest = hashlib.sha256(eat.gpus["GPU-0"].encode()).hexdigest()
    assert overall["submods"] == {"GPU-0": ["DIGEST", ["SHA-256", digest]]}


def test_real_sample_claims_map_onto_gpu_names(real: str, vectors: Path) -> None:
    eat = parse_detached_eat(real)
    claims = unverified_claims(eat.gpus["GPU-0"])
    assert {"GPU-0": claims} == json.loads((vectors / REAL_DECODED).read_text())
    mapped = map_gpu_claims(claims)
    assert mapped["arch"] == "HOPPER"
    assert mapped["driver_version"] == "550.90.07"
    assert mapped["vbios_version"] == "96.00.9F.00.01"  # as MANIFEST lists the report
    assert mapped["nonce"] == REAL_NONCE.hex()
    assert mapped["nonce_match"] is True
    assert mapped["measurements"] == {"count": None, "result": "success", "matched": True,
                                      "mismatched": [], "mismatch_records": [],
                                      "rim": mapped["rim"]}
    assert mapped["rim"]["driver"]["version_match"] is True
    assert mapped["rim"]["driver"]["cert_chain"]["status"] == "valid"
    assert mapped["rim"]["vbios"]["cert_chain"]["expires"] == "2026-02-22T23:17:58Z"
    assert mapped["revocation"] == "good"
    assert mapped["ocsp"] == {"attestation_report": "good", "driver_rim": "good",
                              "vbios_rim": "good"}
    assert (mapped["secure_boot"], mapped["debug"], mapped["fwid_match"]) == (True, False, True)
    assert mapped["token"] == claims
    assert gpu_failures(claims) == ()


def test_real_sample_without_nras_key_is_refused(real: str) -> None:
    error = error_of(lambda: verify_nras(real, JWKS, at=REAL_AT, nonce=REAL_NONCE))
    assert isinstance(error, VerificationFailed)
    assert "not in the JWKS" in error.message


def test_real_sample_signature_is_checked(real: str) -> None:
    # A P-384 key under NRAS's kid: everything up to the signature holds, the signature not.
    impostor = {**SigningKey.generate("ES384").public_jwk(), "kid": REAL_KID}
    error = error_of(lambda: verify_nras(real, {"keys": [impostor]}, at=REAL_AT,
                                         nonce=REAL_NONCE, header_result="true"))
    assert type(error) is VerificationFailed
    assert error.message == "overall token signature does not verify"


def test_real_switch_sample_is_not_a_gpu_result(vectors: Path) -> None:
    text = (vectors / SWITCH_EAT).read_text()
    error = error_of(lambda: verify_nras(text, JWKS, at=REAL_AT))
    assert type(error) is MalformedEvidence
    assert error.hint == "NVSwitch results are not GPU results"


@pytest.mark.parametrize("name", ["detached_claims_remote.json",
                                  "detached_granular_claims_remote.json"])
def test_sdk_remote_claims_map(vectors: Path, name: str) -> None:
    claims = json.loads((vectors / SDK_CLAIMS / name).read_text())
    mapped = map_gpu_claims(claims)
    assert mapped["issuer"].startswith("https://nras.attestation")
    assert mapped["driver_version"].startswith("570.")
    for chain in (mapped["report"]["cert_chain"], mapped["rim"]["driver"]["cert_chain"],
                  mapped["rim"]["vbios"]["cert_chain"]):
        assert chain["validated"] is True  # 2.0: a boolean claim; 3.0: status "valid"
    assert gpu_failures(claims) == ()


def test_sdk_granular_claims_carry_the_warning(vectors: Path) -> None:
    claims = json.loads((vectors / SDK_CLAIMS / "detached_granular_claims_remote.json")
                        .read_text())
    assert "CERTIFICATE_HOLD" in map_gpu_claims(claims)["warning"]
    claims["x-nvidia-gpu-driver-rim-cert-chain"]["x-nvidia-cert-ocsp-status"] = "revoked"
    assert gpu_failures(claims) == ("x-nvidia-gpu-driver-rim-cert-chain OCSP status is "
                                    "'revoked'",)


def test_sdk_local_verifier_results_prove_nothing(vectors: Path) -> None:
    gpu = json.loads((vectors / SDK_CLAIMS / "detached_granular_claims_local.json").read_text())
    overall = json.loads((vectors / SDK_CLAIMS / "overall_granular_claims_local.json")
                         .read_text())
    assert (gpu["iss"], overall["iss"]) == (LOCAL_VERIFIER_ISSUER, LOCAL_VERIFIER_ISSUER)
    assert overall["submods"]["GPU-0"][1][0] == "SHA256"  # not NRAS's "SHA-256"
    local = compact({"alg": "HS256", "typ": "JWT"}, gpu, hs256_signer())
    head = compact({"alg": "HS256", "typ": "JWT"}, overall, hs256_signer())
    error = error_of(lambda: verify_nras(detached(head, {"GPU-0": local}), JWKS, at=NOW))
    assert type(error) is VerificationFailed
    assert "prove nothing" in error.message
    # Even signed by a trusted ES384 key, a local verifier's claims are refused.
    resigned = FIXTURE.sign({**overall, "submods": {"GPU-0": submod_digest(local)}})
    error = error_of(lambda: verify_nras(detached(resigned, {"GPU-0": local}), JWKS,
                                         at=datetime.fromtimestamp(overall["iat"], UTC)))
    assert "local GPU verifier" in error.message


def _segment(token: str, index: int) -> bytes:
    import base64

    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- synthetic results -----------------------------------------------------------------------

def test_one_gpu_verifies() -> None:
    result = outcome(header_result="true")
    assert result.overall_result is True
    assert result.gpus == ("GPU-0",)
    assert result.errors == {"GPU-0": ()}
    assert result.details["nonce"] == NONCE.hex()
    assert result.details["nonce_checked"] is True
    assert result.details["header_result"] is True
    assert result.details["kids"] == [FIXTURE.kid]
    assert result.details["issuer"] == TEST_ISSUER
    assert result.overall_claims["submods"].keys() == {"GPU-0"}
    assert result.mapped["GPU-0"]["driver_version"] == "570.124.06"


def test_eight_gpus_verify_in_index_order() -> None:
    result = outcome(FIXTURE.eat(gpus=11))
    assert result.gpus == tuple(f"GPU-{i}" for i in range(11))
    assert all(not errors for errors in result.errors.values())


@pytest.mark.parametrize("form", ["text", "bytes", "list"])
def test_input_forms(form: str) -> None:
    value = {"text": EAT2, "bytes": EAT2.encode(), "list": json.loads(EAT2)}[form]
    assert outcome(value).gpus == ("GPU-0", "GPU-1")


def test_failed_attestation_is_a_verified_negative_outcome() -> None:
    result = outcome(FIXTURE.eat(gpus=2, failing=[1]), header_result="false")
    assert result.overall_result is False
    assert result.errors["GPU-0"] == ()
    assert result.errors["GPU-1"][0] == "measres is 'fail'"
    assert "measurement 9 (firmware) does not match" in result.errors["GPU-1"][1]
    mapped = result.mapped["GPU-1"]["measurements"]
    assert mapped["matched"] is False
    assert mapped["mismatched"] == [9]
    assert mapped["mismatch_records"] == [{"index": 9, "source": "firmware",
                                           "expected": "ab" * 48, "found": "cd" * 48}]


def test_without_expected_nonce_or_header() -> None:
    result = outcome(nonce=None)
    assert result.details["nonce_checked"] is False
    assert result.details["header_result"] is None


def test_issuer_and_leeway() -> None:
    assert outcome(issuer=TEST_ISSUER).overall_result
    error = error_of(lambda: outcome(issuer="https://nras.attestation.nvidia.com"))
    assert error.message == "overall token is from another issuer"
    late = NOW + FIXTURE.lifetime
    with pytest.raises(StaleEvidence):
        verify_nras(EAT1, JWKS, at=late, nonce=NONCE)
    assert verify_nras(EAT1, JWKS, at=late, nonce=NONCE, leeway=timedelta(minutes=2))


def test_key_set_file_and_text_forms(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(JWKS))
    for keys in (KeySet(JWKS), path, json.dumps(JWKS), json.dumps(JWKS).encode()):
        assert verify_nras(EAT1, keys, at=NOW).overall_result


@pytest.mark.parametrize(("keys", "message"), [
    ([], "malformed JWKS"),
    ("{", "JWKS is not valid JSON"),
    (b"x" * (1 << 21), "JWKS is too large"),
    ({"keys": []}, "JWKS holds no keys"),
    ({"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}, "JWKS key 0 does not load"),
])
def test_bad_key_sets_are_config_errors(keys: Any, message: str) -> None:
    error = error_of(lambda: load_keys(keys))
    assert type(error) is ConfigError
    assert error.message == message


@pytest.mark.parametrize(("options", "message"), [
    ({"at": datetime(2026, 1, 1)}, "at is a naive datetime (no time zone)"),
    ({"nonce": "00" * 32}, "expected nonce must be non-empty bytes"),
    ({"nonce": b""}, "expected nonce must be non-empty bytes"),
    ({"leeway": timedelta(seconds=-1)}, "leeway must be a non-negative timedelta"),
])
def test_bad_settings_are_config_errors(options: dict[str, Any], message: str) -> None:
    arguments = {"at": NOW, "nonce": NONCE, **options}
    error = error_of(lambda: verify_nras(EAT1, JWKS, **arguments))
    assert type(error) is ConfigError
    assert error.message == message


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("true", True), (" FALSE\r\n", False), (b"True", True)])
def test_header_result(value: Any, expected: bool | None) -> None:
    assert parse_header_result(value) is expected


def test_header_result_must_be_text() -> None:
    with pytest.raises(MalformedEvidence):
        parse_header_result(1)  # type: ignore[arg-type]


def test_large_inputs_are_refused() -> None:
    with pytest.raises(MalformedEvidence, match="too large"):
        outcome(" " * (1 << 20 + 1))
    long_token = "a" * (1 << 16 + 1)
    with pytest.raises(MalformedEvidence, match="too long"):
        outcome([["JWT", long_token], {"GPU-0": "x"}])
    many = {f"GPU-{i}": "x" for i in range(65)}
    with pytest.raises(MalformedEvidence, match="too many GPUs"):
        outcome([["JWT", "x"], many])


def test_jwk_without_ec_key_object() -> None:
    # An RSA key published under the kid NRAS names: refused before any signature check.
    rsa_jwk = {"kty": "RSA", "kid": FIXTURE.kid, "n": "sXch", "e": "AQAB"}
    error = error_of(lambda: verify_nras(EAT1, {"keys": [rsa_jwk]}, at=NOW))
    assert type(error) is VerificationFailed
    assert "cannot verify ES384" in error.message


def test_edges_of_token_checks() -> None:
    # nbf is optional; a far-future iat is named even where datetime cannot show it.
    assert outcome(FIXTURE.eat(overall_changes={"nbf": None})).overall_result
    error = error_of(lambda: outcome(FIXTURE.eat(overall_changes={"iat": 10 ** 20})))
    assert type(error) is StaleEvidence
    assert error.found == str(10 ** 20)
    # base64url with stray bits in the last character is not canonical.
    head, body, _ = json.loads(EAT1)[0][1].split(".")
    error = error_of(lambda: outcome([["JWT", f"{head}.{body}.AB"], {"GPU-0": "x"}]))
    assert error.message == "overall token signature is not canonical base64url"
    # A key set whose key under the kid is not P-384, whatever its JWK says.
    keys = KeySet(JWKS)
    jwk, _ = keys.index[FIXTURE.kid]
    keys.index[FIXTURE.kid] = (jwk, ec.generate_private_key(ec.SECP256R1()).public_key())
    error = error_of(lambda: verify_nras(EAT1, keys, at=NOW))
    assert error.message == f"JWKS key {FIXTURE.kid} is not a P-384 public key"


# --- claim mapping ---------------------------------------------------------------------------

def test_mapping_of_other_architectures_and_debug() -> None:
    claims = {**FIXTURE.gpu_claims(), "hwmodel": "GB100 A01 FSP BROM", "dbgstat": "enabled"}
    mapped = map_gpu_claims(claims)
    assert (mapped["arch"], mapped["debug"]) == ("BLACKWELL", True)
    assert gpu_failures(claims) == ("dbgstat is 'enabled'",)
    assert map_gpu_claims({"hwmodel": "LS_10 A01 FSP BROM"})["arch"] is None


def test_mapping_of_sparse_claims() -> None:
    mapped = map_gpu_claims({})
    assert mapped["report"]["cert_chain"] is None
    assert mapped["rim"]["driver"]["cert_chain"] is None
    assert mapped["measurements"]["matched"] is None
    assert mapped["revocation"] == "not_checked"
    assert mapped["ocsp"] == dict.fromkeys(("attestation_report", "driver_rim", "vbios_rim"))
    assert (mapped["debug"], mapped["issued_at"], mapped["nonce"]) == (None, None, None)


@pytest.mark.parametrize(("states", "expected"), [
    ((("good", None), ("good", None), ("good", None)), "good"),
    ((("good", None), ("revoked", "certificate_hold"), ("good", None)), "on_hold"),
    ((("unknown", None), ("revoked", "certificateHold"), ("good", None)), "on_hold"),
    ((("good", None), ("revoked", "keyCompromise"), ("revoked", "certificate_hold")),
     "revoked"),
    ((("unknown", None), ("good", None), (None, None)), "unknown"),
    ((("pending", None), ("good", None), ("good", None)), "pending"),
])
def test_revocation_state(states: tuple[tuple[str | None, str | None], ...],
                          expected: str) -> None:
    claims = FIXTURE.gpu_claims()
    for name, (status, reason) in zip(("x-nvidia-gpu-attestation-report-cert-chain",
                                       "x-nvidia-gpu-driver-rim-cert-chain",
                                       "x-nvidia-gpu-vbios-rim-cert-chain"), states,
                                      strict=True):
        claims[name] = {**claims[name], "x-nvidia-cert-ocsp-status": status,
                        "x-nvidia-cert-revocation-reason": reason}
    assert map_gpu_claims(claims)["revocation"] == expected


def test_failures_name_every_failed_check() -> None:
    claims = {**FIXTURE.gpu_claims(), "x-nvidia-gpu-vbios-rim-version-match": False,
              "x-nvidia-gpu-attestation-report-cert-chain": {
                  "x-nvidia-cert-status": "expired", "x-nvidia-cert-ocsp-status": "revoked",
                  "x-nvidia-cert-revocation-reason": "keyCompromise"}}
    assert gpu_failures(claims) == (
        "x-nvidia-gpu-vbios-rim-version-match is False",
        "x-nvidia-gpu-attestation-report-cert-chain status is 'expired'",
        "x-nvidia-gpu-attestation-report-cert-chain OCSP status is 'revoked' "
        "('keyCompromise')",
    )


# --- the Verifier ----------------------------------------------------------------------------

def test_verifier_implements_the_protocol() -> None:
    verifier = FIXTURE.verifier(issuer=TEST_ISSUER)
    assert isinstance(verifier, Verifier)
    assert verifier.platform == PLATFORM == "nvgpu-nras"
    verified = verifier.verify(FIXTURE.evidence(EAT2, "true"), report_data=NONCE, at=NOW)
    claims = verified.claims
    assert claims["overall_result"] is True
    assert claims["gpu_count"] == 2
    assert [gpu["device"] for gpu in claims["gpus"]] == ["GPU-0", "GPU-1"]
    assert claims["gpus"][1]["arch"] == "HOPPER"
    assert claims["binding"] == "nonce"
    assert claims["header_result"] is True
    assert claims["errors"] == {"GPU-0": [], "GPU-1": []}
    assert claims["verified_at"] == NOW.isoformat()
    assert claims["expires_at"] == (NOW - timedelta(seconds=60) + FIXTURE.lifetime).isoformat()
    assert all(check.passed for check in verified.checks)
    assert {check.check for check in verified.checks} >= {"signature", "submods", "binding",
                                                           "header", "issuer", "nras_result"}
    assert verified.collateral == {"jwks_kids": [FIXTURE.kid], "issuer": TEST_ISSUER}


def test_nvgpu_policy_appraises_nras_claims() -> None:
    from ccattest.policy.nvgpu import NvgpuPolicy, appraise_nvgpu

    policy = NvgpuPolicy(architectures=["HOPPER"], min_driver_version="570.0",
                         require_revocation_check=True)
    eat = FIXTURE.eat(gpus=2, failing=[1])
    verified = FIXTURE.verifier().verify(FIXTURE.evidence(eat), report_data=NONCE, at=NOW)
    outcomes = {reason.check: reason.passed
                for reason in appraise_nvgpu(policy, verified.claims).reasons}
    assert outcomes["gpu0:arch"]
    assert [passed for check, passed in outcomes.items() if "driver_version" in check] == [
        True, True]
    assert outcomes["gpu0:rim"] and outcomes["gpu0:revocation"]
    assert outcomes["gpu1:rim"] is False


def test_verifier_reports_failed_attestation() -> None:
    verified = FIXTURE.verifier().verify(FIXTURE.evidence(FIXTURE.eat(failing=[0]), "false"),
                                         report_data=NONCE, at=NOW)
    assert verified.claims["overall_result"] is False
    final = verified.checks[-1]
    assert (final.check, final.passed) == ("nras_result", False)
    assert "GPU-0: measres is 'fail'" in (final.found or "")


def test_verifier_needs_a_nonce_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="no expected nonce"):
        FIXTURE.verifier().verify(FIXTURE.evidence(), report_data=None, at=NOW)
    verified = FIXTURE.verifier(allow_unbound=True).verify(FIXTURE.evidence(),
                                                           report_data=None, at=NOW)
    assert verified.claims["binding"] == "not_checked"
    binding = next(check for check in verified.checks if check.check == "binding")
    assert not binding.passed
    verified = FIXTURE.verifier().verify(FIXTURE.evidence(), report_data=None, at=NOW,
                                         allow_unbound=True)
    assert verified.claims["nonce"] == NONCE.hex()


def test_verifier_settings() -> None:
    with pytest.raises(ConfigError):
        NrasVerifier(JWKS, leeway=timedelta(seconds=-5))
    evidence = nras_evidence(EAT1.encode(), None, attester="site-1")
    assert (evidence.platform, evidence.endorsements, evidence.attester) == (PLATFORM, {},
                                                                            "site-1")
    assert nras_evidence(EAT1, "true").endorsements == {RESULT_HEADER: b"true"}
    result = FIXTURE.verifier().verify_result(EAT1, at=NOW, nonce=NONCE, header_result="true")
    assert result.overall_result


def test_warnings_are_reported() -> None:
    eat = FIXTURE.eat(gpu_changes={"x-nvidia-attestation-warning": "certificate on hold"})
    verified = FIXTURE.verifier().verify(FIXTURE.evidence(eat), report_data=NONCE, at=NOW)
    assert verified.claims["warnings"] == {"GPU-0": "certificate on hold"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_broken_results_are_refused(case: Any) -> None:
    verifier = NrasVerifier(case.jwks)
    with pytest.raises(CCAttestError) as caught:
        verifier.verify(case.evidence, report_data=case.report_data, at=case.at)
    assert type(caught.value) is case.error, str(caught.value)


def test_broken_cases_each_still_verify_without_their_flaw() -> None:
    verifier = FIXTURE.verifier()
    assert verifier.verify(FIXTURE.evidence(), report_data=NONCE, at=NOW).claims
    assert len({case.name for case in CASES}) == len(CASES) >= 60


# --- the client against a local NRAS ---------------------------------------------------------

@pytest.fixture
def nras() -> Any:
    with NrasServer(FIXTURE) as server:
        yield server


def client(server: NrasServer, **options: Any) -> NrasClient:
    options.setdefault("sleep", lambda _: None)
    return NrasClient(server.url, **options)


def test_attest_and_verify_end_to_end(nras: NrasServer) -> None:
    with client(nras) as nras_client:
        text, header = nras_client.attest(EVIDENCE * 2, NONCE, "hopper")
        keys = nras_client.jwks()
    assert header == "true"
    result = verify_nras(text, keys, at=NOW, nonce=NONCE, header_result=header)
    assert result.overall_result and result.gpus == ("GPU-0", "GPU-1")
    request = nras.requests[0]
    assert (request.method, request.path) == ("POST", ATTEST_PATH)
    assert request.header("content-type") == "application/json"
    assert request.json() == {"nonce": NONCE.hex(), "arch": "HOPPER",
                              "evidence_list": EVIDENCE * 2, "claims_version": "3.0"}
    assert nras.requests[1].path == JWKS_PATH


def test_http_200_with_failed_attestation(nras: NrasServer) -> None:
    nras.verdict = False
    with client(nras) as nras_client:
        text, header = nras_client.attest(EVIDENCE, NONCE.hex(), "BLACKWELL",
                                          claims_version=None)
    assert header == "false"
    assert "claims_version" not in nras.requests[0].json()
    result = verify_nras(text, JWKS, at=NOW, nonce=NONCE, header_result=header)
    assert result.overall_result is False and result.errors["GPU-0"]


def test_header_is_optional_and_checked(nras: NrasServer) -> None:
    nras.header = None
    with client(nras) as nras_client:
        assert nras_client.attest(EVIDENCE, NONCE, "HOPPER")[1] is None
        nras.header = "true"
        nras.verdict = False
        text, header = nras_client.attest(EVIDENCE, NONCE, "HOPPER")
    with pytest.raises(VerificationFailed, match="disagree"):
        verify_nras(text, JWKS, at=NOW, nonce=NONCE, header_result=header)


def test_retries_with_retry_after_and_backoff(nras: NrasServer) -> None:
    waits: list[float] = []
    nras.fail(429, retry_after="3")
    nras.fail(503, retry_after="soon")
    nras.drop()
    with client(nras, retries=3, backoff=0.25, sleep=waits.append) as nras_client:
        text, _ = nras_client.attest(EVIDENCE, NONCE, "HOPPER")
    assert parse_detached_eat(text).gpus
    assert waits == [3.0, 0.5, 1.0]
    assert len(nras.requests) == 4


def test_gives_up_after_retries(nras: NrasServer) -> None:
    nras.fail(500, times=3, body=b"busy")
    with client(nras, retries=2) as nras_client, pytest.raises(CollateralUnavailable) as caught:
        nras_client.attest(EVIDENCE, NONCE, "HOPPER")
    assert "after 3 tries" in caught.value.message
    assert "HTTP 500: b'busy'" in str(caught.value.found)


def test_refusals_are_not_retried(nras: NrasServer) -> None:
    nras.respond_with(b'{"error": "bad evidence"}', status=400)
    with client(nras, retries=5) as nras_client, pytest.raises(CollateralUnavailable) as caught:
        nras_client.attest(EVIDENCE, NONCE, "HOPPER")
    assert caught.value.message.startswith("NRAS refused POST")
    assert len(nras.requests) == 1


def test_answers_that_cannot_be_used(nras: NrasServer) -> None:
    nras.respond_with(b"\xff\xfe", header="true")
    with client(nras) as nras_client:
        with pytest.raises(CollateralUnavailable, match="not UTF-8"):
            nras_client.attest(EVIDENCE, NONCE, "HOPPER")
        nras.respond_with(b"[" * ((1 << 20) + 1))
        with pytest.raises(CollateralUnavailable, match="larger than"):
            nras_client.attest(EVIDENCE, NONCE, "HOPPER")
        nras.respond_with("not an EAT", header="maybe")
        text, header = nras_client.attest(EVIDENCE, NONCE, "HOPPER")
    with pytest.raises(MalformedEvidence):
        verify_nras(text, JWKS, at=NOW, header_result=header)


def test_jwks_is_cached_and_refreshed(nras: NrasServer) -> None:
    now = [100.0]
    with client(nras, jwks_ttl=60, clock=lambda: now[0]) as nras_client:
        first = nras_client.jwks()
        assert nras_client.jwks() is first
        now[0] += 61
        assert nras_client.jwks() == first
        assert nras_client.jwks(refresh=True) == first
    assert [request.path for request in nras.requests] == [JWKS_PATH] * 3


@pytest.mark.parametrize("served", [b"{", b'{"keys": []}', b'{"keys": [{"d": "x"}]}'])
def test_unusable_jwks(nras: NrasServer, served: bytes) -> None:
    nras.serve_jwks(served)
    with client(nras) as nras_client, pytest.raises(CollateralUnavailable, match="JWKS"):
        nras_client.jwks()


def test_other_key_in_served_jwks(nras: NrasServer) -> None:
    other = NrasFixture.create()
    nras.serve_jwks(other.jwks())
    with client(nras) as nras_client:
        text, header = nras_client.attest(EVIDENCE, NONCE, "HOPPER")
        keys = nras_client.jwks()
    with pytest.raises(VerificationFailed, match="not in the JWKS"):
        verify_nras(text, keys, at=NOW, nonce=NONCE, header_result=header)


def test_timeouts_and_connection_errors() -> None:
    def transport(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with (NrasClient("https://nras.test.invalid", retries=1, sleep=lambda _: None,
                     transport=httpx.MockTransport(transport)) as nras_client,
          pytest.raises(CollateralUnavailable, match="after 2 tries") as caught):
        nras_client.jwks()
    assert "timeout (ReadTimeout)" in str(caught.value.found)
    with NrasServer() as server:
        url = server.url
    with NrasClient(url, retries=0) as nras_client, pytest.raises(CollateralUnavailable):
        nras_client.jwks()


@pytest.mark.parametrize(("arguments", "message"), [
    ((EVIDENCE, b"\x00" * 31, "HOPPER"), "NRAS nonce has the wrong length"),
    ((EVIDENCE, "xyz", "HOPPER"), "NRAS nonce is not hex"),
    ((EVIDENCE, NONCE, "AMPERE"), "unknown GPU architecture for NRAS"),
    ((EVIDENCE, NONCE, None), "unknown GPU architecture for NRAS"),
    (([], NONCE, "HOPPER"), "NRAS evidence list must hold 1 to 64 items"),
    (("evidence", NONCE, "HOPPER"), "NRAS evidence list must hold 1 to 64 items"),
    (([{"evidence": "AA"}], NONCE, "HOPPER"), "NRAS evidence item 0 is malformed"),
])
def test_attest_arguments(arguments: tuple[Any, ...], message: str) -> None:
    with NrasClient("https://nras.test.invalid") as nras_client:
        error = error_of(lambda: nras_client.attest(*arguments))
    assert type(error) is ConfigError
    assert error.message == message


@pytest.mark.parametrize(("url", "options"), [
    ("ftp://nras.test.invalid", {}), ("https://", {}), ("http://[::1", {}),
    ("https://nras.test.invalid", {"retries": -1}),
    ("https://nras.test.invalid", {"retries": True}),
    ("https://nras.test.invalid", {"timeout": 0}),
    ("https://nras.test.invalid", {"backoff": -1}),
    ("https://nras.test.invalid", {"jwks_ttl": "1h"}),
])
def test_client_settings(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        NrasClient(url, **options)


def test_local_server_edges(nras: NrasServer) -> None:
    with httpx.Client(base_url=nras.url) as http:
        assert http.get("/v3/attest/gpu").status_code == 404
        assert http.post(ATTEST_PATH, content=b"{}").status_code == 400
        assert http.post(ATTEST_PATH, json={"nonce": "00", "arch": "X",
                                            "evidence_list": [{}]}).status_code == 400
    assert _raw_post(nras.url, str((1 << 20) + 1)) == 413
    assert _raw_post(nras.url, "x") == 413
    with pytest.raises(RuntimeError):
        nras.start()
    idle = NrasServer(FIXTURE)
    with pytest.raises(RuntimeError):
        _ = idle.url
    idle.stop()


def _raw_post(url: str, length: str) -> int:
    """POST with a Content-Length of our choosing (httpx refuses to send a false one)."""
    connection = http.client.HTTPConnection(httpx.URL(url).host, httpx.URL(url).port, timeout=5)
    try:
        connection.putrequest("POST", ATTEST_PATH)
        connection.putheader("Content-Length", length)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


# --- fuzzing ---------------------------------------------------------------------------------

def _settles(call: Any) -> None:
    """Either a verified result or a typed ccattest error: never anything else."""
    try:
        result = call()
    except CCAttestError:
        return
    assert isinstance(result, NrasResult)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_fuzz_arbitrary_input(data: str | bytes) -> None:
    _settles(lambda: outcome(data))


@given(JSON)
def test_fuzz_arbitrary_json(value: Any) -> None:
    _settles(lambda: outcome(value))
    _settles(lambda: outcome(json.dumps(value)))


@given(st.integers(0, len(EAT2) - 1), st.integers(0, 4), st.text(max_size=3))
def test_fuzz_mutated_eat(position: int, cut: int, insert: str) -> None:
    mutated = EAT2[:position] + insert + EAT2[position + cut:]
    _settles(lambda: outcome(mutated, header_result="true"))


@given(st.sampled_from(["overall", "GPU-0", "GPU-1"]), st.integers(0, 4000),
       st.sampled_from("AZaz09-_.=+/ "))
def test_fuzz_mutated_token(which: str, position: int, char: str) -> None:
    eat = json.loads(EAT2)
    token = eat[0][1] if which == "overall" else eat[1][which]
    index = position % len(token)
    token = token[:index] + char + token[index + 1:]
    if which == "overall":
        eat[0][1] = token
    else:
        eat[1][which] = token
    _settles(lambda: outcome(eat))


@given(st.sampled_from(["kty", "crv", "x", "y", "kid", "alg", "use", "key_ops", "d", "keys"]),
       JSON)
def test_fuzz_mutated_jwks(member: str, value: Any) -> None:
    jwks: Any = {"keys": [dict(FIXTURE.jwk())]}
    if member == "keys":
        jwks["keys"] = value
    else:
        jwks["keys"][0][member] = value
    _settles(lambda: verify_nras(EAT1, jwks, at=NOW, nonce=NONCE))


@given(st.text(max_size=12) | st.binary(max_size=12))
def test_fuzz_header(value: str | bytes) -> None:
    _settles(lambda: outcome(header_result=value))


@given(st.dictionaries(st.sampled_from([
    "hwmodel", "dbgstat", "measres", "secboot", "eat_nonce", "iat", "exp",
    "x-nvidia-gpu-driver-version", "x-nvidia-mismatch-measurement-records",
    "x-nvidia-gpu-driver-rim-cert-chain", "x-nvidia-gpu-driver-rim-cert-validated",
    "x-nvidia-attestation-warning"]), JSON, max_size=4))
def test_fuzz_claim_mapping(claims: dict[str, Any]) -> None:
    try:
        mapped = map_gpu_claims(claims)
    except MalformedEvidence:
        return
    assert mapped["token"] == claims
    assert isinstance(gpu_failures(claims), tuple)


def test_evidence_of_another_shape_is_typed() -> None:
    evidence = Evidence(platform=PLATFORM, report=b"\x00" * 10)
    with pytest.raises(MalformedEvidence):
        FIXTURE.verifier().verify(evidence, report_data=NONCE, at=NOW)
    keys = dataclasses.replace(FIXTURE, key=ec.generate_private_key(ec.SECP384R1())).jwks()
    with pytest.raises(VerificationFailed):
        verify_nras(EAT1, keys, at=NOW)
