"""The azure policy section over claims from MaaVerifier (synthetic and the real sample)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ccattest.platforms.azure.maa import map_claims
from ccattest.policy.azure import AzurePolicy, appraise_maa
from ccattest.result import TrustClaim
from ccattest.testing.cases import FIXED_NOW
from ccattest.testing.maa import MaaFixture, default_report

SAMPLE_TOKEN = Path("azure/azure-attestation-samples/maa.jwt.verifier.dotnet/sev-snp-jwt.txt")


@pytest.fixture(scope="module")
def claims() -> dict[str, Any]:
    maa = MaaFixture.create()
    evidence, report_data = maa.evidence()
    return dict(maa.verifier().verify(evidence, report_data=report_data, at=FIXED_NOW).claims)


def _failed(policy: AzurePolicy | None, claims: dict[str, Any]) -> set[str]:
    return {reason.check for reason in appraise_maa(policy, claims).reasons
            if not reason.passed}


def _strict(claims: dict[str, Any], **changes: Any) -> AzurePolicy:
    values: dict[str, Any] = {
        "compliance_statuses": ["azure-compliant-uvm"],
        "measurements": [claims["launch_measurement"]], "host_data": [claims["host_data"]],
        "id_key_digests": [claims["id_key_digest"]], "min_guest_svn": 2,
        "min_tcb": {"bootloader": 3, "snp": 8, "microcode": 115},
    }
    values.update(changes)
    return AzurePolicy(**values)


def test_strict_policy_accepts_the_fixture(claims: dict[str, Any]) -> None:
    appraisal = appraise_maa(_strict(claims), claims)
    assert all(reason.passed for reason in appraisal.reasons), appraisal.reasons
    vector = appraisal.vector.to_dict()
    for claim in (TrustClaim.HARDWARE, TrustClaim.EXECUTABLES, TrustClaim.CONFIGURATION,
                  TrustClaim.RUNTIME_OPAQUE):
        assert vector[claim.value] == 2


def test_default_policy_warns_on_unknown_measurement(claims: dict[str, Any]) -> None:
    appraisal = appraise_maa(AzurePolicy(), claims)
    assert _failed(AzurePolicy(), claims) == {"measurement"}
    assert appraisal.vector.to_dict()[TrustClaim.EXECUTABLES.value] == 33


def test_missing_or_disabled_section(claims: dict[str, Any]) -> None:
    assert "platform_allowed" in _failed(None, claims)
    assert "platform_allowed" in _failed(AzurePolicy(allow=False), claims)


@pytest.mark.parametrize(("changes", "policy", "failed"), [
    ({"debuggable": True}, {}, "debug"),
    ({"compliance_status": "azure-compliant-cvm"}, {}, "compliance_status"),
    ({"compliance_status": None}, {}, "compliance_status"),
    ({"host_data": "00" * 32}, {}, "host_data"),
    ({"launch_measurement": "00" * 48}, {}, "measurement"),
    ({"launch_measurement": None}, {}, "measurement"),
    ({"reported_tcb": {"bootloader": 3, "tee": 0, "snp": 7, "microcode": 115}}, {},
     "min_tcb"),
    ({"reported_tcb": {}}, {}, "min_tcb"),
    ({"guest_svn": 1}, {}, "min_guest_svn"),
    ({"guest_svn": None}, {}, "min_guest_svn"),
    ({"vmpl": 2}, {}, "vmpl"),
    ({"attestation_type": "sgx"}, {}, "attestation_type"),
    ({"isolation_tee": "vbs"}, {}, "isolation_tee"),
    ({"policy": {"migrate_ma": True, "smt": True}}, {}, "migrate_ma"),
    ({}, {"require_smt_disabled": True}, "smt"),
    ({}, {"require_secure_boot": True}, "secure_boot"),
    ({"id_key_digest": None}, {}, "id_key_digest"),
])
def test_rules_fail(claims: dict[str, Any], changes: dict[str, Any], policy: dict[str, Any],
                    failed: str) -> None:
    assert failed in _failed(_strict(claims, **policy), {**claims, **changes})


def test_permissions_and_non_snp_tees(claims: dict[str, Any]) -> None:
    relaxed = _strict(claims, allow_debug=True, allow_migration=True,
                      require_secure_boot=True)
    changed = {**claims, "debuggable": True, "secure_boot": True,
               "policy": {"migrate_ma": True, "smt": True}}
    assert _failed(relaxed, changed) == set()
    tdx = {**claims, "isolation_tee": "tdxvm", "attestation_type": "azurevm", "vmpl": None,
           "policy": {}}
    failed = _failed(_strict(claims, require_smt_disabled=True), tdx)
    assert not failed & {"vmpl", "migrate_ma", "smt"}
    assert "memory_encryption" in _failed(AzurePolicy(isolation_tees=[]),
                                          {**claims, "isolation_tee": None})


def test_policy_model(tmp_path: Path, claims: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AzurePolicy(debug=True)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        AzurePolicy(host_data=["abc"])
    (tmp_path / "uvm.txt").write_text(f"# uvm\n{claims['launch_measurement']}\n")
    policy = AzurePolicy(measurements_file="uvm.txt").resolve_files(tmp_path)
    assert policy.measurements == [claims["launch_measurement"]]
    assert AzurePolicy().resolve_files(tmp_path) == AzurePolicy()


def test_real_sample_claims(vectors: Path) -> None:
    token = (vectors / SAMPLE_TOKEN).read_text().strip()
    segment = token.split(".")[1]
    payload = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    sample = map_claims(payload, binding="not_checked", at=FIXED_NOW)
    policy = AzurePolicy(measurements=[sample["launch_measurement"]],
                         host_data=[sample["host_data"]], min_guest_svn=2,
                         min_tcb={"bootloader": 3, "snp": 8, "microcode": 115})
    assert _failed(policy, sample) == set()
    # The sample token states no compliance status: a policy that requires one rejects it.
    assert _failed(policy.model_copy(update={"compliance_statuses": ["azure-compliant-cvm"]}),
                   sample) == {"compliance_status"}


def test_default_report_fixture_is_consistent(claims: dict[str, Any]) -> None:
    assert claims["measurement"] == default_report(bytes(64)).measurement.hex()
