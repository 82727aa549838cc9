"""The GPU attester through a fake NVML: the evidence it writes verifies; every NVML failure
is PlatformUnavailable saying what is missing; CC mode off is said at once."""

from __future__ import annotations

import base64
import dataclasses
import importlib
from pathlib import Path

import pytest

from ccattest.errors import ConfigError, PlatformUnavailable
from ccattest.evidence import Evidence
from ccattest.platforms.nvgpu import CC_STATE_LOG_TYPE
from ccattest.platforms.nvgpu.abi import is_evidence_list
from ccattest.platforms.nvgpu.collect import (
    NvgpuAttester,
    declared_evidence,
    error_name,
    load_nvml,
)
from ccattest.platforms.nvgpu.verify import NvgpuVerifier
from ccattest.testing.nvgpu import FakeGpu, FakeNvml, NvgpuFixture, multi_evidence

from .conftest import LGV_SAMPLES, manifest_facts, read

EVIDENCE_CALLS = ("nvmlDeviceGetConfComputeGpuAttestationReport",
                  "nvmlDeviceGetConfComputeGpuCertificate")


def _collect(nvml: FakeNvml, nonce: bytes = bytes(range(32)), **kwargs: object):
    return NvgpuAttester(nvml=nvml, **kwargs).collect(nonce)  # type: ignore[arg-type]


def test_one_gpu(hopper: NvgpuFixture) -> None:
    nvml = FakeNvml([FakeGpu.of(hopper)])
    evidence = _collect(nvml)
    assert evidence.platform == "nvgpu" and not is_evidence_list(evidence.report)
    assert evidence.endorsements["cert_chain"] == hopper.chain()
    assert evidence.log == ({"type": CC_STATE_LOG_TYPE, "cc_mode": "on", "devtools": "off",
                             "environment": "prod"},)
    claims = hopper.verifier().verify(evidence, report_data=bytes(range(32)),
                                      at=hopper.now).claims
    assert claims["cc_mode"] == "on" and claims["devtools"] is False
    assert nvml.calls[0] == "nvmlInit" and nvml.calls[1] == "nvmlSystemGetConfComputeState"
    assert nvml.calls[-1] == "nvmlShutdown" and not nvml.initialized


def test_several_gpus(hopper: NvgpuFixture) -> None:
    blackwell = NvgpuFixture.create("BLACKWELL", keys=hopper.keys)
    nvml = FakeNvml([FakeGpu.of(hopper), FakeGpu.of(blackwell)], devtools=1, environment=1)
    evidence = _collect(nvml)
    assert is_evidence_list(evidence.report) and evidence.endorsements == {}
    claims = hopper.verifier().verify(evidence, report_data=bytes(range(32)),
                                      at=hopper.now).claims
    assert [gpu["arch"] for gpu in claims["gpus"]] == ["HOPPER", "BLACKWELL"]
    assert claims["devtools"] is True and claims["cc_environment"] == "sim"
    only_second = _collect(nvml, gpus=[1])
    assert not is_evidence_list(only_second.report)


def test_real_sample_through_the_fake(vectors: Path) -> None:
    """NVML handing over NVIDIA's sample bytes: the evidence verifies against the pinned root."""
    from datetime import UTC, datetime

    report = LGV_SAMPLES + "hopperAttestationReport.txt"
    raw = bytes.fromhex(read(vectors, report).decode())
    nonce = bytes.fromhex(manifest_facts(vectors, report).nonce)
    chain = read(vectors, LGV_SAMPLES + "hopperCertChain.txt")
    evidence = _collect(FakeNvml([FakeGpu(raw, chain)]), nonce)
    assert evidence.report == raw
    claims = NvgpuVerifier().verify(evidence, report_data=nonce,
                                    at=datetime(2025, 6, 1, tzinfo=UTC)).claims
    assert claims["driver_version"] == "550.90.07" and claims["cc_mode"] == "on"
    with pytest.raises(PlatformUnavailable, match="another nonce"):
        _collect(FakeNvml([FakeGpu(raw, chain)]), bytes(32))


def test_cc_mode_off_is_said_at_once(hopper: NvgpuFixture) -> None:
    nvml = FakeNvml([FakeGpu.of(hopper)], cc_feature=0,
                    errors=dict.fromkeys(EVIDENCE_CALLS, FakeNvml.NVML_ERROR_UNKNOWN))
    with pytest.raises(PlatformUnavailable, match=r"^CC mode is off") as caught:
        _collect(nvml)
    assert "gpu-admin-tools" in str(caught.value)
    assert not set(EVIDENCE_CALLS) & set(nvml.calls)
    assert nvml.calls[-1] == "nvmlShutdown"


@pytest.mark.parametrize(("function", "code", "message"), [
    ("nvmlInit", 12, "no NVIDIA driver"),
    ("nvmlInit", 9, "no NVIDIA driver"),
    ("nvmlInit", 4, "NVML cannot start"),
    ("nvmlSystemGetConfComputeState", 3, "does not report a confidential-computing state"),
    ("nvmlSystemGetConfComputeState", 999, "cannot read the CC state"),
    ("nvmlDeviceGetCount", 999, "cannot count"),
    ("nvmlDeviceGetHandleByIndex", 15, "open the device"),
    ("nvmlDeviceGetConfComputeGpuAttestationReport", 999, "attestation report of GPU 0"),
    ("nvmlDeviceGetConfComputeGpuCertificate", 999, "certificate chain of GPU 0"),
    ("nvmlDeviceGetArchitecture", 3, "architecture"),
])
def test_nvml_failures(hopper: NvgpuFixture, function: str, code: int, message: str) -> None:
    nvml = FakeNvml([FakeGpu.of(hopper)], errors={function: code})
    with pytest.raises(PlatformUnavailable, match=message) as caught:
        _collect(nvml)
    if function in EVIDENCE_CALLS:
        assert "CC mode is off" in str(caught.value)  # the hint for NVML_ERROR_UNKNOWN


def test_device_problems(hopper: NvgpuFixture) -> None:
    with pytest.raises(PlatformUnavailable, match="no NVIDIA GPU"):
        _collect(FakeNvml([]))
    with pytest.raises(PlatformUnavailable, match="no GPU selected"):
        _collect(FakeNvml([FakeGpu.of(hopper)]), gpus=[])
    empty = FakeGpu(b"", hopper.chain())
    with pytest.raises(PlatformUnavailable, match="empty or oversized report"):
        _collect(FakeNvml([empty]))
    ampere = dataclasses.replace(FakeGpu.of(hopper), arch=7)
    with pytest.raises(PlatformUnavailable, match="not a Hopper or Blackwell"):
        _collect(FakeNvml([ampere]))


def test_shutdown_failure_is_ignored(hopper: NvgpuFixture) -> None:
    nvml = FakeNvml([FakeGpu.of(hopper)], errors={"nvmlShutdown": 999})
    assert _collect(nvml).platform == "nvgpu"


def test_nonce_size(hopper: NvgpuFixture) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        _collect(FakeNvml([FakeGpu.of(hopper)]), bytes(64))


def test_error_names() -> None:
    nvml = FakeNvml()
    with pytest.raises(AttributeError):
        _ = nvml.state.unknownField
    assert error_name(nvml, FakeNvml.NVMLError(999)) == "NVML_ERROR_UNKNOWN (999)"
    assert error_name(nvml, FakeNvml.NVMLError(4242)) == "NVML error 4242"
    assert error_name(nvml, ValueError("x")) == "ValueError"


def test_missing_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> None:
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", refuse)
    with pytest.raises(PlatformUnavailable, match="not installed") as caught:
        NvgpuAttester().collect(bytes(32))
    assert "ccattest[gpu]" in str(caught.value)


def test_real_nvml_without_a_driver() -> None:
    """This machine has the bindings (the [gpu] extra) but, in CI, no NVIDIA driver."""
    pynvml = pytest.importorskip("pynvml")
    assert load_nvml() is pynvml
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:  # a real driver: this test is about machines without one
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present")
    with pytest.raises(PlatformUnavailable, match="NVML cannot start"):
        NvgpuAttester().collect(bytes(32))


# --- evidence from a report taken elsewhere, with the CC state the attester declares ----------

def test_declared_evidence_envelope_shape(hopper: NvgpuFixture) -> None:
    nonce = bytes(range(32))
    raw = hopper.sign(hopper.report(nonce))
    evidence = declared_evidence(raw, hopper.chain(), attester="site-1", cc_state={
        "cc_mode": "on", "devtools": "off", "environment": "prod"})
    body = evidence.to_dict()
    assert set(body) == {"format", "platform", "report", "endorsements", "attester", "log"}
    assert (body["format"], body["platform"]) == ("ccattest-evidence/1", "nvgpu")
    assert base64.b64decode(body["report"]) == raw
    assert base64.b64decode(body["endorsements"]["cert_chain"]) == hopper.chain()
    assert body["log"] == [{"type": "nvgpu/cc-state", "cc_mode": "on", "devtools": "off",
                            "environment": "prod"}]
    claims = hopper.verifier().verify(Evidence.from_json(evidence.to_json()),
                                      report_data=nonce, at=hopper.now).claims
    assert (claims["cc_mode"], claims["devtools"], claims["cc_environment"]) == (
        "on", False, "prod")
    assert claims["cc_state"] == "attester-declared (NVML), unsigned"
    bare = declared_evidence(raw, hopper.chain())
    assert bare.log == () and "log" not in bare.to_dict()
    assert hopper.verifier().verify(bare, report_data=nonce, at=hopper.now).claims[
        "cc_state"] == "not reported"


def test_declared_evidence_for_several_gpus(hopper: NvgpuFixture) -> None:
    nonce = bytes(range(32))
    listed = multi_evidence([hopper], nonce).report
    evidence = declared_evidence(listed, cc_state={"cc_mode": "on", "devtools": "on"})
    assert evidence.endorsements == {} and evidence.log[0]["environment"] == "unknown"
    claims = hopper.verifier().verify(evidence, report_data=nonce, at=hopper.now).claims
    assert claims["devtools"] is True and claims["gpu_count"] == 1


@pytest.mark.parametrize(("chain", "state", "message"), [
    (None, None, "needs its certificate chain"),
    (b"chain", {"cc_mode": "yes", "devtools": "off"}, "cc_mode must be on or off"),
    (b"chain", {"cc_mode": "on"}, "devtools must be on or off"),
    (b"chain", {"cc_mode": "on", "devtools": "off", "environment": ""}, "must be a name"),
    (b"chain", {"cc_mode": "on", "devtools": "off", "ready": "yes"}, "unknown keys"),
])
def test_declared_evidence_refuses_what_the_verifier_would(
        hopper: NvgpuFixture, chain: bytes | None, state: dict[str, str] | None,
        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        declared_evidence(hopper.sign(hopper.report(bytes(32))), chain, cc_state=state)


def test_an_evidence_list_carries_its_own_chains(hopper: NvgpuFixture) -> None:
    listed = multi_evidence([hopper], bytes(32)).report
    with pytest.raises(ConfigError, match="carries its own") as caught:
        declared_evidence(listed, hopper.chain())
    assert caught.value.found == "a chain with an evidence list"
